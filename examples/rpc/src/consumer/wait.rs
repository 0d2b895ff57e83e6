//! How a blocking call waits for its answer ([`wait_for_answer`]): with the
//! connection's input lent to it, reading and decoding the answer itself
//! ([`LentCall`]); asleep beside the socket, woken with the loop; or asleep
//! on its reply slot. Uses the consumer's sink, reply slot and filings, the
//! protocol's header, and the reactor's input lend and wait beside a
//! socket.

use super::error::RpcError;
use super::filings::{Filed, Filings};
use super::reply::Reply;
use super::sink::{Answer, Sink};
use crate::protocol::{Frame, Header, Kind, HEADER_LEN};
use bytes::BytesMut;
use gyre_reactor::{ChannelHandle, InputLend, InputWait};
use std::cell::RefCell;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a caller woken by its connection's input watches for its
/// answer before it sleeps the usual way. The loop, woken by the same
/// input, must read, decode and settle the call: 5-20 µs on the VMs we
/// measure on. Input that turns out to be someone else's costs the caller
/// this much watching (it yields its core meanwhile), once.
const WATCH: Duration = Duration::from_micros(50);

/// How far past its deadline a caller sleeping beside the socket gives
/// up on it and sleeps on its reply slot alone (the loop answers a timed
/// out call with `Timeout` and rings, so this is a safety margin only).
const BESIDE_SLACK: Duration = Duration::from_secs(1);

thread_local! {
    /// A caller's read buffer for the answers it reads itself, reused
    /// call after call (an answer's body is a slice of it, dropped before
    /// the thread's next call, so its memory is reclaimed in place).
    static READ: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// How a call left.
pub(crate) enum Sent<'a> {
    /// Through the connection's loop, or from this thread with others in
    /// flight: the loop settles it.
    Queued,
    /// From this thread with nothing else in flight: the loop settles it,
    /// and its answer is most likely the socket's next input.
    Alone,
    /// From this thread with the connection's input lent to it: this
    /// thread reads the answer.
    Lent(LentCall<'a>),
}

/// A call sent from its caller's thread while the connection's input is
/// lent to that thread: it is not filed (the loop knows nothing of it)
/// and counts itself in flight. It files itself only if it gives up
/// reading (something else came first, the input ended), before it gives
/// the input back, so the loop, which reads only after that, finds the
/// filing before the answer.
pub(crate) struct LentCall<'a> {
    pub(crate) lend: InputLend,
    pub(crate) id: u64,
    pub(crate) done: Reply,
    pub(crate) timeout: Duration,
    pub(crate) started: Instant,
    pub(crate) filings: &'a Filings,
    pub(crate) waiting: &'a AtomicUsize,
    /// The connection's count of answers read by their callers.
    pub(crate) read_own: &'a AtomicU64,
    pub(crate) max_body: usize,
}

/// What the bytes read so far come to.
pub(crate) enum Read {
    /// Not a whole frame yet.
    More,
    /// This call's answer, `len` bytes long.
    Ours { len: usize },
    /// Something else (a heartbeat, another call's answer, a bad header):
    /// the loop's business.
    Other,
}

impl LentCall<'_> {
    /// Reads until this call's answer is in, and puts it in the call's
    /// reply slot (the timeout too); or files the call and gives the
    /// input back with everything read, for the loop to settle.
    pub(crate) fn read_answer(self) {
        with_read_buffer(|buf| self.read_into(buf))
    }

    fn read_into(mut self, buf: &mut BytesMut) {
        let deadline = self.started + self.timeout;
        buf.clear();
        loop {
            match self.lend.read(buf, deadline) {
                Ok(0) => return self.give_up(buf),
                Ok(_) => match self.look(buf) {
                    Read::More => {}
                    Read::Ours { len } => return self.answered(buf, len),
                    Read::Other => return self.give_up(buf),
                },
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    // Part of the answer goes to the loop, which drops it
                    // (nothing waits under its id) when it is whole.
                    self.lend.give_back(buf.split());
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    return self.done.send(Err(RpcError::Timeout(self.timeout)));
                }
                Err(_) => return self.give_up(buf),
            }
        }
    }

    fn look(&self, buf: &[u8]) -> Read {
        look(buf, self.id, self.max_body)
    }

    fn answered(self, buf: &mut BytesMut, len: usize) {
        let answer = parse_answer(buf, len);
        self.lend.give_back(buf.split());
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.read_own.fetch_add(1, Ordering::Relaxed);
        self.done.send(answer);
    }

    fn give_up(self, buf: &mut BytesMut) {
        self.filings.file_counted(Filed {
            id: self.id,
            done: Sink::Reply(self.done),
            timeout: self.timeout,
            started: self.started,
        });
        self.lend.give_back(buf.split());
    }
}

