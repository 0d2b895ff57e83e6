//! The ring buffer behind the sockets: a tiny key-value server whose
//! requests leave the event loop through the offload stage and go through
//! a Disruptor graph, journal ∥ replicate, then apply (the LMAX
//! architecture), and are answered from the business thread.
//!
//! The journal and the replicator read every request in parallel (they
//! share the event); the business-logic stage runs after both of them and
//! owns the event, so it moves the request out of its slot and keeps the
//! map without a lock. Answers come back in arrival order.
//!
//! ```text
//! cargo run -p gyre-reactor --example offload            # a client runs a few commands, then it exits
//! cargo run -p gyre-reactor --example offload -- serve   # keeps serving: try `nc 127.0.0.1 <port>`
//! ```
//!
//! Commands, one per line: `SET key value`, `GET key`, `DEL key`.

use bytes::Bytes;
use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
use gyre_reactor::{Job, OffloadStage, Order, Pipeline, ServerBootstrap};
use gyre_ringbuffer::{Disruptor, Stage};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Request = Job<Bytes, Bytes>;

/// The business logic: one map, touched by one thread only.
fn apply(store: &mut HashMap<Bytes, Bytes>, line: &Bytes) -> Bytes {
    let mut words = line.splitn(3, |&b| b == b' ');
    match (words.next(), words.next(), words.next()) {
        (Some(b"SET"), Some(k), Some(v)) => {
            // Copied: a slice of the request would keep the whole socket
            // read it came in alive for as long as the entry lives.
            store.insert(Bytes::copy_from_slice(k), Bytes::copy_from_slice(v));
            Bytes::from_static(b"OK")
        }
        (Some(b"GET"), Some(k), None) => store
            .get(k)
            .cloned()
            .unwrap_or_else(|| Bytes::from_static(b"(nil)")),
        (Some(b"DEL"), Some(k), None) => match store.remove(k) {
            Some(_) => Bytes::from_static(b"1"),
            None => Bytes::from_static(b"0"),
        },
        _ => Bytes::from_static(b"ERR expected SET key value, GET key or DEL key"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let journaled = Arc::new(AtomicU64::new(0));
    let replicated = Arc::new(AtomicU64::new(0));
    let (j, r) = (journaled.clone(), replicated.clone());

    let mut graph = Disruptor::builder(1024, Request::default).multi_producer()?;
    graph
        // A real journal appends to a file and a real replicator sends to
        // a standby; these count bytes, to show both see every request.
        .handle_events_with(
            Stage::new(move |job: &Request, _seq: i64, _end: bool| {
                j.fetch_add(job.message().len() as u64, Ordering::Relaxed);
            })
            .name("journal"),
        )
        .and(
            Stage::new(move |job: &Request, _seq: i64, _end: bool| {
                r.fetch_add(job.message().len() as u64, Ordering::Relaxed);
            })
            .name("replicate"),
        );
    let mut store = HashMap::new();
    let graph = graph.then_owner(
        Stage::owner(move |job: &mut Request, _seq: i64, _end: bool| {
            let (Some(line), Some(reply)) = (job.take_message(), job.take_reply()) else {
                return;
            };
            // A channel that closed meanwhile drops the answer (counted).
            let _ = reply.send(apply(&mut store, &line));
        })
        .name("apply"),
    );
    let (producer, disruptor) = graph.start()?;
    let stage = OffloadStage::new(producer).order(Order::Arrival);

    let server = ServerBootstrap::new().bind("127.0.0.1:0", move |_peer| {
        Pipeline::new()
            .codec(LineDecoder::new(4096), LineEncoder::new(LineEnding::Lf))
            .offload(stage.connection())
    })?;
    println!("offload example listening on {}", server.local_addr());

    if std::env::args().nth(1).as_deref() == Some("serve") {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }

    let mut conn = TcpStream::connect(server.local_addr())?;
    let commands = [
        "SET greeting hello",
        "GET greeting",
        "DEL greeting",
        "GET greeting",
        "PING",
    ];
    // Pipelined: all at once; the answers come back in this order.
    conn.write_all((commands.join("\n") + "\n").as_bytes())?;
    let mut lines = BufReader::new(conn).lines();
    for command in commands {
        println!(
            "> {command}\n< {}",
            lines.next().ok_or("connection closed")??
        );
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    let report = disruptor.shutdown();
    println!(
        "{} requests; journal saw {} bytes, replicate {} bytes",
        report.processed,
        journaled.load(Ordering::Relaxed),
        replicated.load(Ordering::Relaxed)
    );
    Ok(())
}
