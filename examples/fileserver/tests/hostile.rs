//! The file server under hostile but fair use: pipelined requests behind a
//! large answer, FIFOs and other non-files in the root, slowloris clients,
//! running out of descriptors, and a graceful close after refusing a head.
//! Each runs on the transport `GYRE_TRANSPORT` names.

mod common;

use common::{read_response, Site};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn pipelined_gets_behind_a_one_mib_answer_are_all_answered() {
    let site = Site::new("pipelined", Duration::from_secs(30));
    let crc = site.file("big", 1 << 20);
    site.file("small", 100);
    let mut client = TcpStream::connect(site.server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
        .write_all(&b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2))
        .unwrap();
    for i in 0..2 {
        let (head, body) = read_response(&mut client)
            .unwrap_or_else(|e| panic!("answer {i} of 2 never came: {e}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(crc32c::crc32c(&body), crc);
    }
    client
        .write_all(&b"GET /small HTTP/1.1\r\nHost: x\r\n\r\n".repeat(201))
        .unwrap();
    for i in 0..201 {
        let (head, body) = read_response(&mut client)
            .unwrap_or_else(|e| panic!("answer {i} of 201 never came: {e}"));
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body.len(), 100);
    }
}

#[test]
fn a_fifo_in_the_root_is_refused_without_blocking_the_loop() {
    // One loop: a blocking open() would freeze every connection.
    let site = Site::with("fifo", |config| config.workers = 1);
    site.file("f.txt", 10);
    let fifo = std::ffi::CString::new(site.root.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let mut client = TcpStream::connect(site.server.local_addr()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .write_all(b"GET /pipe HTTP/1.1\r\n\r\nGET /f.txt HTTP/1.1\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut client).expect("the FIFO is answered at once");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    let (head, body) = read_response(&mut client).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body.len(), 10);
}
