//! The floor under one call in flight: what a round trip of the RPC
//! bench's frame sizes costs on this host with no framework at all.
//!
//! A caller thread writes a 62-byte request (gyre-rpc's frame for the
//! bench's `Order`) on a blocking TCP socket and reads an 18-byte answer
//! (gyre-rpc's for the `Receipt`); a server thread, blocking in `recv` in
//! turn, reads the request and writes the answer, echoing the request's id
//! and nothing else. Two sleeping threads woken by the kernel, as the
//! clients' and servers' threads are when one call is in flight, and no
//! decoding, dispatch or bookkeeping: a framework that sleeps while it
//! waits cannot answer one call at a time faster than this, so
//! `floor/tarpc` is the most any such client could show against tarpc here.
//!
//! [`handed_floor_run`] is the floor of a client whose caller is a task
//! on a tokio runtime and whose answers another thread reads, as
//! gyre-rpc's default `call_async` is (the connection's loop reads, the
//! task is woken): the task writes the request; a reader thread, blocking
//! in `recv`, reads the answer, puts it in a slot and wakes the task. Three
//! sleeping threads per round trip where [`floor_run`] has two and tarpc,
//! whose tasks read their own socket, has two as well; `handed-floor/tarpc`
//! is the most such a client could show against tarpc here.
//!
//! Uses only [`crate::rpc`]'s report and caller loops.

use crate::rpc::{drive, drive_threads, Receipt, Report};
use std::future::poll_fn;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

/// gyre-rpc's request frame for the bench's call, in bytes.
const REQUEST_LEN: usize = 62;
/// gyre-rpc's answer frame for it.
const ANSWER_LEN: usize = 18;
/// What the bench's `Receipt` carries for its order (1 + 2 + ... + 8).
const TOTAL: u64 = 36;

/// The floor's server: one thread serving one connection at a time.
pub struct FloorServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FloorServer {
    /// Starts it on a loopback port.
    pub fn start() -> FloorServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("floor listens");
        let addr = listener.local_addr().expect("floor address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    return;
                }
                if let Ok(conn) = conn {
                    serve(conn);
                }
            }
        });
        FloorServer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

/// Answers each request on `conn` until the caller closes it.
fn serve(mut conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut request = [0u8; REQUEST_LEN];
    let mut answer = [0u8; ANSWER_LEN];
    while conn.read_exact(&mut request).is_ok() {
        answer[..8].copy_from_slice(&request[..8]);
        if conn.write_all(&answer).is_err() {
            return;
        }
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One caller thread making round trips to `addr` for `duration`, one at
/// a time.
pub fn floor_run(addr: SocketAddr, duration: Duration) -> Report {
    let conn = TcpStream::connect(addr).expect("floor connects");
    conn.set_nodelay(true).expect("nodelay");
    drive_threads(1, duration, |id| {
        let mut request = [0u8; REQUEST_LEN];
        request[..8].copy_from_slice(&id.to_le_bytes());
        (&conn).write_all(&request).expect("floor write");
        let mut answer = [0u8; ANSWER_LEN];
        (&conn).read_exact(&mut answer).expect("floor read");
        let mut echoed = [0u8; 8];
        echoed.copy_from_slice(&answer[..8]);
        Receipt {
            id: u64::from_le_bytes(echoed),
            total: TOTAL,
        }
    })
}

/// Where the reader thread of [`handed_floor_run`] leaves an answer for
/// its task: one call is in flight, so one answer and one waker at most.
#[derive(Default)]
struct Slot {
    answer: Option<[u8; ANSWER_LEN]>,
    /// The task's waker, set while it waits.
    waker: Option<Waker>,
    /// The reader has hung up: the task panics rather than wait forever.
    closed: bool,
}

/// One task on a single-threaded tokio runtime making round trips to
/// `addr` for `duration`, one at a time: it writes each request itself;
/// a thread of its own reads each answer and wakes the task with it.
pub fn handed_floor_run(addr: SocketAddr, duration: Duration) -> Report {
    let conn = TcpStream::connect(addr).expect("floor connects");
    conn.set_nodelay(true).expect("nodelay");
    let slot = Arc::new(Mutex::new(Slot::default()));
    let reader = {
        let (mut conn, slot) = (conn.try_clone().expect("floor clone"), slot.clone());
        std::thread::spawn(move || {
            let mut answer = [0u8; ANSWER_LEN];
            let ok = loop {
                if conn.read_exact(&mut answer).is_err() {
                    break false;
                }
                let waker = {
                    let mut s = slot.lock().expect("slot");
                    s.answer = Some(answer);
                    s.waker.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            };
            let mut s = slot.lock().expect("slot");
            s.closed = !ok;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        })
    };
    let writer = Arc::new(conn.try_clone().expect("floor clone"));
    let report = drive(
        1,
        duration,
        || async { (writer, slot) },
        |(writer, slot): (Arc<TcpStream>, Arc<Mutex<Slot>>), id| async move {
            let mut request = [0u8; REQUEST_LEN];
            request[..8].copy_from_slice(&id.to_le_bytes());
            // 62 bytes into an empty send buffer: the write does not block.
            (&*writer).write_all(&request).expect("floor write");
            let answer = poll_fn(|cx| {
                let mut s = slot.lock().expect("slot");
                if let Some(a) = s.answer.take() {
                    return Poll::Ready(a);
                }
                assert!(!s.closed, "the floor's reader hung up");
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            let mut echoed = [0u8; 8];
            echoed.copy_from_slice(&answer[..8]);
            Receipt {
                id: u64::from_le_bytes(echoed),
                total: TOTAL,
            }
        },
    );
    let _ = conn.shutdown(Shutdown::Both);
    reader.join().expect("floor reader");
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_answer_carries_its_calls_id() {
        let server = FloorServer::start();
        // `drive_threads` checks every answer's id against its call's.
        let report = floor_run(server.addr, Duration::from_millis(50));
        assert!(report.calls > 0);
    }

    #[test]
    fn a_handed_answer_carries_its_calls_id() {
        let server = FloorServer::start();
        let report = handed_floor_run(server.addr, Duration::from_millis(50));
        assert!(report.calls > 0);
    }
}
