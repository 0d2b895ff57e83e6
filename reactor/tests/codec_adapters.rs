//! The gathered length prefixer: each message leaves as its header plus
//! the untouched body, and a peer decodes them back.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_codec::LengthFieldPrepender;
use gyre_reactor::{InboundContext, InboundHandler, Pipeline, PrependerHandler, ServerBootstrap};
use std::io::{Read, Write};
use std::time::Duration;

/// Answers any read with three framed messages.
struct Three;

impl InboundHandler for Three {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
        for body in ["a", "bc", "def"] {
            ctx.write(Bytes::from_static(body.as_bytes()));
        }
        ctx.flush();
    }
}

#[test]
fn prepender_frames_each_message() {
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", |_| {
            Pipeline::new()
                .outbound(PrependerHandler::new(LengthFieldPrepender::new(2).unwrap()))
                .inbound(Three)
        })
        .unwrap();
    let mut c = std::net::TcpStream::connect(server.local_addr()).unwrap();
    c.write_all(b"go").unwrap();
    let mut got = [0u8; 12];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"\0\x01a\0\x02bc\0\x03def");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
