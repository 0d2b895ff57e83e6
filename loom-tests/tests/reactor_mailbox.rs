//! The reactor's cross-thread hand-off: a channel's `Mailbox` (schedule the
//! channel once per batch) in front of the loop's `Doorbell` (wake the loop
//! once per sleep). The loop is modelled with the real types and a
//! level-triggered "eventfd" (a flag under a loom mutex and condvar), so a
//! lost wake-up shows up as a deadlock and a lost message as a failed count.
//!
//! The queues inside (crossbeam's `SegQueue`) are not loom-instrumented:
//! loom treats each push and pop as one atomic step, so these models check
//! our flags' protocol assuming a linearizable queue, which is what
//! crossbeam's own tests establish.

#![cfg(loom)]

use crossbeam_queue::SegQueue;
use gyre_loom_tests::model;
use gyre_reactor::mailbox::{Doorbell, Mailbox};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// An eventfd: `wake` sets it, `wait` blocks until set and clears it.
struct EventFd {
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

struct Loop {
    doorbell: Doorbell,
    inbox: SegQueue<usize>,
    eventfd: EventFd,
    mailboxes: Vec<Mailbox<u64>>,
}

impl Loop {
    fn new(channels: usize) -> Self {
        Loop {
            doorbell: Doorbell::new(),
            inbox: SegQueue::new(),
            eventfd: EventFd::new(),
            mailboxes: (0..channels).map(|_| Mailbox::new()).collect(),
        }
    }

    /// What a `ChannelHandle` does.
    fn send(&self, channel: usize, msg: u64) {
        if self.mailboxes[channel].push(msg).unwrap() {
            self.inbox.push(channel);
            self.doorbell.ring(|| self.eventfd.wake());
        }
    }

    /// One loop turn after a wake-up: answer the bell, then drain.
    fn drain(&self, got: &mut Vec<(usize, u64)>) {
        self.doorbell.answer();
        while let Some(ch) = self.inbox.pop() {
            self.mailboxes[ch].begin_drain();
            while let Some(m) = self.mailboxes[ch].pop() {
                got.push((ch, m));
            }
        }
    }

    /// Runs until `expected` messages arrived; the first turn is the loop's
    /// first poll, which always drains once.
    fn run(&self, expected: usize) -> Vec<(usize, u64)> {
        let mut got = Vec::new();
        self.drain(&mut got);
        while got.len() < expected {
            self.eventfd.wait();
            self.drain(&mut got);
        }
        got
    }
}

#[test]
fn two_handles_one_channel_nothing_lost_order_kept() {
    model(|| {
        let lp = Arc::new(Loop::new(1));
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let lp = lp.clone();
                thread::spawn(move || {
                    lp.send(0, p * 10);
                    lp.send(0, p * 10 + 1);
                })
            })
            .collect();
        let got = lp.run(4);
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(got.len(), 4);
        for p in 0..2u64 {
            let mine: Vec<u64> = got.iter().filter(|m| m.1 / 10 == p).map(|m| m.1).collect();
            assert_eq!(mine, vec![p * 10, p * 10 + 1], "per-handle order");
        }
    });
}

#[test]
fn two_channels_share_the_doorbell() {
    model(|| {
        let lp = Arc::new(Loop::new(2));
        let producers: Vec<_> = (0..2usize)
            .map(|ch| {
                let lp = lp.clone();
                thread::spawn(move || lp.send(ch, ch as u64))
            })
            .collect();
        let mut got = lp.run(2);
        for p in producers {
            p.join().unwrap();
        }
        got.sort();
        assert_eq!(got, vec![(0, 0), (1, 1)]);
        // Every notice was consumed: nothing is left scheduled.
        assert!(lp.inbox.is_empty());
    });
}

#[test]
fn closed_mailbox_refuses_and_keeps_what_it_had() {
    model(|| {
        let mailbox = Arc::new(Mailbox::new());
        let m = mailbox.clone();
        let producer = thread::spawn(move || m.push(1u64).is_ok());
        mailbox.close();
        let accepted = producer.join().unwrap();
        let mut left = 0;
        while mailbox.pop().is_some() {
            left += 1;
        }
        // Either the push won the race and its item is there, or it was
        // refused: never accepted and lost.
        assert_eq!(left, accepted as usize);
        assert!(mailbox.push(2).is_err());
    });
}
