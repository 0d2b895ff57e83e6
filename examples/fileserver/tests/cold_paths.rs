//! Paths the kernel has not cached: with opener threads (the default) the
//! loop hands the open to them and reads nothing from the disk; with none,
//! the loop's own lookup reads the folders from the disk (which shows the
//! measure sees what it is meant to). Drops the kernel's caches, so it
//! runs only as root, alone in its test binary.

mod common;

use common::{read_response, Site};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

/// Drops the page cache and the kernel's dentry and inode caches; false
/// where this process may not. Then reads this process's own code back
/// in (every file it maps: the test binary, libc, the loader), so that a
/// loop running a code path for the first time takes a minor fault, not a
/// read from the disk that the measure would count against it.
fn drop_caches() -> bool {
    // SAFETY: sync takes no arguments; dirty pages and inodes are written
    // out, so that dropping the caches drops them too.
    unsafe { libc::sync() };
    if std::fs::write("/proc/sys/vm/drop_caches", b"3").is_err() {
        return false;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let mapped: std::collections::BTreeSet<&str> = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .filter(|p| p.starts_with('/'))
        .collect();
    for path in mapped {
        let _ = std::fs::read(path);
    }
    true
}

/// Gets `path` then `/small` on one connection, in order, checking both.
fn get_two(site: &Site, path: &str, crc: u32) {
    let mut client = TcpStream::connect(site.server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let requests =
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n");
    client.write_all(requests.as_bytes()).unwrap();
    let (head, body) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: text/plain"), "{head}");
    assert_eq!(crc32c::crc32c(&body), crc);
    let (head, body) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len(), 100, "the request behind it, answered after it");
}

/// Gets `/d1/d2/d3/page.txt` after the caches were dropped; what the
/// loops and the openers read from the disk meanwhile, or `None` where
/// the caches cannot be dropped.
///
/// Dropping the caches drops the test's own code pages too, which a
/// thread would read back (and be counted for) the first time it runs
/// them: `drop_caches` reads them back in at once, and a first request,
/// for a path in other folders, runs a cold request's code before the one
/// measured. (With the warm-up request alone, a loop still read a page of
/// code now and then: `perf record -e major-faults` showed it faulting in
/// `ChannelTask::output_delivered`, a path the warm-up had not taken.)
fn serve_cold_path(openers: usize) -> Option<(u64, u64)> {
    let site = Site::with(&format!("cold-path-{openers}"), |c| {
        c.file_openers = openers
    });
    std::fs::create_dir_all(site.root.join("d1/d2/d3")).unwrap();
    std::fs::create_dir_all(site.root.join("w1/w2/w3")).unwrap();
    let crc = site.file("d1/d2/d3/page.txt", 4096);
    let warm = site.file("w1/w2/w3/page.txt", 4096);
    site.file("small", 100);
    if !drop_caches() {
        return None;
    }
    get_two(&site, "/w1/w2/w3/page.txt", warm);
    let reads = gyre_testkit::storage_read_bytes_of_threads;
    let (loops, opens) = (reads("gyre-http"), reads("gyre-http-open"));
    get_two(&site, "/d1/d2/d3/page.txt", crc);
    // The opener threads' names start with the loops' ("gyre-http").
    let opened = reads("gyre-http-open") - opens;
    Some((reads("gyre-http") - loops - opened, opened))
}

#[test]
fn a_path_the_kernel_has_not_cached_is_looked_up_by_an_opener_not_by_a_loop() {
    let Some((loops, openers)) = serve_cold_path(2) else {
        eprintln!("skipped: the kernel's caches can be dropped only by root");
        return;
    };
    let (alone, _) = serve_cold_path(0).expect("dropped once, dropped again");
    eprintln!("with openers the loops read {loops} bytes and the openers {openers}; without, the loops {alone}");
    assert_eq!(
        loops, 0,
        "with openers the loops read {loops} bytes from the disk"
    );
    assert!(openers > 0, "the openers read the path from the disk");
    assert!(
        alone > 0,
        "without openers the loops should have read the path; the measure saw {alone} bytes"
    );
}
