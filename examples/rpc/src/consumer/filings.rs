//! Calls filed by their callers' threads: a call whose frame its caller
//! sends itself (`ChannelHandle::write_direct`) never passes the loop on
//! its way out, so the caller leaves its answer's sink here first, and the
//! loop moves it into the pending table before it settles an answer or
//! checks deadlines (see `pending`). Uses the consumer's sink and error.
//!
//! The frame is sent after its filing, on the caller's thread, and the
//! answer can only reach the loop after the provider got the frame: by
//! then the filing is in the queue for the loop to see.
//!
//! A connection that closes fails what is filed. A caller may file just
//! as the loop closes: it pushes, then looks at `closed`; the loop sets
//! `closed`, then drains. A sequentially consistent fence on each side
//! means at least one of them sees the other's step, so every filing is
//! failed by the loop's drain or by the caller's own; each is taken once.
//!
//! The filings also carry the pause of the loop's deadline check: a
//! connection with nothing in flight stops ticking (see `handler`), and a
//! caller that files into a paused connection has its loop tick again
//! (the reactor's `TimerPause`, whose fence is the one `closed` is read
//! after).

use super::error::RpcError;
use super::sink::Sink;
use crossbeam_queue::SegQueue;
use gyre_reactor::TimerPause;
use std::sync::atomic::{fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// One call filed by its caller.
pub(crate) struct Filed {
    pub(crate) id: u64,
    pub(crate) done: Sink,
    pub(crate) timeout: Duration,
    pub(crate) started: Instant,
}

/// A connection's filings, shared by its callers and its loop.
#[derive(Default)]
pub(crate) struct Filings {
    queue: SegQueue<Filed>,
    closed: AtomicBool,
    /// The connection's count of calls in flight: a filing counts from
    /// the moment it is filed until it is settled (by the loop) or failed.
    waiting: Arc<AtomicUsize>,
    /// Whether the loop's deadline check is paused.
    pub(crate) ticks: TimerPause,
    /// Has the loop tick again: set by the loop when the connection
    /// opens, before its first tick, so before any pause.
    resume: OnceLock<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for Filings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filings")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Filings {
    /// Filings that count their calls in `waiting`.
    pub(crate) fn new(waiting: Arc<AtomicUsize>) -> Filings {
        Filings {
            waiting,
            ..Filings::default()
        }
    }

    /// Files `call` (any thread) and returns how many calls were in
    /// flight before it. On a closed connection its sink answers
    /// [`RpcError::Closed`] at once.
    pub(crate) fn file(&self, call: Filed) -> usize {
        let before = self.waiting.fetch_add(1, Ordering::Relaxed);
        self.file_counted(call);
        before
    }

    /// Files `call`, already counted in flight by its caller (a call that
    /// was reading its own answer and gave up: see `lent`).
    pub(crate) fn file_counted(&self, call: Filed) {
        self.queue.push(call);
        // Fences the push (and the count) before the reads of the pause
        // and of `closed` (see the module comment).
        self.resume_if_paused();
        if self.closed.load(Ordering::Relaxed) {
            self.fail_all();
        }
    }

    /// Sets what has the connection's loop tick again (once).
    pub(crate) fn set_resume(&self, resume: impl Fn() + Send + Sync + 'static) {
        let _ = self.resume.set(Box::new(resume));
    }

    /// Has the loop tick again if its check is paused and this thread is
    /// the one told to resume it ([`TimerPause::resume_needed`], whose
    /// fence orders this thread's filing before the look).
    pub(crate) fn resume_if_paused(&self) {
        if self.ticks.resume_needed() {
            // Set before the first tick: a paused loop has set it.
            if let Some(resume) = self.resume.get() {
                resume();
            }
        }
    }

    /// Calls in flight on the connection now (any thread; a hint, as
    /// others may be filing or settling meanwhile).
    pub(crate) fn in_flight(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Calls filed and not yet taken by the loop.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The next filing, for the loop.
    pub(crate) fn take(&self) -> Option<Filed> {
        self.queue.pop()
    }

    /// The connection closed (the loop): everything filed now or later
    /// fails.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.fail_all();
    }

    fn fail_all(&self) {
        while let Some(call) = self.queue.pop() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            call.done.send(Err(RpcError::Closed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::sink::wait_for;

    #[test]
    fn a_call_filed_after_the_close_is_failed_by_its_caller() {
        let filings = Filings::default();
        filings.close();
        let answer = wait_for(|done| {
            filings.file(Filed {
                id: 1,
                done,
                timeout: Duration::from_secs(1),
                started: Instant::now(),
            });
            Ok(())
        });
        assert!(matches!(answer, Err(RpcError::Closed)));
        assert!(filings.take().is_none());
        assert_eq!(filings.waiting.load(Ordering::Relaxed), 0);
    }

    /// Callers on four threads file while the loop closes: every call is
    /// answered (`Closed`, by whichever side took it), none is lost.
    #[test]
    fn every_call_filed_around_a_close_is_answered() {
        for _ in 0..200 {
            let filings = std::sync::Arc::new(Filings::default());
            let callers: Vec<_> = (0..4)
                .map(|_| {
                    let filings = filings.clone();
                    std::thread::spawn(move || {
                        for id in 0..20 {
                            let answer = wait_for(|done| {
                                filings.file(Filed {
                                    id,
                                    done,
                                    timeout: Duration::from_secs(1),
                                    started: Instant::now(),
                                });
                                Ok(())
                            });
                            assert!(matches!(answer, Err(RpcError::Closed)));
                        }
                    })
                })
                .collect();
            filings.close();
            for c in callers {
                c.join().unwrap();
            }
            assert_eq!(filings.waiting.load(Ordering::Relaxed), 0, "counted out");
        }
    }
}
