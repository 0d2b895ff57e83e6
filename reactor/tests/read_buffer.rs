//! The channel's read buffer, on the transport `GYRE_TRANSPORT` names (the
//! suite runs once per transport): once every chunk handed to the pipeline
//! has been dropped, the next read lands at the start of the same
//! allocation again (memory still in cache, nothing allocated: the kernel
//! copies there on epoll, the loop copies there from the ring's pool buffer
//! on io_uring), and a chunk the pipeline still holds is never written over.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{InboundContext, InboundHandler, Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// Records where each chunk starts, keeps it if asked, and answers one
/// byte per read so the client can pace its messages.
struct Recorder {
    starts: Arc<Mutex<Vec<usize>>>,
    kept: Option<Arc<Mutex<Vec<BytesMut>>>>,
}

impl InboundHandler for Recorder {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        self.starts.lock().unwrap().push(msg.as_ptr() as usize);
        if let Some(kept) = &self.kept {
            kept.lock().unwrap().push(msg);
        }
        ctx.write(Bytes::from_static(b"k"));
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
    }
}

/// Sends `messages` one at a time, each after the previous one's answer,
/// to a server whose pipeline is a `Recorder`; returns the chunk starts.
fn send_paced(messages: &[Vec<u8>], kept: Option<Arc<Mutex<Vec<BytesMut>>>>) -> Vec<usize> {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let recorded = starts.clone();
    let group = common::group(1);
    let server = ServerBootstrap::new()
        .group(group)
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().inbound(Recorder {
                starts: recorded.clone(),
                kept: kept.clone(),
            })
        })
        .unwrap();
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    client.set_nodelay(true).unwrap();
    for message in messages {
        client.write_all(message).unwrap();
        let mut answer = [0u8; 1];
        client.read_exact(&mut answer).unwrap();
    }
    drop(client);
    server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(5));
    let starts = starts.lock().unwrap().clone();
    assert_eq!(starts.len(), messages.len(), "one read per paced message");
    starts
}

fn messages() -> Vec<Vec<u8>> {
    (0..50u8).map(|i| vec![b'a' + i % 26; 100]).collect()
}

#[test]
fn a_dropped_chunk_gives_its_memory_back_to_the_next_read() {
    let starts = send_paced(&messages(), None);
    // Without reuse every read would start 100 bytes after the last one.
    assert!(
        starts.iter().all(|&s| s == starts[0]),
        "reads moved through the buffer: {starts:?}"
    );
}

#[test]
fn a_held_chunk_is_never_written_over() {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let messages = messages();
    let starts = send_paced(&messages, Some(kept.clone()));
    let mut distinct = starts.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), starts.len(), "two held chunks share memory");
    let kept = kept.lock().unwrap();
    for (chunk, message) in kept.iter().zip(&messages) {
        assert_eq!(&chunk[..], &message[..]);
    }
}
