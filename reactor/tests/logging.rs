//! `LoggingHandler` and `LoggingOutbound` on a real loopback connection:
//! an echo's events, each with its bytes, come out through `tracing`.

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    InboundContext, InboundHandler, LoggingHandler, LoggingOutbound, Pipeline, ServerBootstrap,
};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Echo;

impl InboundHandler for Echo {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;
    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        ctx.write(msg.freeze());
    }
    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
    }
}

/// Where the log goes: a buffer the test reads.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

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
    let logged = || String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !logged().contains("inactive") {
        assert!(Instant::now() < deadline, "{}", logged());
        std::thread::sleep(Duration::from_millis(1));
    }
    let log = logged();
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
