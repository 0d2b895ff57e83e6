//! The splice proxy in front of the echo server, over real loopback
//! sockets: many connections with large payloads come back intact,
//! half-closes pass through, and a dead upstream closes only the client.

use gyre_echo::{proxy, start, EchoConfig};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2654435761) >> 7 ^ seed) as u8)
        .collect()
}

fn echo() -> gyre_reactor::Server {
    start(&EchoConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        workers: 1,
        ..EchoConfig::default()
    })
    .unwrap()
}

#[test]
fn payloads_cross_the_proxy_intact_on_many_connections() {
    let server = echo();
    let proxy = proxy::start("127.0.0.1:0".parse().unwrap(), server.local_addr()).unwrap();
    let addr = proxy.local_addr();
    let clients: Vec<_> = (0..16)
        .map(|i| {
            thread::spawn(move || {
                let data = pattern(if i == 0 { 16 << 20 } else { 256 << 10 }, i);
                let mut stream = TcpStream::connect(addr).unwrap();
                let mut reader = stream.try_clone().unwrap();
                let want = data.clone();
                let read = thread::spawn(move || {
                    let mut got = Vec::new();
                    reader.read_to_end(&mut got).unwrap();
                    got
                });
                stream.write_all(&data).unwrap();
                // Half-close: the FIN travels to the echo server, which
                // closes after echoing; its FIN travels back.
                stream.shutdown(Shutdown::Write).unwrap();
                let got = read.join().unwrap();
                assert_eq!(got.len(), want.len(), "connection {i}");
                assert!(got == want, "connection {i}: bytes differ");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    proxy.stop();
    server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(5));
}

#[test]
fn refused_upstream_closes_the_client_and_the_proxy_keeps_serving() {
    // A port with nothing listening: bind, note it, drop.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = proxy::start("127.0.0.1:0".parse().unwrap(), dead).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = client.write_all(b"anyone?");
    let mut buf = [0u8; 16];
    let n = client.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the proxy must close a client whose upstream refused");
    // And a second client is handled the same way (the proxy is alive).
    let mut again = TcpStream::connect(proxy.local_addr()).unwrap();
    again
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    assert_eq!(again.read(&mut buf).unwrap_or(0), 0);
    proxy.stop();
}
