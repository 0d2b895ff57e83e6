//! One connection's flow control through the offload stage, shared by the
//! offload layer's two halves on the loop's thread: how many requests are
//! in flight (published, not yet answered) and why reading is paused.
//! Plain data; the halves turn its answers into `set_auto_read` calls.

use std::cell::Cell;

/// Why a connection's reading is paused; any one keeps it paused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pause {
    /// Requests wait in the offload layer (the ring had no room for them,
    /// or they came past the limit of requests in flight); the layer's
    /// retry timer publishes them and lifts this.
    Held = 1,
    /// The connection has its maximum of requests in flight and holds
    /// none back: the next answer lifts this.
    InFlight = 2,
    /// The channel's outbound queue is above its high watermark: the peer
    /// is not reading its answers.
    Unwritable = 4,
}

pub(crate) struct Flow {
    published: Cell<u64>,
    answered: Cell<u64>,
    paused: Cell<u8>,
    max_in_flight: u64,
}

impl Flow {
    pub(crate) fn new(max_in_flight: usize) -> Flow {
        Flow {
            published: Cell::new(0),
            answered: Cell::new(0),
            paused: Cell::new(0),
            max_in_flight: max_in_flight.max(1) as u64,
        }
    }

    pub(crate) fn published(&self, n: u64) {
        self.published.set(self.published.get() + n);
    }

    pub(crate) fn answered(&self) {
        self.answered.set(self.answered.get() + 1);
    }

    /// Requests published and not yet answered.
    pub(crate) fn in_flight(&self) -> u64 {
        self.published.get() - self.answered.get()
    }

    pub(crate) fn at_limit(&self) -> bool {
        self.in_flight() >= self.max_in_flight
    }

    /// How many more requests may go in flight.
    pub(crate) fn room(&self) -> usize {
        self.max_in_flight.saturating_sub(self.in_flight()) as usize
    }

    /// Adds a reason; true if reading was running and must stop now.
    pub(crate) fn pause(&self, why: Pause) -> bool {
        let was = self.paused.get();
        self.paused.set(was | why as u8);
        was == 0
    }

    /// Removes a reason; true if it was the last and reading must resume.
    pub(crate) fn resume(&self, why: Pause) -> bool {
        let was = self.paused.get();
        let now = was & !(why as u8);
        self.paused.set(now);
        was != 0 && now == 0
    }

    /// Whether reading is paused for any reason.
    pub(crate) fn is_any_paused(&self) -> bool {
        self.paused.get() != 0
    }

    pub(crate) fn is_paused(&self, why: Pause) -> bool {
        self.paused.get() & why as u8 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_resumes_only_when_every_reason_has_gone() {
        let flow = Flow::new(2);
        assert!(
            flow.pause(Pause::InFlight),
            "the first reason stops reading"
        );
        assert!(!flow.pause(Pause::Held), "a second reason changes nothing");
        assert!(!flow.resume(Pause::InFlight), "one reason is left");
        assert!(flow.is_paused(Pause::Held));
        assert!(flow.resume(Pause::Held), "the last reason gone: resume");
        assert!(
            !flow.resume(Pause::Unwritable),
            "not paused: nothing to resume"
        );
        flow.published(2);
        assert!(flow.at_limit());
        assert_eq!(flow.room(), 0);
        flow.answered();
        assert_eq!(flow.in_flight(), 1);
        assert!(!flow.at_limit());
    }
}
