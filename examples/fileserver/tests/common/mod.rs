//! The file server's test site: a temporary root with files written on
//! demand and a server on a free port, on the transport `GYRE_TRANSPORT`
//! names.

#![allow(dead_code)]

use gyre_fileserver::{start, FileServerConfig};
use gyre_reactor::Server;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

pub struct Site {
    pub base: PathBuf,
    pub root: PathBuf,
    pub server: Server,
}

impl Site {
    pub fn new(tag: &str, idle: Duration) -> Site {
        Site::with(tag, |config| config.idle_timeout = idle)
    }

    /// A site whose settings `configure` adjusts.
    pub fn with(tag: &str, configure: impl FnOnce(&mut FileServerConfig)) -> Site {
        let base =
            gyre_testkit::scratch_root().join(format!("gyre-fs-{tag}-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(base.join("secret"), b"outside the root").unwrap();
        let mut config = FileServerConfig::new(&root);
        config.addr = "127.0.0.1:0".parse().unwrap();
        config.workers = 2;
        // Every suite runs once per transport (scripts/test sets this).
        config.transport = match std::env::var("GYRE_TRANSPORT").as_deref() {
            Ok(t) => t.parse().expect("GYRE_TRANSPORT"),
            Err(_) => gyre_reactor::Transport::Epoll,
        };
        configure(&mut config);
        let server = start(&config).unwrap();
        Site { base, root, server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.local_addr())
    }

    /// Writes a file of `len` position-dependent bytes; returns its crc.
    pub fn file(&self, name: &str, len: usize) -> u32 {
        let mut f = std::fs::File::create(self.root.join(name)).unwrap();
        let mut crc = 0;
        let mut chunk = vec![0u8; 1 << 20];
        let mut written = 0;
        while written < len {
            let n = chunk.len().min(len - written);
            for (i, b) in chunk[..n].iter_mut().enumerate() {
                let at = written + i;
                *b = (at as u8) ^ ((at >> 8) as u8).wrapping_mul(7) ^ (at >> 20) as u8;
            }
            f.write_all(&chunk[..n]).unwrap();
            crc = crc32c::crc32c_append(crc, &chunk[..n]);
            written += n;
        }
        crc
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server
            .shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// One response read off `stream`: its head and its body (by
/// `Content-Length`).
pub fn read_response(stream: &mut impl std::io::Read) -> std::io::Result<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("an ASCII head");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().expect("a length"));
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body)?;
    Ok((head, body))
}
