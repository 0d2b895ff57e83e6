//! The loop's side of lending a channel's input to another thread
//! (`ChannelHandle::lend_input`): taking the input back before a read
//! pass, with what a holder gave back; offering it after a pass that left
//! nothing in hand; withdrawing the offer when reading stops. The
//! protocol itself is the gate's (`crate::direct::input`); this decides
//! when the loop may offer. Epoll only: only an epoll channel has a gate.

use super::{Channel, State};
use crate::direct::{DirectGate, Retaken};
use bytes::BytesMut;

/// What the loop may do before a read pass.
pub(crate) enum ReadTurn {
    /// A thread holds the input: read nothing now (the holder gives it
    /// back, or drains what the loop was told of, before it leaves).
    Lent,
    /// Read, after the bytes a holder gave back, if any.
    Read(Option<BytesMut>),
}

impl Channel {
    /// The gate, if this channel lends its input.
    fn lending_gate(&self) -> Option<&DirectGate> {
        if self.opts.lends_input() {
            self.direct.as_deref()
        } else {
            None
        }
    }

    /// Whether this channel lends its input (epoll, with the option on).
    pub(crate) fn lends_input(&self) -> bool {
        self.lending_gate().is_some()
    }

    /// The loop, before it reads: takes the input back.
    pub(crate) fn retake_input(&self) -> ReadTurn {
        match self.lending_gate().map(DirectGate::retake_input) {
            Some(Retaken::Lent) => ReadTurn::Lent,
            Some(Retaken::Free { given_back }) => ReadTurn::Read(given_back),
            None => ReadTurn::Read(None),
        }
    }

    /// The loop, after a read pass that drained the socket: offers the
    /// input if it reads on and its pipeline holds none (`holds_input`).
    pub(crate) fn offer_input(&self, holds_input: bool) {
        if let Some(gate) = self.lending_gate() {
            if !holds_input && self.reading_on() {
                gate.offer_input();
            }
        }
    }

    /// The loop, after each event: withdraws the offer once reading has
    /// stopped (paused, closing, failed).
    pub(crate) fn withdraw_input_if_stopped(&self) {
        if let Some(gate) = self.lending_gate() {
            if !self.reading_on() {
                gate.withdraw_input();
            }
        }
    }

    /// Whether a holder gave bytes or news back for the loop to read.
    pub(crate) fn input_given_back(&self) -> bool {
        self.lending_gate()
            .is_some_and(DirectGate::input_given_back)
    }

    /// Whether a thread holds the input now.
    pub(crate) fn input_lent(&self) -> bool {
        self.lending_gate().is_some_and(DirectGate::input_lent)
    }

    /// Bytes read and taken by holders of the input.
    pub(crate) fn lent_read(&self) -> u64 {
        self.lending_gate().map_or(0, |g| g.lent_read() as u64)
    }

    fn reading_on(&self) -> bool {
        self.state == State::Active
            && self.reading()
            && !self.input_closed
            && !self.close_requested
            && !self.failed
    }
}
