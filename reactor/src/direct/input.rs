//! The input side of a channel's gate: the loop lends the socket's input
//! to one thread, which waits for it and reads it itself, the mirror of
//! a direct write. A thread that sent a request and waits for its answer
//! then reads the answer the moment the kernel wakes it, instead of
//! waiting for the loop to be woken, read, decode and hand it over. Uses
//! only the gate's atomic (`crate::sync`) and its cells; the socket is the
//! caller's business, so the model in `loom-tests` (`input_lend.rs`)
//! checks the protocol and nothing else.
//!
//! Four more bits of the gate's atomic:
//!
//! * `OFFERED`: the loop offers its input. It sets the bit only after a
//!   read pass that drained the socket and left no partial input in its
//!   pipeline, so a holder starts reading at a frame's first byte. It
//!   clears it before each read pass, and when it stops reading (paused,
//!   closing).
//! * `LENT`: a thread holds the input (taken from `OFFERED` alone, one
//!   compare-exchange). The loop does not read while it is set.
//! * `MISSED`: the loop had readiness while the input was lent. The
//!   holder, before it leaves, reads the socket until it would block: the
//!   bytes the loop was told of are then in the holder's hands, and
//!   whatever arrives later raises a new edge for the loop. A holder may
//!   instead take the bit before a read ([`DirectGate::take_missed`]): if
//!   that read leaves the socket empty, it got every byte the loop was
//!   told of (they were in the socket before the loop set the bit), and
//!   it owes no drain for them.
//! * `GIVEN_BACK`: the holder left bytes it read and did not take, or news
//!   the loop must read for itself (end of input, an error, bytes found
//!   while draining): the loop takes the bytes ahead of the socket's and
//!   reads again. Set with `LENT` cleared, in one step.
//!
//! The loop's "may I read?" and the holder's leaving are read-modify-
//! writes of one atomic, so one sees the other. If the loop's comes
//! first it sees `LENT`, sets `MISSED` and does not read; the holder's
//! leaving then sees `MISSED` and drains before it goes. If the holder's
//! comes first, the loop's acquires it, with the given-back bytes. No
//! readiness is left unserved with nobody told, and no byte is read by
//! both.

use super::{update, DirectGate, CLOSED, HELD, REFUSED};
use crate::sync::Ordering;
use bytes::BytesMut;
use std::os::fd::RawFd;

pub(super) const OFFERED: usize = 0b10_0000;
pub(super) const LENT: usize = 0b100_0000;
const MISSED: usize = 0b1000_0000;
const GIVEN_BACK: usize = 0b1_0000_0000;

/// What the loop found when it came to read.
#[derive(Debug)]
pub enum Retaken {
    /// A thread holds the input: do not read (it will drain what the
    /// loop was told of, or give it back and notify).
    Lent,
    /// The input is the loop's, with any bytes a holder gave back, to be
    /// handled before the socket's.
    Free {
        /// The bytes given back.
        given_back: Option<BytesMut>,
    },
}

/// How a holder's attempt to leave went.
#[derive(Debug, PartialEq, Eq)]
pub enum LendEnded {
    /// The input is the loop's again. `notify`: schedule the channel, it
    /// has bytes or news to read.
    Done {
        /// Schedule the channel.
        notify: bool,
    },
    /// The loop had readiness meanwhile: read the socket until it would
    /// block, then leave again (with what was read, if anything).
    Missed,
}

impl DirectGate {
    /// The loop offers its input to a thread: call only after a read pass
    /// that drained the socket with no partial input left in the pipeline.
    pub fn offer_input(&self) {
        self.state.fetch_or(OFFERED, Ordering::Release);
    }

    /// The loop stops offering its input (reading paused, closing); a
    /// lend already taken runs on to its end.
    pub fn withdraw_input(&self) {
        self.state.fetch_and(!OFFERED, Ordering::AcqRel);
    }

