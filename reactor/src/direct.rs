//! The gate that lets a thread other than the loop write to a channel's
//! socket itself, when the loop has nothing of its own to write: a call
//! sent from the caller's thread with one `send`, not handed to the loop
//! (a wake-up, a hop) and sent from there. Uses only `crate::sync` (std,
//! or loom under `--cfg loom`); the socket is reached through the closures
//! the caller passes, so the model checks the protocol and nothing else.
//!
//! Five bits of one atomic for the output side, model-checked in
//! `loom-tests` (`direct.rs`):
//!
//! * `LOOP`: the loop owns the socket. It sets the bit before it drains a
//!   mailbox or writes, and clears it only when everything it had is out.
//! * `HELD`: a writer is in its `send`. A writer takes the gate only when
//!   the output side is all clear (one compare-exchange), so it never
//!   overlaps the loop's writes, another writer's, or a remainder still to
//!   go out.
//! * `REMAINDER`: a writer's `send` took part of its bytes; the rest waits
//!   in the gate for the loop, which sends it before anything else.
//! * `CLOSED`: the loop has let go of the socket; whoever leaves the gate
//!   last closes the descriptor, so a writer never sends to a number the
//!   kernel has already given to another file.
//! * `REFUSED`: the channel takes no direct writes at all (a TLS layer
//!   must see every byte); set before the loop first lets writers in. It
//!   refuses input lends too.
//!
//! The same atomic carries the input side (`input`): the loop may lend
//! the socket's input to one thread, the mirror of a direct write. A
//! descriptor is closed by whoever leaves last of the loop, a writer in
//! its `send` and a holder of the input. A gate may know a second
//! descriptor of the same socket, the one the loop's poller watches for
//! input on a channel that lends it (`read_fd`): it is closed with the
//! first, by the same party, so it neither keeps the connection open nor
//! outlives it under a number the kernel could give to another file.
//!
//! The loop sets `LOOP` with a `fetch_or` and a writer leaves with a
//! compare-exchange loop; both are read-modify-writes of one atomic, so
//! one sees the other. If the loop's comes first, it saw `HELD` and waits;
//! the writer's sees `LOOP` and rouses the loop (`notify`). If the
//! writer's comes first, the loop's sees the gate free, acquiring what the
//! writer did. Nothing is left unwritten with nobody told.
//!
//! Order: a writer must look at its own handle's mailbox first and write
//! directly only if it is empty. An item it queued earlier is either still
//! there (it falls back to the mailbox behind it), or the loop has popped
//! it, which it does only after setting `LOOP`, so the compare-exchange
//! fails until that item is out.

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};
use bytes::Bytes;
use std::io;
use std::os::fd::RawFd;

mod input;
pub use input::{LendEnded, Retaken};

const LOOP: usize = 0b0001;
const HELD: usize = 0b0010;
const REMAINDER: usize = 0b0100;
const CLOSED: usize = 0b1000;
const REFUSED: usize = 0b1_0000;

/// A channel's direct-write gate (see the module comment).
pub struct DirectGate {
    state: AtomicUsize,
    fd: RawFd,
    /// A duplicate of `fd` the loop's poller watches for input, or -1.
    read_fd: RawFd,
    /// What a writer's partial `send` left, for the loop; written under
    /// `HELD`, read by the loop after it sees `REMAINDER`.
    remainder: UnsafeCell<Option<Bytes>>,
    /// What the holder of the input read and did not take, for the loop;
    /// written under `input::LENT`, read by the loop after it sees
    /// `input::GIVEN_BACK`.
    given_back: UnsafeCell<Option<bytes::BytesMut>>,
    /// Bytes holders of the input read and took, so the loop's count of
    /// bytes read (and its idle detection) sees them.
    lent_read: AtomicUsize,
}

// SAFETY: `remainder` is written only by the writer holding `HELD` and
// read only by the loop after its acquire of the `REMAINDER` the writer
// released; `given_back` likewise under `LENT` and `GIVEN_BACK`; `fd` and
// `read_fd` are plain numbers. Nothing else is shared.
unsafe impl Sync for DirectGate {}
// SAFETY: as above; `Bytes` is `Send`.
unsafe impl Send for DirectGate {}

/// What a writer's turn at the gate came to. `notify`: the loop is
/// waiting for the socket, or must send a remainder, so the writer must
/// schedule the channel on its loop.
#[derive(Debug)]
pub enum Written {
    /// All of it went out (or the rest waits in the gate for the loop).
    Sent {
        /// Schedule the channel.
        notify: bool,
    },
    /// Nothing went out: the loop or another writer has the socket, or
    /// the socket took nothing. The bytes come back, for the mailbox.
    Refused {
        /// The bytes.
        bytes: Bytes,
        /// Schedule the channel.
        notify: bool,
    },
}

impl DirectGate {
    /// A gate for the socket `fd`, open to writers (the loom models'; the
    /// loop's channels use [`with_read_fd`](Self::with_read_fd)).
    #[cfg(loom)]
    pub fn new(fd: RawFd) -> Self {
        Self::with_read_fd(fd, -1)
    }

    /// A gate for the socket `fd` whose input the loop's poller watches
    /// through `read_fd`, a duplicate of it: whoever closes `fd` closes
    /// `read_fd` too (-1: none).
    pub fn with_read_fd(fd: RawFd, read_fd: RawFd) -> Self {
        DirectGate {
            state: AtomicUsize::new(0),
            fd,
            read_fd,
            remainder: UnsafeCell::new(None),
            given_back: UnsafeCell::new(None),
            lent_read: AtomicUsize::new(0),
        }
    }

