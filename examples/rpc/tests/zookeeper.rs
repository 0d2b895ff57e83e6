//! The ZooKeeper registry against a real ZooKeeper server (Debian's
//! `zookeeper` package, which `scripts/test` installs), started here on a
//! free port with its own data folder: providers appear, leave cleanly,
//! and die (a SIGKILLed demo provider whose session then expires), and a
//! subscribed cluster follows.
//!
//! Without ZooKeeper installed the tests fail and say so; set
//! `GYRE_SKIP_ZOOKEEPER=1` to skip them on a machine that cannot have it.

mod common;

use common::{answering, wait_for};
use gyre_rpc::cluster::{Cluster, SmoothRoundRobin};
use gyre_rpc::consumer::Consumer;
use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
use gyre_rpc::registry::{Registry, ZooKeeperRegistry};
use gyre_rpc::ServiceKey;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const JAR: &str = "/usr/share/java/zookeeper.jar";
const SESSION: Duration = Duration::from_secs(2);

struct ZooKeeper {
    child: Child,
    dir: PathBuf,
    servers: String,
}

impl ZooKeeper {
    /// A standalone server; `None` when skipping is asked for.
    fn start(tag: &str) -> Option<ZooKeeper> {
        if std::env::var_os("GYRE_SKIP_ZOOKEEPER").is_some() {
            eprintln!("GYRE_SKIP_ZOOKEEPER set: skipping");
            return None;
        }
        assert!(
            std::path::Path::new(JAR).exists(),
            "ZooKeeper is not installed ({JAR} missing): `apt-get install zookeeper`, \
             or set GYRE_SKIP_ZOOKEEPER=1 to skip"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-zk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // tickTime 500 ms: sessions may be as short as 1 s.
        let child = Command::new("java")
            .args([
                "-cp",
                JAR,
                "-Dzookeeper.admin.enableServer=false",
                "org.apache.zookeeper.server.ZooKeeperServerMain",
                &port.to_string(),
                dir.to_str().unwrap(),
                "500",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("java starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "ZooKeeper did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(ZooKeeper {
            child,
            dir,
            servers: format!("127.0.0.1:{port}"),
        })
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn key() -> ServiceKey {
    ServiceKey::new("demo.Greeter").version("1.0")
}

fn provider(servers: &str, id: u32) -> Provider {
    let registry = ZooKeeperRegistry::connect_with(servers, SESSION).unwrap();
    Provider::builder()
        .listen("127.0.0.1:0".parse().unwrap())
        .io_threads(1)
        .registry(Arc::new(registry))
        .service(
            Service::builder(key())
                .dispatch(Dispatch::IoThread)
                .method("greet", move |_: String| {
                    Ok::<_, ServiceError>(format!("from {id}"))
                })
                .build(),
        )
        .start()
        .unwrap()
}

#[test]
fn a_cluster_follows_zookeeper_as_providers_come_leave_and_die() {
    let Some(zk) = ZooKeeper::start("cluster") else {
        return;
    };
    let registry = ZooKeeperRegistry::connect_with(&zk.servers, SESSION).unwrap();
    let cluster = Cluster::builder(key())
        .balancer(SmoothRoundRobin)
        .build(Consumer::builder().build().unwrap());
    let _sub = cluster.subscribe(&registry).unwrap();

    let p1 = provider(&zk.servers, 1);
    let p2 = provider(&zk.servers, 2);
    wait_for("two providers", Duration::from_secs(10), || {
        cluster.providers().len() == 2
    });
    assert_eq!(
        answering::<_, String>(&cluster, "greet", &"x", 4),
        BTreeSet::from(["from 1".into(), "from 2".into()])
    );

    // A clean stop deletes its node at once.
    p1.shutdown(Duration::from_secs(1));
    let t = wait_for("p1 gone", Duration::from_secs(5), || {
        cluster.providers().len() == 1
    });
    assert!(
        t < SESSION,
        "removed by unregistering, not by session expiry: {t:?}"
    );

    // A provider process killed outright: its session expires.
    let mut demo = Command::new(env!("CARGO_BIN_EXE_gyre-rpc-demo"))
        .args(["provider", "--port", "0", "--zookeeper", &zk.servers])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(demo.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("registered with zookeeper"), "{line}");
    wait_for("the demo provider listed", Duration::from_secs(10), || {
        cluster.providers().len() == 2
    });
    demo.kill().unwrap();
    demo.wait().unwrap();
    // ZooKeeper notices within the demo's 4 s session, plus a tick.
    let t = wait_for(
        "the killed provider expired",
        Duration::from_secs(15),
        || cluster.providers().len() == 1,
    );
    eprintln!("killed provider removed after {t:?}");
    assert_eq!(
        answering::<_, String>(&cluster, "greet", &"x", 3),
        BTreeSet::from(["from 2".into()])
    );
    p2.shutdown(Duration::from_secs(1));
}

#[test]
fn registrations_are_ephemeral_and_listed_by_address() {
    let Some(zk) = ZooKeeper::start("nodes") else {
        return;
    };
    let a = ZooKeeperRegistry::connect_with(&zk.servers, SESSION).unwrap();
    let b = ZooKeeperRegistry::connect_with(&zk.servers, SESSION).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let _sub = b
        .subscribe(&key(), Box::new(move |list| drop(tx.send(list))))
        .unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), vec![]);
    // A provider with a token: ZooKeeper's node carries it to the other
    // side, as Dubbo's provider URL does.
    let entry = gyre_rpc::registry::ProviderEntry {
        addr: "127.0.0.1:20881".parse().unwrap(),
        weight: 7,
        token: Some("zk-token".into()),
    };
    a.register(&key(), &entry).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        vec![entry]
    );
    // Closing the session (the registry dropped) removes the node.
    drop(a);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), vec![]);
}

#[test]
fn digest_authentication_hides_providers_from_sessions_without_it() {
    let Some(zk) = ZooKeeper::start("digest") else {
        return;
    };
    let provider_side =
        ZooKeeperRegistry::connect_with_digest(&zk.servers, "rpc", "s3cret").unwrap();
    let entry = gyre_rpc::registry::ProviderEntry::new("127.0.0.1:20882".parse().unwrap(), 5);
    provider_side.register(&key(), &entry).unwrap();
    // The same credentials see it.
    let friend = ZooKeeperRegistry::connect_with_digest(&zk.servers, "rpc", "s3cret").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let _sub = friend
        .subscribe(&key(), Box::new(move |list| drop(tx.send(list))))
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        vec![entry.clone()]
    );
    // Neither a session without credentials nor one with others can read
    // the list (ZooKeeper refuses: NoAuth), or register beside it.
    for stranger in [
        ZooKeeperRegistry::connect(&zk.servers).unwrap(),
        ZooKeeperRegistry::connect_with_digest(&zk.servers, "rpc", "wrong").unwrap(),
    ] {
        let (tx, rx) = std::sync::mpsc::channel();
        let _sub = stranger
            .subscribe(&key(), Box::new(move |list| drop(tx.send(list))))
            .unwrap();
        assert!(
            rx.recv_timeout(Duration::from_secs(2)).is_err(),
            "a session without the credentials saw the providers"
        );
        let other = gyre_rpc::registry::ProviderEntry::new("127.0.0.1:20883".parse().unwrap(), 5);
        assert!(stranger.register(&key(), &other).is_err());
    }
}
