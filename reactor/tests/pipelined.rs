//! Pipelined requests behind a paused read: a handler that answers each
//! buffered request while `is_writable()` holds and stops when it does not
//! must be told to go on once the queue drains, even when the socket took
//! the whole answer within the same call (the queue crossed both watermarks
//! before the handler's call returned), without any new input arriving.
//! Runs on the transport `GYRE_TRANSPORT` names.

mod common;

use bytes::{Buf, Bytes, BytesMut};
use gyre_reactor::{ChannelOptions, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const ANSWER: usize = 200 * 1024;

/// Answers every `\n`-terminated request with [`ANSWER`] bytes, in order,
/// stopping while the channel is not writable (as an HTTP/1.1 server that
/// must not read ahead of what it can send).
struct Pipelined {
    input: BytesMut,
    answer: Bytes,
}

impl Pipelined {
    fn serve(&mut self, ctx: &mut impl InboundContext<Self>) {
        let mut wrote = false;
        while ctx.channel().is_writable() {
            let Some(end) = self.input.iter().position(|&b| b == b'\n') else {
                break;
            };
            self.input.advance(end + 1);
            ctx.write(self.answer.clone());
            wrote = true;
        }
        if wrote {
            ctx.flush();
        }
    }
}

impl InboundHandler for Pipelined {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, chunk: BytesMut) {
        self.input.extend_from_slice(&chunk);
        self.serve(ctx);
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        ctx.set_auto_read(writable);
        if writable {
            self.serve(ctx);
        }
    }
}

fn answers_every_pipelined_request(requests: usize) {
    let answer = Bytes::from(vec![b'a'; ANSWER]);
    let server = ServerBootstrap::new()
        .group(common::group(1))
        // Kernel buffers big enough to take a whole answer in one write, so
        // the queue goes over the high watermark and back under the low one
        // inside the handler's own flush.
        .child_options(
            ChannelOptions::default()
                .send_buffer_size(4 << 20)
                .write_buffer_watermarks(64 * 1024, 32 * 1024),
        )
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().inbound(Pipelined {
                input: BytesMut::new(),
                answer: answer.clone(),
            })
        })
        .unwrap();
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    socket2::SockRef::from(&client)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // Every request in one write: all of them are read before the first
    // answer is out.
    client.write_all(&b"GET\n".repeat(requests)).unwrap();
    let want = requests * ANSWER;
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 20];
    let started = Instant::now();
    while got < want {
        match client.read(&mut buf) {
            Ok(0) => panic!("closed after {got} of {want} bytes"),
            Ok(n) => got += n,
            Err(e) => panic!(
                "{e} after {got} of {want} bytes ({} of {requests} answers) in {:?}",
                got / ANSWER,
                started.elapsed()
            ),
        }
    }
    assert_eq!(got, want);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn two_pipelined_requests_behind_a_large_answer_are_both_answered() {
    answers_every_pipelined_request(2);
}

#[test]
fn two_hundred_pipelined_requests_are_all_answered() {
    answers_every_pipelined_request(200);
}
