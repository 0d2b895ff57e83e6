//! Who may connect to the file server (`FileServerConfig::ip_filter`,
//! nginx's `allow` and `deny`), with curl from two loopback addresses
//! (`--interface`): the refused one gets no answer, the allowed one its
//! file; behind a PROXY protocol header the client the header names is
//! judged. On the transport `GYRE_TRANSPORT` names. curl must be
//! installed.

mod common;

use bytes::BytesMut;
use common::{read_response, Site};
use gyre_codec::{ProxiedAddresses, ProxyHeader};
use gyre_reactor::IpFilter;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

/// curl from `interface`: the status code it printed ("000": no answer).
fn curl_from(interface: &str, url: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["--interface", interface, url])
        .output()
        .expect("curl is not installed (scripts/test installs it)");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_refused_address_gets_no_answer_and_an_allowed_one_its_file() {
    let site = Site::with("access", |c| {
        c.ip_filter = IpFilter::new()
            .allow("127.0.0.1".parse().unwrap())
            .deny_others();
    });
    site.file("f", 1000);
    let url = site.url("/f");
    assert_eq!(curl_from("127.0.0.1", &url), "200");
    assert_eq!(curl_from("127.0.0.2", &url), "000");
}

#[test]
fn behind_a_proxy_the_named_client_is_judged() {
    let site = Site::with("access-proxied", |c| {
        c.proxy_protocol = true;
        c.ip_filter = IpFilter::new().deny("203.0.113.0/24".parse().unwrap());
    });
    site.file("f", 1000);
    let ask = |client: &str| {
        let mut s = TcpStream::connect(site.server.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut wire = BytesMut::new();
        ProxyHeader::v1(Some(ProxiedAddresses {
            source: client.parse().unwrap(),
            destination: "192.0.2.80:80".parse().unwrap(),
        }))
        .encode_into(&mut wire)
        .unwrap();
        wire.extend_from_slice(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n");
        let _ = s.write_all(&wire);
        read_response(&mut s)
            .ok()
            .map(|(head, body)| (head, body.len()))
    };
    // The proxy is loopback either way; only the named client differs.
    assert_eq!(ask("203.0.113.9:4000"), None);
    let (head, len) = ask("198.51.100.9:4000").expect("an allowed client answered");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(len, 1000);
}

#[test]
fn each_client_address_is_held_to_its_connections() {
    let site = Site::with("access-per-ip", |c| {
        c.ip_filter =
            IpFilter::new().limit_per_address(&gyre_reactor::ConnectionsPerIp::new(Some(2), []));
    });
    site.file("f", 1000);
    let get = |s: &mut TcpStream| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n");
        read_response(s).ok().map(|(head, _)| head)
    };
    // Two kept-alive connections are served, each request after request.
    let mut kept: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(site.server.local_addr()).unwrap())
        .collect();
    for s in &mut kept {
        assert!(get(s).is_some_and(|h| h.starts_with("HTTP/1.1 200")));
    }
    // A third from the same address gets nothing; curl from another
    // address its file.
    let mut third = TcpStream::connect(site.server.local_addr()).unwrap();
    assert_eq!(get(&mut third), None);
    assert_eq!(curl_from("127.0.0.2", &site.url("/f")), "200");
    for s in &mut kept {
        assert!(get(s).is_some(), "a kept connection was dropped");
    }
}
