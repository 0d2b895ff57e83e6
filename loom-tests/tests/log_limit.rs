//! `gyre_reactor::LogLimit`: loops that log at once share one bucket of
//! lines and one count of the lines held back. The property: at one
//! instant exactly the burst goes out, and every other line is counted
//! once, in the count a line that goes out reports or in what is left.

#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_reactor::{Held, LogLimit};
use loom::sync::Arc;
use loom::thread;

/// Two lines from each of two threads, at one instant.
fn two_by_two(burst: u64) -> (u64, u64, u64) {
    let limit = Arc::new(LogLimit::new(burst, 1));
    let other = limit.clone();
    let ask = |l: &LogLimit| {
        let (mut went, mut reported) = (0, 0);
        for _ in 0..2 {
            if let Some(Held(n)) = l.admit_at(0) {
                went += 1;
                reported += n;
            }
        }
        (went, reported)
    };
    let t = thread::spawn(move || ask(&other));
    let (w1, r1) = ask(&limit);
    let (w2, r2) = t.join().unwrap();
    (w1 + w2, r1 + r2, limit.held_back())
}

#[test]
fn a_burst_of_one_lets_one_line_through_and_counts_the_other_three() {
    model(|| {
        let (went, reported, left) = two_by_two(1);
        assert_eq!(went, 1);
        assert_eq!(went + reported + left, 4);
    });
}

#[test]
fn a_burst_of_two_lets_two_through_and_counts_the_rest_once() {
    model(|| {
        let (went, reported, left) = two_by_two(2);
        assert_eq!(went, 2);
        assert_eq!(went + reported + left, 4);
    });
}
