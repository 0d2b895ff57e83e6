//! Files whose bytes are only on disk: with the server's file loaders
//! (the default) the loaders read them in and the loops read nothing from
//! the disk; with none, the loop's `sendfile` reads them itself (which
//! shows the measure sees what it is meant to). Alone in its test binary,
//! as it counts what the server's loop threads read.

mod common;

use common::{read_response, Site};
use gyre_zerocopy::FileRegion;
use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

const LEN: usize = 16 << 20;

/// Drops `path` from the page cache; whether the kernel now says it is
/// out (`false` where it cannot tell, or the file lives in memory).
fn evict(path: &Path) -> bool {
    gyre_testkit::evict_from_page_cache(path).unwrap();
    FileRegion::open(path).unwrap().is_cached() == Some(false)
}

/// Bytes the server's loop threads have read from storage.
fn loops_read() -> u64 {
    gyre_testkit::storage_read_bytes_of_threads("gyre-http")
}

/// Gets the evicted `/cold` and a small file pipelined behind it; what
/// the loops read from the disk meanwhile, or `None` where nothing can be
/// evicted.
fn serve_cold(loaders: usize) -> Option<u64> {
    let site = Site::with(&format!("cold-{loaders}"), |c| c.file_loaders = loaders);
    let crc = site.file("cold", LEN);
    site.file("small", 100);
    if !evict(&site.root.join("cold")) {
        return None;
    }
    let before = loops_read();
    let mut client = TcpStream::connect(site.server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    client
        .write_all(b"GET /cold HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, body) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(crc32c::crc32c(&body), crc, "the cold file arrived whole");
    let (head, body) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len(), 100, "the small file after it, in order");
    Some(loops_read() - before)
}

#[test]
fn a_cold_file_is_read_in_by_the_file_loaders_not_by_a_loop() {
    let Some(with_loaders) = serve_cold(2) else {
        eprintln!("skipped: the kernel cannot tell cached pages from cold ones here");
        return;
    };
    let without = serve_cold(0).expect("evicted once, evicted again");
    eprintln!("the loops read {with_loaders} bytes with loaders, {without} without");
    assert!(
        with_loaders < 256 * 1024,
        "with loaders the loops read {with_loaders} bytes from the disk"
    );
    assert!(
        without >= LEN as u64 / 2,
        "without loaders the loops should have read the file; the measure saw {without} bytes"
    );
}
