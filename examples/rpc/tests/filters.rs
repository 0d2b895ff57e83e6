//! Filters on both sides over real connections: limits refuse what is over
//! them, the provider's timeout answers `ServerTimeout`, the access log
//! writes a line per call, and a user's own filter sees every call however
//! it ends.

use gyre_rpc::consumer::{CallOptions, Consumer, RpcError};
use gyre_rpc::filter::{AccessLog, CallInfo, ConcurrencyLimit, Filter, Refusal, Timeout, TpsLimit};
use gyre_rpc::provider::{Dispatch, Provider, ProviderBuilder, Service, ServiceError};
use gyre_rpc::{ServiceKey, Status};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn key() -> ServiceKey {
    ServiceKey::new("test.Filtered")
}

fn provider(configure: impl FnOnce(ProviderBuilder) -> ProviderBuilder) -> Provider {
    let b = Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .pool_threads(8)
        .service(
            Service::builder(key())
                .dispatch(Dispatch::WorkerPool)
                .method("sleep", |ms: u64| {
                    std::thread::sleep(Duration::from_millis(ms));
                    Ok::<_, ServiceError>(ms)
                })
                .method("forbidden", |_: ()| Ok::<_, ServiceError>(()))
                .build(),
        );
    configure(b).start().unwrap()
}

fn statuses(results: Vec<Result<u64, RpcError>>) -> Vec<Status> {
    let mut s: Vec<Status> = results
        .into_iter()
        .map(|r| r.map_or_else(|e| e.status(), |_| Status::Ok))
        .collect();
    s.sort_by_key(|s| *s as u8);
    s
}

fn run_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = Vec::new();
        for f in futures {
            out.push(f.await);
        }
        out
    })
}

#[test]
fn provider_limits_refuse_what_is_over_them() {
    let p = provider(|b| b.filter(ConcurrencyLimit::new(2).method("sleep")));
    let consumer = Consumer::builder().build().unwrap();
    let c = consumer.connect(p.local_addr()).unwrap();
    let calls: Vec<_> = (0..4)
        .map(|_| c.call_async::<_, u64>(&key(), "sleep", &200u64))
        .collect();
    assert_eq!(
        statuses(run_all(calls)),
        [
            Status::Ok,
            Status::Ok,
            Status::ServerOverloaded,
            Status::ServerOverloaded
        ]
    );
    p.shutdown(Duration::from_secs(2));

    let p = provider(|b| b.filter(TpsLimit::new(5)));
    let c = consumer.connect(p.local_addr()).unwrap();
    let results: Vec<_> = (0..10)
        .map(|_| c.call::<_, u64>(&key(), "sleep", &0u64))
        .collect();
    let s = statuses(results);
    assert_eq!(s.iter().filter(|s| **s == Status::Ok).count(), 5, "{s:?}");
    assert_eq!(
        s.iter().filter(|s| **s == Status::ServerOverloaded).count(),
        5
    );
    p.shutdown(Duration::from_secs(2));
}

#[test]
fn the_provider_timeout_answers_server_timeout() {
    let p = provider(|b| b.filter(Timeout::new(Duration::from_millis(50))));
    let consumer = Consumer::builder().build().unwrap();
    let c = consumer.connect(p.local_addr()).unwrap();
    assert_eq!(c.call::<_, u64>(&key(), "sleep", &10u64).unwrap(), 10);
    match c.call::<_, u64>(&key(), "sleep", &100u64) {
        Err(RpcError::Failed { status, message }) => {
            assert_eq!(status, Status::ServerTimeout);
            assert!(message.contains("limit"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    p.shutdown(Duration::from_secs(2));
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_access_log_writes_a_line_per_call() {
    // The filters run on the provider's and the consumer's own threads, so
    // the subscriber is the process's (only this test in this binary logs).
    let captured = Captured::default();
    let writer = captured.clone();
    let _ = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    let p = provider(|b| b.filter(AccessLog));
    let consumer = Consumer::builder().filter(AccessLog).build().unwrap();
    let c = consumer.connect(p.local_addr()).unwrap();
    c.call::<_, u64>(&key(), "sleep", &1u64).unwrap();
    p.shutdown(Duration::from_secs(2));
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("gyre_rpc::access"))
        .collect();
    assert_eq!(lines.len(), 2, "one per side: {text}");
    assert!(
        lines.iter().any(|l| l.contains("Provider"))
            && lines.iter().any(|l| l.contains("Consumer"))
    );
    for l in lines {
        assert!(
            l.contains("test.Filtered") && l.contains("sleep") && l.contains("status=Ok"),
            "{l}"
        );
    }
}

/// A user's filter: refuses one method and counts how every other call
/// ended.
#[derive(Debug, Default)]
struct Guard {
    ended: Mutex<Vec<Status>>,
    running: AtomicUsize,
}

impl Filter for Guard {
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Refusal> {
        if call.method == "forbidden" {
            return Err(Refusal {
                status: Status::ClientError,
                message: "not from this consumer".into(),
            });
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn after(&self, _call: &CallInfo<'_>, status: Status, _elapsed: Duration) -> Option<Refusal> {
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.ended.lock().unwrap().push(status);
        None
    }
}

#[test]
fn a_consumer_filter_sees_every_call_however_it_ends() {
    let p = provider(|b| b);
    let guard = Arc::new(Guard::default());
    let consumer = Consumer::builder()
        .shared_filter(guard.clone())
        .build()
        .unwrap();
    let c = consumer.connect(p.local_addr()).unwrap();
    match c.call::<_, ()>(&key(), "forbidden", &()) {
        Err(RpcError::Failed { status, message }) => {
            assert_eq!(
                (status, message.as_str()),
                (Status::ClientError, "not from this consumer")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.call::<_, u64>(&key(), "sleep", &1u64).unwrap(), 1);
    let quick = CallOptions::default().timeout(Duration::from_millis(30));
    assert!(matches!(
        c.call_with::<_, u64>(&key(), "sleep", &300u64, &quick),
        Err(RpcError::Timeout(_))
    ));
    let waiting = c.call_async::<_, u64>(&key(), "sleep", &500u64);
    std::thread::sleep(Duration::from_millis(50));
    c.close();
    assert!(run_all(vec![waiting])[0].is_err());
    assert_eq!(
        guard.running.load(Ordering::SeqCst),
        0,
        "every call that began, ended"
    );
    assert_eq!(
        *guard.ended.lock().unwrap(),
        [Status::Ok, Status::ClientTimeout, Status::ClientError]
    );
    // A consumer-side concurrency limit.
    let limited = Consumer::builder()
        .filter(ConcurrencyLimit::new(1))
        .build()
        .unwrap();
    let c2 = limited.connect(p.local_addr()).unwrap();
    let calls: Vec<_> = (0..2)
        .map(|_| c2.call_async::<_, u64>(&key(), "sleep", &100u64))
        .collect();
    assert_eq!(statuses(run_all(calls)), [Status::Ok, Status::ClientError]);
    p.shutdown(Duration::from_secs(2));
}