/// What `buf`, read from the start of a frame, comes to for the call
/// `id`: more to read, its answer, or someone else's business.
pub(crate) fn look(buf: &[u8], id: u64, max_body: usize) -> Read {
    if buf.len() < HEADER_LEN {
        return Read::More;
    }
    let Ok(header) = Header::decode(buf) else {
        return Read::Other;
    };
    let body = header.body_len as usize;
    if body > max_body {
        return Read::Other;
    }
    if !matches!(header.kind, Kind::Response(_)) || header.request_id != id {
        return Read::Other;
    }
    if buf.len() < HEADER_LEN + body {
        return Read::More;
    }
    Read::Ours {
        len: HEADER_LEN + body,
    }
}

/// The answer in the first `len` bytes of `buf` (which [`look`] found to
/// be the call's own), split off it.
pub(crate) fn parse_answer(buf: &mut BytesMut, len: usize) -> Answer {
    let frame = buf.split_to(len).freeze();
    match Frame::parse(frame) {
        Ok(Frame {
            header:
                Header {
                    kind: Kind::Response(status),
                    ..
                },
            body,
        }) => Ok((status, body)),
        // `look` saw a response header; nothing else gets here.
        _ => Err(RpcError::Closed),
    }
}

/// Runs `f` with this thread's reusable read buffer (a fresh one if the
/// thread's is in use further up the stack).
pub(crate) fn with_read_buffer<R>(f: impl FnOnce(&mut BytesMut) -> R) -> R {
    READ.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut BytesMut::new()),
    })
}

/// Runs `start` with a sink for one call (on this thread's reply slot)
/// and waits for its answer. If `start` fails, its sink has been dropped
/// (and has answered `Closed`): that answer is discarded and `start`'s
/// error returned.
///
/// How it waits depends on how the call left ([`Sent`]). Lent the input,
/// it reads its answer itself. Sent alone, the next input on the socket
/// is then most likely the answer, so the thread sleeps beside the socket
/// ([`ChannelHandle::wait_for_input`]) and, woken by input, watches for
/// the answer for up to [`WATCH`] before it sleeps on its reply slot: the
/// kernel wakes it as it wakes the loop, in parallel, instead of the loop
/// waking it after its own wake-up, read and decode. Otherwise it sleeps
/// on its reply slot.
pub(crate) fn wait_for_answer<'a, W>(
    handle: &ChannelHandle<W>,
    timeout: Duration,
    start: impl FnOnce(Sink) -> Result<Sent<'a>, RpcError>,
) -> Answer {
    let (reply, waiter) = Reply::for_this_thread();
    match start(Sink::Reply(reply)) {
        Ok(sent) => {
            match sent {
                Sent::Lent(call) => call.read_answer(),
                Sent::Alone => {
                    if let Some(alarm) = waiter.alarm() {
                        let ready = || waiter.is_ready();
                        let woke = handle.wait_for_input(alarm, ready, timeout + BESIDE_SLACK);
                        if woke == InputWait::Input {
                            waiter.watch(WATCH);
                        }
                    }
                }
                Sent::Queued => {}
            }
            waiter.recv()
        }
        Err(e) => {
            waiter.discard();
            Err(e)
        }
    }
}
