//! Echo correctness: 1000 concurrent connections, random message sizes,
//! random chunking; every connection gets back exactly what it sent.

mod common;

use common::{echo_server, eventually, open_channels, raise_fd_limit};
use gyre_reactor::ChannelOptions;
use rand::{Rng, SeedableRng};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

const CONNECTIONS: usize = 1000;
const THREADS: usize = 8;

#[test]
fn thousand_connections_random_sizes_and_chunks() {
    raise_fd_limit();
    let (server, counters) = echo_server(2, ChannelOptions::default());
    let addr = server.local_addr();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(t as u64);
                // Open this thread's share first, so all 1000 are open at once.
                let mut conns: Vec<(TcpStream, Vec<u8>)> = (0..CONNECTIONS / THREADS)
                    .map(|_| {
                        let s = TcpStream::connect(addr).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        (s, Vec::new())
                    })
                    .collect();
                // Interleave random chunks across the connections.
                for _round in 0..4 {
                    for (s, sent) in conns.iter_mut() {
                        let len = rng.random_range(1..=8 * 1024);
                        let msg: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                        let mut at = 0;
                        while at < msg.len() {
                            let cut = rng.random_range(1..=msg.len() - at);
                            s.write_all(&msg[at..at + cut]).unwrap();
                            at += cut;
                        }
                        sent.extend_from_slice(&msg);
                    }
                }
                for (s, sent) in conns.iter_mut() {
                    let mut back = vec![0u8; sent.len()];
                    s.read_exact(&mut back).unwrap();
                    assert!(back == *sent, "a connection got back different bytes");
                }
                conns.len()
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, CONNECTIONS);
    assert!(eventually(Duration::from_secs(10), || {
        counters.inactive.load(Ordering::SeqCst) == CONNECTIONS
    }));
    assert_eq!(counters.active.load(Ordering::SeqCst), CONNECTIONS);
    assert_eq!(open_channels(&server), 0);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn reuse_port_boss_worker_and_given_listener_modes_echo() {
    use gyre_reactor::{ListenOptions, Pipeline, ServerBootstrap};
    let modes = [
        ServerBootstrap::new()
            .group(common::group(2))
            .listen_options(ListenOptions::default().reuse_port(true)),
        ServerBootstrap::new().groups(common::group(1), common::group(2)),
        // A listener the caller bound (its port known before the server).
        ServerBootstrap::new().group(common::group(2)),
    ];
    for (i, bootstrap) in modes.into_iter().enumerate() {
        let server = if i == 2 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = bootstrap
                .bind_listener(listener, |_| Pipeline::new().inbound(common::Echo))
                .unwrap();
            assert_eq!(server.local_addr().port(), port);
            server
        } else {
            bootstrap
                .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
                .unwrap()
        };
        for i in 0..20u8 {
            let mut s = TcpStream::connect(server.local_addr()).unwrap();
            let msg = vec![i; 1000 + i as usize];
            s.write_all(&msg).unwrap();
            let mut back = vec![0; msg.len()];
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
        }
        server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    }
}