    /// The loop, before it reads: whether it may, and what a holder gave
    /// back. Withdraws the offer either way.
    pub fn retake_input(&self) -> Retaken {
        let current = update(&self.state, Ordering::AcqRel, |s| {
            let next = if s & LENT != 0 {
                s | MISSED
            } else {
                s & !OFFERED
            };
            (next != s).then_some(next)
        });
        if current & LENT != 0 {
            return Retaken::Lent;
        }
        if current & GIVEN_BACK == 0 {
            return Retaken::Free { given_back: None };
        }
        // SAFETY: `GIVEN_BACK` is set, so its holder has left (release)
        // and we acquired that; `OFFERED` is clear, so no thread can take
        // the input and touch the cell until the loop offers it again.
        let given_back = unsafe { self.given_back.with_mut(|g| (*g).take()) };
        self.state.fetch_and(!GIVEN_BACK, Ordering::AcqRel);
        Retaken::Free { given_back }
    }

    /// Whether a holder gave bytes or news back for the loop to read.
    pub fn input_given_back(&self) -> bool {
        self.state.load(Ordering::Acquire) & GIVEN_BACK != 0
    }

    /// Whether the loop has noted readiness it left to the holder.
    #[cfg(test)]
    pub(crate) fn input_missed(&self) -> bool {
        self.state.load(Ordering::Acquire) & MISSED != 0
    }

    /// Whether a thread holds the input.
    pub fn input_lent(&self) -> bool {
        self.state.load(Ordering::Acquire) & LENT != 0
    }

    /// A thread takes the input, if the loop offers it and nothing is
    /// pending: `true` if it now holds it.
    pub fn lend_input(&self) -> bool {
        const ANY: usize = OFFERED | LENT | MISSED | GIVEN_BACK | CLOSED | REFUSED;
        self.state
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |s| {
                (s & ANY == OFFERED).then_some(s | LENT)
            })
            .is_ok()
    }

    /// The holder, before a read: takes the loop's note that it had
    /// readiness meanwhile (`MISSED`), returning whether there was one.
    /// The holder then owes a drain before it leaves, unless a read after
    /// this leaves the socket empty.
    pub fn take_missed(&self) -> bool {
        // Looked at first: with no note, no read-modify-write per read. A
        // note set just after the look is found when the holder leaves.
        self.state.load(Ordering::Acquire) & MISSED != 0
            && self.state.fetch_and(!MISSED, Ordering::AcqRel) & MISSED != 0
    }

    /// The holder counts `n` bytes it read and took.
    pub fn count_lent_read(&self, n: usize) {
        self.lent_read.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes holders of the input read and took.
    pub fn lent_read(&self) -> usize {
        self.lent_read.load(Ordering::Relaxed)
    }

    /// The holder leaves. With `rest` (bytes read and not taken) or
    /// `reread` (the loop must read for itself: end of input, an error),
    /// the input goes back with them and the loop must be notified.
    /// Without either, the holder may be told [`LendEnded::Missed`]
    /// instead: it still holds the input and must drain the socket first.
    /// `close` runs, for each of the socket's descriptors, if the loop let
    /// go of the socket meanwhile and no writer is in its `send`.
    pub fn end_lend(
        &self,
        rest: Option<BytesMut>,
        reread: bool,
        close: impl FnMut(RawFd),
    ) -> LendEnded {
        let give = rest.is_some() || reread;
        if let Some(rest) = rest {
            // SAFETY: we hold `LENT`, so nobody else touches the cell; the
            // loop reads it only after acquiring our `GIVEN_BACK`.
            unsafe { self.given_back.with_mut(|g| *g = Some(rest)) };
        }
        let current = update(&self.state, Ordering::AcqRel, |s| {
            Some(if give {
                (s & !(LENT | MISSED | OFFERED)) | GIVEN_BACK
            } else if s & MISSED != 0 {
                s & !MISSED
            } else {
                s & !LENT
            })
        });
        if !give && current & MISSED != 0 {
            return LendEnded::Missed;
        }
        if current & CLOSED != 0 {
            if current & HELD == 0 {
                self.close_fds(close);
            }
            return LendEnded::Done { notify: false };
        }
        LendEnded::Done { notify: give }
    }
}
