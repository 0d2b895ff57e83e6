//! A lingering close: a server that answers and closes while its peer is
//! still sending delivers the whole answer and an EOF (not a reset), reads
//! and drops the rest until the peer's EOF, and gives up at its deadline
//! on a peer that never sends one. Runs on the transport `GYRE_TRANSPORT`
//! names.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{ChannelOptions, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Answers the first input with a refusal and closes.
struct Refuse;

impl InboundHandler for Refuse {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        if ctx.channel().is_open() {
            ctx.write_and_flush(Bytes::from_static(b"refused\n"));
            ctx.close();
        }
    }
}

fn server(linger: Duration) -> gyre_reactor::Server {
    ServerBootstrap::new()
        .group(common::group(1))
        .child_options(ChannelOptions::default().lingering_close(linger))
        .bind("127.0.0.1:0", |_| Pipeline::new().inbound(Refuse))
        .unwrap()
}

#[test]
fn the_answer_arrives_whole_while_the_peer_is_still_sending() {
    let server = server(Duration::from_secs(2));
    for round in 0..5 {
        let client = TcpStream::connect(server.local_addr()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut writer = client.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let chunk = vec![b'x'; 16 * 1024];
            for _ in 0..16 {
                if writer.write_all(&chunk).is_err() {
                    return;
                }
            }
            // Done sending: the server sees our EOF and closes at once.
            let _ = writer.shutdown(std::net::Shutdown::Write);
        });
        let mut answer = Vec::new();
        let read = (&client).read_to_end(&mut answer);
        assert!(read.is_ok(), "round {round}: {read:?} after {answer:?}");
        assert_eq!(answer, b"refused\n");
        sender.join().unwrap();
    }
    assert!(common::eventually(Duration::from_secs(2), || {
        common::open_channels(&server) == 0
    }));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn a_peer_that_never_sends_eof_is_closed_at_the_deadline() {
    let server = server(Duration::from_millis(300));
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    client.write_all(b"hello").unwrap();
    let mut answer = [0u8; 8];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"refused\n");
    // We neither close nor send: the server lingers, then lets go.
    assert_eq!(common::open_channels(&server), 1, "lingering, not closed");
    assert!(common::eventually(Duration::from_secs(3), || {
        common::open_channels(&server) == 0
    }));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
