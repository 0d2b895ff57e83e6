//! `ChannelOptions::tcp_congestion`: accepted and connected TCP channels
//! run the congestion control asked for, channels without it keep the
//! host's default, and a name the kernel refuses fails `bind`,
//! `bind_listener` and `connect` with an error naming the option. The
//! sockets are looked up among this process's descriptors by their
//! addresses (the server runs in the test's process), so nothing is added
//! to the API to see them.
//! Runs on the transport `GYRE_TRANSPORT` names.

mod common;

use gyre_reactor::{Bootstrap, ChannelOptions, Pipeline, ServerBootstrap};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The host's default congestion control.
fn host_default() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
        .expect("net.ipv4.tcp_congestion_control")
        .trim()
        .to_owned()
}

/// An algorithm this process can set that is not the host's default:
/// `reno` (which every process may set) unless that is the default, then
/// another allowed one, then any the kernel has (which a process with
/// `CAP_NET_ADMIN` may set), each tried on a socket of its own.
fn not_the_default() -> String {
    let default = host_default();
    let list = |name: &str| std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"));
    let (allowed, available) = (
        list("tcp_allowed_congestion_control").unwrap_or_default(),
        list("tcp_available_congestion_control").unwrap_or_default(),
    );
    let settable = |name: &&str| {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&probe)
            .set_tcp_congestion(name.as_bytes())
            .is_ok()
    };
    std::iter::once("reno")
        .chain(allowed.split_whitespace())
        .chain(available.split_whitespace())
        .filter(|name| *name != default)
        .find(settable)
        .unwrap_or_else(|| panic!("this process can set no algorithm but {default:?}"))
        .to_owned()
}

/// `getsockname` (or `getpeername`) of descriptor `fd` as an IPv4
/// address, if it is an IPv4 socket.
fn inet_name(fd: i32, peer: bool) -> Option<SocketAddr> {
    // SAFETY: a zeroed `sockaddr_in` is a valid value of it.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    let out = (&mut addr as *mut libc::sockaddr_in).cast();
    // SAFETY: `out` points at `len` writable bytes that outlive the call;
    // on a number that is no longer (or never was) a socket the call fails
    // and writes nothing.
    let rc = unsafe {
        if peer {
            libc::getpeername(fd, out, &mut len)
        } else {
            libc::getsockname(fd, out, &mut len)
        }
    };
    if rc != 0 || addr.sin_family != libc::AF_INET as libc::sa_family_t {
        return None;
    }
    let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    Some(SocketAddr::from((ip, u16::from_be(addr.sin_port))))
}

/// The congestion control of this process's TCP socket bound to `local`
/// and connected to `peer`. Only raw descriptor numbers are used, never
/// owned: another test's socket closing meanwhile fails a call (and is
/// passed over) or, reused, fails the address check.
fn congestion_of(local: SocketAddr, peer: SocketAddr) -> Option<String> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()? {
        let Some(fd) = entry
            .ok()
            .and_then(|e| e.file_name().to_str()?.parse::<i32>().ok())
        else {
            continue;
        };
        if inet_name(fd, false) != Some(local) || inet_name(fd, true) != Some(peer) {
            continue;
        }
        let mut name = [0u8; 16];
        let mut len = name.len() as libc::socklen_t;
        // SAFETY: `name` is `len` writable bytes that outlive the call.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_CONGESTION,
                name.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc == 0 {
            let name = &name[..len as usize];
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            return Some(String::from_utf8_lossy(&name[..end]).into_owned());
        }
    }
    None
}

/// How a test server gets its listener.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bind {
    /// `bind`: one listener.
    Plain,
    /// `bind` with `reuse_port`: one listener per loop.
    ReusePort,
    /// `bind_listener`: one of the caller's.
    Listener,
}

/// The server side's congestion control for a client connected to a
/// server whose children run `opts`, once the server has accepted it.
fn accepted_congestion(opts: ChannelOptions, how: Bind) -> Option<String> {
    let bootstrap = ServerBootstrap::new()
        .group(common::group(1))
        .listen_options(gyre_reactor::ListenOptions::default().reuse_port(how == Bind::ReusePort))
        .child_options(opts);
    let init = |_| Pipeline::new().inbound(common::Echo);
    let server = match how {
        Bind::Listener => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            bootstrap.bind_listener(listener, init)
        }
        _ => bootstrap.bind("127.0.0.1:0", init),
    }
    .unwrap();
    let client = TcpStream::connect(server.local_addr()).unwrap();
    common::check_echo_on(&client);
    let (ours, theirs) = (client.peer_addr().unwrap(), client.local_addr().unwrap());
    let found = congestion_of(ours, theirs);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    found
}

