//! The reusable promise of `gyre_reactor::promise`: a promise completed or
//! dropped on one thread while its future is polled (and its waker
//! changed) on another, and a slot recycled by whichever half lets go last
//! and handed out again while the other half may still be finishing.

#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_reactor::promise::{PromiseDropped, PromisePool};
use loom::future::block_on;
use loom::thread;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[test]
fn a_value_completed_on_another_thread_arrives() {
    model(|| {
        let pool = PromisePool::new(2);
        let (promise, answer) = pool.promise();
        let t = thread::spawn(move || promise.complete(7u64));
        assert_eq!(block_on(answer), Ok(7));
        t.join().unwrap();
    });
}

#[test]
fn a_promise_dropped_on_another_thread_resolves_to_dropped() {
    model(|| {
        let pool = PromisePool::<u64>::new(2);
        let (promise, answer) = pool.promise();
        let t = thread::spawn(move || drop(promise));
        assert_eq!(block_on(answer), Err(PromiseDropped));
        t.join().unwrap();
    });
}

/// Polls its inner future once with a waker nobody will wake, then with
/// the executor's: the second poll replaces the waker in the slot while
/// the promise may be completing.
struct SwitchWaker<F> {
    inner: Pin<Box<F>>,
    first: bool,
}

impl<F: Future> Future for SwitchWaker<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if std::mem::take(&mut self.first) {
            let noop = Context::from_waker(Waker::noop());
            let mut noop = noop;
            if let Poll::Ready(v) = self.inner.as_mut().poll(&mut noop) {
                return Poll::Ready(v);
            }
        }
        self.inner.as_mut().poll(cx)
    }
}

#[test]
fn a_replaced_waker_is_the_one_woken() {
    model(|| {
        let pool = PromisePool::new(2);
        let (promise, answer) = pool.promise();
        let t = thread::spawn(move || promise.complete(9u64));
        let answer = SwitchWaker {
            inner: Box::pin(answer),
            first: true,
        };
        assert_eq!(block_on(answer), Ok(9));
        t.join().unwrap();
    });
}

#[test]
fn a_recycled_slot_carries_only_its_new_answer() {
    model(|| {
        let pool = PromisePool::new(2);
        let (first, answer) = pool.promise();
        let t1 = thread::spawn(move || first.complete(1u64));
        assert_eq!(block_on(answer), Ok(1));
        // The first promise may still be finishing: this pair gets its
        // slot back or a new one, never a slot still in use.
        let (second, answer) = pool.promise();
        let t2 = thread::spawn(move || second.complete(2u64));
        assert_eq!(block_on(answer), Ok(2));
        t1.join().unwrap();
        t2.join().unwrap();
    });
}

#[test]
fn a_future_dropped_while_the_promise_completes_frees_the_slot_once() {
    model(|| {
        let pool = PromisePool::new(2);
        let (promise, answer) = pool.promise();
        let t = thread::spawn(move || promise.complete(3u64));
        drop(answer);
        t.join().unwrap();
        // Exactly one of the two halves put the slot back.
        assert_eq!(pool.free_slots(), 1);
    });
}
