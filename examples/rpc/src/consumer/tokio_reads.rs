//! An asynchronous call that reads its own answer on a tokio runtime
//! ([`ConsumerBuilder::tokio_reads`](super::ConsumerBuilder::tokio_reads)),
//! the async twin of a blocking call's `LentCall`: sent from the task at
//! its first poll with the connection's input lent to it (see `lent`), it
//! is woken by the kernel when the answer lands (the connection's input
//! watch, held by tokio's `AsyncFd`) and reads and decodes the answer
//! itself. The loop's wake-up, read, decode and hand-over, and the hop
//! from the loop's thread to the task's, leave the round trip. A call
//! that cannot go this way (another in flight, no lend offered, another
//! runtime) is filed and sent the usual way at the same first poll. Uses
//! the consumer's sink, connection link, send and calls read by their
//! callers (`lent`), the reactor's input lend and watch, and tokio.

use super::lent::{with_read_buffer, Lent, Read};
use super::link::Link;
use super::send::{send_or_queue, send_under_lend};
use super::sink::{Answer, Sink};
use bytes::{Bytes, BytesMut};
use gyre_reactor::promise::{Promise, PromiseDropped, PromiseFuture};
use gyre_reactor::{InputLend, InputWatch};
use std::io;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime::{Handle, Id};

#[cfg(test)]
thread_local! {
    /// Reads on this thread, by calls reading their own answers, that
    /// found the socket empty.
    static EMPTY_READS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// A connection's input watch, registered with the tokio runtime of the
/// first call that reads its own answer; calls on other runtimes go the
/// usual way (a watch serves the runtime whose driver polls it).
#[derive(Debug, Default)]
pub(crate) struct AsyncReads {
    watch: OnceLock<Registered>,
}

#[derive(Debug)]
struct Registered {
    runtime: Id,
    /// `None` if making or registering the watch failed.
    fd: Option<AsyncFd<InputWatch>>,
}

/// What an asynchronous call needs of its connection, owned, so that its
/// future can send the call at its first poll.
pub(crate) struct Route {
    pub(crate) link: Arc<Link>,
    pub(crate) reads: Arc<AsyncReads>,
}

impl Route {
    /// Sends the call `id` (this runs at the future's first poll) and
    /// waits for its answer: read here, if the loop lends the input,
    /// nothing else is in flight and this task runs on the runtime the
    /// connection's watch serves; otherwise settled by the loop through
    /// `done`, whose answer `answer` awaits.
    pub(crate) async fn call(
        self,
        id: u64,
        frame: Bytes,
        timeout: Duration,
        done: Promise<Answer>,
        answer: PromiseFuture<Answer>,
    ) -> Result<Answer, PromiseDropped> {
        let (frame, done) = match self.send_lent(id, frame, timeout, done) {
            Ok(mut call) => {
                return match std::future::poll_fn(|cx| call.poll_answer(cx)).await {
                    Some(own) => Ok(own),
                    // It filed itself: the loop settles it.
                    None => answer.await,
                };
            }
            Err(back) => back,
        };
        send_or_queue(
            &self.link.handle,
            &self.link.filings,
            id,
            frame,
            timeout,
            Sink::One(done),
        );
        answer.await
    }

    /// Sends the call with the input lent to this task, if it may (see
    /// [`call`](Self::call)); otherwise the frame and the promise come
    /// back, unsent. The lend is taken before the frame goes, so the loop
    /// cannot read the answer first.
    fn send_lent(
        &self,
        id: u64,
        frame: Bytes,
        timeout: Duration,
        done: Promise<Answer>,
    ) -> Result<LentAsync<'_>, (Bytes, Promise<Answer>)> {
        let Ok(runtime) = Handle::try_current().map(|h| h.id()) else {
            return Err((frame, done));
        };
        // The watch is made under the first lend (registering panics on
        // a runtime without IO, as tokio's sockets do; the lend, dropped
        // on the way out, gives the input back, and nothing was counted).
        let under_lend = |lend: &InputLend| {
            let registered = self.reads.watch.get_or_init(|| Registered {
                runtime,
                fd: register(lend),
            });
            match &registered.fd {
                Some(fd) if registered.runtime == runtime => Some(fd),
                _ => None,
            }
        };
        let on = self.link.settling();
        match send_under_lend(&self.link.handle, on, id, timeout, frame, under_lend) {
            Ok((lent, watch)) => Ok(LentAsync {
                lent: Some(lent),
                watch,
                done: Some(done),
                carry: BytesMut::new(),
            }),
            Err(frame) => Err((frame, done)),
        }
    }
}

/// The connection's watch, made under `lend` and registered with the
/// current runtime (which must have its IO driver enabled: tokio panics
/// otherwise, as for any of its sockets); `None` if either failed.
fn register(lend: &InputLend) -> Option<AsyncFd<InputWatch>> {
    let watch = lend.watch().ok()?;
    // SAFETY: an `InputWatch` owns its epoll descriptor and returns that
    // same descriptor from every `as_raw_fd`, open until the watch is
    // dropped, which the `AsyncFd` that owns it does last.
    unsafe { AsyncFd::register_with_interest(watch, Interest::READABLE) }.ok()
}

