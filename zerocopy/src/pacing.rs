//! A TCP socket whose peer is on this host, taken off a congestion
//! control that paces (BBR) for bulk sends.
//!
//! Why: BBR sends at the rate it has measured, pacing each burst of
//! segments with a timer. Over loopback there is no path to measure, and
//! a bulk sender whose CPU is the limit (a file sent with `sendfile` or
//! `splice`, or a copy loop) measures its own paced rate and keeps it: a
//! timer per 64 KiB burst, each one leaving a VM, lowers the rate the CPU
//! allows, which is what BBR measures next. On the Intel Xeon VMs this
//! project runs on, whose default is BBR, most loopback connections
//! sending a 1 GiB file ran at 2.5-3.4 GiB/s and 0.3-0.4 s of CPU per GiB
//! and the rest at 9-18 GiB/s and 0.05-0.06, with nothing but the
//! connection changed; under `reno` or `cubic` every one ran at 13-18
//! (BENCHMARKS.md, issue 22, twenty-ninth and fifty-third sessions).
//! `reno` is the one taken: every process may set it, and it does not
//! pace. A peer elsewhere keeps the host's choice, which is made for its
//! path. `gyre-reactor`'s channels do this themselves at their first long
//! file send; this is for a socket of your own.
//!
//! Uses `socket2` on a borrowed descriptor; knows nothing of files.

use socket2::SockRef;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

/// What a socket to a local peer leaves a pacing congestion control for.
const UNPACED: &[u8] = b"reno";

/// If `socket` is a TCP socket connected to a peer on this host (a
/// loopback address, or the socket's own address) and runs a congestion
/// control that paces its sends (BBR), moves it to `reno`; returns
/// whether it did. Any other socket (a peer elsewhere, another
/// congestion control, a Unix socket) is left as it is (`Ok(false)`).
/// Errors name the option the kernel refused, with the system's error
/// kind kept.
///
/// Call it before a long send (as with [`Cork`](crate::Cork)); the
/// change stays with the socket, which loses nothing by it: a local peer
/// has no congestion to control.
///
/// ```
/// use gyre_zerocopy::unpace_local;
/// use std::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let socket = TcpStream::connect(listener.local_addr()?)?;
/// let moved = unpace_local(&socket)?;
/// // Moved only where the host's congestion control is BBR.
/// let host = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")?;
/// assert_eq!(moved, host.starts_with("bbr"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn unpace_local(socket: &impl AsFd) -> io::Result<bool> {
    let sock = SockRef::from(socket);
    let addrs = (sock.local_addr(), sock.peer_addr());
    let (Ok(local), Ok(peer)) = addrs else {
        return Ok(false); // not connected
    };
    let (Some(local), Some(peer)) = (local.as_socket(), peer.as_socket()) else {
        return Ok(false); // not an internet socket
    };
    if !on_this_host(local.ip(), peer.ip()) {
        return Ok(false);
    }
    leave_pacing(socket)
}

/// If `socket` is a TCP socket (listening, connected or not yet either)
/// running a congestion control that paces its sends (BBR), moves it to
/// `reno`; returns whether it did. For a socket all of whose peers are
/// on this host: a listener bound to a loopback address (its accepted
/// sockets inherit `reno`), or one about to connect to one. Better
/// before the connection is made than after: the kernel keeps a socket
/// that ran BBR pacing under the next congestion control too, at that
/// one's rate, where one that never ran BBR does not pace at all (a
/// 1 GiB `sendfile` to a slow local reader on the Intel Xeon VM: 0.16-0.20
/// s of sender CPU switched after the connection, 0.05-0.06 never BBR).
/// Errors as [`unpace_local`]'s; a socket that is not TCP is `Ok(false)`.
///
/// ```
/// use gyre_zerocopy::leave_pacing;
/// use std::net::TcpListener;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let moved = leave_pacing(&listener)?;
/// let host = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")?;
/// assert_eq!(moved, host.starts_with("bbr"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn leave_pacing(socket: &impl AsFd) -> io::Result<bool> {
    let sock = SockRef::from(socket);
    let name = match sock.tcp_congestion() {
        Ok(name) => name,
        // Not TCP (a UDP or Unix socket).
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOPROTOOPT | libc::EOPNOTSUPP)) => {
            return Ok(false)
        }
        Err(e) => return Err(named(e, "read TCP_CONGESTION", socket)),
    };
    if !paces(&name) {
        return Ok(false);
    }
    sock.set_tcp_congestion(UNPACED)
        .map_err(|e| named(e, "set TCP_CONGESTION \"reno\"", socket))?;
    Ok(true)
}

