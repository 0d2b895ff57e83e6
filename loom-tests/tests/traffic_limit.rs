//! The shared traffic limit of `gyre_reactor::SharedTrafficLimit`: channels
//! on different loops charge the one bucket at once, each with a
//! compare-exchange loop, and an io_uring loop gives back what a send
//! charged at submission did not move. The property a rate needs: no
//! charge or refund is lost or counted twice, so the bucket ends where one
//! serial order of them would have left it; and writes that take from the
//! allowance at once share it rather than each spending it.

#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_reactor::{SharedTrafficLimit, TrafficLimit};
use loom::sync::Arc;
use loom::thread;

/// 1 GB/s: a byte costs one nanosecond, so the bucket's time is the sum.
fn limit() -> SharedTrafficLimit {
    SharedTrafficLimit::new(TrafficLimit::bytes_per_second(1_000_000_000))
}

#[test]
fn racing_charges_all_count() {
    model(|| {
        let shared = Arc::new(limit());
        let other = shared.clone();
        let t = thread::spawn(move || {
            other.charge_nanos(0, 100);
            other.charge_nanos(0, 100);
        });
        shared.charge_nanos(0, 50);
        t.join().unwrap();
        assert_eq!(shared.paid_nanos(), 250);
    });
}

#[test]
fn racing_charges_at_different_times_end_as_one_order_would() {
    model(|| {
        let shared = Arc::new(limit());
        let other = shared.clone();
        // A loop whose clock reads later charges a little; another, whose
        // clock read earlier, a lot.
        let t = thread::spawn(move || other.charge_nanos(1_000, 10));
        shared.charge_nanos(0, 2_000);
        t.join().unwrap();
        // Later first: 1_010, then 2_000 more; earlier first: 2_000, then
        // 10 more.
        let paid = shared.paid_nanos();
        assert!(paid == 3_010 || paid == 2_010, "{paid}");
    });
}

#[test]
fn a_refund_racing_a_charge_is_not_lost() {
    model(|| {
        // An io_uring loop charged 300 bytes at submission; 100 went, so
        // it gives 200 back while another loop charges 50.
        let shared = Arc::new(limit());
        shared.charge_nanos(0, 300);
        let other = shared.clone();
        let t = thread::spawn(move || other.charge_nanos(0, 50));
        shared.refund(200);
        t.join().unwrap();
        assert_eq!(shared.paid_nanos(), 150);
    });
}

#[test]
fn two_loops_taking_the_allowance_at_once_share_it() {
    model(|| {
        // A 1,000-byte burst, and two loops' writes each wanting 800 of it
        // at the same moment: what they take adds up to the burst, never
        // more (each take reads what is left and charges it in one step).
        let shared = Arc::new(SharedTrafficLimit::new(
            TrafficLimit::bytes_per_second(1_000_000_000).burst(1_000),
        ));
        let other = shared.clone();
        let t = thread::spawn(move || other.take_nanos(0, 800));
        let here = shared.take_nanos(0, 800);
        let there = t.join().unwrap();
        assert_eq!(here + there, 1_000, "{here} + {there}");
        assert_eq!(shared.paid_nanos(), 1_000);
    });
}
