//! A lending channel opened when the process has no descriptor to spare
//! for its separate input registration (the duplicate of its socket that
//! `ChannelOptions::lend_input` takes) registers once, as channels did
//! before the duplicate, and lends its input all the same: what a holder
//! reads the loop never sees, and what arrives while the input is lent
//! reaches the loop after the lend. One test in this file: it takes the
//! process's descriptors away while it opens the channel.

mod common;

use common::{lend, Record};

use bytes::BytesMut;
use gyre_reactor::{Bootstrap, ChannelOptions, Pipeline, Transport};
use std::fs::File;
use std::io::Write;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Opens `/dev/null` until the process is out of descriptors; returns
/// them all.
fn take_every_descriptor() -> Vec<File> {
    let mut held = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return held,
            Err(e) => panic!("opening /dev/null: {e}"),
        }
        assert!(held.len() < 100_000, "the lowered limit did not hold");
    }
}

#[test]
fn with_no_descriptor_to_spare_a_lending_channel_registers_once_and_still_lends() {
    if common::transport() != Transport::Epoll {
        return; // io_uring channels lend nothing
    }
    let group = common::group(1);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let (tx, rx) = mpsc::channel();
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    let limit = gyre_reactor::set_open_file_limit(open_now + 16).unwrap();
    let mut held = take_every_descriptor();
    // One descriptor free: the channel's socket takes it, and its
    // duplicate finds none.
    drop(held.pop());
    let handle = Bootstrap::new(group.clone())
        .options(
            ChannelOptions::default()
                .direct_writes(true)
                .lend_input(true),
        )
        .connect(listener.local_addr().unwrap(), move |_| {
            Pipeline::new().inbound(Record::<BytesMut>(tx))
        })
        .unwrap();
    let mut lend = lend(&handle);
    assert!(
        take_every_descriptor().is_empty(),
        "a descriptor was left over: the duplicate could have been made"
    );
    drop(held);
    gyre_reactor::set_open_file_limit(limit).unwrap();
    let (mut peer, _) = listener.accept().unwrap();

    // What the holder reads, the loop never sees.
    peer.write_all(b"answer").unwrap();
    let mut buf = BytesMut::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while buf.len() < 6 {
        assert!(
            lend.read(&mut buf, deadline).unwrap() > 0,
            "input ended early"
        );
    }
    assert_eq!(&buf[..], b"answer");
    // What arrives while the input is lent and is not read reaches the
    // loop once the lend ends, not before.
    peer.write_all(b"ping").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(rx.try_recv().is_err(), "the loop read lent input");
    drop(lend);
    let mut got = Vec::new();
    while got.len() < 4 {
        let chunk = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the loop reads what came during the lend");
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"ping");
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}
