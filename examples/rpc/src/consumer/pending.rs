//! The calls a connection is waiting on, kept on its event loop: the
//! registrar (an outbound stage) files each call as it goes out (or the
//! loop takes a call its caller sent itself from `filings`), the
//! connection handler settles it when its answer comes in or its deadline
//! passes. Both run on the loop, so the table needs no lock. The consumer's
//! filters run here too, on every path a call can take (typed calls,
//! cluster fan-outs): `before` when a call is filed, `after` when it is
//! settled, however that happens.

use super::error::RpcError;
use super::filings::Filings;
pub(crate) use super::sink::{Answer, Sink};
use crate::filter::{run_after, run_before, CallInfo, Filter, Side};
use crate::protocol::Status;
use bytes::Bytes;
use gyre_reactor::{OutboundContext, OutboundHandler};
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A message for the connection, written through its `ChannelHandle`.
pub(crate) enum Outgoing {
    /// A two-way call: its frame and where its answer goes.
    Call {
        id: u64,
        frame: Bytes,
        timeout: Duration,
        done: Sink,
        /// Service and method, for the filters (only when there are any).
        names: Option<Box<(String, String)>>,
    },
    /// A frame needing no answer (one-way calls, heartbeats).
    Frame(Bytes),
}

struct Waiting {
    done: Sink,
    timeout: Duration,
    names: Option<Box<(String, String)>>,
    started: Instant,
}

/// The table and its deadline queue.
pub(crate) struct Pending {
    calls: HashMap<u64, Waiting>,
    /// How many calls wait, for other threads to read.
    pub(crate) waiting: Arc<AtomicUsize>,
    /// Deadlines, soonest first; an entry whose call was already answered
    /// is skipped when it comes up.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    /// The consumer's filters.
    pub(crate) filters: Arc<[Arc<dyn Filter>]>,
    /// The provider, for the filters.
    pub(crate) peer: Option<SocketAddr>,
    /// Calls their callers sent themselves, to be filed here.
    pub(crate) filings: Arc<Filings>,
    /// Calls answered in the current batch of reads, handed to their
    /// waiters at its end ([`hand_over`](Pending::hand_over)); kept, so
    /// that its memory is reused batch after batch.
    answered: Vec<(Waiting, Answer)>,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            calls: HashMap::new(),
            waiting: Arc::default(),
            deadlines: BinaryHeap::new(),
            filters: Arc::from(Vec::new()),
            peer: None,
            filings: Arc::default(),
            answered: Vec::new(),
        }
    }
}

fn status_of(answer: &Answer) -> Status {
    match answer {
        Ok((status, _)) => *status,
        Err(e) => e.status(),
    }
}

impl Pending {
    /// An empty table that keeps `waiting` up to date.
    pub(crate) fn new(
        waiting: Arc<AtomicUsize>,
        filters: Arc<[Arc<dyn Filter>]>,
        peer: SocketAddr,
        filings: Arc<Filings>,
    ) -> Pending {
        Pending {
            waiting,
            filters,
            peer: Some(peer),
            filings,
            ..Pending::default()
        }
    }

    /// Files a call: its deadline, and its sink under its id; `count`:
    /// it is not yet counted in flight (a caller's filing counted itself).
    fn file(&mut self, id: u64, waiting: Waiting, count: bool) {
        self.deadlines
            .push(Reverse((waiting.started + waiting.timeout, id)));
        if self.calls.insert(id, waiting).is_none() && count {
            self.waiting.fetch_add(1, Ordering::Relaxed);
            // A call that came through the loop while its deadline check
            // was paused (only the loop pauses it, so the look is exact
            // here): have it tick again. Callers' filings see to their
            // own (`Filings::file_counted`).
            if self.filings.ticks.is_paused() {
                self.filings.resume_if_paused();
            }
        }
    }

    /// Files what callers filed from their own threads (no filters run
    /// on such calls: a consumer with filters sends through the loop).
    fn take_filings(&mut self) {
        while let Some(f) = self.filings.take() {
            let waiting = Waiting {
                done: f.done,
                timeout: f.timeout,
                names: None,
                started: f.started,
            };
            self.file(f.id, waiting, false);
        }
    }

    /// Hands `answer` to the call's waiter, after the filters' `after`.
    fn finish(&self, w: Waiting, mut answer: Answer) {
        if let Some(names) = &w.names {
            let info = CallInfo {
                side: Side::Consumer,
                service: &names.0,
                method: &names.1,
                peer: self.peer,
            };
            if let Some(r) = run_after(
                &self.filters,
                &info,
                status_of(&answer),
                w.started.elapsed(),
            ) {
                answer = Err(r.into());
            }
        }
        w.done.send(answer);
    }

