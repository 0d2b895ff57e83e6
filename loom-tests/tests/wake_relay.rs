//! `gyre_reactor::wake_relay`: wake-ups a loop's thread passes through a
//! relay task on another thread to a future on a third. The relay's flag
//! against its drain (no queued wake-up is left without a relay run after
//! it), a burst of two, and the relay's task dropped while a wake-up is on
//! its way (drained by one side or the other, or woken directly).

#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_reactor::promise::PromisePool;
use gyre_reactor::wake_relay::WakeRelay;
use loom::future::block_on;
use loom::sync::Arc;
use loom::thread;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

/// The relay's task, run on a thread of its own until the relay closes.
fn run_relay(relay: &Arc<WakeRelay>) -> thread::JoinHandle<()> {
    let relay = relay.clone();
    thread::spawn(move || block_on(WakeRelay::run(&relay)))
}

/// Closes the relay and waits for its task's thread.
fn stop_relay(relay: &WakeRelay, runner: thread::JoinHandle<()>) {
    relay.close();
    runner.join().unwrap();
}

#[test]
fn an_answer_woken_through_a_running_relay_arrives() {
    model(|| {
        let relay = WakeRelay::new(4);
        let pool = PromisePool::new(2);
        let (promise, mut answer) = pool.promise();
        answer.wake_through(relay.clone());
        let runner = run_relay(&relay);
        let completer = thread::spawn(move || promise.complete(7u64));
        assert_eq!(block_on(answer), Ok(7));
        completer.join().unwrap();
        stop_relay(&relay, runner);
    });
}

#[test]
fn two_answers_of_one_burst_both_arrive() {
    model(|| {
        let relay = WakeRelay::new(4);
        let pool = PromisePool::new(2);
        let (first, mut one) = pool.promise();
        let (second, mut two) = pool.promise();
        one.wake_through(relay.clone());
        two.wake_through(relay.clone());
        let runner = run_relay(&relay);
        let completer = thread::spawn(move || {
            first.complete(1u64);
            second.complete(2u64);
        });
        assert_eq!(block_on(one), Ok(1));
        assert_eq!(block_on(two), Ok(2));
        completer.join().unwrap();
        stop_relay(&relay, runner);
    });
}

#[test]
fn a_relay_dropped_while_a_wake_up_is_on_its_way_still_delivers_it() {
    model(|| {
        let relay = WakeRelay::new(4);
        let pool = PromisePool::new(2);
        let (promise, mut answer) = pool.promise();
        answer.wake_through(relay.clone());
        // The relay's executor runs it once and shuts down.
        let runner = {
            let relay = relay.clone();
            thread::spawn(move || {
                let mut task = pin!(WakeRelay::run(&relay));
                let _ = task.as_mut().poll(&mut Context::from_waker(Waker::noop()));
            })
        };
        let completer = thread::spawn(move || promise.complete(3u64));
        assert_eq!(block_on(answer), Ok(3));
        completer.join().unwrap();
        runner.join().unwrap();
        assert!(relay.is_closed());
    });
}
