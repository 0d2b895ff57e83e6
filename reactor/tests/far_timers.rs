//! A loop whose channels hold timers far off (idle handlers' 60 s
//! heartbeats) sleeps until one is due: it does not wake on every lap of
//! its timer wheel for each of them. One test in this file, so the loop it
//! watches is the only thread of its name.

use gyre_reactor::{EventLoopGroup, IdleStateHandler, Pipeline, ServerBootstrap};
use std::net::TcpStream;
use std::time::Duration;

/// How many times the thread named `name` went to sleep and woke, so far.
fn wake_ups(name: &str) -> u64 {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim().starts_with(name) {
            let status = std::fs::read_to_string(task.join("status")).unwrap();
            let switches = status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .unwrap();
            found.push(switches.trim().parse::<u64>().unwrap());
        }
    }
    assert_eq!(found.len(), 1, "one thread named {name}");
    found[0]
}

#[test]
fn idle_channels_with_far_timers_leave_their_loop_asleep() {
    const CHANNELS: usize = 100;
    let group = EventLoopGroup::builder()
        .threads(1)
        .name("far-timers")
        .build()
        .unwrap();
    let server = ServerBootstrap::new()
        .group(group)
        .bind("127.0.0.1:0", |_| {
            Pipeline::new().inbound(IdleStateHandler::new(
                Duration::from_secs(180),
                Duration::from_secs(60),
                Duration::ZERO,
            ))
        })
        .unwrap();
    // One every 11 ms: their timers spread over the wheel's 1,024 slots
    // as a server's connections' do, rather than crowding a few.
    let clients: Vec<_> = (0..CHANNELS)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(11));
            TcpStream::connect(server.local_addr()).unwrap()
        })
        .collect();
    // Every channel accepted and its timers set.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.metrics().unwrap().connections_open < CHANNELS as u64 {
        assert!(std::time::Instant::now() < deadline, "not all accepted");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    let before = wake_ups("far-timers");
    std::thread::sleep(Duration::from_millis(500));
    let woke = wake_ups("far-timers") - before;
    // Their 200 timers, in 100 slots of a 1,024-slot wheel, woke a
    // lapping loop about 80 times in 500 ms.
    assert!(woke < 10, "an idle loop woke {woke} times in 500 ms");
    drop(clients);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
}
