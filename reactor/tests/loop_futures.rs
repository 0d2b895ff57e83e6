//! Futures spawned on event loops (`EventLoop::spawn`): polled only on
//! their loop's thread, woken from other threads, from inside their own
//! poll and not at all; every one of many finishes exactly once; a panic
//! drops its future and the loop goes on; a stopped loop refuses.

mod common;

use gyre_reactor::promise::PromisePool;
use gyre_reactor::{is_event_loop_thread, Error, EventLoop};
use std::future::{poll_fn, Future};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::time::Duration;

/// Yields `n` times, waking itself inside each poll (the wake-up comes
/// while its run is under way), then finishes.
fn yield_times(n: usize) -> impl Future<Output = ()> {
    let mut left = n;
    poll_fn(move |cx| {
        if left == 0 {
            return Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

#[test]
fn a_future_is_polled_on_its_loop_and_woken_from_anywhere() {
    let group = common::group(2);
    let lp = group.next();
    let pool = PromisePool::<u64>::new(8);
    let (first, first_answer) = pool.promise();
    let (second, second_answer) = pool.promise();
    let (tx, rx) = mpsc::channel();
    let index = lp.index();
    lp.spawn(async move {
        let mut seen = Vec::new();
        for answer in [first_answer, second_answer] {
            let n = answer.await.unwrap();
            let on = EventLoop::current().map(|l| l.index());
            seen.push((n, is_event_loop_thread(), on));
            yield_times(3).await;
        }
        tx.send(seen).unwrap();
    })
    .unwrap();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        first.complete(1);
        std::thread::sleep(Duration::from_millis(20));
        second.complete(2);
    });
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(seen, [(1, true, Some(index)), (2, true, Some(index))]);
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn many_futures_woken_from_many_threads_each_finish_exactly_once() {
    const FUTURES: usize = 4_000;
    const WAKERS: usize = 4;
    let group = common::group(2);
    let pool = Arc::new(PromisePool::<usize>::new(64));
    let finished = Arc::new(AtomicUsize::new(0));
    let sums = Arc::new(AtomicUsize::new(0));
    let mut promises: Vec<Vec<_>> = (0..WAKERS).map(|_| Vec::new()).collect();
    for i in 0..FUTURES {
        let (promise, answer) = pool.promise();
        let (finished, sums) = (finished.clone(), sums.clone());
        group
            .next()
            .spawn(async move {
                assert!(is_event_loop_thread());
                // Some wake themselves first, so that a wake-up from
                // another thread can meet a run under way.
                yield_times(i % 3).await;
                let n = answer.await.unwrap();
                sums.fetch_add(n, Ordering::Relaxed);
                finished.fetch_add(1, Ordering::Relaxed);
            })
            .unwrap();
        promises[i % WAKERS].push((i, promise));
    }
    let wakers: Vec<_> = promises
        .into_iter()
        .map(|mine| {
            std::thread::spawn(move || {
                for (i, promise) in mine {
                    promise.complete(i + 1);
                }
            })
        })
        .collect();
    for w in wakers {
        w.join().unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while finished.load(Ordering::Relaxed) < FUTURES && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Each finished once, with its own answer.
    assert_eq!(finished.load(Ordering::Relaxed), FUTURES);
    assert_eq!(sums.load(Ordering::Relaxed), FUTURES * (FUTURES + 1) / 2);
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn a_panicking_future_is_dropped_and_the_loop_goes_on() {
    let group = common::group(1);
    let lp = group.next();
    struct Dropped(mpsc::Sender<&'static str>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            let _ = self.0.send("dropped");
        }
    }
    let (tx, rx) = mpsc::channel();
    let guard = Dropped(tx.clone());
    lp.spawn(async move {
        let _guard = guard;
        yield_times(1).await;
        panic!("a deliberate panic in a spawned future");
    })
    .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "dropped");
    lp.spawn(async move { tx.send("still running").unwrap() })
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        "still running"
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn a_stopped_loop_refuses_and_drops_its_waiting_futures_with_their_wakers() {
    let group = common::group(1);
    let lp = group.next();
    let pool = PromisePool::<u8>::new(2);
    let (promise, answer) = pool.promise();
    let (tx, rx) = mpsc::channel::<()>();
    lp.spawn(async move {
        let _tx = tx;
        let _ = answer.await;
        unreachable!("the loop stopped before the answer came");
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert!(matches!(lp.spawn(async {}), Err(Error::LoopShutDown)));
    // The future waited on a promise that keeps its waker, which keeps the
    // future: the loop dropped it as it stopped, or it would live on.
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
    // Completing the promise now wakes nobody and harms nothing.
    promise.complete(1);
}
