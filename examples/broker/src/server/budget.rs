//! A server-wide bound on the bytes of requests being received, as Kafka's
//! `queued.max.request.bytes` bounds its request memory pool: the first
//! stage of every connection's pipeline, before the frame decoder. Uses
//! the reactor's handler traits and `bytes`.
//!
//! Without it each connection may hold a partial request up to the request
//! size limit, and sixteen connections sending 24 MiB each took the broker
//! to 389 MiB. Here a request's whole declared size is reserved from the
//! server's [`RequestMemory`] when its 4-byte size arrives (Kafka's pool
//! allocates the whole request up front, too), and given back when the
//! request is done with: its frame, once decoded, carries the reservation
//! ([`Reservations::attach`]) and returns it when the last view of its
//! bytes is dropped (after the log writer has copied a produce into its
//! log, say). A connection whose next request does
//! not fit stops reading before that request's body, holding nothing beyond
//! what it had read, and tries again every few milliseconds; connections
//! already receiving a request always finish it, so the pool cannot
//! deadlock. Nothing is dropped: the bytes read past the pause wait here.
//! A request bigger than the whole pool is let in when the pool is empty.

use bytes::{Bytes, BytesMut};
use gyre_reactor::{InboundContext, InboundHandler, Outbound, TimerId};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a paused connection asks the pool again.
const RETRY: Duration = Duration::from_millis(2);

/// The bytes of requests being received, across the server.
#[derive(Debug)]
pub struct RequestMemory {
    limit: usize,
    used: AtomicUsize,
    pauses: AtomicU64,
}

impl RequestMemory {
    /// A pool of `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(RequestMemory {
            limit,
            used: AtomicUsize::new(0),
            pauses: AtomicU64::new(0),
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Times a connection stopped reading for want of room.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, bytes: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used != 0 && used + bytes > self.limit {
                return false;
            }
            match self.used.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Where the connection's byte stream is.
#[derive(Clone, Copy, Debug)]
enum At {
    /// Inside a size prefix, `have` of its 4 bytes seen.
    Size { bytes: [u8; 4], have: usize },
    /// A request of `need` bytes (prefix included) needs the pool.
    Waiting { need: usize, left: usize },
    /// Inside a request's body, `left` bytes to go; `need` reserved.
    Body { need: usize, left: usize },
    /// A size the decoder will refuse: everything passes through to it,
    /// and it closes the connection.
    Refused,
}

/// The pipeline stage that reserves each request's bytes (see the module
/// doc).
pub struct RequestBudget {
    memory: Arc<RequestMemory>,
    max_request: usize,
    /// Reservations of requests received whole, in order, not yet claimed
    /// by their decoded frames.
    whole: Rc<RefCell<VecDeque<usize>>>,
    at: At,
    /// Bytes read past a pause, waiting for room.
    held: BytesMut,
    timer: Option<TimerId>,
}

impl RequestBudget {
    /// A stage drawing on `memory`, in front of a decoder that refuses
    /// requests over `max_request` bytes (those pass through unreserved,
    /// for the decoder to refuse), and the handle through which the
    /// connection's handler, behind the decoder, attaches each request's
    /// reservation to its frame.
    pub fn new(memory: Arc<RequestMemory>, max_request: usize) -> (Self, Reservations) {
        let whole = Rc::new(RefCell::new(VecDeque::new()));
        let reservations = Reservations {
            whole: whole.clone(),
            memory: memory.clone(),
        };
        let budget = RequestBudget {
            memory,
            max_request,
            whole,
            at: At::Size {
                bytes: [0; 4],
                have: 0,
            },
            held: BytesMut::new(),
            timer: None,
        };
        (budget, reservations)
    }

    /// Walks `input` from the current position; returns how many of its
    /// bytes may go on now (all of them unless a request did not fit).
    fn admit(&mut self, input: &[u8]) -> usize {
        let mut at = 0;
        while at < input.len() || matches!(self.at, At::Waiting { .. }) {
            match self.at {
                At::Refused => return input.len(),
                At::Size { mut bytes, have } => {
                    let n = (4 - have).min(input.len() - at);
                    bytes[have..have + n].copy_from_slice(&input[at..at + n]);
                    at += n;
                    self.at = if have + n < 4 {
                        At::Size {
                            bytes,
                            have: have + n,
                        }
                    } else {
                        match usize::try_from(i32::from_be_bytes(bytes)) {
                            Ok(body) if body <= self.max_request => At::Waiting {
                                need: body + 4,
                                left: body,
                            },
                            _ => At::Refused,
                        }
                    };
                }
                At::Waiting { need, left } => {
                    if !self.memory.try_reserve(need) {
                        return at;
                    }
                    self.at = At::Body { need, left };
                }
                At::Body { need, left } => {
                    let n = left.min(input.len() - at);
                    at += n;
                    if n == left {
                        // Whole: the decoder hands it on now, and its frame
                        // takes the reservation over.
                        self.whole.borrow_mut().push_back(need);
                        self.at = At::Size {
                            bytes: [0; 4],
                            have: 0,
                        };
                    } else {
                        self.at = At::Body {
                            need,
                            left: left - n,
                        };
                    }
                }
            }
        }
        at
    }

