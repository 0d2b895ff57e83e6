//! 2000 connections opened and dropped in a loop leak no file descriptors
//! and no channels. Alone in its binary: it counts the process's descriptors.

mod common;

use common::{check_echo, echo_server, eventually, open_channels, open_fds, raise_fd_limit};
use gyre_reactor::ChannelOptions;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[test]
fn churn_of_2000_connections_leaks_no_descriptors() {
    raise_fd_limit();
    let (server, counters) = echo_server(2, ChannelOptions::default());
    // Warm up so lazily created descriptors (none expected) exist already.
    check_echo(server.local_addr());
    assert!(eventually(Duration::from_secs(5), || open_channels(
        &server
    ) == 0));
    let before = open_fds();
    for i in 0..2000 {
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        if i % 2 == 0 {
            s.write_all(b"x").unwrap();
        }
        drop(s);
    }
    assert!(eventually(Duration::from_secs(20), || counters
        .inactive
        .load(Ordering::SeqCst)
        == 2001));
    assert!(eventually(Duration::from_secs(5), || open_channels(
        &server
    ) == 0));
    let after = open_fds();
    assert_eq!(
        before, after,
        "descriptors leaked: {before} before, {after} after"
    );
    check_echo(server.local_addr());
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