/// A call sent with the input lent to its task, until it has its answer,
/// times out or gives up. Dropped before that (its future was), it gives
/// the input back with whatever it read, for the loop, which drops a
/// partial answer nobody waits for once it is whole.
struct LentAsync<'a> {
    /// `None` once the call has ended.
    lent: Option<Lent<'a>>,
    watch: &'a AsyncFd<InputWatch>,
    /// Filed if the call gives up; otherwise dropped unused.
    done: Option<Promise<Answer>>,
    /// Bytes read in an earlier poll: part of a frame (rare: an answer
    /// usually comes in one read). Empty, it holds no memory.
    carry: BytesMut,
}

impl LentAsync<'_> {
    /// Reads until the answer is in (`Some`, the timeout too), or gives
    /// up (`None`: filed for the loop to settle). Reads into the thread's
    /// reused buffer, so an answer read whole allocates nothing.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        with_read_buffer(|buf| {
            buf.clear();
            buf.extend_from_slice(&self.carry);
            self.carry.clear();
            self.poll_into(buf, cx)
        })
    }

    fn poll_into(&mut self, buf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        let Some(lent) = self.lent.as_mut() else {
            return Poll::Ready(None);
        };
        let deadline = lent.deadline();
        let watch = self.watch;
        loop {
            match lent.look(buf) {
                Read::Ours { len } => return Poll::Ready(self.end(|l| l.answered(buf, len))),
                Read::Other => return Poll::Ready(self.give_up(buf)),
                Read::More => {}
            }
            if Instant::now() >= deadline {
                return Poll::Ready(self.end(|l| l.timed_out(buf)));
            }
            // Armed before the readiness is looked at, so a deadline that
            // passed unheeded earlier no longer reads as readiness.
            if watch.get_ref().wake_at(deadline).is_err() {
                return Poll::Ready(self.give_up(buf));
            }
            // Readiness first, then the read: the answer to a call just
            // sent is not in yet, and a read that finds nothing is a
            // system call for nothing. None is lost: readiness is cleared
            // only after a read that left the socket empty, and tokio
            // keeps any that came after the guard was taken.
            let mut ready = match watch.poll_read_ready(cx) {
                Poll::Ready(Ok(ready)) => ready,
                Poll::Ready(Err(_)) => return Poll::Ready(self.give_up(buf)),
                Poll::Pending => {
                    self.carry.extend_from_slice(buf);
                    return Poll::Pending;
                }
            };
            match lent.lend.try_read(buf) {
                Ok(0) => return Poll::Ready(self.give_up(buf)),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    #[cfg(test)]
                    EMPTY_READS.with(|n| n.set(n.get() + 1));
                }
                Err(_) => return Poll::Ready(self.give_up(buf)),
            }
            // Cleared once the socket is empty, so the next call does not
            // find this readiness stale and read for nothing.
            if lent.lend.emptied() {
                ready.clear_ready();
            }
        }
    }

    /// Ends the call here with what `settle` makes of it.
    fn end(&mut self, settle: impl FnOnce(Lent<'_>) -> Answer) -> Option<Answer> {
        self.lent.take().map(settle)
    }

    fn give_up(&mut self, buf: &mut BytesMut) -> Option<Answer> {
        if let (Some(lent), Some(done)) = (self.lent.take(), self.done.take()) {
            lent.give_up(buf, Sink::One(done));
        }
        None
    }
}

impl Drop for LentAsync<'_> {
    fn drop(&mut self) {
        if let Some(lent) = self.lent.take() {
            lent.abandon(std::mem::take(&mut self.carry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EMPTY_READS;
    use crate::consumer::{Connection, Consumer};
    use crate::provider::{Dispatch, Provider, Service, ServiceError};
    use crate::ServiceKey;
    use std::time::Duration;

    /// `n` calls of `add`, one at a time.
    async fn calls(conn: &Connection, key: &ServiceKey, n: i64) {
        for i in 0..n {
            let sum = conn.call_async::<_, i64>(key, "add", &(i, 1)).await;
            assert_eq!(sum.unwrap(), i + 1);
        }
    }

    /// A lone call reads its own answer with one `recv`: it waits for
    /// readiness before reading, and the answer's read, which leaves the
    /// socket empty, clears it, so the next call does not find it stale
    /// (before, each such call read twice for nothing).
    #[test]
    fn an_answer_read_by_its_task_takes_one_read() {
        let key = ServiceKey::new("test.Calc");
        let provider = Provider::builder()
            .listen("127.0.0.1:0".parse().unwrap())
            .io_threads(1)
            .service(
                Service::builder(key.clone())
                    .dispatch(Dispatch::IoThread)
                    .method("add", |(a, b): (i64, i64)| Ok::<_, ServiceError>(a + b))
                    .build(),
            )
            .start()
            .unwrap();
        let consumer = Consumer::builder().tokio_reads(true).build().unwrap();
        let conn = consumer.connect(provider.local_addr()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (own, empty) = rt.block_on(async {
            // The loop offers its input once it has read a first answer.
            calls(&conn, &key, 10).await;
            let (own, empty) = (conn.answers_read_by_callers(), EMPTY_READS.get());
            calls(&conn, &key, 200).await;
            (
                conn.answers_read_by_callers() - own,
                EMPTY_READS.get() - empty,
            )
        });
        // A call the loop settles (its input not offered in time, on a
        // loaded machine) leaves readiness behind that the next call may
        // find stale: at most one read for nothing each.
        assert!(own >= 100, "only {own} of 200 answers read by their task");
        let slack = 200 - own as usize + 10;
        assert!(
            empty <= slack,
            "{empty} reads found nothing in {own} calls that read their own answers"
        );
        consumer.shutdown();
        provider.shutdown(Duration::from_secs(1));
    }
}
