//! The RPC benchmark's cases: gyre-rpc and tarpc, the same request and
//! response types, one connection, a fixed number of calls in flight.
//!
//! Both clients are driven the same way: `in_flight` tasks on a
//! single-threaded tokio runtime, each calling in a loop until the time is
//! up and recording every call's latency. gyre-rpc can also be driven by
//! `in_flight` threads making blocking calls ([`GyreClient::blocking`]). Both servers answer on one
//! thread: gyre-rpc's provider on one event loop with I/O-thread dispatch,
//! tarpc's server on a single-threaded tokio runtime. Serialization is
//! compact binary on both sides (postcard for gyre-rpc, bincode for
//! tarpc, tarpc's usual choice).

use gyre_rpc::cluster::Cluster;
use gyre_rpc::consumer::{Connection, Consumer};
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::ServiceKey;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The request both frameworks carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// A sequence number the response must echo.
    pub id: u64,
    /// A customer name (short text).
    pub customer: String,
    /// Item quantities.
    pub quantities: Vec<u32>,
}

/// The response both frameworks carry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order's id.
    pub id: u64,
    /// Sum of the quantities.
    pub total: u64,
}

fn receipt(order: Order) -> Receipt {
    Receipt {
        id: order.id,
        total: order.quantities.iter().map(|&q| u64::from(q)).sum(),
    }
}

pub(crate) fn order(id: u64) -> Order {
    Order {
        id,
        customer: "customer-0042".to_string(),
        quantities: vec![1, 2, 3, 4, 5, 6, 7, 8],
    }
}

/// tarpc's definition of the same service.
#[tarpc::service]
pub trait Shop {
    /// Places an order.
    async fn place(order: Order) -> Receipt;
}

#[derive(Clone)]
struct ShopServer;

impl Shop for ShopServer {
    async fn place(self, _: tarpc::context::Context, order: Order) -> Receipt {
        receipt(order)
    }
}

/// What one run measured.
pub struct Report {
    /// Calls completed.
    pub calls: u64,
    /// How long the run took.
    pub elapsed: Duration,
    /// Per-call latency, ns.
    pub latency: Histogram<u64>,
}

impl Report {
    /// Calls per second.
    pub fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(100, 10_000_000_000, 3).expect("bounds")
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// One caller's count and latencies, and the id of its next call (each
/// caller's ids step by the number of callers, so no two share one).
struct Tally {
    calls: u64,
    latency: Histogram<u64>,
    id: u64,
    stride: u64,
}

impl Tally {
    fn new(caller: usize, callers: usize) -> Tally {
        Tally {
            calls: 0,
            latency: histogram(),
            id: caller as u64,
            stride: callers as u64,
        }
    }

