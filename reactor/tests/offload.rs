//! The offload stage over real sockets: many connections pipelining
//! through a worker pool (every answer checked, in arrival order or once
//! each in completion order), a business side slower than the network
//! (backpressure: the ring fills, the limit holds, memory stays bounded,
//! nothing is lost), replies to a channel that closed, and a graceful
//! shutdown that delivers answers still in the ring. Runs on the transport
//! `GYRE_TRANSPORT` names.

mod common;

use bytes::Bytes;
use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
use gyre_reactor::{ChannelOptions, Job, OffloadStage, Order, Pipeline, ServerBootstrap};
use gyre_ringbuffer::{Disruptor, Stage};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

type Line = Job<Bytes, Bytes>;

/// The answer to a request: the request with " ok" after it.
fn answer(request: &[u8]) -> Bytes {
    let mut a = request.to_vec();
    a.extend_from_slice(b" ok");
    Bytes::from(a)
}

/// Sends `count` requests on `conn` from one thread while reading the
/// answers on this one; returns them in the order they came.
fn pipeline(conn: TcpStream, id: usize, count: usize) -> Vec<String> {
    let mut writer = conn.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..count {
            batch.extend_from_slice(format!("c{id} r{i}\n").as_bytes());
            if batch.len() > 4096 || i + 1 == count {
                writer.write_all(&batch).unwrap();
                batch.clear();
            }
        }
    });
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(conn);
    let mut got = Vec::with_capacity(count);
    let mut line = String::new();
    while got.len() < count {
        line.clear();
        let n = reader.read_line(&mut line).expect("an answer within 30 s");
        assert!(n > 0, "connection {id} closed after {} answers", got.len());
        got.push(line.trim_end().to_owned());
    }
    sender.join().unwrap();
    got
}

/// A worker pool of `workers` threads answering each request, the odd
/// ones after a short spin so answers finish out of order.
fn worker_pool(
    capacity: usize,
    workers: usize,
) -> (gyre_ringbuffer::MultiProducer<Line>, Disruptor<Line>) {
    let mut graph = Disruptor::builder(capacity, Line::default)
        .multi_producer()
        .unwrap();
    graph.handle_events_with(Stage::worker_pool_with_factory(workers, |_| {
        |job: &Line, seq: i64| {
            if seq % 7 == 3 {
                let until = Instant::now() + Duration::from_micros(50);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            job.reply().send(answer(job.message())).unwrap();
        }
    }));
    graph.start().unwrap()
}

fn server(stage: OffloadStage<Bytes, Bytes>, opts: ChannelOptions) -> gyre_reactor::Server {
    ServerBootstrap::new()
        .group(common::group(2))
        .child_options(opts)
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .codec(LineDecoder::new(256), LineEncoder::new(LineEnding::Lf))
                .offload(stage.connection())
        })
        .unwrap()
}

