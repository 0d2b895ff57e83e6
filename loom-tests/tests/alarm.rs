//! The alarm of `gyre_reactor::alarm`: a waiter arms it, looks for its
//! news and sleeps if there is none; a publisher publishes the news, then
//! rings. The property is the one a sleeper needs: whenever the waiter
//! decides to sleep, the bell has rung (or will, before the publisher is
//! done), so no sleep outlasts the news. A second publisher, ringing for
//! news of its own, checks that two rings in any order keep it.

#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_reactor::alarm::Alarm;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

/// The waiter's side: arm, then look. `true` if it would sleep.
fn would_sleep(alarm: &Alarm, news: &[Arc<AtomicBool>]) -> bool {
    alarm.model_arm();
    !news.iter().any(|n| n.load(Ordering::Relaxed))
}

#[test]
fn a_waiter_never_sleeps_through_news() {
    model(|| {
        let alarm = Arc::new(Alarm::new().expect("a loom alarm"));
        let news = Arc::new(AtomicBool::new(false));
        let (a, n) = (alarm.clone(), news.clone());
        let publisher = thread::spawn(move || {
            n.store(true, Ordering::Relaxed);
            a.ring();
        });
        let sleeps = would_sleep(&alarm, std::slice::from_ref(&news));
        publisher.join().unwrap();
        assert!(
            !sleeps || alarm.model_rung(),
            "the waiter slept and nobody rang"
        );
    });
}

#[test]
fn two_publishers_either_is_enough() {
    model(|| {
        let alarm = Arc::new(Alarm::new().expect("a loom alarm"));
        let news = [
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        ];
        let publishers: Vec<_> = news
            .iter()
            .map(|n| {
                let (a, n) = (alarm.clone(), n.clone());
                thread::spawn(move || {
                    n.store(true, Ordering::Relaxed);
                    a.ring();
                })
            })
            .collect();
        let sleeps = would_sleep(&alarm, &news);
        for p in publishers {
            p.join().unwrap();
        }
        assert!(
            !sleeps || alarm.model_rung(),
            "the waiter slept and nobody rang"
        );
    });
}
