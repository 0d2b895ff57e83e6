//! A model of one event loop's wake-up path for the loom tests: the real
//! channel mailboxes and loop doorbell in front of a level-triggered
//! "eventfd" (a flag under a loom mutex and condvar), so a lost wake-up
//! shows up as a deadlock and a lost message as a failed count.
//!
//! The queues inside (crossbeam's `SegQueue`) are not loom-instrumented:
//! loom treats each push and pop as one atomic step, so the models check
//! our flags' protocol assuming a linearizable queue, which is what
//! crossbeam's own tests establish.

use crossbeam_queue::SegQueue;
use gyre_reactor::mailbox::{Doorbell, Mailbox};
use loom::sync::{Condvar, Mutex};

/// An eventfd: `wake` sets it, `wait` blocks until set and clears it.
pub struct EventFd {
    set: Mutex<bool>,
    cv: Condvar,
}

impl EventFd {
    fn new() -> Self {
        EventFd {
            set: Mutex::new(false),
            cv: Condvar::new(),
        }
    }

    fn wake(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_one();
    }

    fn wait(&self) {
        let mut set = self.set.lock().unwrap();
        while !*set {
            set = self.cv.wait(set).unwrap();
        }
        *set = false;
    }
}

/// One loop and its channels' mailboxes.
pub struct Loop {
    doorbell: Doorbell,
    /// Channels with mail, each scheduled once per batch.
    pub inbox: SegQueue<usize>,
    eventfd: EventFd,
    mailboxes: Vec<Mailbox<u64>>,
}

impl Loop {
    /// A loop with `channels` channels.
    pub fn new(channels: usize) -> Self {
        Loop {
            doorbell: Doorbell::new(),
            inbox: SegQueue::new(),
            eventfd: EventFd::new(),
            mailboxes: (0..channels).map(|_| Mailbox::new()).collect(),
        }
    }

    /// What a `ChannelHandle` does: queue `msg` for `channel`, scheduling
    /// the channel and waking the loop as needed.
    pub fn send(&self, channel: usize, msg: u64) {
        if self.mailboxes[channel].push(msg).unwrap() {
            self.inbox.push(channel);
            self.doorbell.ring(|| self.eventfd.wake());
        }
    }

    /// One loop turn: drain every scheduled channel into `got`. Never
    /// blocks, and leaves the bell rung: producers do not wake a loop that
    /// is awake.
    pub fn drain(&self, got: &mut Vec<(usize, u64)>) {
        while let Some(ch) = self.inbox.pop() {
            self.mailboxes[ch].begin_drain();
            while let Some(m) = self.mailboxes[ch].pop() {
                got.push((ch, m));
            }
        }
    }

    /// Turns until `got` holds `expected` messages; the first turn drains
    /// at once, as a loop's first poll does. Between turns it goes to
    /// sleep as the loop does: it answers the bell, then looks at the
    /// inbox once more, and sleeps on the eventfd only if that is empty.
    pub fn run_until(&self, got: &mut Vec<(usize, u64)>, expected: usize) {
        self.drain(got);
        while got.len() < expected {
            self.doorbell.answer();
            if self.inbox.is_empty() {
                self.eventfd.wait();
            }
            self.drain(got);
        }
    }

    /// Runs until `expected` messages arrived.
    pub fn run(&self, expected: usize) -> Vec<(usize, u64)> {
        let mut got = Vec::new();
        self.run_until(&mut got, expected);
        got
    }
}
