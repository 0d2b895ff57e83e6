//! A channel held to its traffic limits ([`ChannelOptions::read_limit`],
//! [`write_limit`](crate::ChannelOptions::write_limit) and their shared
//! kinds): how much a write may move now, the hold (a timer of the
//! channel's own) when the write limit is spent, the reads charged after
//! each handler call and the pause when the read limit is. Both
//! transports come here: their write paths ask [`Channel::write_room_now`],
//! their reads are charged in the channel task's `settle`. Uses the limits
//! (`traffic_limit`) and the loop's timers.
//!
//! [`ChannelOptions::read_limit`]: crate::ChannelOptions::read_limit

use super::{Channel, State, READ_HELD, SHAPING_TIMER, WRITE_HELD};
use crate::event_loop::LoopLocal;
use std::time::Instant;

impl Channel {
    /// What this write may move now, before `end` (this event's bound):
    /// `None` when it must stop, either for the loop's next turn (the
    /// bound is spent: `write_yielded`) or until the write limit has paid
    /// for a piece again (`write_limited`; the write's end schedules the
    /// hold).
    pub(super) fn write_room_now(&mut self, end: u64, now: Instant) -> Option<usize> {
        let room = self.write_room(end);
        if room == 0 {
            self.write_yielded = true;
            return None;
        }
        let Some(shaping) = &self.shaping else {
            return Some(room);
        };
        if self.write_held.is_some() {
            return None;
        }
        match shaping.write_allowance(now) {
            0 => {
                self.write_limited = true;
                None
            }
            allowed => Some(room.min(allowed)),
        }
    }

    /// Charges the write limits with `n` bytes the socket took.
    pub(super) fn charge_write(&mut self, n: usize, now: Instant) {
        if let Some(shaping) = &mut self.shaping {
            shaping.charge_write(n, now);
        }
    }

    /// Takes from the write limits what a write of up to `room` bytes
    /// (this event's room, from [`write_room_now`](Self::write_room_now))
    /// may move, before it is made, so that channels on other loops see
    /// it at once: `(bytes it may move, bytes charged)`, the charged ones
    /// settled by [`account_charged`](Self::account_charged) once the
    /// socket says what it took. `None`, the channel marked
    /// `write_limited`, when another channel took the allowance since
    /// `write_room_now` looked. Without write limits nothing is charged.
    pub(super) fn reserve_write(&mut self, room: usize, now: Instant) -> Option<(usize, usize)> {
        let want = match self.queued_bytes {
            0 => room,
            queued => room.min(queued),
        };
        match &mut self.shaping {
            Some(shaping) if shaping.limits_writes() => match shaping.take_write(want, now) {
                0 => {
                    self.write_limited = true;
                    None
                }
                took => Some((took, took)),
            },
            _ => Some((room, 0)),
        }
    }

    /// Gives back what a reservation took beyond the `used` bytes a write
    /// was made of (a gather that found less queued, or its iovecs full).
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
    pub(super) fn unreserve_beyond(&mut self, charged: usize, used: usize) -> usize {
        if charged > used {
            if let Some(shaping) = &mut self.shaping {
                shaping.refund_write(charged - used);
            }
            return used;
        }
        charged
    }

    /// At a write's end: holds output the write limit stopped until the
    /// limit has paid for a piece again.
    pub(super) fn hold_limited_writes(&mut self, lp: &mut LoopLocal) {
        if !std::mem::take(&mut self.write_limited) || self.write_held.is_some() {
            return;
        }
        let Some(shaping) = &self.shaping else {
            return;
        };
        let wait = shaping.write_wait(lp.now());
        self.write_held = Some(self.schedule_timer(lp, SHAPING_TIMER, WRITE_HELD, wait, None));
    }

    /// After each handler call: charges the read limits with what was
    /// read since, and stops reading for the time that pays for it once
    /// they are spent.
    pub(crate) fn shape_reads(&mut self, lp: &mut LoopLocal) {
        let Some(shaping) = &mut self.shaping else {
            return;
        };
        let Some(wait) = shaping.charge_reads(self.bytes_read, lp.now()) else {
            return;
        };
        if self.read_held.is_none() && self.state == State::Active {
            let was = self.reading();
            self.read_held = Some(self.schedule_timer(lp, SHAPING_TIMER, READ_HELD, wait, None));
            self.apply_reading(was, lp);
        }
    }

    /// A hold is over: reads go on (if the handlers want them), or the
    /// held output is written.
    pub(crate) fn shaping_timer(&mut self, lp: &mut LoopLocal, tag: u64) {
        match tag {
            READ_HELD => {
                let was = self.reading();
                self.read_held = None;
                if self.state == State::Active {
                    self.apply_reading(was, lp);
                }
            }
            _ => {
                self.write_held = None;
                if self.flushed > 0 {
                    self.kick_write(lp);
                }
            }
        }
    }

    /// Cancels the holds' timers (the channel is closing for good).
    pub(crate) fn cancel_holds(&mut self, lp: &mut LoopLocal) {
        for id in [self.read_held.take(), self.write_held.take()]
            .into_iter()
            .flatten()
        {
            lp.cancel_timer(id);
        }
    }
}