/// Whether a congestion control, by the kernel's name for it (padded
/// with NULs or not), paces its sends itself: BBR and its later versions
/// do; the others leave pacing to a qdisc, which loopback has none of.
fn paces(name: &[u8]) -> bool {
    name.starts_with(b"bbr")
}

/// Whether a peer at `peer` is on this host, seen from a socket bound to
/// `local`: a loopback address, or the socket's own (IPv4-mapped IPv6
/// addresses taken as the IPv4 ones).
fn on_this_host(local: IpAddr, peer: IpAddr) -> bool {
    let peer = peer.to_canonical();
    peer.is_loopback() || peer == local.to_canonical()
}

/// `e`, naming what failed and the descriptor, as [`Cork`](crate::Cork)'s
/// errors do.
fn named(e: io::Error, what: &str, socket: &impl AsFd) -> io::Error {
    let fd = socket.as_fd().as_raw_fd();
    io::Error::new(e.kind(), format!("cannot {what} on descriptor {fd}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_on_this_host_is_a_loopback_address_or_the_sockets_own() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let local = ip("10.0.0.5");
        assert!(on_this_host(local, ip("127.0.0.1")));
        assert!(on_this_host(local, ip("127.8.9.10")));
        assert!(on_this_host(ip("::1"), ip("::1")));
        assert!(on_this_host(ip("::ffff:10.0.0.5"), ip("::ffff:127.0.0.1")));
        assert!(on_this_host(local, ip("10.0.0.5")), "its own address");
        assert!(on_this_host(ip("::ffff:10.0.0.5"), ip("10.0.0.5")));
        assert!(!on_this_host(local, ip("10.0.0.6")));
        assert!(!on_this_host(ip("fe80::1"), ip("2001:db8::1")));
    }

    #[test]
    fn only_bbr_paces() {
        assert!(paces(b"bbr\0\0\0\0\0\0\0\0\0\0\0\0\0"));
        assert!(paces(b"bbr3"));
        for name in [&b"cubic"[..], b"reno", b"dctcp", b""] {
            assert!(!paces(name));
        }
    }

    /// Sockets that are not a local TCP connection are left alone.
    #[test]
    fn unix_udp_and_unconnected_sockets_are_left_alone() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(!unpace_local(&a).unwrap());
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(!unpace_local(&udp).unwrap(), "unconnected");
        udp.connect(udp.local_addr().unwrap()).unwrap();
        assert!(!unpace_local(&udp).unwrap(), "UDP");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(!unpace_local(&listener).unwrap(), "a listener");
        assert!(!leave_pacing(&a).unwrap(), "leave_pacing: Unix");
        assert!(!leave_pacing(&udp).unwrap(), "leave_pacing: UDP");
    }

    /// A loopback connection running BBR goes to `reno`; one running
    /// anything else stays. Where the kernel has no BBR only the second
    /// half can be checked.
    #[test]
    fn a_loopback_connection_leaves_bbr_for_reno_and_keeps_anything_else() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let connect = |cc: &[u8]| {
            let s = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let set = SockRef::from(&s).set_tcp_congestion(cc);
            (s, set.is_ok())
        };
        let running = |s: &std::net::TcpStream| SockRef::from(s).tcp_congestion().unwrap();
        let (reno, _) = connect(b"reno");
        assert!(!unpace_local(&reno).unwrap());
        assert!(running(&reno).starts_with(b"reno"));
        let (bbr, has_bbr) = connect(b"bbr");
        if has_bbr {
            assert!(unpace_local(&bbr).unwrap());
            assert!(running(&bbr).starts_with(b"reno"));
            assert!(!unpace_local(&bbr).unwrap(), "once is enough");
        } else {
            eprintln!("no BBR in this kernel: only the other half is checked");
        }
    }
}