    /// A writer's turn: if the gate is all clear, `send` gets the
    /// descriptor and the bytes, and what it does not take is left for the
    /// loop. `close` runs, for each of the socket's descriptors, if the
    /// loop let go of the socket meanwhile.
    pub fn write(
        &self,
        bytes: Bytes,
        send: impl FnOnce(RawFd, &[u8]) -> io::Result<usize>,
        close: impl FnMut(RawFd),
    ) -> Written {
        if !self.enter() {
            return Written::Refused {
                bytes,
                notify: false,
            };
        }
        let sent = match send(self.fd, &bytes) {
            Ok(n) => n.min(bytes.len()),
            Err(_) => 0,
        };
        if sent == 0 && !bytes.is_empty() {
            let notify = self.leave(false, close);
            return Written::Refused { bytes, notify };
        }
        let rest = bytes.slice(sent..);
        let notify = if rest.is_empty() {
            self.leave(false, close)
        } else {
            // SAFETY: we hold `HELD`, so nobody else touches the cell; the
            // loop reads it only after acquiring our `REMAINDER`.
            unsafe { self.remainder.with_mut(|r| *r = Some(rest)) };
            self.leave(true, close)
        };
        Written::Sent { notify }
    }

    /// Takes `HELD` if the output side is all clear (the input side's bits
    /// do not matter to a writer).
    fn enter(&self) -> bool {
        const BUSY: usize = LOOP | HELD | REMAINDER | CLOSED | REFUSED;
        self.state
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |s| {
                (s & BUSY == 0).then_some(s | HELD)
            })
            .is_ok()
    }

    /// Clears `HELD` (adding `REMAINDER` if `rest`), closes the descriptor
    /// if the loop let go of it meanwhile and nobody holds the input, and
    /// says whether the loop must be told.
    fn leave(&self, rest: bool, close: impl FnMut(RawFd)) -> bool {
        let left = if rest { REMAINDER } else { 0 };
        let current = update(&self.state, Ordering::AcqRel, |s| Some((s & !HELD) | left));
        if current & CLOSED != 0 {
            if current & input::LENT == 0 {
                self.close_fds(close);
            }
            return false;
        }
        rest || current & LOOP != 0
    }

    /// The socket's descriptor, for waiting on its readiness only: it may
    /// be closed (and its number reused) at any time the gate is not held.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The duplicate the loop's poller watches for input, if there is one
    /// (under the same rule as [`fd`](Self::fd)).
    pub fn read_fd(&self) -> Option<RawFd> {
        (self.read_fd >= 0).then_some(self.read_fd)
    }

    /// Closes the socket's descriptors: the gate's last party does, once.
    pub(crate) fn close_fds(&self, mut close: impl FnMut(RawFd)) {
        close(self.fd);
        if let Some(fd) = self.read_fd() {
            close(fd);
        }
    }

    /// The loop takes the socket (it may already have it): `true` if it
    /// may write now, `false` if a writer is in its `send` (it will
    /// notify the loop when it leaves).
    pub fn claim(&self) -> bool {
        self.state.fetch_or(LOOP, Ordering::AcqRel) & HELD == 0
    }

    /// The bytes a writer left for the loop, to send before anything
    /// else. Call only after [`claim`](Self::claim) returned `true`.
    pub fn take_remainder(&self) -> Option<Bytes> {
        if self.state.load(Ordering::Acquire) & REMAINDER == 0 {
            return None;
        }
        // SAFETY: `REMAINDER` is set, so its writer has left the gate
        // (release) and we acquired that; the loop owns the gate (`LOOP`),
        // so no writer can come in and touch the cell again.
        let rest = unsafe { self.remainder.with_mut(|r| (*r).take()) };
        self.state.fetch_and(!REMAINDER, Ordering::AcqRel);
        rest
    }

    /// The loop has nothing left to write: writers may come in. Call only
    /// with the remainder taken.
    pub fn unclaim(&self) {
        self.state.fetch_and(!LOOP, Ordering::AcqRel);
    }

    /// Writers never come in (a layer must see every byte written).
    #[cfg(any(feature = "tls", loom))]
    pub fn refuse(&self) {
        self.state.fetch_or(REFUSED, Ordering::AcqRel);
    }

    /// Whether a writer left bytes for the loop.
    pub fn has_remainder(&self) -> bool {
        self.state.load(Ordering::Acquire) & REMAINDER != 0
    }

    /// The loop lets go of the socket for good: `true` if it must close
    /// the descriptor itself, `false` if a writer is in its `send` or a
    /// thread holds the input, and whoever of them leaves last closes it.
    /// A holder of the input may be asleep waiting for it: see
    /// [`input_lent`](Self::input_lent).
    pub fn retire(&self) -> bool {
        self.state.fetch_or(CLOSED | LOOP, Ordering::AcqRel) & (HELD | input::LENT) == 0
    }
}

/// One read-modify-write of the gate's state: `next` gives the new state
/// from the current one (`None`: leave it). Returns the state it changed,
/// or found, as the atomic's `fetch_update` does; `order` is the change's,
/// and a state left as found is read with acquire.
fn update(state: &AtomicUsize, order: Ordering, next: impl FnMut(usize) -> Option<usize>) -> usize {
    state
        .fetch_update(order, Ordering::Acquire, next)
        .unwrap_or_else(|found| found)
}

impl std::fmt::Debug for DirectGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectGate")
            .field("state", &self.state.load(Ordering::Relaxed))
            .field("fd", &self.fd)
            .field("read_fd", &self.read_fd)
            .finish()
    }
}
