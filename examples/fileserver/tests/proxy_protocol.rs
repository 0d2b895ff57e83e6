//! The file server behind a load balancer that sends the PROXY protocol
//! header (`FileServerConfig::proxy_protocol`): curl's own
//! `--haproxy-protocol` (version 1) downloads byte for byte over a
//! kept-alive connection; a raw version 2 header then a request is
//! answered; a client that sends no header is closed unanswered. On the
//! transport `GYRE_TRANSPORT` names. curl must be installed.

mod common;

use bytes::BytesMut;
use common::{read_response, Site};
use gyre_codec::{ProxiedAddresses, ProxyHeader};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn curl(args: &[&str]) -> (bool, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is not installed (scripts/test installs it)");
    (out.status.success(), out.stdout)
}

#[test]
fn requests_behind_a_proxy_header_are_served_and_others_closed() {
    let site = Site::with("proxied", |config| config.proxy_protocol = true);
    let crc = site.file("mib", 1 << 20);
    let out = site.base.join("out");
    let url = site.url("/mib");
    // Two transfers on one connection, each behind curl's header (sent
    // once, at the connection's start).
    let (ok, stdout) = curl(&[
        "--haproxy-protocol",
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code},%{num_connects} ",
        &url,
        "-o",
        "/dev/null",
        &url,
    ]);
    assert!(ok, "curl through the header");
    assert_eq!(String::from_utf8(stdout).unwrap(), "200,1 200,0 ");
    let data = std::fs::read(&out).unwrap();
    assert_eq!((data.len(), crc32c::crc32c(&data)), (1 << 20, crc));

    // Version 2, from a raw client.
    let mut c = TcpStream::connect(site.server.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut wire = BytesMut::new();
    ProxyHeader::v2(Some(ProxiedAddresses {
        source: "[2001:db8::9]:40000".parse().unwrap(),
        destination: "[2001:db8::1]:80".parse().unwrap(),
    }))
    .encode_into(&mut wire)
    .unwrap();
    wire.extend_from_slice(b"GET /mib HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n");
    c.write_all(&wire).unwrap();
    let (head, body) = read_response(&mut c).unwrap();
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert_eq!(body, &data[..10]);

    // Without the header: closed, nothing answered.
    let (ok, stdout) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &url]);
    assert!(!ok, "a request without the header is not served");
    assert_eq!(stdout, b"000");
    let mut direct = TcpStream::connect(site.server.local_addr()).unwrap();
    direct
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    direct
        .write_all(b"GET /mib HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = direct.read_to_end(&mut got);
    assert!(got.is_empty(), "answered without a header: {got:?}");
}