#[test]
fn accepted_channels_run_the_congestion_control_asked_for() {
    let wanted = not_the_default();
    for how in [Bind::Plain, Bind::ReusePort, Bind::Listener] {
        let opts = ChannelOptions::default().tcp_congestion(wanted.clone());
        let found = accepted_congestion(opts, how);
        assert_eq!(found.as_deref(), Some(wanted.as_str()), "{how:?}");
    }
}

#[test]
fn channels_left_alone_keep_the_hosts_default() {
    let found = accepted_congestion(ChannelOptions::default(), Bind::Plain);
    assert_eq!(found, Some(host_default()));
}

#[test]
fn a_client_channel_runs_it_too() {
    let wanted = not_the_default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The group is kept: its last handle dropped shuts its loop down,
    // which closes the channel.
    let group = common::group(1);
    let client = Bootstrap::new(group.clone())
        .options(ChannelOptions::default().tcp_congestion(wanted.clone()))
        .connect(addr, |_| Pipeline::new().inbound(common::Echo))
        .unwrap();
    let (accepted, from) = listener.accept().unwrap();
    assert_eq!(congestion_of(from, addr).as_deref(), Some(wanted.as_str()));
    drop((client, accepted, group));
}

#[test]
fn a_name_the_kernel_refuses_fails_bind_bind_listener_and_connect_naming_the_option() {
    let opts = ChannelOptions::default().tcp_congestion("no-such-cc");
    for reuse_port in [false, true] {
        let err = ServerBootstrap::new()
            .group(common::group(1))
            .listen_options(gyre_reactor::ListenOptions::default().reuse_port(reuse_port))
            .child_options(opts.clone())
            .bind("127.0.0.1:0", |_| Pipeline::new().inbound(common::Echo))
            .expect_err("bind must fail");
        let text = err.to_string();
        assert!(text.contains("127.0.0.1:0"), "{text}");
        assert!(text.contains("TCP_CONGESTION \"no-such-cc\""), "{text}");
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let err = ServerBootstrap::new()
        .group(common::group(1))
        .child_options(opts.clone())
        .bind_listener(listener.try_clone().unwrap(), |_| {
            Pipeline::new().inbound(common::Echo)
        })
        .expect_err("bind_listener must fail");
    let text = err.to_string();
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(text.contains("TCP_CONGESTION \"no-such-cc\""), "{text}");
    let err = Bootstrap::new(common::group(1))
        .options(opts)
        .connect(addr, |_| Pipeline::new().inbound(common::Echo))
        .expect_err("connect must fail");
    let text = err.to_string();
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(text.contains("TCP_CONGESTION \"no-such-cc\""), "{text}");
}

/// The congestion control of the server's side of a connection to a
/// server whose listener runs `listener_cc` (set on the listener itself,
/// which the options do not know of, as a host's default would be) and
/// whose children run `opts`, after it has sent the client a file of
/// `len` bytes; `None` if the kernel refused `listener_cc`.
fn congestion_after_a_file(listener_cc: &str, opts: ChannelOptions, len: usize) -> Option<String> {
    use std::io::{Read, Write};
    let dir = std::env::temp_dir().join(format!("gyre-cc-file-{}-{len}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("file");
    std::fs::write(&path, vec![b'f'; len]).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&listener)
        .set_tcp_congestion(listener_cc.as_bytes())
        .ok()?;
    let file = path.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .child_options(opts)
        .bind_listener(listener, move |_| {
            Pipeline::with_file_regions().inbound(common::SendFile(file.clone()))
        })
        .unwrap();
    let mut client = TcpStream::connect(server.local_addr()).unwrap();
    client.write_all(b"?").unwrap();
    let mut got = vec![0u8; len];
    client.read_exact(&mut got).unwrap();
    assert!(got.iter().all(|&b| b == b'f'));
    let (ours, theirs) = (client.peer_addr().unwrap(), client.local_addr().unwrap());
    let found = congestion_of(ours, theirs);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
    found
}

#[test]
fn a_long_file_to_a_local_peer_leaves_bbr_for_reno_unless_the_options_keep_it() {
    let long = 1 << 20;
    let Some(moved) = congestion_after_a_file("bbr", ChannelOptions::default(), long) else {
        // No BBR here: a congestion control that does not pace is kept.
        let other = not_the_default();
        let kept = congestion_after_a_file(&other, ChannelOptions::default(), long);
        assert_eq!(kept.as_deref(), Some(other.as_str()));
        eprintln!(
            "no BBR in this kernel: only a congestion control that does not pace was checked"
        );
        return;
    };
    assert_eq!(moved, "reno", "a long file to a loopback peer");
    let kept = ChannelOptions::default().pace_local_file_sends(true);
    assert_eq!(
        congestion_after_a_file("bbr", kept, long).as_deref(),
        Some("bbr")
    );
    // A file of a pipeful or less is no bulk send: nothing changes.
    let short = congestion_after_a_file("bbr", ChannelOptions::default(), 16 << 10);
    assert_eq!(short.as_deref(), Some("bbr"));
}
