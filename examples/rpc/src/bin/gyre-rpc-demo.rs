//! `gyre-rpc-demo`: a registry, providers and a consumer of the
//! `demo.Greeter` service, to watch load balancing and failover happen.
//!
//! ```text
//! gyre-rpc-demo registry                      # terminal 1
//! gyre-rpc-demo provider --port 20881         # terminal 2
//! gyre-rpc-demo provider --port 20882         # terminal 3
//! gyre-rpc-demo consumer                      # terminal 4: who answers each call
//! ```
//!
//! Ctrl-C stops a provider cleanly (it unregisters first); `kill -9` one
//! and the consumer's failover carries on while its lease runs out.

use clap::{Parser, Subcommand, ValueEnum};
use gyre_rpc::cluster::{
    Cluster, ClusterMode, ConsistentHash, LeastActive, ShortestResponse, SmoothRoundRobin,
    WeightedRandom,
};
use gyre_rpc::consumer::{CallOptions, Consumer};
use gyre_rpc::filter::AccessLog;
use gyre_rpc::provider::{Dispatch, Provider, ProviderToken, Service, ServiceError};
use gyre_rpc::registry::{EmbeddedRegistry, Registry, RegistryServer, ZooKeeperRegistry};
use gyre_rpc::ServiceKey;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_REGISTRY: &str = "127.0.0.1:20800";