fn run_clients(addr: std::net::SocketAddr, clients: usize, count: usize) -> Vec<Vec<String>> {
    let threads: Vec<_> = (0..clients)
        .map(|id| thread::spawn(move || pipeline(TcpStream::connect(addr).unwrap(), id, count)))
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn pipelined_requests_through_a_worker_pool_are_answered_in_arrival_order() {
    let (producer, disruptor) = worker_pool(256, 3);
    let stage = OffloadStage::new(producer).order(Order::Arrival);
    let stats = stage.stats();
    let server = server(stage, ChannelOptions::default());
    let (clients, count) = (16, 2_000);
    for (id, got) in run_clients(server.local_addr(), clients, count)
        .into_iter()
        .enumerate()
    {
        for (i, line) in got.iter().enumerate() {
            assert_eq!(
                line,
                &format!("c{id} r{i} ok"),
                "connection {id}, answer {i}"
            );
        }
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    let report = disruptor.shutdown();
    assert_eq!(report.processed, (clients * count) as u64);
    assert_eq!(stats.dropped_replies(), 0);
}

#[test]
fn completion_order_answers_every_request_exactly_once() {
    let (producer, disruptor) = worker_pool(256, 3);
    let server = server(OffloadStage::new(producer), ChannelOptions::default());
    let (clients, count) = (8, 2_000);
    for (id, got) in run_clients(server.local_addr(), clients, count)
        .into_iter()
        .enumerate()
    {
        let expected: HashSet<String> = (0..count).map(|i| format!("c{id} r{i} ok")).collect();
        let seen: HashSet<String> = got.iter().cloned().collect();
        assert_eq!(seen.len(), count, "connection {id} got a duplicate answer");
        assert_eq!(seen, expected, "connection {id}");
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert_eq!(disruptor.shutdown().processed, (clients * count) as u64);
}

#[test]
fn a_business_side_slower_than_the_network_is_met_with_backpressure() {
    // A small ring and one slow business thread: the ring fills, every
    // connection reaches its limit, and what each holds stays within one
    // socket read.
    let mut graph = Disruptor::builder(16, Line::default)
        .multi_producer()
        .unwrap();
    graph.handle_events_with(Stage::new(|job: &Line, _: i64, _: bool| {
        thread::sleep(Duration::from_micros(20));
        job.reply().send(answer(job.message())).unwrap();
    }));
    let (producer, disruptor) = graph.start().unwrap();
    let limit = 8;
    let stage = OffloadStage::new(producer)
        .order(Order::Arrival)
        .max_in_flight(limit);
    let stats = stage.stats();
    let read_buffer = 1024;
    let server = server(
        stage,
        ChannelOptions::default().read_buffer_size(read_buffer),
    );
    let (clients, count) = (4, 3_000);
    for (id, got) in run_clients(server.local_addr(), clients, count)
        .into_iter()
        .enumerate()
    {
        for (i, line) in got.iter().enumerate() {
            assert_eq!(
                line,
                &format!("c{id} r{i} ok"),
                "connection {id}, answer {i}"
            );
        }
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert_eq!(disruptor.shutdown().processed, (clients * count) as u64);
    assert!(
        stats.ring_full() > 0,
        "the ring never filled: the test did not test"
    );
    assert_eq!(
        stats.peak_in_flight(),
        limit as u64,
        "the limit was passed or never reached"
    );
    // The shortest request is "c0 r0" and its newline: 6 bytes.
    let one_read = (read_buffer / 6 + 1) as u64;
    assert!(
        stats.peak_held() <= one_read,
        "a connection held {} requests, more than one read's {one_read}",
        stats.peak_held()
    );
}

#[test]
fn answers_to_a_closed_channel_are_dropped_and_counted() {
    let (seen_tx, seen_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Arc::new(std::sync::Mutex::new(go_rx));
    let closed_seen = Arc::new(AtomicUsize::new(0));
    let closed = closed_seen.clone();
    let mut graph = Disruptor::builder(64, Line::default)
        .multi_producer()
        .unwrap();
    graph.handle_events_with(Stage::new(move |job: &Line, _: i64, _: bool| {
        seen_tx.send(()).unwrap();
        go_rx.lock().unwrap().recv().unwrap();
        // The channel closes on its loop after the peer's EOF; wait for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while job.reply().is_open() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        if !job.reply().is_open() {
            closed.fetch_add(1, Ordering::Relaxed);
        }
        let err = job.reply().send(answer(job.message())).unwrap_err();
        assert!(
            matches!(err, gyre_reactor::ReplyError::Closed { .. }),
            "{err}"
        );
        assert!(err.into_answer().is_some(), "the answer is given back");
    }));
    let (producer, disruptor) = graph.start().unwrap();
    let stage = OffloadStage::new(producer);
    let stats = stage.stats();
    let server = server(stage, ChannelOptions::default());
    let mut conn = TcpStream::connect(server.local_addr()).unwrap();
    conn.write_all(b"one\ntwo\nthree\n").unwrap();
    seen_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    drop(conn);
    for _ in 0..3 {
        go_tx.send(()).unwrap();
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert_eq!(disruptor.shutdown().processed, 3);
    assert_eq!(
        closed_seen.load(Ordering::Relaxed),
        3,
        "the handler saw the channel gone"
    );
    assert_eq!(stats.dropped_replies(), 3);
}

#[test]
fn graceful_shutdown_delivers_answers_still_in_the_ring() {
    let mut graph = Disruptor::builder(64, Line::default)
        .multi_producer()
        .unwrap();
    graph.handle_events_with(Stage::new(|job: &Line, _: i64, _: bool| {
        thread::sleep(Duration::from_millis(20));
        job.reply().send(answer(job.message())).unwrap();
    }));
    let (producer, disruptor) = graph.start().unwrap();
    let server = Arc::new(server(
        OffloadStage::new(producer),
        ChannelOptions::default(),
    ));
    let conn = TcpStream::connect(server.local_addr()).unwrap();
    (&conn).write_all(b"a\nb\nc\nd\ne\n").unwrap();
    // Let the requests reach the ring, then shut down while they are with
    // the business handler (about 100 ms of work).
    thread::sleep(Duration::from_millis(30));
    let stopping = server.clone();
    let stop = thread::spawn(move || {
        stopping.shutdown_gracefully(Duration::from_millis(300), Duration::from_secs(5));
    });
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answers = Vec::new();
    for line in BufReader::new(conn).lines() {
        answers.push(line.expect("answers, then EOF"));
    }
    stop.join().unwrap();
    assert_eq!(answers, ["a ok", "b ok", "c ok", "d ok", "e ok"]);
    assert_eq!(disruptor.shutdown().processed, 5);
}

#[test]
fn a_full_ring_can_answer_at_once_instead_of_holding() {
    // One business thread stuck until released, a ring of four: requests
    // past what the ring holds are answered "busy" in their place, in
    // arrival order, and the rest are answered once released.
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Mutex::new(go_rx);
    let mut graph = Disruptor::builder(4, Line::default)
        .multi_producer()
        .unwrap();
    graph.handle_events_with(Stage::new(move |job: &Line, seq: i64, _: bool| {
        if seq == 0 {
            go_rx.lock().unwrap().recv().unwrap();
        }
        job.reply().send(answer(job.message())).unwrap();
    }));
    let (producer, disruptor) = graph.start().unwrap();
    let stage = OffloadStage::new(producer)
        .order(Order::Arrival)
        .reject_when_full(|request: Bytes| {
            let mut busy = request.to_vec();
            busy.extend_from_slice(b" busy");
            Some(Bytes::from(busy))
        });
    let stats = stage.stats();
    let server = server(stage, ChannelOptions::default());
    let conn = TcpStream::connect(server.local_addr()).unwrap();
    let requests: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
    (&conn)
        .write_all((requests.join("\n") + "\n").as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while stats.ring_full() == 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    go_tx.send(()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut lines = BufReader::new(conn).lines();
    let got: Vec<String> = (0..12).map(|_| lines.next().unwrap().unwrap()).collect();
    // The ring holds four: r0..r3 are answered, r4.. are refused.
    for (i, line) in got.iter().enumerate() {
        let expected = if i < 4 {
            format!("r{i} ok")
        } else {
            format!("r{i} busy")
        };
        assert_eq!(line, &expected);
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    assert_eq!(disruptor.shutdown().processed, 4);
}