    /// Passes on what fits of `input`, holding the rest and pausing.
    fn pass(&mut self, ctx: &mut impl InboundContext<Self>, mut input: BytesMut) {
        let fits = self.admit(&input);
        if fits == input.len() {
            if !input.is_empty() {
                ctx.fire_read(input);
            }
            return;
        }
        self.held = input.split_off(fits);
        if !input.is_empty() {
            ctx.fire_read(input);
        }
        if self.timer.is_none() {
            self.memory.pauses.fetch_add(1, Ordering::Relaxed);
            ctx.set_auto_read(false);
            self.timer = Some(ctx.schedule(RETRY, 0));
        }
    }
}

impl InboundHandler for RequestBudget {
    type Read = BytesMut;
    type Pass = BytesMut;
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, chunk: BytesMut) {
        if !self.held.is_empty() {
            // Read before the pause took hold: behind what waits.
            self.held.unsplit(chunk);
            return;
        }
        self.pass(ctx, chunk);
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, _tag: u64) {
        self.timer = None;
        let held = std::mem::take(&mut self.held);
        self.pass(ctx, held);
        if self.held.is_empty() && self.timer.is_none() {
            ctx.set_auto_read(true);
        } else if self.timer.is_none() {
            self.timer = Some(ctx.schedule(RETRY, 0));
        }
    }
}

impl Drop for RequestBudget {
    fn drop(&mut self) {
        if let At::Body { need, .. } = self.at {
            self.memory.release(need);
        }
        for need in self.whole.borrow_mut().drain(..) {
            self.memory.release(need);
        }
    }
}

/// The connection handler's side of its [`RequestBudget`].
pub struct Reservations {
    whole: Rc<RefCell<VecDeque<usize>>>,
    memory: Arc<RequestMemory>,
}

impl Reservations {
    /// Makes `frame`, the next request the decoder produced, carry its
    /// reservation: the same bytes (no copy), whose last view returns the
    /// reservation when it is dropped.
    pub fn attach(&self, frame: Bytes) -> Bytes {
        match self.whole.borrow_mut().pop_front() {
            Some(need) => Bytes::from_owner(Reserved {
                frame,
                memory: self.memory.clone(),
                need,
            }),
            None => frame,
        }
    }
}

/// A request's bytes holding its reservation.
struct Reserved {
    frame: Bytes,
    memory: Arc<RequestMemory>,
    need: usize,
}

impl AsRef<[u8]> for Reserved {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        self.memory.release(self.need);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: usize) -> Vec<u8> {
        let mut f = (body as i32).to_be_bytes().to_vec();
        f.resize(4 + body, 7);
        f
    }

    #[test]
    fn reserves_each_request_whole_and_stops_before_one_that_does_not_fit() {
        let memory = RequestMemory::new(100);
        let (mut a, ra) = RequestBudget::new(memory.clone(), 1000);
        let (mut b, rb) = RequestBudget::new(memory.clone(), 1000);
        // a: the first 30 bytes of a 60-byte request (64 reserved).
        let fa = frame(60);
        assert_eq!(a.admit(&fa[..30]), 30);
        assert_eq!(memory.used(), 64);
        // b: a 50-byte request does not fit; only its size prefix passes.
        let fb = frame(50);
        assert_eq!(b.admit(&fb), 4);
        assert_eq!(memory.used(), 64);
        // a's request is whole and decoded: held until its bytes go.
        assert_eq!(a.admit(&fa[30..]), 34);
        assert_eq!(memory.used(), 64);
        let decoded = ra.attach(Bytes::from(fa[4..].to_vec()));
        let records = decoded.slice(10..20);
        drop(decoded);
        assert_eq!(memory.used(), 64, "a view of the request still holds it");
        drop(records);
        assert_eq!(memory.used(), 0);
        // b fits now.
        assert_eq!(b.admit(&fb[4..]), 50);
        assert_eq!(memory.used(), 54);
        drop(rb.attach(Bytes::new()));
        assert_eq!(memory.used(), 0);
        // A request bigger than the pool goes in alone, and a size prefix
        // split across reads is still found.
        let big = frame(500);
        assert_eq!(a.admit(&big[..2]), 2);
        assert_eq!(a.admit(&big[2..300]), 298);
        assert_eq!(memory.used(), 504);
        assert_eq!(b.admit(&frame(1)), 4, "nothing else while it is in");
        drop(a);
        assert_eq!(memory.used(), 0, "a closed connection gives its bytes back");
        // One over the decoder's limit is not reserved: the decoder refuses
        // it and closes the connection.
        let (mut c, _) = RequestBudget::new(memory.clone(), 1000);
        assert_eq!(c.admit(&frame(2000)), 2004);
        assert_eq!(memory.used(), 0);
    }
}