    /// Settles call `id` with `answer`, handed to its waiter by the next
    /// [`hand_over`](Self::hand_over); false if it is not waiting (timed
    /// out earlier: its late answer is dropped here).
    ///
    /// Why not at once: the loop reads answers before it offers the
    /// connection's input to callers (`ChannelHandle::lend_input`), and
    /// offers it before the batch's `read_complete`. A caller woken here
    /// whose next call is sent at once would find no offer, and send that
    /// call the loop's way; on a loaded host that happened call after
    /// call, and no caller read its own answer.
    pub(crate) fn settle(&mut self, id: u64, answer: Answer) -> bool {
        self.take_filings();
        match self.calls.remove(&id) {
            Some(w) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                self.answered.push((w, answer));
                true
            }
            None => false,
        }
    }

    /// Hands the answers settled since the last hand-over to their
    /// waiters, after the filters' `after`.
    pub(crate) fn hand_over(&mut self) {
        let mut answered = std::mem::take(&mut self.answered);
        for (w, answer) in answered.drain(..) {
            self.finish(w, answer);
        }
        self.answered = answered;
    }

    /// Times out every call whose deadline is at or before `now`.
    pub(crate) fn expire(&mut self, now: Instant) {
        self.hand_over();
        self.take_filings();
        while let Some(Reverse((deadline, id))) = self.deadlines.peek().copied() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if let Some(w) = self.calls.remove(&id) {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                let timeout = w.timeout;
                self.finish(w, Err(RpcError::Timeout(timeout)));
            }
        }
        if self.calls.is_empty() {
            // Nothing waits: drop the stale deadlines with their memory.
            self.deadlines.clear();
        }
    }

    /// Fails every waiting call (the connection closed).
    pub(crate) fn close_all(&mut self) {
        // Answered before the close: those calls get their answers.
        self.hand_over();
        let calls = std::mem::take(&mut self.calls);
        // One at a time: callers may be counting filings in meanwhile.
        self.waiting.fetch_sub(calls.len(), Ordering::Relaxed);
        for (_, w) in calls {
            self.finish(w, Err(RpcError::Closed));
        }
        self.filings.close();
        self.deadlines.clear();
    }

    /// Calls waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.calls.len()
    }
}

/// The outbound stage that files calls in the table on their way out.
pub(crate) struct Registrar {
    pub(crate) pending: Rc<RefCell<Pending>>,
}

impl OutboundHandler for Registrar {
    type Write = Outgoing;
    type Pass = Bytes;

    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, msg: Outgoing) {
        match msg {
            Outgoing::Call {
                id,
                frame,
                timeout,
                done,
                names,
            } => {
                if !ctx.channel().is_open() {
                    done.send(Err(RpcError::Closed));
                    return;
                }
                let mut p = self.pending.borrow_mut();
                if let Some(names) = &names {
                    let info = CallInfo {
                        side: Side::Consumer,
                        service: &names.0,
                        method: &names.1,
                        peer: p.peer,
                    };
                    if let Err(r) = run_before(&p.filters, &info) {
                        done.send(Err(r.into()));
                        return;
                    }
                }
                let waiting = Waiting {
                    done,
                    timeout,
                    names,
                    started: Instant::now(),
                };
                p.file(id, waiting, true);
                drop(p);
                ctx.write(frame);
            }
            Outgoing::Frame(frame) => ctx.write(frame),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gyre_reactor::promise::{PromiseFuture, PromisePool};
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    /// The answer already given to `f`, if any.
    fn answered(f: &mut PromiseFuture<Answer>) -> Option<Answer> {
        match std::pin::Pin::new(f).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(answer) => Some(answer.expect("the promise was kept")),
            Poll::Pending => None,
        }
    }

    fn waiting(p: &mut Pending, id: u64, deadline: Instant) -> PromiseFuture<Answer> {
        let (done, rx) = PromisePool::new(4).promise();
        let done = Sink::One(done);
        p.deadlines.push(Reverse((deadline, id)));
        p.calls.insert(
            id,
            Waiting {
                done,
                timeout: Duration::from_millis(5),
                names: None,
                started: Instant::now(),
            },
        );
        rx
    }

    #[test]
    fn answers_timeouts_and_late_answers() {
        let mut p = Pending::default();
        let t0 = Instant::now();
        let mut a = waiting(&mut p, 1, t0 + Duration::from_millis(5));
        let mut b = waiting(&mut p, 2, t0 + Duration::from_millis(50));
        assert!(p.settle(2, Ok((Status::Ok, Bytes::from_static(b"x")))));
        // Handed over at the end of the batch, not at once.
        assert!(answered(&mut b).is_none());
        p.hand_over();
        assert!(matches!(answered(&mut b), Some(Ok((Status::Ok, _)))));
        p.expire(t0 + Duration::from_millis(10));
        assert!(matches!(answered(&mut a), Some(Err(RpcError::Timeout(_)))));
        // The late answer to call 1 finds nobody and is dropped.
        assert!(!p.settle(1, Ok((Status::Ok, Bytes::new()))));
        assert_eq!(p.len(), 0);
        assert!(p.deadlines.is_empty(), "no stale deadlines kept");
        // A close right after an answer's read still hands it over.
        let mut c = waiting(&mut p, 3, t0 + Duration::from_secs(9));
        let mut d = waiting(&mut p, 4, t0 + Duration::from_secs(9));
        assert!(p.settle(4, Ok((Status::Ok, Bytes::new()))));
        p.close_all();
        assert!(matches!(answered(&mut c), Some(Err(RpcError::Closed))));
        assert!(matches!(answered(&mut d), Some(Ok((Status::Ok, _)))));
    }
}
