//! An identity provider's key set endpoint for the OAUTHBEARER tests: an
//! HTTPS server on a thread of its own, with a certificate from a test CA,
//! answering every GET with the key set it holds now (or with what a test
//! tells it to: an error status, a chunked body), counting the requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// How the server answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200 with the key set, sized by Content-Length.
    Keys,
    /// 200 with the key set in chunks.
    Chunked,
    /// This status, no key set.
    Status(u16),
}

struct State {
    keys: Mutex<String>,
    answer: Mutex<Answer>,
    requests: AtomicUsize,
    stop: AtomicBool,
}

/// The running server; stops when dropped.
pub struct KeyServer {
    addr: SocketAddr,
    ca_file: PathBuf,
    state: Arc<State>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KeyServer {
    /// Serves `keys` (a JSON Web Key Set) over HTTPS on 127.0.0.1, with a
    /// certificate for 127.0.0.1 and localhost from a CA whose PEM it
    /// writes into `dir`.
    pub fn start(dir: &Path, keys: &str) -> KeyServer {
        let ca = gyre_testkit::certs::TestCa::new("key server CA");
        let (ca_file, cert, key) = ca.write(dir, &["127.0.0.1", "localhost"]);
        let tls = gyre_reactor::TlsAcceptor::from_pem_files(&cert, &key).expect("the server's TLS");
        let config = tls.config().clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            keys: Mutex::new(keys.to_owned()),
            answer: Mutex::new(Answer::Keys),
            requests: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = conn else { continue };
                let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let Ok(server) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = rustls::StreamOwned::new(server, tcp);
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                if !request.starts_with(b"GET ") {
                    continue;
                }
                st.requests.fetch_add(1, Ordering::SeqCst);
                let keys = st.keys.lock().unwrap().clone();
                let answer = st.answer.lock().unwrap().clone();
                let reply = match answer {
                    Answer::Keys => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{keys}",
                        keys.len()
                    ),
                    Answer::Chunked => {
                        let (a, b) = keys.split_at(keys.len() / 2);
                        format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                            a.len(),
                            b.len()
                        )
                    }
                    Answer::Status(code) => format!(
                        "HTTP/1.1 {code} Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                };
                let _ = tls.write_all(reply.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        KeyServer {
            addr,
            ca_file,
            state,
            thread: Some(thread),
        }
    }

    /// The key set's URL.
    pub fn url(&self) -> String {
        format!(
            "https://{}/realms/gyre/protocol/openid-connect/certs",
            self.addr
        )
    }

    /// The CA to trust for it.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_file.clone()
    }

    /// Serves `keys` from now on.
    pub fn set_keys(&self, keys: &str) {
        *self.state.keys.lock().unwrap() = keys.to_owned();
    }

    /// Answers so from now on.
    pub fn answer(&self, answer: Answer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// GETs answered so far.
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wakes the accept.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
