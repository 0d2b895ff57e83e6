//! The demo as a user runs it, in separate processes: a registry, two
//! providers and a consumer; one provider is killed with SIGKILL (no
//! unregistering) and the consumer carries on, answered by the survivor,
//! with no failed call; another shuts down on SIGTERM and unregisters.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEMO: &str = env!("CARGO_BIN_EXE_gyre-rpc-demo");

struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let mut child = Command::new(DEMO)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("demo starts");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Proc { child, lines }
    }

    /// The next line containing `needle`, within `within`.
    fn expect(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("no line with {needle:?} within {within:?}"),
            }
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn failover_survives_a_killed_provider_and_a_clean_stop_unregisters() {
    let registry_addr = format!("127.0.0.1:{}", free_port());
    let registry = Proc::start(&["registry", "--listen", &registry_addr]);
    registry.expect("listening on", Duration::from_secs(10));
    let (p1, p2) = (free_port(), free_port());
    let a = Proc::start(&[
        "provider",
        "--port",
        &p1.to_string(),
        "--registry",
        &registry_addr,
    ]);
    let b = Proc::start(&[
        "provider",
        "--port",
        &p2.to_string(),
        "--registry",
        &registry_addr,
    ]);
    a.expect("registered", Duration::from_secs(10));
    b.expect("registered", Duration::from_secs(10));
    let consumer = Proc::start(&[
        "consumer",
        "--registry",
        &registry_addr,
        "--balancer",
        "round-robin",
        "--calls",
        "0",
        "--interval-ms",
        "20",
    ]);
    // Both answer, in turn.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let line = consumer.expect("call ", Duration::from_secs(10));
        assert!(!line.contains("failed"), "{line}");
        seen.insert(if line.contains(&format!("port {p1}")) {
            p1
        } else {
            p2
        });
    }
    assert_eq!(seen.len(), 2, "both providers answered");

    // SIGKILL: no unregistering, no goodbye. Every call still succeeds
    // (failover), and after the lease (3 s) only the survivor is chosen.
    a.signal(libc::SIGKILL);
    let t = Instant::now();
    let mut last_from_dead = t;
    while t.elapsed() < Duration::from_secs(6) {
        let line = consumer.expect("call ", Duration::from_secs(10));
        assert!(
            !line.contains("failed"),
            "a call failed after the kill: {line}"
        );
        if line.contains(&format!("port {p1}")) {
            last_from_dead = Instant::now();
        }
    }
    assert!(last_from_dead == t, "the killed provider answered nothing");
    for _ in 0..10 {
        let line = consumer.expect("call ", Duration::from_secs(10));
        assert!(line.contains(&format!("port {p2}")), "{line}");
    }

    // SIGTERM: the provider unregisters before it stops.
    let c = Proc::start(&[
        "provider",
        "--port",
        &free_port().to_string(),
        "--registry",
        &registry_addr,
    ]);
    c.expect("registered", Duration::from_secs(10));
    c.signal(libc::SIGTERM);
    c.expect("unregistering", Duration::from_secs(5));
    drop(b);
    drop(consumer);
    drop(registry);
}
