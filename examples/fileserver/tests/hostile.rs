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

/// Connections that send a partial head and then one more header byte
/// every 200 ms, from one thread, until `stop`.
struct Trickle {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<TcpStream>>>,
}

impl Trickle {
    fn start(addr: std::net::SocketAddr, count: usize) -> Trickle {
        let mut conns: Vec<TcpStream> = (0..count)
            .map(|_| {
                let mut c = TcpStream::connect(addr).unwrap();
                let _ = c.write_all(b"GET /f.txt HTTP/1.1\r\nX-Slow: ");
                c
            })
            .collect();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                for c in &mut conns {
                    let _ = c.write_all(b"a"); // fails once the server closed it
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            conns
        });
        Trickle {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops trickling; every connection's answer: its status code, or
    /// `None` for a connection still open with no answer `wait` from now.
    fn answers(mut self, wait: Duration) -> Vec<Option<String>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let conns = self.thread.take().unwrap().join().unwrap();
        let deadline = std::time::Instant::now() + wait;
        conns
            .into_iter()
            .map(|mut c| {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                c.set_read_timeout(Some(left.max(Duration::from_millis(1))))
                    .unwrap();
                let mut answer = Vec::new();
                match std::io::Read::read_to_end(&mut c, &mut answer) {
                    Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                        Some(String::from_utf8_lossy(&answer).into_owned())
                    }
                    Err(_) => None,
                }
                .map(|a| {
                    a.get(9..12)
                        .unwrap_or("closed without an answer")
                        .to_owned()
                })
            })
            .collect()
    }
}

fn get_ok(addr: std::net::SocketAddr) -> Result<(), String> {
    let mut c = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    c.write_all(b"GET /f.txt HTTP/1.1\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let (head, _) = read_response(&mut c).map_err(|e| e.to_string())?;
    if head.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(head)
    }
}

#[test]
fn slowloris_heads_get_408_at_their_deadline_while_normal_clients_are_served() {
    let site = Site::with("slowloris", |config| {
        config.head_timeout = Duration::from_secs(1);
        config.max_connections = Some(1000);
    });
    site.file("f.txt", 10);
    let addr = site.server.local_addr();
    let trickle = Trickle::start(addr, 200);
    // Served at once, beside the trickles.
    get_ok(addr).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    get_ok(addr).unwrap();
    let answers = trickle.answers(Duration::from_secs(5));
    let cut = answers
        .iter()
        .filter(|a| a.as_deref() == Some("408"))
        .count();
    assert_eq!(
        cut, 200,
        "every trickling head is cut with 408: {answers:?}"
    );
}

/// The file server binary under `ulimit -n <files>`.
struct Process(std::process::Child, std::net::SocketAddr);

impl Process {
    fn start(files: u32, root: &std::path::Path, args: &[&str]) -> Process {
        let bin = env!("CARGO_BIN_EXE_gyre-fileserver");
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {files} && exec \"$0\" --root \"$1\" --addr 127.0.0.1:0 --workers 1 --transport {} {}",
                std::env::var("GYRE_TRANSPORT").unwrap_or_else(|_| "epoll".into()),
                args.join(" ")
            ))
            .arg(bin)
            .arg(root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let addr = line
            .trim()
            .rsplit_once("http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .1
            .parse()
            .unwrap();
        Process(child, addr)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn three_hundred_slowloris_clients_under_ulimit_256_do_not_starve_normal_ones() {
    let site = Site::new("slowloris-ulimit", Duration::from_secs(30));
    site.file("f.txt", 10);
    let server = Process::start(
        256,
        &site.root,
        &[
            "--head-timeout-secs",
            "30",
            "--head-timeout-under-load-ms",
            "500",
        ],
    );
    get_ok(server.1).unwrap();
    let trickle = Trickle::start(server.1, 300);
    // Past the cap the server refuses with 503; near it, heads get half a
    // second: a normal client is served within a few tries.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut tries = Vec::new();
    loop {
        match get_ok(server.1) {
            Ok(()) => break,
            Err(e) => tries.push(e),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a normal client was never served: {tries:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let answers = trickle.answers(Duration::from_secs(2));
    let refused = answers
        .iter()
        .filter(|a| a.as_deref() == Some("503"))
        .count();
    let cut = answers
        .iter()
        .filter(|a| a.as_deref() == Some("408"))
        .count();
    // The rest were let in once the cap had room again, where the loose
    // deadline applies: still open, never closed without an answer.
    let other: Vec<_> = answers
        .iter()
        .filter(|a| !matches!(a.as_deref(), Some("503" | "408") | None))
        .collect();
    assert!(other.is_empty(), "{other:?}");
    assert!(refused > 0 && cut > 0, "{refused} refused, {cut} cut");
}

#[test]
fn an_oversized_head_still_arriving_gets_its_431_whole_not_a_reset() {
    let site = Site::new("linger", Duration::from_secs(30));
    for round in 0..5 {
        let client = TcpStream::connect(site.server.local_addr()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // The head keeps coming long after the server has refused it.
        let mut writer = client.try_clone().unwrap();
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(b"GET /f.txt HTTP/1.1\r\nX-Big: ");
            let chunk = vec![b'a'; 16 * 1024];
            for _ in 0..64 {
                if writer.write_all(&chunk).is_err() {
                    break;
                }
            }
        });
        let mut answer = Vec::new();
        let read = std::io::Read::read_to_end(&mut &client, &mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            read.is_ok(),
            "round {round}: {read:?} after {} bytes: {answer:?}",
            answer.len()
        );
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        assert!(
            answer.ends_with("Too Large\n"),
            "the whole answer: {answer}"
        );
        sender.join().unwrap();
    }
}
