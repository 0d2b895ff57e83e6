//! Each cluster mode against providers that answer, fail (their method
//! panics: `ServerError`), hang (past the call's timeout) or die mid-call,
//! over real loopback connections; and reconnection after a provider comes
//! back.

use gyre_rpc::cluster::{Cluster, ClusterMode, SmoothRoundRobin};
use gyre_rpc::consumer::{CallOptions, Consumer, RpcError};
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::{ServiceKey, Status};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn key() -> ServiceKey {
    ServiceKey::new("test.Who")
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// `who` answers the provider's id.
    Answer(i32),
    /// `who` and `count` panic.
    Fail,
    /// `who` and `count` sleep this long first.
    Slow(u64, i32),
}

struct Running {
    provider: Provider,
    counted: Arc<AtomicUsize>,
}

/// Keeps the providers' deliberate panics quiet: printing each (with a
/// backtrace under `RUST_BACKTRACE=1`) takes long enough on a busy machine
/// to push calls past their timeout. Every other panic prints as usual.
fn quiet_deliberate_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if message != Some(BROKEN) {
                default(info);
            }
        }));
    });
}

const BROKEN: &str = "this provider is broken";

fn start_at(addr: SocketAddr, b: Behaviour) -> Running {
    quiet_deliberate_panics();
    let counted = Arc::new(AtomicUsize::new(0));
    let c = counted.clone();
    let service = Service::builder(key())
        .dispatch(Dispatch::WorkerPool)
        .method("who", move |_: ()| match b {
            Behaviour::Answer(id) => Ok::<_, ServiceError>(id),
            Behaviour::Fail => panic!("this provider is broken"),
            Behaviour::Slow(ms, id) => {
                std::thread::sleep(Duration::from_millis(ms));
                Ok(id)
            }
        })
        .method("count", move |_: ()| match b {
            Behaviour::Fail => panic!("this provider is broken"),
            Behaviour::Slow(ms, _) => {
                std::thread::sleep(Duration::from_millis(ms));
                Ok::<_, ServiceError>(c.fetch_add(1, Ordering::SeqCst) + 1)
            }
            Behaviour::Answer(_) => Ok(c.fetch_add(1, Ordering::SeqCst) + 1),
        })
        .build();
    let provider = Provider::builder()
        .listen(addr)
        .io_threads(1)
        .pool_threads(4)
        .service(service)
        .start()
        .expect("provider starts");
    Running { provider, counted }
}

fn start(b: Behaviour) -> Running {
    start_at("127.0.0.1:0".parse().unwrap(), b)
}

