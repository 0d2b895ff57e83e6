//! `ListenOptions::defer_accept` over real loopback sockets, on the
//! transport the suite runs on: a client that connects and says nothing
//! is not handed to the server (no accept, no channel) until its first
//! bytes come; then it is served at once.

mod common;

use common::{Counters, Echo, Probe};
use gyre_reactor::{ListenOptions, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_silent_client_is_not_accepted_until_it_speaks() {
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .listen_options(ListenOptions::default().defer_accept(Duration::from_secs(10)))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(Probe::<bytes::BytesMut, bytes::Bytes>::new(c.clone()))
                .inbound(Echo)
        })
        .unwrap();
    // connect() returns once the kernel has answered the handshake.
    let mut silent = TcpStream::connect(server.local_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        counters.active.load(Ordering::SeqCst),
        0,
        "a client that said nothing was accepted"
    );
    silent.write_all(b"hi").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = [0u8; 2];
    silent.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
    assert_eq!(counters.active.load(Ordering::SeqCst), 1);
}
