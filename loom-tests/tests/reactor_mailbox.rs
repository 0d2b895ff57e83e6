//! The reactor's cross-thread hand-off: a channel's `Mailbox` (schedule the
//! channel once per batch) in front of the loop's `Doorbell` (wake the loop
//! once per sleep), on the loop model of `gyre_loom_tests::event_loop`.

#![cfg(loom)]

use gyre_loom_tests::event_loop::Loop;
use gyre_loom_tests::model;
use gyre_reactor::mailbox::Mailbox;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

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

/// Counts its drops, wherever they happen.
struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

#[test]
fn an_item_pushed_as_the_loop_closes_is_dropped_never_stranded() {
    model(|| {
        let mailbox = Arc::new(Mailbox::new());
        let dropped = Arc::new(AtomicUsize::new(0));
        let producer = {
            let (m, dropped) = (mailbox.clone(), dropped.clone());
            thread::spawn(move || {
                if let Err(refused) = m.push(Counted(dropped)) {
                    drop(refused);
                }
            })
        };
        // The loop's close, then its last drain.
        mailbox.close();
        while mailbox.pop().is_some() {}
        producer.join().unwrap();
        assert!(
            mailbox.pop().is_none(),
            "an item stranded in a closed mailbox"
        );
        assert_eq!(dropped.load(Ordering::Acquire), 1, "dropped exactly once");
        assert!(mailbox.push(Counted(dropped.clone())).is_err());
    });
}