    /// Records the call that started at `started` and answered `r`,
    /// checking the answer is its own.
    fn record(&mut self, started: Instant, r: Receipt) {
        self.latency
            .saturating_record(started.elapsed().as_nanos() as u64);
        assert_eq!((r.id, r.total), (self.id, 36), "a wrong answer");
        self.calls += 1;
        self.id += self.stride;
    }
}

/// Makes a client with `connect` on a fresh single-threaded runtime, then
/// runs `in_flight` looping tasks on it for `duration`; each task's step is
/// one call, checked.
pub(crate) fn drive<C, Mk, MkFut, F, Fut>(
    in_flight: usize,
    duration: Duration,
    connect: Mk,
    call: F,
) -> Report
where
    C: Clone + Send + 'static,
    Mk: FnOnce() -> MkFut,
    MkFut: std::future::Future<Output = C>,
    F: Fn(C, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Receipt> + Send,
{
    let rt = runtime();
    let client = rt.block_on(connect());
    let start = Instant::now();
    let deadline = start + duration;
    let reports = rt.block_on(async move {
        let tasks: Vec<_> = (0..in_flight)
            .map(|task| {
                let call = call.clone();
                let client = client.clone();
                tokio::spawn(async move {
                    let mut tally = Tally::new(task, in_flight);
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        tally.record(t, call(client.clone(), tally.id).await);
                    }
                    (tally.calls, tally.latency)
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    });
    collect(start.elapsed(), reports)
}

/// [`drive`] with `in_flight` caller threads instead of tasks: each calls
/// `call` in a loop until `duration` is up.
pub(crate) fn drive_threads(
    in_flight: usize,
    duration: Duration,
    call: impl Fn(u64) -> Receipt + Sync,
) -> Report {
    let start = Instant::now();
    let deadline = start + duration;
    let call = &call;
    let reports: Vec<(u64, Histogram<u64>)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..in_flight)
            .map(|task| {
                s.spawn(move || {
                    let mut tally = Tally::new(task, in_flight);
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        tally.record(t, call(tally.id));
                    }
                    (tally.calls, tally.latency)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("caller"))
            .collect()
    });
    collect(start.elapsed(), reports)
}

/// One report from the callers' counts and histograms.
fn collect(elapsed: Duration, reports: Vec<(u64, Histogram<u64>)>) -> Report {
    let mut latency = histogram();
    let mut calls = 0;
    for (n, h) in reports {
        calls += n;
        latency.add(h).expect("same bounds");
    }
    Report {
        calls,
        elapsed,
        latency,
    }
}

/// The service's key, made once: a caller holds it, as a generated client
/// does (`service!`), rather than building its two strings per call
/// (which tarpc's calls do not do either).
pub(crate) static KEY: std::sync::LazyLock<ServiceKey> =
    std::sync::LazyLock::new(|| ServiceKey::new("bench.Shop").version("1"));

/// gyre-rpc's provider, one event loop, calls on the loop.
pub fn gyre_server() -> Provider {
    gyre_server_on(Dispatch::IoThread)
}

/// gyre-rpc's provider, one event loop; calls run on the loop
/// (`Dispatch::IoThread`, no pool) or on a worker pool of one thread
/// (`Dispatch::WorkerPool`).
pub fn gyre_server_on(dispatch: Dispatch) -> Provider {
    let pool = usize::from(dispatch == Dispatch::WorkerPool);
    Provider::builder()
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .io_threads(1)
        .pool_threads(pool)
        .service(
            Service::builder(KEY.clone())
                .dispatch(dispatch)
                .method("place", |o: Order| Ok::<_, ServiceError>(receipt(o)))
                // The same answer from a future run on the loop, as
                // tarpc's server methods are.
                .async_method("place_async", |o: Order| async move {
                    Ok::<_, ServiceError>(receipt(o))
                })
                .build(),
        )
        .start()
        .expect("provider")
}

/// How the benchmark's gyre-rpc consumer is configured.
#[derive(Clone, Copy, Debug)]
pub struct GyreClient {
    /// Callers send their frames themselves when the loop lets them (the
    /// default), or every call goes through the connection's loop.
    pub direct: bool,
    /// The consumer loop's busy-poll window (zero, the default: off).
    pub busy_poll: Duration,
    /// Each caller is a thread of its own making blocking
    /// [`Connection::call`]s, instead of a task on the driving runtime
    /// awaiting `call_async`.
    pub blocking: bool,
    /// A blocking caller with nothing else in flight reads its own answer
    /// (the default; [`gyre_rpc::consumer::ConsumerBuilder::direct_reads`]).
    pub direct_reads: bool,
    /// An asynchronous call with nothing else in flight reads its own
    /// answer on the driving tokio runtime
    /// ([`gyre_rpc::consumer::ConsumerBuilder::tokio_reads`]; off by
    /// default).
    pub tokio_reads: bool,
    /// Answers wake the driving runtime's tasks through a relay
    /// ([`gyre_rpc::consumer::ConsumerBuilder::wake_relay`]; on by
    /// default).
    pub wake_relay: bool,
    /// Calls go through a [`Cluster`] of the one provider (failover,
    /// weighted random: the cluster's defaults) rather than straight to
    /// the connection: what the cluster layer costs.
    pub cluster: bool,
    /// Calls name the provider's asynchronous method (`place_async`, a
    /// future the provider's loop runs) instead of `place`.
    pub async_method: bool,
}

impl GyreClient {
    /// The consumer's defaults.
    pub const DEFAULT: GyreClient = GyreClient {
        direct: true,
        busy_poll: Duration::ZERO,
        blocking: false,
        direct_reads: true,
        tokio_reads: false,
        wake_relay: true,
        cluster: false,
        async_method: false,
    };
}

/// One gyre-rpc run against the provider at `addr`, with a consumer
/// configured as `client` says.
pub fn gyre_run(
    addr: SocketAddr,
    in_flight: usize,
    duration: Duration,
    client: GyreClient,
) -> Report {
    let consumer = Consumer::builder()
        .busy_poll(client.busy_poll)
        .direct_writes(client.direct)
        .direct_reads(client.direct_reads)
        .tokio_reads(client.tokio_reads)
        .wake_relay(client.wake_relay)
        .build()
        .expect("consumer");
    if client.cluster {
        return cluster_run(consumer, addr, in_flight, duration, client.blocking);
    }
    let conn: Arc<Connection> = Arc::new(consumer.connect(addr).expect("connect"));
    let method = if client.async_method {
        "place_async"
    } else {
        "place"
    };
    if client.blocking {
        let report = drive_threads(in_flight, duration, |id| {
            conn.call::<_, Receipt>(&KEY, method, &order(id))
                .expect("gyre call")
        });
        consumer.shutdown();
        return report;
    }
    let report = drive(
        in_flight,
        duration,
        || async move { conn },
        |conn: Arc<Connection>, id| {
            let call = conn.call_async::<_, Receipt>(&KEY, method, &order(id));
            async move { call.await.expect("gyre call") }
        },
    );
    consumer.shutdown();
    report
}

/// A run through a cluster of the one provider at `addr`.
fn cluster_run(
    consumer: Consumer,
    addr: SocketAddr,
    in_flight: usize,
    duration: Duration,
    blocking: bool,
) -> Report {
    let cluster = Arc::new(Cluster::builder(KEY.clone()).build(consumer));
    cluster.set_providers([(addr, 100)]);
    cluster
        .wait_for_providers(1, Duration::from_secs(5))
        .expect("the provider connects");
    if blocking {
        return drive_threads(in_flight, duration, |id| {
            cluster
                .call::<_, Receipt>("place", &order(id))
                .expect("gyre cluster call")
        });
    }
    drive(
        in_flight,
        duration,
        || async move { cluster },
        |cluster: Arc<Cluster>, id| {
            let call = cluster.call_async::<_, Receipt>("place", &order(id));
            async move { call.await.expect("gyre cluster call") }
        },
    )
}

/// tarpc's server on a thread of its own, one single-threaded runtime.
pub struct TarpcServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TarpcServer {
    /// Starts it.
    pub fn start() -> TarpcServer {
        use futures::{future, StreamExt};
        use tarpc::server::{BaseChannel, Channel};
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = tarpc::serde_transport::tcp::listen(
                    "127.0.0.1:0",
                    tarpc::tokio_serde::formats::Bincode::default,
                )
                .await
                .expect("tarpc listens");
                addr_tx.send(listener.local_addr()).expect("addr");
                let serve = listener
                    .filter_map(|r| future::ready(r.ok()))
                    .map(|t| {
                        let _ = t.get_ref().set_nodelay(true);
                        BaseChannel::with_defaults(t)
                    })
                    .for_each(|channel| async move {
                        tokio::spawn(channel.execute(ShopServer.serve()).for_each(
                            |f| async move {
                                tokio::spawn(f);
                            },
                        ));
                    });
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            })
        });
        TarpcServer {
            addr: addr_rx.recv().expect("tarpc address"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for TarpcServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tarpc client of the server at `addr`, its socket and dispatch task
/// on the current runtime.
pub(crate) async fn tarpc_client(addr: SocketAddr) -> ShopClient {
    let transport =
        tarpc::serde_transport::tcp::connect(addr, tarpc::tokio_serde::formats::Bincode::default)
            .await
            .expect("tarpc connects");
    transport.get_ref().set_nodelay(true).expect("nodelay");
    ShopClient::new(tarpc::client::Config::default(), transport).spawn()
}

/// One tarpc run against the server at `addr`.
pub fn tarpc_run(addr: SocketAddr, in_flight: usize, duration: Duration) -> Report {
    drive(
        in_flight,
        duration,
        // On the driving runtime, so the socket and the client's dispatch
        // task live on it.
        || tarpc_client(addr),
        |client: ShopClient, id| async move {
            client
                .place(tarpc::context::current(), order(id))
                .await
                .expect("tarpc call")
        },
    )
}
