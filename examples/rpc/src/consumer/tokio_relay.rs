//! Which [`WakeRelay`] an asynchronous call's answer wakes its task
//! through (feature `tokio`, [`super::ConsumerBuilder::wake_relay`]): one
//! per tokio current-thread runtime and calling thread, spawned on the
//! runtime by the first call one of its tasks polls, closed (its task
//! ends) when the thread ends or moves to another runtime. Uses the reactor's
//! promise and wake relay, and tokio's runtime handle and task id.
//!
//! Why only there: a current-thread runtime writes its eventfd on every
//! wake-up from another thread, so a loop settling a burst of answers
//! paid a system call per answer; the relay makes it one per burst
//! (BENCHMARKS.md, issue 22, twenty-fourth session). A multi-thread
//! runtime already wakes a parked worker only when one is parked.
//!
//! Only a future polled by a task of that runtime goes through it (tokio
//! names a task id while one is polled, and the relay checks the waker is
//! of its own task's kind): a future blocked on by another executor inside
//! a task keeps its direct wake-up, because the task's runtime, blocked
//! with it, could not run the relay.

use super::sink::Answer;
use gyre_reactor::promise::PromiseFuture;
use gyre_reactor::wake_relay::WakeRelay;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use tokio::runtime::{Handle, Id, RuntimeFlavor};

/// How many wake-ups a relay queues before it wakes directly: more than
/// the calls a runtime usually has in flight on one connection's loop.
const RELAY_QUEUE: usize = 1024;

thread_local! {
    /// This thread's relay and the runtime it runs on.
    static RELAY: RefCell<Cached> = const { RefCell::new(Cached(None)) };
}

/// A thread's relay, closed when the thread ends: its task then finishes
/// instead of waiting on the runtime for wake-ups nobody will queue.
struct Cached(Option<(Id, Arc<WakeRelay>)>);

impl Drop for Cached {
    fn drop(&mut self) {
        if let Some((_, relay)) = self.0.take() {
            relay.close();
        }
    }
}

/// An asynchronous call's answer, woken through the relay of the runtime
/// whose task first polls it, where there is one to use.
pub(crate) struct Relayed {
    answer: PromiseFuture<Answer>,
    /// Whether the relay has been chosen (or not wanted).
    chosen: bool,
}

impl Relayed {
    /// `answer`, woken through a relay if `relay` (the consumer's
    /// setting) and the first poll's task allow.
    pub(crate) fn new(answer: PromiseFuture<Answer>, relay: bool) -> Relayed {
        Relayed {
            answer,
            chosen: !relay,
        }
    }
}

impl Future for Relayed {
    type Output = <PromiseFuture<Answer> as Future>::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A poll without a waker to go by (a cluster's call polled once
        // as it is made, to send it) leaves the choice to the next.
        if !self.chosen && !cx.waker().will_wake(Waker::noop()) {
            self.chosen = true;
            if let Some(relay) = relay_for(cx.waker()) {
                self.answer.wake_through(relay);
            }
        }
        Pin::new(&mut self.answer).poll(cx)
    }
}

/// The relay for a future polled with `waker`: this thread's relay for the
/// current runtime, if a task of a current-thread runtime is polling with
/// its own kind of waker. The first call on a runtime spawns the relay and
/// wakes directly (the relay's kind of waker is known once it has run).
fn relay_for(waker: &Waker) -> Option<Arc<WakeRelay>> {
    tokio::task::try_id()?;
    let handle = Handle::try_current().ok()?;
    if handle.runtime_flavor() != RuntimeFlavor::CurrentThread {
        return None;
    }
    let runtime = handle.id();
    RELAY
        .try_with(|cell| {
            let mut cell = cell.borrow_mut();
            if let Some((on, relay)) = cell.0.as_ref() {
                if *on == runtime && !relay.is_closed() {
                    return relay.wakes_tasks_like(waker).then(|| relay.clone());
                }
                // This thread now polls another runtime's tasks: the old
                // relay's task ends, and what it still held is woken.
                relay.close();
            }
            let relay = WakeRelay::new(RELAY_QUEUE);
            drop(handle.spawn(WakeRelay::run(&relay)));
            cell.0 = Some((runtime, relay));
            None
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    /// What `relay_for` answers for the waker of whoever polls this.
    async fn asked() -> Option<Arc<WakeRelay>> {
        poll_fn(|cx| Poll::Ready(relay_for(cx.waker()))).await
    }

    /// What a task of `rt` is given once its thread's relay has had a
    /// turn to run: it asks, yields, and asks again.
    fn relay_of_a_task(rt: &tokio::runtime::Runtime) -> Option<Arc<WakeRelay>> {
        rt.block_on(async {
            tokio::spawn(async {
                let _ = asked().await;
                tokio::task::yield_now().await;
                asked().await
            })
            .await
            .expect("task")
        })
    }

    fn current_thread() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn a_current_thread_runtimes_tasks_get_its_relay_once_it_has_run() {
        let rt = current_thread();
        rt.block_on(async {
            tokio::spawn(async {
                assert!(asked().await.is_none(), "spawned now, not yet run");
                tokio::task::yield_now().await;
                let relay = asked().await.expect("the relay has run");
                let again = asked().await.expect("the same relay");
                assert!(Arc::ptr_eq(&relay, &again));
            })
            .await
            .expect("task");
        });
    }

    #[test]
    fn no_relay_outside_a_task_or_for_another_executors_waker() {
        let rt = current_thread();
        // `block_on`'s own future is not a task.
        assert!(rt.block_on(asked()).is_none());
        rt.block_on(async {
            tokio::spawn(async {
                let _ = asked().await;
                tokio::task::yield_now().await;
                assert!(asked().await.is_some());
                // A future another executor polls inside the task.
                assert!(relay_for(Waker::noop()).is_none());
            })
            .await
            .expect("task");
        });
    }

    #[test]
    fn no_relay_on_a_multi_thread_runtime() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        assert!(relay_of_a_task(&rt).is_none());
    }

    #[test]
    fn a_thread_that_ends_closes_its_relay() {
        let rt = current_thread();
        let relay = std::thread::scope(|s| {
            s.spawn(|| relay_of_a_task(&rt).expect("relay"))
                .join()
                .expect("thread")
        });
        assert!(relay.is_closed());
    }

    #[test]
    fn a_thread_that_moves_to_another_runtime_closes_its_old_relay() {
        // The first runtime stays up: only the move may close its relay.
        let first = current_thread();
        let old = relay_of_a_task(&first).expect("relay");
        assert!(!old.is_closed());
        let second = current_thread();
        second.block_on(async {
            tokio::spawn(async { asked().await }).await.expect("task");
        });
        assert!(old.is_closed());
    }
}
