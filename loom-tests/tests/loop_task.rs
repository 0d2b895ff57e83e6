//! Futures spawned on an event loop (`gyre_reactor::loop_task`, behind
//! `EventLoop::spawn`): a run clears the task's `queued` flag and polls,
//! a wake-up from any thread sets it and queues a run only if it was
//! clear. Checked here: no wake-up is lost (a lost one leaves the model's
//! loop waiting for a run that never comes, and loom gives up on it),
//! whether it comes before, during or after a poll, from one thread or
//! two at once, or from the future itself; and the future, touched by
//! every run, is never touched by two at once (loom's cell checks each
//! access). The orderings are argued in the module's doc: loom explores
//! the interleavings, and the clearing moved after the poll fails all
//! three models; it does not tell `AcqRel` from `Relaxed` here (the
//! promise's own acquire and release carry the answer in its model).

#![cfg(loom)]

use gyre_loom_tests::model;
use gyre_reactor::loop_task::{LoopTask, RunQueue};
use gyre_reactor::promise::PromisePool;
use loom::sync::Mutex;
use loom::thread;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::task::Poll;

type Run = Box<dyn FnOnce() -> bool + Send>;

/// The model's loop queue: runs in order, on whichever thread runs the
/// loop.
#[derive(Clone)]
struct Queue(loom::sync::Arc<Mutex<VecDeque<Run>>>);

impl Queue {
    fn new() -> Queue {
        Queue(loom::sync::Arc::new(Mutex::new(VecDeque::new())))
    }

    /// The loop: runs what is queued, in order, until a run says the
    /// future has finished.
    fn run_until_finished(&self) {
        loop {
            let next = self.0.lock().unwrap().pop_front();
            match next {
                Some(run) => {
                    if run() {
                        return;
                    }
                }
                None => thread::yield_now(),
            }
        }
    }
}

impl RunQueue for Queue {
    fn push<F: Future<Output = ()> + Send + 'static>(
        &self,
        task: std::sync::Arc<LoopTask<F, Self>>,
    ) -> bool {
        self.0
            .lock()
            .unwrap()
            .push_back(Box::new(move || task.run()));
        true
    }
}

/// Spawns `future` on `queue`: its first run queued, as a spawn does.
fn spawn(queue: &Queue, future: impl Future<Output = ()> + Send + 'static) {
    queue.push(LoopTask::new(future, queue.clone()));
}

#[test]
fn a_wake_up_from_another_thread_is_never_lost() {
    model(|| {
        let queue = Queue::new();
        let pool = PromisePool::new(2);
        let (promise, answer) = pool.promise();
        spawn(&queue, async move {
            assert_eq!(answer.await, Ok(5u8));
        });
        let t = thread::spawn(move || promise.complete(5));
        queue.run_until_finished();
        t.join().unwrap();
    });
}

#[test]
fn two_threads_waking_at_once_lose_neither() {
    model(|| {
        let queue = Queue::new();
        let pool = PromisePool::new(4);
        let (first, first_answer) = pool.promise();
        let (second, second_answer) = pool.promise();
        spawn(&queue, async move {
            assert_eq!(second_answer.await, Ok(2u8));
            assert_eq!(first_answer.await, Ok(1u8));
        });
        let a = thread::spawn(move || first.complete(1));
        let b = thread::spawn(move || second.complete(2));
        queue.run_until_finished();
        a.join().unwrap();
        b.join().unwrap();
    });
}

#[test]
fn a_future_waking_itself_while_another_thread_wakes_it_finishes() {
    model(|| {
        let queue = Queue::new();
        let pool = PromisePool::new(2);
        let (promise, answer) = pool.promise();
        spawn(&queue, async move {
            // Wakes itself during its first poll, so its next run is
            // queued from inside a run.
            let mut yielded = false;
            poll_fn(|cx| {
                if yielded {
                    return Poll::Ready(());
                }
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            })
            .await;
            assert_eq!(answer.await, Ok(3u8));
        });
        let t = thread::spawn(move || promise.complete(3));
        queue.run_until_finished();
        t.join().unwrap();
    });
}
