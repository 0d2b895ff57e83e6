//! An idle connection's deadline check stops ticking, so its loop sleeps,
//! and a call made afterwards still times out on time: whether its caller
//! files it (the default consumer) or it goes through the loop (a consumer
//! with a filter). One test in this file, so the consumer's loop is the
//! only thread of its name while it counts that loop's wake-ups.

use gyre_rpc::consumer::{CallOptions, Consumer, RpcError};
use gyre_rpc::filter::Filter;
use gyre_rpc::ServiceKey;
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Lets every call through: a consumer with a filter sends every call
/// through its connection's loop.
#[derive(Debug)]
struct PassAll;

impl Filter for PassAll {}

/// The consumer loop's thread id (its name is cut to 15 bytes).
fn consumer_loop_thread() -> String {
    let tasks = std::fs::read_dir("/proc/self/task").unwrap();
    let found: Vec<String> = tasks
        .filter_map(|t| {
            let t = t.unwrap().path();
            let name = std::fs::read_to_string(t.join("comm")).ok()?;
            name.trim()
                .starts_with("gyre-rpc-consum")
                .then(|| t.file_name().unwrap().to_string_lossy().into_owned())
        })
        .collect();
    assert_eq!(found.len(), 1, "one consumer loop: {found:?}");
    found.into_iter().next().unwrap()
}

/// How many times the thread `tid` went to sleep and woke, so far.
fn wake_ups(tid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The loop's wake-ups over 300 ms of nothing.
fn wake_ups_while_idle(tid: &str) -> u64 {
    let before = wake_ups(tid);
    std::thread::sleep(Duration::from_millis(300));
    wake_ups(tid) - before
}

/// With a 1 ms tick, an unpaused loop wakes about 300 times in 300 ms.
const QUIET: u64 = 20;

fn check(consumer: Consumer, provider: std::net::SocketAddr, what: &str) {
    let conn = consumer.connect(provider).unwrap();
    // 20 idle ticks of 1 ms pause the check; leave room for a slow start.
    std::thread::sleep(Duration::from_millis(150));
    let tid = consumer_loop_thread();
    let idle = wake_ups_while_idle(&tid);
    assert!(
        idle < QUIET,
        "{what}: an idle loop woke {idle} times in 300 ms"
    );

    // A call into the paused connection: the provider never answers, so
    // only the deadline check can end it.
    let key = ServiceKey::new("test.Silent");
    let options = CallOptions::default().timeout(Duration::from_millis(30));
    let call = conn.call_async_with::<_, ()>(&key, "wait", &1u8, &options);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let started = Instant::now();
    let answer = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), call).await })
        .unwrap_or_else(|_| panic!("{what}: a call into a paused connection never timed out"));
    let took = started.elapsed();
    assert!(
        matches!(answer, Err(RpcError::Timeout(_))),
        "{what}: {answer:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "{what}: timed out after {took:?}"
    );

    // Idle again: the check pauses again.
    std::thread::sleep(Duration::from_millis(150));
    let idle = wake_ups_while_idle(&tid);
    assert!(
        idle < QUIET,
        "{what}: the loop woke {idle} times in 300 ms after the call"
    );
    drop(conn);
    consumer.shutdown();
}

#[test]
fn an_idle_connection_stops_ticking_and_a_later_call_still_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let provider = listener.local_addr().unwrap();
    // Accepts and holds every connection, answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for peer in listener.incoming() {
            held.push(peer);
        }
    });
    let tick = Duration::from_millis(1);
    let filed_by_callers = Consumer::builder().timeout_tick(tick).build().unwrap();
    check(filed_by_callers, provider, "caller-filed");
    let through_the_loop = Consumer::builder()
        .timeout_tick(tick)
        .filter(PassAll)
        .build()
        .unwrap();
    check(through_the_loop, provider, "through the loop");
}
