//! Closing 2000 connections from the server side while each has a read in
//! flight (on io_uring: a queued receive that must be cancelled, and its
//! buffer kept until the cancellation completes) leaks no descriptors.
//! Alone in its binary because it counts the process's descriptors. Runs on
//! the transport `GYRE_TRANSPORT` names, like every suite.

mod common;

use common::{eventually, open_channels, open_fds, raise_fd_limit};
use gyre_reactor::{Pipeline, ServerBootstrap};
use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn server_closing_2000_reading_connections_leaks_nothing() {
    raise_fd_limit();
    let before = open_fds();
    let server = ServerBootstrap::new()
        .group(common::group(2))
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
        .unwrap();
    let mut clients: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    assert!(
        eventually(Duration::from_secs(10), || open_channels(&server) == 2000),
        "only {} channels opened",
        open_channels(&server)
    );
    // Every channel is now waiting for input; close them all from our side.
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("connection {i} was not closed by the server: {other:?}"),
        }
    }
    drop(clients);
    drop(server);
    assert!(
        eventually(Duration::from_secs(5), || open_fds() <= before),
        "descriptors leaked: {} before, {} after",
        before,
        open_fds()
    );
}
