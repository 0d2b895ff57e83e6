//! A loop driven by hand on the calling thread: no loop thread and no
//! sleeping `epoll_wait`, and a clock that moves only when told. The
//! driver (a unit test of the channel's state machine, or an
//! [`EmbeddedChannel`](crate::EmbeddedChannel)) delivers readiness itself
//! or takes turns that poll without waiting, moves the clock, and runs
//! what the loop would run next, so every step is deterministic.

use super::*;
use crate::mailbox::Doorbell;
use crossbeam_queue::SegQueue;

/// The loop and the `Poll` its registry belongs to (kept so the
/// registrations stay valid; [`LoopInner::turn`] polls it).
pub(crate) fn new() -> io::Result<(LoopInner, Poll)> {
    let poll = Poll::new()?;
    let waker = mio::Waker::new(poll.registry(), token::WAKER)?;
    let registry = poll.registry().try_clone()?;
    let shared = Arc::new(LoopShared {
        waker: crate::loop_shared::Wake::Mio(waker),
        doorbell: Doorbell::new(),
        inbox: SegQueue::new(),
        tasks: SegQueue::new(),
        alive: AtomicBool::new(true),
        index: 0,
        transport: crate::transport::Transport::Epoll,
        registry: Some(registry.try_clone()?),
    });
    let inner = LoopInner::new(Driver::Epoll(registry), shared, Duration::ZERO);
    Ok((inner, poll))
}

impl LoopInner {
    /// The tokens of the open channels.
    pub(crate) fn tokens(&self) -> Vec<Token> {
        (0..self.slots.slot_count())
            .filter_map(|i| self.slots.full_name(i))
            .map(|(index, generation)| token::channel(index, generation))
            .collect()
    }

    /// Moves the clock on by `by` and fires the timers that are due.
    pub(crate) fn advance(&mut self, by: Duration) {
        self.local.now += by;
        self.fire_timers(&mut Vec::new());
    }

    /// Does the work channels asked the loop to come back for (as
    /// the next turn would); how many entries there were.
    #[cfg(test)]
    pub(crate) fn run_again(&mut self) -> usize {
        let again = std::mem::take(&mut self.local.again);
        for &what in &again {
            self.come_back(what);
        }
        again.len()
    }

    /// One turn as the loop's thread takes it, without sleeping and
    /// without reading the clock: the readiness `poll` reports now, the
    /// tasks and mailboxes, the come-back list, and the timers due at the
    /// loop's clock. Whether anything ran.
    pub(crate) fn turn(&mut self, poll: &mut Poll, events: &mut Events) -> io::Result<bool> {
        if let Err(e) = poll.poll(events, Some(Duration::ZERO)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let mut ran = false;
        for event in events.iter() {
            ran |= event.token() != token::WAKER;
            self.on_epoll_event(event);
        }
        ran |= self.drain_inbox();
        let again = std::mem::take(&mut self.local.again);
        ran |= !again.is_empty();
        for what in again {
            self.come_back(what);
        }
        ran |= self.fire_timers(&mut Vec::new());
        Ok(ran)
    }
}
