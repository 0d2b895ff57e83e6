//! `LoggingHandler` and `LoggingOutbound` on a real loopback connection:
//! an echo's events, each with its bytes, come out through `tracing`.

mod common;

use common::{eventually, Captured, Echo};
use gyre_reactor::{LoggingHandler, LoggingOutbound, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn an_echos_events_are_logged_with_their_bytes() {
    let captured = Captured::default();
    let sink = captured.clone();
    // The loop's thread logs: the subscriber is global (this binary's only
    // test).
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .init();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", |_| {
            Pipeline::new()
                .duplex(LoggingHandler::new(), LoggingOutbound::new())
                .inbound(Echo)
        })
        .unwrap();
    let mut client = std::net::TcpStream::connect(server.local_addr()).unwrap();
    client.write_all(b"hi").unwrap();
    let mut got = [0; 2];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
    drop(client);
    let ended = eventually(Duration::from_secs(5), || {
        captured.text().contains("inactive")
    });
    let log = captured.text();
    assert!(ended, "{log}");
    let mut at = 0;
    // In order: the echo's way in, its way out, the end.
    for line in [
        "active",
        "read 2B 6869",
        "write 2B 6869",
        "flush",
        "inactive",
    ] {
        let found = log[at..]
            .find(line)
            .unwrap_or_else(|| panic!("{line}: {log}"));
        at += found + line.len();
    }
    assert!(log.contains("gyre_reactor::logging"), "{log}");
    assert!(log.contains("peer=Some(127.0.0.1:"), "{log}");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
}