fn cluster(mode: ClusterMode, providers: &[&Running]) -> Cluster {
    let c = Cluster::builder(key())
        .mode(mode)
        .balancer(SmoothRoundRobin)
        // Long enough for a busy machine, short of the hanging provider's
        // two seconds.
        .options(CallOptions::default().timeout(Duration::from_millis(1000)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers(providers.iter().map(|p| (p.provider.local_addr(), 100)));
    c
}

#[test]
fn failover_goes_round_the_failing_and_the_hanging() {
    let (good, bad, hung) = (
        start(Behaviour::Answer(1)),
        start(Behaviour::Fail),
        start(Behaviour::Slow(2000, 3)),
    );
    let c = cluster(ClusterMode::Failover { retries: 2 }, &[&bad, &hung, &good]);
    for _ in 0..9 {
        assert_eq!(c.call::<_, i32>("who", &()).unwrap(), 1);
    }
    // With no retries left to spend, the error is the provider's.
    let c = cluster(ClusterMode::Failover { retries: 0 }, &[&bad]);
    let e = c.call::<_, i32>("who", &()).unwrap_err();
    assert_eq!(e.status(), Status::ServerError, "{e}");
    // A result of the wrong type is not retried, and the error names the
    // method, the direction and the type asked for.
    let c = cluster(ClusterMode::Failover { retries: 2 }, &[&good]);
    let e = c.call::<_, String>("who", &()).unwrap_err();
    assert!(matches!(e, RpcError::Result { .. }), "{e:?}");
    let said = e.to_string();
    assert!(
        said.starts_with("the result of `who` of test.Who")
            && said.contains("is not a alloc::string::String"),
        "{said}"
    );
}

#[test]
fn failfast_reports_each_failure_once() {
    let (good, bad, hung) = (
        start(Behaviour::Answer(1)),
        start(Behaviour::Fail),
        start(Behaviour::Slow(3000, 3)),
    );
    let c = cluster(ClusterMode::Failfast, &[&good, &bad, &hung]);
    assert_two_of_each((0..6).map(|_| c.call::<_, i32>("who", &())));
}

/// Six failfast calls round a good, a failing and a hanging provider:
/// two answers, two timeouts, two server errors, each failure once.
fn assert_two_of_each(results: impl IntoIterator<Item = Result<i32, RpcError>>) {
    let mut statuses: Vec<Status> = results
        .into_iter()
        .map(|r| match r {
            Ok(id) => {
                assert_eq!(id, 1);
                Status::Ok
            }
            Err(e) => e.status(),
        })
        .collect();
    statuses.sort_by_key(|s| *s as u8);
    assert_eq!(
        statuses,
        [
            Status::Ok,
            Status::Ok,
            Status::ClientTimeout,
            Status::ClientTimeout,
            Status::ServerError,
            Status::ServerError
        ]
    );
}

#[test]
fn failsafe_has_no_result_when_the_call_fails() {
    let bad = start(Behaviour::Fail);
    let good = start(Behaviour::Answer(3));
    let c = cluster(ClusterMode::Failsafe, &[&bad]);
    assert_eq!(c.call_optional::<_, i32>("who", &()).unwrap(), None);
    match c.call::<_, i32>("who", &()) {
        Err(RpcError::Absorbed { mode, cause, .. }) => {
            assert_eq!(mode, "failsafe");
            assert_eq!(cause.status(), Status::ServerError);
        }
        other => panic!("expected no result, got {other:?}"),
    }
    let none = cluster(ClusterMode::Failsafe, &[]);
    assert_eq!(
        none.call_optional::<_, Vec<String>>("who", &()).unwrap(),
        None
    );
    // A result type with no `Default` is fine, and a success is a result.
    struct NoDefault(i32);
    impl<'de> serde::Deserialize<'de> for NoDefault {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            i32::deserialize(d).map(NoDefault)
        }
    }
    let ok = cluster(ClusterMode::Failsafe, &[&good]);
    let got = ok.call_optional::<_, NoDefault>("who", &()).unwrap();
    assert_eq!(got.map(|n| n.0), Some(3));
}

#[test]
fn failback_retries_in_the_background_until_it_lands() {
    let bad = start(Behaviour::Fail);
    let good = start(Behaviour::Answer(1));
    let c = Cluster::builder(key())
        .mode(ClusterMode::Failback {
            every: Duration::from_millis(50),
            max_retries: 100,
        })
        .options(CallOptions::default().timeout(Duration::from_millis(200)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([(bad.provider.local_addr(), 100)]);
    assert_eq!(
        c.call_optional::<_, usize>("count", &()).unwrap(),
        None,
        "no result yet"
    );
    assert_eq!(c.pending_retries(), 1);
    std::thread::sleep(Duration::from_millis(200));
    // Still failing on the broken provider, so still queued (read while no
    // attempt has it out of the queue).
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.pending_retries() != 1 {
        assert!(Instant::now() < deadline, "the retry was dropped");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(good.counted.load(Ordering::SeqCst), 0);
    c.set_providers([(good.provider.local_addr(), 100)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while good.counted.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the retry never landed");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(good.counted.load(Ordering::SeqCst), 1, "exactly once");
    assert_eq!(c.pending_retries(), 0);
}

#[test]
fn forking_takes_the_first_answer() {
    let hung = start(Behaviour::Slow(2000, 3));
    let good = start(Behaviour::Answer(1));
    // A timeout longer than the hang, so waiting for both would show.
    let c = Cluster::builder(key())
        .mode(ClusterMode::Forking { parallel: 2 })
        .options(CallOptions::default().timeout(Duration::from_secs(5)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([&hung, &good].map(|p| (p.provider.local_addr(), 100)));
    let t = Instant::now();
    assert_eq!(c.call::<_, i32>("who", &()).unwrap(), 1);
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    let bad = start(Behaviour::Fail);
    let c = cluster(ClusterMode::Forking { parallel: 2 }, &[&bad, &hung]);
    assert!(
        c.call::<_, i32>("who", &()).is_err(),
        "fails only when all fail"
    );
}

#[test]
fn broadcast_reaches_every_provider_and_fails_if_one_does() {
    let ps: Vec<Running> = (1..=3).map(|i| start(Behaviour::Answer(i))).collect();
    let c = cluster(ClusterMode::Broadcast, &ps.iter().collect::<Vec<_>>());
    c.call::<_, usize>("count", &()).unwrap();
    for p in &ps {
        assert_eq!(p.counted.load(Ordering::SeqCst), 1);
    }
    let bad = start(Behaviour::Fail);
    let c = cluster(ClusterMode::Broadcast, &[&ps[0], &bad]);
    assert_eq!(
        c.call::<_, usize>("count", &()).unwrap_err().status(),
        Status::ServerError
    );
    assert_eq!(
        ps[0].counted.load(Ordering::SeqCst),
        2,
        "the good one still got it"
    );
}

#[test]
fn a_provider_that_dies_mid_call_fails_over_and_is_reconnected_when_back() {
    let dying = start(Behaviour::Slow(300, 2));
    let good = start(Behaviour::Answer(1));
    let addr = dying.provider.local_addr();
    let c = Arc::new(cluster(
        ClusterMode::Failover { retries: 1 },
        &[&dying, &good],
    ));
    let caller = {
        let c = c.clone();
        // Round robin sends the first call to the dying provider.
        std::thread::spawn(move || c.call::<_, i32>("who", &()))
    };
    std::thread::sleep(Duration::from_millis(100));
    dying.provider.abort();
    assert_eq!(
        caller.join().unwrap().unwrap(),
        1,
        "answered by the survivor"
    );
    // While it is down (once the consumer has seen it go), calls go to the
    // survivor.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.providers().iter().filter(|(_, up)| *up).count() != 1 {
        assert!(
            Instant::now() < deadline,
            "the dead provider still looks up"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for _ in 0..4 {
        assert_eq!(c.call::<_, i32>("who", &()).unwrap(), 1);
    }
    // It comes back on the same address and is reconnected.
    let back = start_at(addr, Behaviour::Answer(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.providers().iter().any(|(_, up)| !up) {
        assert!(Instant::now() < deadline, "never reconnected");
        std::thread::sleep(Duration::from_millis(20));
    }
    let answers: Vec<i32> = (0..4).map(|_| c.call("who", &()).unwrap()).collect();
    assert!(answers.contains(&2), "{answers:?}");
    drop(back);
}

#[test]
fn least_active_sends_most_calls_past_a_slow_provider() {
    use gyre_rpc::cluster::LeastActive;
    let slow = start(Behaviour::Slow(50, 1));
    let fast = start(Behaviour::Answer(2));
    let c = Cluster::builder(key())
        .balancer(LeastActive)
        .options(CallOptions::default().timeout(Duration::from_secs(2)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([&slow, &fast].map(|p| (p.provider.local_addr(), 100)));
    let answers = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    let id: i32 = c.call("who", &()).unwrap();
                    answers.lock().unwrap().push(id);
                }
            });
        }
    });
    let answers = answers.into_inner().unwrap();
    let slow_share = answers.iter().filter(|&&id| id == 1).count() as f64 / answers.len() as f64;
    // Weighted random would give the slow one half the calls; with four
    // callers and a 50 ms method it holds a call most of the time, so it
    // is chosen only when it is idle too.
    assert!(
        slow_share < 0.2,
        "slow provider got {slow_share:.2} of the calls"
    );
}

#[test]
fn shortest_response_sends_a_lone_callers_calls_to_the_faster_provider() {
    use gyre_rpc::cluster::ShortestResponse;
    // One caller: nothing is ever in flight when a call is chosen, so
    // least-active would split the calls evenly; the response times do
    // not.
    let slow = start(Behaviour::Slow(20, 1));
    let fast = start(Behaviour::Answer(2));
    let c = Cluster::builder(key())
        .balancer(ShortestResponse)
        .options(CallOptions::default().timeout(Duration::from_secs(2)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([&slow, &fast].map(|p| (p.provider.local_addr(), 100)));
    let answers: Vec<i32> = (0..100).map(|_| c.call("who", &()).unwrap()).collect();
    let to_slow = answers.iter().filter(|&&id| id == 1).count();
    // Each is tried once while unmeasured; then the faster one takes
    // every call (20 ms against a fraction of one).
    assert!(
        (1..=3).contains(&to_slow),
        "the slow provider took {to_slow} of 100"
    );
}

#[test]
fn shortest_response_keeps_away_from_a_provider_that_fails_at_once() {
    use gyre_rpc::cluster::ShortestResponse;
    let broken = start(Behaviour::Fail);
    let slow = start(Behaviour::Slow(5, 2));
    let c = Cluster::builder(key())
        .mode(ClusterMode::Failfast)
        .balancer(ShortestResponse)
        .options(CallOptions::default().timeout(Duration::from_secs(1)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([&broken, &slow].map(|p| (p.provider.local_addr(), 100)));
    let failed = (0..100)
        .filter(|_| c.call::<_, i32>("who", &()).is_err())
        .count();
    // Tried while unmeasured, then counted as its whole timeout (1 s)
    // against 5 ms: had its quick refusals counted as fast, it would take
    // nearly every call.
    assert!(
        (1..=3).contains(&failed),
        "{failed} of 100 calls went to the broken provider"
    );
}

/// Waits until one of the cluster's providers is connected.
fn wait_connected(c: &Cluster) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !c.providers().iter().any(|(_, up)| *up) {
        assert!(Instant::now() < deadline, "no provider connected");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_fallback_answers_for_a_failing_provider_never_for_a_methods_own_error() {
    let broken = start(Behaviour::Fail);
    // Slow, so that a call made shows in the time it takes.
    let working = start(Behaviour::Slow(500, 5));
    let service = Service::builder(ServiceKey::new("test.Picky"))
        .method("who", |n: i32| {
            if n < 0 {
                Err(ServiceError::new("negative"))
            } else {
                Ok(n)
            }
        })
        .build();
    let picky = Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .service(service)
        .start()
        .unwrap();
    let build = |key: ServiceKey| {
        Cluster::builder(key)
            .mode(ClusterMode::Failfast)
            .fallback("who", |why: &RpcError| match why {
                RpcError::Degraded { .. } => Ok(-2),
                _ => Ok(-1),
            })
            .options(CallOptions::default().timeout(Duration::from_secs(2)))
            .build(Consumer::builder().build().unwrap())
    };
    // No provider, then a failing one: the fallback's -1 both times.
    let c = build(key());
    assert_eq!(c.call::<_, i32>("who", &()).unwrap(), -1, "no provider");
    c.set_providers([(broken.provider.local_addr(), 100)]);
    wait_connected(&c);
    assert_eq!(
        c.call::<_, i32>("who", &()).unwrap(),
        -1,
        "a failing provider"
    );
    // A method without a fallback still fails.
    assert!(c.call::<_, usize>("count", &()).is_err());
    // A working provider answers for itself; degraded, the fallback does
    // without a call, and restored, the provider again.
    c.set_providers([(working.provider.local_addr(), 100)]);
    wait_connected(&c);
    assert_eq!(c.call::<_, i32>("who", &()).unwrap(), 5);
    assert!(c.degrade("who", true));
    let t = Instant::now();
    assert_eq!(c.call::<_, i32>("who", &()).unwrap(), -2);
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "no call was made: {:?}",
        t.elapsed()
    );
    assert!(c.degrade("who", false));
    assert_eq!(c.call::<_, i32>("who", &()).unwrap(), 5);
    assert!(!c.degrade("count", true), "no fallback to degrade to");
    // A method's own error is its caller's: not replaced.
    let p = build(ServiceKey::new("test.Picky"));
    p.set_providers([(picky.local_addr(), 100)]);
    wait_connected(&p);
    assert_eq!(p.call::<_, i32>("who", &3).unwrap(), 3);
    match p.call::<_, i32>("who", &-3) {
        Err(RpcError::Failed {
            status: Status::ServiceError,
            ..
        }) => {}
        other => panic!("the method's own error was replaced: {other:?}"),
    }
    picky.shutdown(Duration::from_secs(1));
}

#[test]
fn a_silent_provider_is_dropped_after_three_heartbeats_and_reconnected_with_back_off() {
    use std::io::Read;
    // A "provider" that accepts and then says nothing at all, not even to
    // pings: each connection is timed from accept to the consumer's close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let lived = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = lived.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let record = record.clone();
            std::thread::spawn(move || {
                let t = Instant::now();
                let mut buf = [0u8; 256];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                record.lock().unwrap().push(t.elapsed());
            });
        }
    });
    let period = Duration::from_millis(100);
    let c = Cluster::builder(key())
        .mode(ClusterMode::Failfast)
        .build(Consumer::builder().heartbeat(period).build().unwrap());
    c.set_providers([(addr, 100)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lived.lock().unwrap().len() < 2 {
        assert!(Instant::now() < deadline, "never dropped and reconnected");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The consumer's idle clock starts at its connect, a little before this
    // side's accept is timed (a thread start later): allow that much.
    let slack = Duration::from_millis(10);
    for life in lived.lock().unwrap().iter() {
        // Closed for silence: after three periods, not before.
        assert!(
            *life + slack >= period * 3 && *life < period * 10,
            "a connection lived {life:?}"
        );
    }
}

/// A provider answering `who` with `id`, and `held` only when `release`
/// gives it leave (from a thread of its own: the pool's are not held).
fn holding(id: i32, release: std::sync::mpsc::Receiver<()>) -> Provider {
    let release = Arc::new(std::sync::Mutex::new(release));
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .service(
            Service::builder(key())
                .dispatch(Dispatch::WorkerPool)
                .method("who", move |_: ()| Ok::<_, ServiceError>(id))
                .deferred_method(
                    "held",
                    move |_: (), answer: gyre_rpc::provider::Responder<i32>| {
                        let release = release.clone();
                        std::thread::spawn(move || {
                            let go = release
                                .lock()
                                .unwrap()
                                .recv_timeout(Duration::from_secs(10));
                            assert!(go.is_ok(), "never released");
                            answer.send(Ok(id));
                        });
                    },
                )
                .build(),
        )
        .start()
        .unwrap()
}

#[test]
fn a_provider_shutting_down_takes_no_new_calls_and_answers_those_it_has() {
    // Before: a graceful shutdown told nobody; a failfast cluster kept
    // choosing the provider until its connection closed, and its calls
    // landed on a pool that had stopped (ServerOverloaded).
    let (go_a, release_a) = std::sync::mpsc::channel();
    let (_go_b, release_b) = std::sync::mpsc::channel();
    let a = holding(1, release_a);
    let b = holding(2, release_b);
    let a_addr = a.local_addr();
    let c = Cluster::builder(key())
        .mode(ClusterMode::Failfast)
        .balancer(SmoothRoundRobin)
        .options(CallOptions::default().timeout(Duration::from_secs(10)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([(a_addr, 100), (b.local_addr(), 100)]);
    c.wait_for_providers(2, Duration::from_secs(5)).unwrap();
    // A call A holds, on a connection of its own, keeps A's shutdown
    // waiting (its deferred answer is in flight).
    let direct = Consumer::builder()
        .build()
        .unwrap()
        .connect(a_addr)
        .unwrap();
    let held = std::thread::spawn(move || {
        let answer = direct.call::<_, i32>(&key(), "held", &());
        (answer, direct.is_read_only())
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.in_flight() == 0 {
        assert!(Instant::now() < deadline, "the held call never reached A");
        std::thread::sleep(Duration::from_millis(1));
    }
    let stopping = std::thread::spawn(move || a.shutdown(Duration::from_secs(10)));
    // A's notice arrives: it no longer takes new calls.
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.providers().contains(&(a_addr, true)) {
        assert!(
            Instant::now() < deadline,
            "A never said it was shutting down"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..100 {
        assert_eq!(
            c.call::<_, i32>("who", &()).unwrap(),
            2,
            "a new call went to A"
        );
    }
    // What A had in flight is answered, then it closes.
    go_a.send(()).unwrap();
    let (answer, told) = held.join().unwrap();
    assert_eq!(answer.unwrap(), 1);
    assert!(told, "the direct connection had the notice too");
    stopping.join().unwrap();
}

#[test]
fn a_cluster_whose_every_provider_is_shutting_down_still_calls_them() {
    // Dubbo's reselection: better a provider that still answers than none.
    let (go, release) = std::sync::mpsc::channel();
    let a = holding(1, release);
    let c = Cluster::builder(key())
        .mode(ClusterMode::Failfast)
        .options(CallOptions::default().timeout(Duration::from_secs(10)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([(a.local_addr(), 100)]);
    c.wait_for_providers(1, Duration::from_secs(5)).unwrap();
    // Held open by a call in flight, A is shutting down for a while.
    let direct = Consumer::builder()
        .build()
        .unwrap()
        .connect(a.local_addr())
        .unwrap();
    let held = std::thread::spawn(move || direct.call::<_, i32>(&key(), "held", &()));
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.in_flight() == 0 {
        assert!(Instant::now() < deadline, "the held call never reached A");
        std::thread::sleep(Duration::from_millis(1));
    }
    let addr = a.local_addr();
    let stopping = std::thread::spawn(move || a.shutdown(Duration::from_secs(10)));
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.providers() != [(addr, false)] {
        assert!(
            Instant::now() < deadline,
            "A never said it was shutting down"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(c.call::<_, i32>("who", &()).unwrap(), 1);
    go.send(()).unwrap();
    assert_eq!(held.join().unwrap().unwrap(), 1);
    stopping.join().unwrap();
}

/// A current-thread tokio runtime for the asynchronous calls.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn async_calls_fail_over_round_the_failing_and_the_hanging_all_at_once() {
    let (good, bad, hung) = (
        start(Behaviour::Answer(1)),
        start(Behaviour::Fail),
        start(Behaviour::Slow(2000, 3)),
    );
    let c = cluster(ClusterMode::Failover { retries: 2 }, &[&bad, &hung, &good]);
    let rt = runtime();
    // Nine calls in flight together on one task: a third of them meet the
    // hanging provider first, and each still fails over, within about one
    // timeout (1 s) rather than three in a row.
    let t = Instant::now();
    let answers = rt.block_on(async {
        let calls: Vec<_> = (0..9).map(|_| c.call_async::<_, i32>("who", &())).collect();
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await);
        }
        answers
    });
    for a in &answers {
        assert_eq!(*a.as_ref().unwrap(), 1, "{answers:?}");
    }
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    // A method's own failure and a result of the wrong type are not
    // retried; with no retries left, the provider's error is the call's.
    let e = rt
        .block_on(c.call_async::<_, String>("who", &()))
        .unwrap_err();
    assert!(matches!(e, RpcError::Result { .. }), "{e:?}");
    let c = cluster(ClusterMode::Failover { retries: 0 }, &[&bad]);
    let e = rt.block_on(c.call_async::<_, i32>("who", &())).unwrap_err();
    assert_eq!(e.status(), Status::ServerError, "{e}");
}

#[test]
fn async_calls_in_the_other_modes() {
    let (good, bad, hung) = (
        start(Behaviour::Answer(1)),
        start(Behaviour::Fail),
        start(Behaviour::Slow(3000, 3)),
    );
    let rt = runtime();
    // Failfast: each failure once, as it came.
    let c = cluster(ClusterMode::Failfast, &[&good, &bad, &hung]);
    assert_two_of_each(rt.block_on(async {
        let calls: Vec<_> = (0..6).map(|_| c.call_async::<_, i32>("who", &())).collect();
        let mut results = Vec::new();
        for call in calls {
            results.push(call.await);
        }
        results
    }));
    // A call's own options over the cluster's: its timeout.
    let c = cluster(ClusterMode::Failfast, &[&hung]);
    let short = CallOptions::default().timeout(Duration::from_millis(100));
    let t = Instant::now();
    let e = rt
        .block_on(c.call_async_with::<_, i32>("who", &(), &short))
        .unwrap_err();
    assert!(
        matches!(e, RpcError::Timeout(d) if d == Duration::from_millis(100)),
        "{e:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    // Failsafe: no result.
    let c = cluster(ClusterMode::Failsafe, &[&bad]);
    match rt.block_on(c.call_async::<_, i32>("who", &())) {
        Err(RpcError::Absorbed { mode, cause, .. }) => {
            assert_eq!(mode, "failsafe");
            assert_eq!(cause.status(), Status::ServerError);
        }
        other => panic!("expected no result, got {other:?}"),
    }
    assert_eq!(
        rt.block_on(c.call_optional_async::<_, i32>("who", &()))
            .unwrap(),
        None
    );
    let ok = cluster(ClusterMode::Failsafe, &[&good]);
    assert_eq!(
        rt.block_on(ok.call_optional_async::<_, i32>("who", &()))
            .unwrap(),
        Some(1)
    );
    // Failback: no result now, retried in the background.
    let c = Cluster::builder(key())
        .mode(ClusterMode::Failback {
            every: Duration::from_millis(50),
            max_retries: 100,
        })
        .options(CallOptions::default().timeout(Duration::from_millis(200)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([(bad.provider.local_addr(), 100)]);
    let e = rt
        .block_on(c.call_async::<_, usize>("count", &()))
        .unwrap_err();
    assert!(
        matches!(
            e,
            RpcError::Absorbed {
                mode: "failback",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(c.pending_retries(), 1);
    c.set_providers([(good.provider.local_addr(), 100)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while good.counted.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the retry never landed");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Forking: the first answer, not the hanging provider's.
    let c = Cluster::builder(key())
        .mode(ClusterMode::Forking { parallel: 2 })
        .options(CallOptions::default().timeout(Duration::from_secs(5)))
        .build(Consumer::builder().build().unwrap());
    c.set_providers([&hung, &good].map(|p| (p.provider.local_addr(), 100)));
    let t = Instant::now();
    assert_eq!(rt.block_on(c.call_async::<_, i32>("who", &())).unwrap(), 1);
    assert!(
        t.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t.elapsed()
    );
    let c = cluster(ClusterMode::Forking { parallel: 2 }, &[&bad, &hung]);
    assert!(rt.block_on(c.call_async::<_, i32>("who", &())).is_err());
    // Broadcast: every provider, and a failure if one fails.
    let ps: Vec<Running> = (1..=3).map(|i| start(Behaviour::Answer(i))).collect();
    let c = cluster(ClusterMode::Broadcast, &ps.iter().collect::<Vec<_>>());
    rt.block_on(c.call_async::<_, usize>("count", &())).unwrap();
    for p in &ps {
        assert_eq!(p.counted.load(Ordering::SeqCst), 1);
    }
    let c = cluster(ClusterMode::Broadcast, &[&ps[0], &bad]);
    let e = rt
        .block_on(c.call_async::<_, usize>("count", &()))
        .unwrap_err();
    assert_eq!(e.status(), Status::ServerError);
    assert_eq!(ps[0].counted.load(Ordering::SeqCst), 2);
}

#[test]
fn async_calls_take_fallbacks_and_degrade() {
    let broken = start(Behaviour::Fail);
    let working = start(Behaviour::Answer(5));
    let c = Cluster::builder(key())
        .mode(ClusterMode::Failfast)
        .fallback("who", |why: &RpcError| match why {
            RpcError::Degraded { .. } => Ok(-2),
            _ => Ok(-1),
        })
        .build(Consumer::builder().build().unwrap());
    let rt = runtime();
    assert_eq!(rt.block_on(c.call_async::<_, i32>("who", &())).unwrap(), -1);
    c.set_providers([(broken.provider.local_addr(), 100)]);
    wait_connected(&c);
    assert_eq!(rt.block_on(c.call_async::<_, i32>("who", &())).unwrap(), -1);
    c.set_providers([(working.provider.local_addr(), 100)]);
    wait_connected(&c);
    assert_eq!(rt.block_on(c.call_async::<_, i32>("who", &())).unwrap(), 5);
    c.degrade("who", true);
    assert_eq!(rt.block_on(c.call_async::<_, i32>("who", &())).unwrap(), -2);
    assert_eq!(working.counted.load(Ordering::SeqCst), 0);
}

#[test]
fn a_blocking_call_is_refused_on_a_loops_thread_where_an_async_one_is_made() {
    // A provider method on its I/O thread calls another cluster: a
    // blocking call there is refused in every mode (a forking one would
    // have parked the loop's thread), where a future is made there and
    // awaited elsewhere.
    let downstream = start(Behaviour::Answer(7));
    let forking = Arc::new(cluster(
        ClusterMode::Forking { parallel: 2 },
        &[&downstream],
    ));
    wait_connected(&forking);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let (f, s) = (forking.clone(), seen.clone());
    let gateway = Service::builder(ServiceKey::new("test.Gateway"))
        .dispatch(Dispatch::IoThread)
        .deferred_method("who", move |_: (), reply| {
            let blocking = f.call::<_, i32>("who", &());
            *s.lock().unwrap() = Some(format!("{blocking:?}"));
            let later = f.call_async::<_, i32>("who", &());
            std::thread::spawn(move || {
                reply.send(
                    runtime()
                        .block_on(later)
                        .map_err(|e| ServiceError::new(e.to_string())),
                )
            });
        })
        .build();
    let gateway = Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .service(gateway)
        .start()
        .unwrap();
    let conn = Consumer::builder()
        .build()
        .unwrap()
        .connect(gateway.local_addr())
        .unwrap();
    assert_eq!(
        conn.call::<_, i32>(&ServiceKey::new("test.Gateway"), "who", &())
            .unwrap(),
        7
    );
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some("Err(BlockingOnLoop)"),
        "a forking call must not park a loop's thread"
    );
    gateway.shutdown(Duration::from_secs(1));
}
