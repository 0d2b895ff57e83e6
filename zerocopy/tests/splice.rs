//! `Splice` between real loopback sockets: a large payload crosses a
//! socket -> pipe -> socket hop intact, with both ends non-blocking.

mod common;

use common::{pattern, tcp_pair};
use gyre_zerocopy::{Pipe, Splice};
use std::io::{Read, Write};
use std::thread;

#[test]
fn large_payload_crosses_intact_and_finishes_at_eof() {
    let data = pattern(8 << 20, 6);
    let (mut client, from) = tcp_pair();
    let (to, mut server) = tcp_pair();
    from.set_nonblocking(true).unwrap();
    to.set_nonblocking(true).unwrap();
    let payload = data.clone();
    let writer = thread::spawn(move || {
        client.write_all(&payload).unwrap();
    });
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        got
    });
    let mut splice = Splice::with_pipe(Pipe::with_capacity(256 * 1024).unwrap());
    let mut moved = 0;
    loop {
        let pumped = splice.pump(&from, &to).unwrap();
        moved += pumped.moved;
        if pumped.finished {
            break;
        }
        thread::yield_now();
    }
    writer.join().unwrap();
    assert_eq!(moved, data.len());
    assert_eq!(splice.total(), data.len() as u64);
    assert_eq!(splice.buffered(), 0);
    drop(to);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
}

#[test]
fn pipe_capacity_can_grow() {
    let pipe = Pipe::with_capacity(1 << 20).unwrap();
    assert!(pipe.capacity() >= 1 << 20, "{}", pipe.capacity());
    assert!(Pipe::new().unwrap().capacity() > 0);
}
