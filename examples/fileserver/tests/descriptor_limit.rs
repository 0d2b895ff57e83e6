//! The file server out of descriptors: a file that exists is answered 503
//! with `Retry-After` (a passing condition), never 404 (which a cache may
//! keep), and served again once descriptors free up. Its own test binary,
//! because it lowers this process's open-file limit.

mod common;

use common::{read_response, Site};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use gyre_testkit::highest_fd;

#[test]
fn out_of_descriptors_a_file_that_exists_is_503_not_404() {
    let old = gyre_reactor::set_open_file_limit(highest_fd() + 100).unwrap();
    let site = Site::with("emfile", |config| config.workers = 1);
    site.file("f.txt", 10);
    let mut client = TcpStream::connect(site.server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.write_all(b"GET /f.txt HTTP/1.1\r\n\r\n").unwrap();
    let (head, _) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // The first file send on epoll starts the reactor's file-send probe
    // (`FileSend::Auto`), which holds a few descriptors while it measures.
    // Have it run now and finish, so the descriptors it frees cannot let a
    // file open below. (On io_uring nothing else would start it.)
    gyre_reactor::FileSend::start_probe();
    let measured = std::time::Instant::now();
    while gyre_reactor::FileSend::probe().is_none() {
        assert!(
            measured.elapsed() < Duration::from_secs(10),
            "the probe ends"
        );
        std::thread::sleep(Duration::from_millis(5));
    }

    let mut fillers = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        fillers.push(f);
    }
    client.write_all(b"GET /f.txt HTTP/1.1\r\n\r\n").unwrap();
    let (head, _) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(head.contains("Retry-After: "), "{head}");
    assert!(head.contains("Connection: keep-alive"), "{head}");

    drop(fillers);
    client.write_all(b"GET /f.txt HTTP/1.1\r\n\r\n").unwrap();
    let (head, body) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len(), 10);
    gyre_reactor::set_open_file_limit(old).unwrap();
}
