//! A call sent with its connection's input lent to its caller ([`Lent`]),
//! which reads and decodes the answer itself: what the bytes read so far
//! come to, and the ways such a call ends (answered, timed out, given up
//! to the loop, abandoned). A blocking caller (`wait`) and a tokio task
//! (`tokio_reads`) wait for the bytes each in its own way and end the
//! same way. Uses the consumer's filings, sink and error, the protocol's
//! frames, and the reactor's input lend.
//!
//! Such a call is not filed (the loop knows nothing of it) and counts
//! itself in flight. It files itself only if it gives up (something else
//! came first, the input ended), before it gives the input back, so the
//! loop, which reads only after that, finds the filing before the answer.

use super::error::RpcError;
use super::filings::{Filed, Filings};
use super::sink::{Answer, Sink};
use crate::protocol::{Frame, Header, Kind, HEADER_LEN};
use bytes::BytesMut;
use gyre_reactor::InputLend;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

thread_local! {
    /// A caller's read buffer for the answers it reads itself, reused
    /// call after call (an answer's body is a slice of it, dropped before
    /// the thread's next call, so its memory is reclaimed in place).
    static READ: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Runs `f` with this thread's reusable read buffer (a fresh one if the
/// thread's is in use further up the stack).
pub(crate) fn with_read_buffer<R>(f: impl FnOnce(&mut BytesMut) -> R) -> R {
    READ.with(|buf| match buf.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut BytesMut::new()),
    })
}

/// What a call settled by its caller touches on its connection.
#[derive(Clone, Copy)]
pub(crate) struct Settling<'a> {
    /// Where a call that gives up files itself.
    pub(crate) filings: &'a Filings,
    /// The connection's count of calls in flight.
    pub(crate) waiting: &'a AtomicUsize,
    /// The connection's count of answers read by their callers.
    pub(crate) read_own: &'a AtomicU64,
    /// The largest body an answer may have.
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

/// A call sent from its caller with the connection's input lent to it,
/// counted in flight (see the module comment).
pub(crate) struct Lent<'a> {
    pub(crate) lend: InputLend,
    pub(crate) id: u64,
    pub(crate) timeout: Duration,
    pub(crate) started: Instant,
    pub(crate) on: Settling<'a>,
}

impl Lent<'_> {
    /// When the call times out.
    pub(crate) fn deadline(&self) -> Instant {
        self.started + self.timeout
    }

    /// What `buf`, read from the start of a frame, comes to.
    pub(crate) fn look(&self, buf: &[u8]) -> Read {
        if buf.len() < HEADER_LEN {
            return Read::More;
        }
        let Ok(header) = Header::decode(buf) else {
            return Read::Other;
        };
        let body = header.body_len as usize;
        if body > self.on.max_body {
            return Read::Other;
        }
        if !matches!(header.kind, Kind::Response(_)) || header.request_id != self.id {
            return Read::Other;
        }
        if buf.len() < HEADER_LEN + body {
            return Read::More;
        }
        Read::Ours {
            len: HEADER_LEN + body,
        }
    }

    /// The answer in the first `len` bytes of `buf` (which [`look`] found
    /// to be the call's own), split off; the rest goes back to the loop.
    ///
    /// [`look`]: Self::look
    pub(crate) fn answered(self, buf: &mut BytesMut, len: usize) -> Answer {
        let frame = buf.split_to(len).freeze();
        let answer = match Frame::parse(frame) {
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
        };
        self.on.read_own.fetch_add(1, Ordering::Relaxed);
        self.abandon(buf.split());
        answer
    }

    /// The deadline passed: part of the answer goes back to the loop,
    /// which drops it (nothing waits under its id) when it is whole.
    pub(crate) fn timed_out(self, buf: &mut BytesMut) -> Answer {
        let timeout = self.timeout;
        self.abandon(buf.split());
        Err(RpcError::Timeout(timeout))
    }

    /// Files the call with `done` for the loop to settle, and gives the
    /// input back with everything read.
    pub(crate) fn give_up(self, buf: &mut BytesMut, done: Sink) {
        self.on.filings.file_counted(Filed {
            id: self.id,
            done,
            timeout: self.timeout,
            started: self.started,
        });
        self.lend.give_back(buf.split());
    }

    /// Ends the call here, unanswered or answered already: the input goes
    /// back with `unused`, and the call stops counting in flight.
    pub(crate) fn abandon(self, unused: BytesMut) {
        self.lend.give_back(unused);
        self.on.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}
