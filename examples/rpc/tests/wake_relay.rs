//! Asynchronous calls whose answers wake their tasks through the
//! consumer's wake relay (`ConsumerBuilder::wake_relay`, on by default
//! with feature `tokio`): many tasks of a current-thread runtime each get
//! their own answer, a call blocked on by another executor inside a task
//! still gets its answer (its task's runtime, blocked with it, cannot run
//! the relay), and a runtime dropped with calls in flight leaves the
//! connection serving the next runtime's calls.

mod common;

use common::{calc, calc_service, one_loop_provider};
use gyre_rpc::consumer::{Connection, Consumer};
use gyre_rpc::provider::Provider;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

fn calc_provider() -> Provider {
    one_loop_provider()
        .service(calc_service().build())
        .start()
        .unwrap()
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn many_tasks_in_flight_each_get_their_own_answer() {
    let provider = calc_provider();
    let consumer = Consumer::builder().build().unwrap();
    let conn = Arc::new(consumer.connect(provider.local_addr()).unwrap());
    current_thread().block_on(async {
        let tasks: Vec<_> = (0..64i64)
            .map(|t| {
                let conn = conn.clone();
                tokio::spawn(async move {
                    for i in 0..200i64 {
                        let sum: i64 = conn.call_async(&calc(), "add", &(t, i)).await.unwrap();
                        assert_eq!(sum, t + i);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(conn.in_flight(), 0);
    provider.shutdown(Duration::from_secs(1));
}

/// A minimal executor of another kind: polls `fut` on this thread,
/// sleeping until its waker unparks it.
fn block_on_elsewhere<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn a_call_blocked_on_inside_a_task_by_another_executor_gets_its_answer() {
    let provider = calc_provider();
    let consumer = Consumer::builder().build().unwrap();
    let conn = Arc::new(consumer.connect(provider.local_addr()).unwrap());
    let (done, finished) = std::sync::mpsc::channel();
    let runner = {
        let conn = conn.clone();
        std::thread::spawn(move || {
            current_thread().block_on(async move {
                tokio::spawn(async move {
                    // Awaited by the task: the runtime's relay starts and runs.
                    for i in 0..3i64 {
                        let sum: i64 = conn.call_async(&calc(), "add", &(i, 1)).await.unwrap();
                        assert_eq!(sum, i + 1);
                    }
                    // Blocked on inside the task: the runtime cannot run
                    // its relay until this returns.
                    let sum: i64 =
                        block_on_elsewhere(conn.call_async(&calc(), "add", &(20, 22))).unwrap();
                    done.send(sum).unwrap();
                })
                .await
                .unwrap();
            });
        })
    };
    let got = finished.recv_timeout(Duration::from_secs(5));
    assert_eq!(got, Ok(42), "the blocked-on call never got its answer");
    runner.join().unwrap();
    provider.shutdown(Duration::from_secs(1));
}

#[test]
fn a_runtime_dropped_with_calls_in_flight_leaves_the_connection_serving() {
    let provider = one_loop_provider()
        .service(
            calc_service()
                .method("slow_add", |(a, b): (i64, i64)| {
                    std::thread::sleep(Duration::from_millis(50));
                    Ok::<_, gyre_rpc::provider::ServiceError>(a + b)
                })
                .build(),
        )
        .start()
        .unwrap();
    let consumer = Consumer::builder().build().unwrap();
    let conn: Arc<Connection> = Arc::new(consumer.connect(provider.local_addr()).unwrap());
    {
        let rt = current_thread();
        rt.block_on(async {
            let warm: i64 = conn.call_async(&calc(), "add", &(1, 1)).await.unwrap();
            assert_eq!(warm, 2);
            for i in 0..8i64 {
                let conn = conn.clone();
                tokio::spawn(async move {
                    let _: Result<i64, _> = conn.call_async(&calc(), "slow_add", &(i, i)).await;
                });
            }
            tokio::task::yield_now().await;
        });
        // Dropped with the slow calls unanswered: their tasks and the
        // relay's task go with it.
    }
    current_thread().block_on(async {
        let tasks: Vec<_> = (0..8i64)
            .map(|i| {
                let conn = conn.clone();
                tokio::spawn(async move {
                    let sum: i64 = conn.call_async(&calc(), "add", &(i, 2)).await.unwrap();
                    assert_eq!(sum, i + 2);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    provider.shutdown(Duration::from_secs(1));
}
