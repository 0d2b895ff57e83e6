//! A server at its descriptor limit: connections that arrive while accept
//! fails with EMFILE wait in the backlog and are accepted once descriptors
//! free up, without any new connection arriving to wake the listener. Its
//! own test binary, because it lowers this process's open-file limit.
//! Runs on the transport `GYRE_TRANSPORT` names.

mod common;

use gyre_reactor::ChannelOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// CPU time (user and system) this process has used.
fn process_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, &mut usage), 0);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

use gyre_testkit::highest_fd;

#[test]
fn connections_queued_at_emfile_are_accepted_once_descriptors_free_up() {
    // Lowered before the server starts: io_uring takes the limit when an
    // accept is queued, as a process started under `ulimit -n` would.
    let old = gyre_reactor::set_open_file_limit(highest_fd() + 200).unwrap();
    let (server, counters) = common::echo_server(1, ChannelOptions::default());
    let addr = server.local_addr();
    // Thirty connections to hold the server's descriptors.
    let mut held: Vec<TcpStream> = (0..30).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(common::eventually(Duration::from_secs(5), || {
        counters.active.load(std::sync::atomic::Ordering::SeqCst) == 30
    }));
    // Twenty more sockets made now, connected once no descriptor is left.
    let waiting: Vec<socket2::Socket> = (0..20)
        .map(|_| socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap())
        .collect();
    // Take every descriptor left below the limit.
    let mut fillers = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        fillers.push(f);
    }
    let mut waiting: Vec<TcpStream> = waiting
        .into_iter()
        .map(|s| {
            // The kernel completes the handshake; the server's accept fails.
            s.connect(&addr.into()).unwrap();
            s.into()
        })
        .collect();
    // Retries on a timer, not a spin: the process is nearly idle meanwhile
    // (a loop re-arming a failing accept at once would burn a whole core).
    let cpu = process_cpu();
    std::thread::sleep(Duration::from_millis(600));
    let spent = process_cpu() - cpu;
    assert!(
        spent < Duration::from_millis(150),
        "{spent:?} of CPU in 600 ms while accept kept failing"
    );
    assert_eq!(
        counters.active.load(std::sync::atomic::Ordering::SeqCst),
        30,
        "nothing accepted while out of descriptors"
    );
    let m = server.metrics().unwrap();
    assert!(m.refused_accepts > 0, "the refusals are counted: {m:?}");
    assert_eq!(m.accepted, 30);
    // Free twenty descriptors on each side; no new connection arrives.
    let freed: Vec<i32> = held.drain(..20).map(|s| s.as_raw_fd()).collect();
    assert_eq!(freed.len(), 20);
    assert!(common::eventually(Duration::from_secs(10), || {
        counters.inactive.load(std::sync::atomic::Ordering::SeqCst) == 20
    }));
    for (i, s) in waiting.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"queued").unwrap();
        let mut back = [0u8; 6];
        s.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("queued connection {i} never served: {e}"));
        assert_eq!(&back, b"queued");
    }
    assert_eq!(server.metrics().unwrap().accepted, 50);
    gyre_reactor::set_open_file_limit(old).unwrap();
    drop(fillers);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
