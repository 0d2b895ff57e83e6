//! What idle connections cost: `n` connections opened to a server in the
//! same process, one call made on each (so each has set up all a working
//! connection has), then nothing; the process's CPU time over the quiet
//! span that follows, in cores. gyre-rpc's consumer and provider, then
//! tarpc's client and server, each with its own server. Uses the RPC
//! bench's cases (`rpc`) and `libc`'s `getrusage`.
//!
//! A consumer checks its calls' deadlines on a tick (5 ms); until the
//! twenty-second session the tick ran on every connection whether or not
//! anything was in flight, and 1,000 idle connections took 17% of a core
//! on the Zen 4 VM. The check now pauses on an idle connection.

use crate::rpc::{gyre_server, order, runtime, tarpc_client, Receipt, TarpcServer, KEY};
use gyre_rpc::consumer::Consumer;
use std::time::Duration;

/// How long connections sit before the quiet span is measured: past the
/// consumer's 100 ms (20 ticks) before its check pauses.
const SETTLE: Duration = Duration::from_millis(500);

/// The process's user and system CPU time so far.
fn cpu_time() -> Duration {
    // SAFETY: `getrusage` writes the struct we hand it and nothing else;
    // a zeroed `rusage` is a valid value of that plain C struct.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// The cores the process used over `quiet`, once everything has settled.
fn cores_while(quiet: Duration) -> f64 {
    std::thread::sleep(SETTLE);
    let before = cpu_time();
    std::thread::sleep(quiet);
    (cpu_time() - before).as_secs_f64() / quiet.as_secs_f64()
}

/// gyre-rpc: `n` connections from one consumer (one loop) to one provider
/// (one loop), one call on each; the cores used over `quiet`.
pub fn gyre_idle(n: usize, quiet: Duration) -> f64 {
    let provider = gyre_server();
    let consumer = Consumer::builder().io_threads(1).build().expect("consumer");
    let connections: Vec<_> = (0..n)
        .map(|i| {
            let conn = consumer.connect(provider.local_addr()).expect("connect");
            let r: Receipt = conn.call(&KEY, "place", &order(i as u64)).expect("call");
            assert_eq!(r.id, i as u64);
            conn
        })
        .collect();
    let cores = cores_while(quiet);
    drop(connections);
    consumer.shutdown();
    provider.shutdown(Duration::from_secs(1));
    cores
}

/// tarpc: `n` clients on one runtime thread to one server (one runtime
/// thread), one call on each; the cores used over `quiet`.
pub fn tarpc_idle(n: usize, quiet: Duration) -> f64 {
    let server = TarpcServer::start();
    let addr = server.addr;
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let clients = std::thread::spawn(move || {
        runtime().block_on(async move {
            let mut clients = Vec::with_capacity(n);
            for i in 0..n {
                let client = tarpc_client(addr).await;
                let r = client
                    .place(tarpc::context::current(), order(i as u64))
                    .await
                    .expect("tarpc call");
                assert_eq!(r.id, i as u64);
                clients.push(client);
            }
            ready_tx.send(()).expect("ready");
            let _ = stopped.await;
            drop(clients);
        })
    });
    ready.recv().expect("clients ready");
    let cores = cores_while(quiet);
    let _ = stop.send(());
    clients.join().expect("clients");
    drop(server);
    cores
}