#[derive(Parser)]
#[command(
    version,
    about = "gyre-rpc demo: registry, providers and a consumer of demo.Greeter"
)]
struct Args {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Run the embedded registry server.
    Registry {
        /// Where to listen.
        #[arg(long, default_value = DEFAULT_REGISTRY)]
        listen: SocketAddr,
    },
    /// Run a provider of demo.Greeter that registers itself.
    Provider {
        /// Port to listen on (127.0.0.1).
        #[arg(long)]
        port: u16,
        /// The registry server.
        #[arg(long, default_value = DEFAULT_REGISTRY)]
        registry: SocketAddr,
        /// Register with this ZooKeeper ensemble (host:port,...) instead.
        #[arg(long)]
        zookeeper: Option<String>,
        /// Its load-balancing weight.
        #[arg(long, default_value_t = 100)]
        weight: u32,
        /// Make every call take this long (to watch least-active at work).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Log every call (the access-log filter).
        #[arg(long)]
        access_log: bool,
        /// Require a random token of every call, published with the
        /// registration (Dubbo's token="true").
        #[arg(long)]
        token: bool,
        /// ZooKeeper digest credentials, user:password.
        #[arg(long, requires = "zookeeper")]
        zookeeper_digest: Option<String>,
    },
    /// Call demo.Greeter through the registry and print who answered.
    Consumer {
        /// The registry server.
        #[arg(long, default_value = DEFAULT_REGISTRY)]
        registry: SocketAddr,
        /// Discover providers through this ZooKeeper ensemble instead.
        #[arg(long)]
        zookeeper: Option<String>,
        /// Calls to make (0: until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        calls: u64,
        /// Pause between calls.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
        /// Load balancer.
        #[arg(long, value_enum, default_value_t = Balancer::Random)]
        balancer: Balancer,
        /// Fault-tolerance mode.
        #[arg(long, value_enum, default_value_t = Mode::Failover)]
        cluster: Mode,
        /// Call timeout.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// ZooKeeper digest credentials, user:password.
        #[arg(long, requires = "zookeeper")]
        zookeeper_digest: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Balancer {
    Random,
    RoundRobin,
    LeastActive,
    ShortestResponse,
    ConsistentHash,
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Failover,
    Failfast,
    Failsafe,
    Forking,
    Broadcast,
}

fn greeter() -> ServiceKey {
    ServiceKey::new("demo.Greeter").version("1.0")
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Ctrl-C and SIGTERM set [`STOP`]; the roles poll it.
fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; `signal` is given a valid function pointer of
        // the required `extern "C" fn(c_int)` type.
        unsafe {
            libc::signal(sig, on_signal as *const () as libc::sighandler_t);
        }
    }
}

fn wait_for_signal() {
    while !STOP.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn connect_registry(
    embedded: SocketAddr,
    zookeeper: Option<&str>,
    digest: Option<&str>,
) -> Result<Arc<dyn Registry>, Box<dyn std::error::Error>> {
    Ok(match (zookeeper, digest) {
        (Some(servers), Some(digest)) => {
            let (user, password) = digest
                .split_once(':')
                .ok_or("--zookeeper-digest expects user:password")?;
            Arc::new(ZooKeeperRegistry::connect_with_digest(
                servers, user, password,
            )?)
        }
        (Some(servers), None) => Arc::new(ZooKeeperRegistry::connect(servers)?),
        (None, _) => Arc::new(EmbeddedRegistry::connect(embedded)?),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    catch_signals();
    match Args::parse().role {
        Role::Registry { listen } => {
            let server = RegistryServer::start(listen)?;
            println!("gyre-rpc registry listening on {}", server.local_addr());
            wait_for_signal();
            server.shutdown();
        }
        Role::Provider {
            port,
            registry,
            zookeeper,
            weight,
            delay_ms,
            access_log,
            token,
            zookeeper_digest,
        } => {
            let service = Service::builder(greeter())
                .dispatch(if delay_ms > 0 {
                    Dispatch::WorkerPool
                } else {
                    Dispatch::IoThread
                })
                .method("greet", move |name: String| {
                    if delay_ms > 0 {
                        std::thread::sleep(Duration::from_millis(delay_ms));
                    }
                    Ok::<_, ServiceError>(format!("hello, {name}, from port {port}"))
                })
                .build();
            let client =
                connect_registry(registry, zookeeper.as_deref(), zookeeper_digest.as_deref())?;
            let mut builder = Provider::builder()
                .listen(SocketAddr::from(([127, 0, 0, 1], port)))
                .service(service)
                .registry(client)
                .weight(weight);
            if access_log {
                builder = builder.filter(AccessLog);
            }
            if token {
                builder = builder.token(ProviderToken::Random);
            }
            let provider = builder.start()?;
            println!(
                "gyre-rpc provider of {} listening on {}, registered with {}",
                greeter(),
                provider.local_addr(),
                zookeeper
                    .as_deref()
                    .map_or(registry.to_string(), |z| format!("zookeeper {z}"))
            );
            wait_for_signal();
            println!("unregistering and stopping");
            provider.shutdown(Duration::from_secs(5));
        }
        Role::Consumer {
            registry,
            zookeeper,
            calls,
            interval_ms,
            balancer,
            cluster,
            timeout_ms,
            zookeeper_digest,
        } => {
            let mode = match cluster {
                Mode::Failover => ClusterMode::Failover { retries: 2 },
                Mode::Failfast => ClusterMode::Failfast,
                Mode::Failsafe => ClusterMode::Failsafe,
                Mode::Forking => ClusterMode::Forking { parallel: 2 },
                Mode::Broadcast => ClusterMode::Broadcast,
            };
            let builder = Cluster::builder(greeter())
                .mode(mode)
                .options(CallOptions::default().timeout(Duration::from_millis(timeout_ms)));
            let builder = match balancer {
                Balancer::Random => builder.balancer(WeightedRandom),
                Balancer::RoundRobin => builder.balancer(SmoothRoundRobin),
                Balancer::LeastActive => builder.balancer(LeastActive),
                Balancer::ShortestResponse => builder.balancer(ShortestResponse),
                Balancer::ConsistentHash => builder.balancer(ConsistentHash::default()),
            };
            let cluster = builder.build(Consumer::builder().build()?);
            let registry_client =
                connect_registry(registry, zookeeper.as_deref(), zookeeper_digest.as_deref())?;
            let _subscription = cluster.subscribe(&*registry_client)?;
            println!("gyre-rpc consumer of {}, registry {registry}", greeter());
            if let Err(e) = cluster.wait_for_providers(1, Duration::from_secs(5)) {
                println!("{e}; calling anyway");
            }
            let mut n = 0u64;
            while (calls == 0 || n < calls) && !STOP.load(Ordering::Relaxed) {
                n += 1;
                match cluster.call_optional::<_, String>("greet", &format!("call {n}")) {
                    Ok(Some(answer)) => println!("call {n}: {answer}"),
                    Ok(None) => println!("call {n}: no result (the failure was absorbed)"),
                    Err(e) => println!("call {n}: failed: {e}"),
                }
                std::thread::sleep(Duration::from_millis(interval_ms));
            }
        }
    }
    Ok(())
}
