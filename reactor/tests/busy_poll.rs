//! The busy-poll window: a loop that has had input within it polls without
//! sleeping, and goes back to sleep once it has been quiet for the window.
//!
//! Whether the loop polled or slept is read from the kernel's CPU accounting
//! of its thread: a loop that sleeps accrues no CPU time while its peer is
//! silent; one that polls accrues it all the while. (Counting the thread's
//! voluntary context switches does not tell: when the client and the loop
//! share a CPU, the loop is preempted by the client it woke and finds the
//! next message waiting, so it rarely blocks even without busy polling.)

mod common;

use common::{thread_dir, transport, Echo};
use gyre_reactor::{ChannelOptions, EventLoopGroup, Pipeline, Server, ServerBootstrap};
use gyre_testkit::cpu_ticks;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One loop named `name`, serving echo, with the given window.
fn echo_with(name: &str, window: Duration) -> Server {
    let group = EventLoopGroup::builder()
        .threads(1)
        .name(name)
        .transport(transport())
        .busy_poll(window)
        .build()
        .unwrap();
    ServerBootstrap::new()
        .group(group)
        .child_options(ChannelOptions::default())
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(Echo))
        .unwrap()
}

/// `n` sequential round trips of 64 bytes, each waited for.
fn round_trips(conn: &mut TcpStream, n: usize) {
    let mut buf = [0u8; 64];
    for i in 0..n {
        let msg = [i as u8; 64];
        conn.write_all(&msg).unwrap();
        conn.read_exact(&mut buf).unwrap();
        assert_eq!(buf, msg);
    }
}

/// CPU ticks (10 ms each at the usual 100 Hz) the loop of a group named
/// `name` with `window` uses during `silence` after `wait` past some input.
fn cpu_while_silent(name: &str, window: Duration, wait: Duration, silence: Duration) -> u64 {
    let server = echo_with(name, window);
    let mut conn = TcpStream::connect(server.local_addr()).unwrap();
    conn.set_nodelay(true).unwrap();
    round_trips(&mut conn, 20);
    let task = thread_dir(&format!("{name}-0"));
    std::thread::sleep(wait);
    let before = cpu_ticks(&task).unwrap();
    std::thread::sleep(silence);
    let spent = cpu_ticks(&task).unwrap() - before;
    // Input after the silence is still answered.
    round_trips(&mut conn, 20);
    drop(conn);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    spent
}

#[test]
fn within_the_window_the_loop_polls_instead_of_sleeping() {
    let ms = Duration::from_millis;
    let sleeping = cpu_while_silent("bp-off", Duration::ZERO, ms(0), ms(400));
    assert!(
        sleeping <= 3,
        "without busy poll a silent connection cost the loop {sleeping} ticks"
    );
    // Polling takes a whole core while it lasts: 40 ticks if it gets one,
    // and even on a loaded machine far more than the idle loop's none.
    let polling = cpu_while_silent("bp-on", Duration::from_secs(10), ms(0), ms(400));
    assert!(
        polling >= 8,
        "the busy-polling loop used only {polling} ticks in 400 ms"
    );
}

#[test]
fn a_quiet_loop_sleeps_again_after_the_window() {
    let ms = Duration::from_millis;
    let spent = cpu_while_silent("bp-quiet", ms(50), ms(300), ms(500));
    assert!(
        spent <= 3,
        "quiet for longer than its window, the loop still used {spent} ticks in 500 ms"
    );
}
