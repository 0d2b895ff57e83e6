//! `FileRegion` over real loopback sockets and real files: resumption
//! after partial sends, offsets, empty regions, regions past the end, and
//! files truncated mid-transfer.

mod common;

use common::{drain, pattern, small_pair, tcp_pair, TempDir};
use gyre_zerocopy::{Error, FileRegion, SharedFile};
use std::io::Read;

#[test]
fn partial_sendfile_resumes_until_every_byte_is_sent() {
    let dir = TempDir::new("partial");
    let data = pattern(4 << 20, 1);
    let path = dir.file("big", &data);
    let (sender, mut receiver) = small_pair();
    let mut region = FileRegion::open(&path).unwrap();
    let (mut got, mut calls, mut full) = (Vec::new(), 0, 0);
    while !region.is_done() {
        let n = region.transfer_to(&sender).unwrap();
        calls += 1;
        if n == 0 {
            full += 1;
            drain(&mut receiver, &mut got);
        }
    }
    assert_eq!(region.transferred(), data.len() as u64);
    assert_eq!(region.remaining(), 0);
    drop(sender);
    receiver.set_nonblocking(false).unwrap();
    receiver.read_to_end(&mut got).unwrap();
    assert!(
        full > 0,
        "the small buffer never filled; the test proves nothing"
    );
    assert!(calls > 2, "sent in {calls} calls");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
}

#[test]
fn regions_at_offsets_send_exactly_their_bytes() {
    let dir = TempDir::new("offsets");
    let data = pattern(300_000, 2);
    let file = SharedFile::open(dir.file("f", &data)).unwrap();
    for (offset, len) in [
        (0, 1),
        (1, 4095),
        (4095, 2),
        (4096, 70_000),
        (123_457, 176_543),
    ] {
        let (sender, mut receiver) = tcp_pair();
        let mut region = FileRegion::new(file.clone(), offset, len).unwrap();
        assert_eq!((region.offset(), region.len()), (offset, len));
        while !region.is_done() {
            region.transfer_to(&sender).unwrap();
        }
        drop(sender);
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).unwrap();
        let (o, l) = (offset as usize, len as usize);
        assert!(got == data[o..o + l], "region {offset}+{len} differs");
    }
}

#[test]
fn zero_length_region_is_done_and_sends_nothing() {
    let dir = TempDir::new("zero");
    let empty = FileRegion::open(dir.file("empty", b"")).unwrap();
    assert!(empty.is_done());
    let mut at_end = FileRegion::open_range(dir.file("ten", b"0123456789"), 10, 0).unwrap();
    assert!(at_end.is_done());
    let (sender, mut receiver) = tcp_pair();
    assert_eq!(at_end.transfer_to(&sender).unwrap(), 0);
    drop(sender);
    let mut got = Vec::new();
    receiver.read_to_end(&mut got).unwrap();
    assert!(got.is_empty());
}

#[test]
fn region_past_the_end_is_an_error_naming_the_file() {
    let dir = TempDir::new("past");
    let path = dir.file("ten", b"0123456789");
    for (offset, len) in [(0, 11), (10, 1), (11, 0), (5, u64::MAX)] {
        match FileRegion::open_range(&path, offset, len) {
            Err(e @ Error::PastEnd { file_len: 10, .. }) => {
                assert_eq!(e.path(), path);
                assert!(e.to_string().contains("ten"), "{e}");
            }
            other => panic!("{offset}+{len}: expected PastEnd, got {other:?}"),
        }
    }
    let missing = FileRegion::open(dir.path().join("missing")).unwrap_err();
    assert_eq!(
        missing.io_error().unwrap().kind(),
        std::io::ErrorKind::NotFound
    );
    assert!(missing.to_string().contains("missing"), "{missing}");
}

#[test]
fn file_truncated_mid_transfer_ends_with_truncated_error() {
    let dir = TempDir::new("trunc");
    let data = pattern(4 << 20, 3);
    let path = dir.file("shrinking", &data);
    let (sender, mut receiver) = small_pair();
    let mut region = FileRegion::open(&path).unwrap();
    let mut got = Vec::new();
    // Send until the socket is full, then cut the file short.
    while region.transfer_to(&sender).unwrap() > 0 {}
    assert!(region.transferred() < 1 << 20);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let err = loop {
        match region.transfer_to(&sender) {
            Ok(0) => {
                drain(&mut receiver, &mut got);
            }
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    match err {
        Error::Truncated {
            file_len,
            position,
            remaining,
            ..
        } => {
            assert_eq!(file_len, 1 << 20);
            assert_eq!(position, 1 << 20);
            assert_eq!(remaining, (4 << 20) - (1 << 20));
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert_eq!(region.transferred(), 1 << 20);
}
