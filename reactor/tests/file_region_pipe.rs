//! A finished file send holds no descriptors while its connection stays
//! open. On either transport the default `FileSend::Auto` sends with
//! `sendfile`, which needs no pipe, or splices where its probe found that
//! faster, and then the channel gives its pipe's two descriptors (and its
//! share of the user's pipe quota) back once no file is queued. The probe
//! itself holds descriptors only while it measures.
//! Alone in its own test binary, because it counts the process's open
//! descriptors.

mod common;

use common::{eventually, open_channels, open_fds, SendFile};
use gyre_reactor::{Pipeline, ServerBootstrap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[test]
fn a_finished_file_send_gives_its_pipe_back() {
    let path = gyre_testkit::scratch_root().join(format!("gyre-file-pipe-{}", std::process::id()));
    let data: Vec<u8> = (0..2u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = path.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions().inbound(SendFile(file.clone()))
        })
        .unwrap();
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    assert!(eventually(Duration::from_secs(5), || {
        open_channels(&server) == 1
    }));
    let before = open_fds();
    for _ in 0..2 {
        client.write_all(b"go").unwrap();
        let mut got = vec![0u8; data.len()];
        client.read_exact(&mut got).unwrap();
        assert!(got == data, "the file arrived changed");
        assert!(
            eventually(Duration::from_secs(5), || open_fds() == before),
            "descriptors after the send: {} (before: {before})",
            open_fds()
        );
    }
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    let _ = std::fs::remove_file(&path);
}
