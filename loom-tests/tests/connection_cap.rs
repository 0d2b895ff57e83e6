//! The connection cap of `gyre_reactor::ConnectionCap`: loops accepting
//! on listeners that share a cap take slots at once, and channels give
//! them back as they close. The properties: the cap is never passed,
//! every slot given back is free again, and a listener waiting at the cap
//! is woken by the close that frees a place (or sees the room itself).

#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_reactor::ConnectionCap;
use loom::sync::atomic::{AtomicBool, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;

#[test]
fn two_loops_racing_for_the_last_slot_take_it_once() {
    model(|| {
        let cap = ConnectionCap::new(1);
        let other = cap.clone();
        // Each loop keeps what it took (its channel is open).
        let t = thread::spawn(move || other.try_take());
        let here = cap.try_take();
        let there = t.join().unwrap();
        assert!(
            here.is_some() != there.is_some(),
            "the last slot taken twice or never"
        );
        assert_eq!(cap.open(), 1);
    });
}

#[test]
fn a_slot_given_back_while_another_loop_takes_is_not_lost() {
    model(|| {
        let cap = ConnectionCap::new(1);
        let held = cap.try_take().expect("an empty cap has room");
        let other = cap.clone();
        // A channel closes on one loop while another loop accepts.
        let closer = thread::spawn(move || drop(held));
        let taken = other.try_take();
        closer.join().unwrap();
        drop(taken);
        assert_eq!(cap.open(), 0);
        assert!(cap.try_take().is_some());
    });
}

#[test]
fn a_listener_cap_and_the_broker_cap_it_sits_within_are_never_passed() {
    model(|| {
        // The broker's cap of 1; a listener's cap of 1 within it. One loop
        // accepts on the listener, another on a listener with the broker's
        // cap only: one of them gets the place, and a refused inner take
        // gives its place back.
        let broker = ConnectionCap::new(1);
        let listener = ConnectionCap::within(&broker, 1);
        let other = broker.clone();
        let t = thread::spawn(move || other.try_take());
        let here = listener.try_take();
        let there = t.join().unwrap();
        assert!(
            here.is_some() != there.is_some(),
            "the place taken twice or never"
        );
        assert_eq!(listener.open(), usize::from(here.is_some()));
        drop((here, there));
        assert_eq!((listener.open(), broker.open()), (0, 0));
        assert!(listener.try_take().is_some());
    });
}

/// The one place of `full` (held) is given back on another thread while
/// a listener on `listener` (`full` itself, or a cap within it) finds no
/// room and leaves its waker: the listener's look after leaving the waker
/// finds the room, or the close calls the waker. Neither would leave the
/// backlog waiting for a close that may never come.
fn close_races_a_waiting_listener(full: &ConnectionCap, listener: &ConnectionCap) {
    let held = full.try_take().expect("an empty cap has room");
    let closer = thread::spawn(move || drop(held));
    let woken = Arc::new(AtomicBool::new(false));
    let flag = woken.clone();
    let waker: gyre_reactor::CapWaker = std::sync::Arc::new(move || flag.store(true, SeqCst));
    let took = listener.try_take();
    let room = took.is_none() && listener.wait_for_room(&waker);
    closer.join().unwrap();
    assert!(
        took.is_some() || room || woken.load(SeqCst),
        "the place given back woke no one"
    );
}

#[test]
fn a_close_racing_a_listener_at_the_cap_wakes_it_or_leaves_it_room() {
    // Fails with either side's fence taken out.
    model(|| {
        let cap = ConnectionCap::new(1);
        close_races_a_waiting_listener(&cap, &cap);
    });
}

#[test]
fn a_close_under_the_outer_cap_wakes_a_listener_waiting_within_it() {
    model(|| {
        // The broker's cap is full with a connection of another listener;
        // a listener with its own cap within it waits.
        let broker = ConnectionCap::new(1);
        let listener = ConnectionCap::within(&broker, 1);
        close_races_a_waiting_listener(&broker, &listener);
    });
}
