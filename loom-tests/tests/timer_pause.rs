//! The timer pause of `gyre_reactor::timer_pause`: a loop pauses its
//! timer unless it sees work; a publisher publishes work, then asks
//! whether the timer must be resumed. The property is the one a deadline
//! needs: whenever the loop stops its timer and work was published, a
//! publisher is told to resume it, and only one per pause.

#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_reactor::TimerPause;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

/// The loop's side: pause unless some work is published.
fn loop_pauses(pause: &TimerPause, work: &AtomicUsize) -> bool {
    pause.pause_unless(|| work.load(Ordering::Relaxed) > 0)
}

#[test]
fn a_pause_never_misses_work_published_alongside() {
    model(|| {
        let pause = Arc::new(TimerPause::default());
        let work = Arc::new(AtomicUsize::new(0));
        let (p, w) = (pause.clone(), work.clone());
        let publisher = thread::spawn(move || {
            w.fetch_add(1, Ordering::Relaxed);
            p.resume_needed()
        });
        let stopped = loop_pauses(&pause, &work);
        let told = publisher.join().unwrap();
        assert!(
            !stopped || told,
            "the timer stopped with work and nobody was told"
        );
        assert!(!pause.is_paused() || stopped, "paused without stopping");
    });
}

#[test]
fn two_publishers_one_resume_per_pause() {
    model(|| {
        let pause = Arc::new(TimerPause::default());
        let work = Arc::new(AtomicUsize::new(0));
        let publishers: Vec<_> = (0..2)
            .map(|_| {
                let (p, w) = (pause.clone(), work.clone());
                thread::spawn(move || {
                    w.fetch_add(1, Ordering::Relaxed);
                    p.resume_needed()
                })
            })
            .collect();
        let stopped = loop_pauses(&pause, &work);
        let told = publishers
            .into_iter()
            .map(|p| p.join().unwrap())
            .filter(|&t| t)
            .count();
        if stopped {
            assert_eq!(told, 1, "a stopped timer is resumed exactly once");
        } else {
            assert!(told <= 1, "a pause taken back is resumed at most once");
        }
    });
}
