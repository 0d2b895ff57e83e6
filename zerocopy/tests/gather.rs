//! Gathered writes: many buffers in one call, resumed across partial sends,
//! in order, never concatenated.

mod common;

use bytes::Bytes;
use common::{drain, pattern, small_pair, tcp_pair};
use gyre_zerocopy::{send_vectored, GatheredWrite, SendFlags, MAX_IOVECS};
use std::io::{IoSlice, Read};

#[test]
fn one_call_takes_up_to_max_iovecs_buffers() {
    let (sender, mut receiver) = tcp_pair();
    let bufs: Vec<Vec<u8>> = (0..MAX_IOVECS + 10).map(|i| vec![i as u8; 100]).collect();
    let slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
    let sent = send_vectored(&sender, &slices, SendFlags::NONE).unwrap();
    assert_eq!(
        sent,
        MAX_IOVECS * 100,
        "one call gathers exactly MAX_IOVECS buffers"
    );
    drop(sender);
    let mut got = Vec::new();
    receiver.read_to_end(&mut got).unwrap();
    let want: Vec<u8> = bufs[..MAX_IOVECS].concat();
    assert!(got == want);
}

#[test]
fn queue_resumes_after_partial_sends_in_order() {
    let data = pattern(3 << 20, 7);
    let (sender, mut receiver) = small_pair();
    let mut out = GatheredWrite::new();
    // Uneven pieces, including an empty one, of one shared buffer.
    let whole = Bytes::from(data.clone());
    let mut at = 0;
    for len in (0..).map(|i| (i * 7919) % 20_000) {
        if at >= whole.len() {
            break;
        }
        let end = (at + len).min(whole.len());
        out.push(whole.slice(at..end));
        at = end;
    }
    assert_eq!(out.remaining(), data.len());
    let (mut got, mut full) = (Vec::new(), 0);
    while !out.is_empty() {
        if out.send_to(&sender).unwrap() == 0 {
            full += 1;
            drain(&mut receiver, &mut got);
        }
    }
    drop(sender);
    receiver.set_nonblocking(false).unwrap();
    receiver.read_to_end(&mut got).unwrap();
    assert!(full > 0, "never filled the socket");
    assert!(got == data, "bytes differ or are out of order");
}

#[test]
fn closed_peer_is_an_error_not_a_signal() {
    let (sender, receiver) = tcp_pair();
    drop(receiver);
    let mut out = GatheredWrite::new();
    let chunk = Bytes::from(vec![1u8; 64 * 1024]);
    let mut failed = None;
    for _ in 0..1000 {
        out.push(chunk.clone());
        if let Err(e) = out.send_to(&sender) {
            failed = Some(e);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let e = failed.expect("writing to a closed peer never failed");
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ),
        "{e}"
    );
}
