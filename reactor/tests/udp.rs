//! UDP datagram channels, on both transports (`GYRE_TRANSPORT`): a Gyre
//! server answers many std clients, each datagram whole and to its own
//! sender; writes under one flush go out as separate datagrams, empty and
//! largest ones included; a refused datagram does not end the channel; a
//! connected channel hears only its peer; idle events fire; closing and
//! graceful shutdown send what is queued first; a bind error names the
//! address; a datagram written to a stream channel is refused.

mod common;

use bytes::Bytes;
use gyre_reactor::{
    Bootstrap, ChannelOptions, Datagram, Error, IdleState, IdleStateHandler, InboundContext,
    InboundHandler, Outbound, Pipeline, ServerBootstrap, UserEvent,
};
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

/// Sends every datagram back to its sender, flushing per read batch.
struct Echo;

impl InboundHandler for Echo {
    type Read = Datagram;
    type Pass = ();
    type Write = Datagram;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, d: Datagram) {
        ctx.write(d);
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
    }
}

/// Hands every datagram and event to the test.
struct Tap(mpsc::Sender<Result<Datagram, String>>);

impl InboundHandler for Tap {
    type Read = Datagram;
    type Pass = ();
    type Write = Datagram;

    fn read(&mut self, _: &mut impl InboundContext<Self>, d: Datagram) {
        let _ = self.0.send(Ok(d));
    }

    fn user_event(&mut self, _: &mut impl InboundContext<Self>, ev: UserEvent) {
        let _ = self.0.send(Err(format!("{ev:?}")));
    }

    fn inactive(&mut self, _: &mut impl InboundContext<Self>) {
        let _ = self.0.send(Err("inactive".into()));
    }
}

fn client() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 70_000];
    let (n, from) = s.recv_from(&mut buf).expect("a datagram within 5 s");
    buf.truncate(n);
    (buf, from)
}

#[test]
fn a_udp_server_answers_each_sender_with_its_own_datagrams() {
    let group = common::group(1);
    let server = Bootstrap::new(group.clone())
        .bind_datagram("127.0.0.1:0", || Pipeline::datagram().inbound(Echo))
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "the real port is reported");
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            std::thread::spawn(move || {
                let s = client();
                for i in 0..200usize {
                    // Sizes from empty to 9 KiB, each with its own bytes.
                    let msg = vec![t.wrapping_mul(31).wrapping_add(i as u8); (i * 47) % 9000];
                    s.send_to(&msg, addr).unwrap();
                    let (back, from) = recv(&s);
                    assert_eq!(from, addr);
                    assert_eq!(back, msg, "client {t} datagram {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let m = group.metrics().unwrap();
    assert!(m.bytes_read > 0 && m.bytes_written == m.bytes_read, "{m:?}");
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// Writes `count` datagrams of the given sizes to whoever sends it
/// anything, under a single flush.
struct Burst(Vec<usize>);

impl InboundHandler for Burst {
    type Read = Datagram;
    type Pass = ();
    type Write = Datagram;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, d: Datagram) {
        for (i, &len) in self.0.iter().enumerate() {
            ctx.write(Datagram::new(vec![i as u8; len], d.peer));
        }
        ctx.flush();
    }
}

#[test]
fn writes_under_one_flush_go_out_as_separate_whole_datagrams() {
    let group = common::group(1);
    // Empty, tiny, and the largest IPv4 payload, among ordinary sizes.
    let sizes: Vec<usize> = (0..40).map(|i| [0, 1, 100, 1400, 65_507][i % 5]).collect();
    let server = Bootstrap::new(group.clone())
        .bind_datagram("127.0.0.1:0", {
            let sizes = sizes.clone();
            move || Pipeline::datagram().inbound(Burst(sizes))
        })
        .unwrap();
    let s = client();
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(8 << 20)
        .unwrap();
    s.send_to(b"go", server.local_addr()).unwrap();
    for (i, &len) in sizes.iter().enumerate() {
        let (got, _) = recv(&s);
        assert_eq!(
            got,
            vec![i as u8; len],
            "datagram {i}: one write, one datagram"
        );
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// A burst longer than the channel's bytes per event goes out over
/// several loop turns, every datagram whole and in order. The loop comes
/// back to the channel itself: on io_uring nothing else would (the
/// channel polls for room only once the socket is full; without the
/// re-write this test times out there), while epoll also reports a
/// writable edge as the kernel frees each sent datagram.
#[test]
fn a_burst_past_the_bytes_per_event_goes_out_over_several_turns() {
    let group = common::group(1);
    let sizes = vec![1000; 64];
    let server = Bootstrap::new(group.clone())
        .options(ChannelOptions::default().max_write_bytes_per_event(4096))
        .bind_datagram("127.0.0.1:0", {
            let sizes = sizes.clone();
            move || Pipeline::datagram().inbound(Burst(sizes))
        })
        .unwrap();
    let s = client();
    s.send_to(b"go", server.local_addr()).unwrap();
    for (i, &len) in sizes.iter().enumerate() {
        let (got, _) = recv(&s);
        assert_eq!(got, vec![i as u8; len], "datagram {i}");
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_datagram_the_socket_refuses_is_dropped_and_the_channel_goes_on() {
    let group = common::group(1);
    let (tx, rx) = mpsc::channel();
    let udp = Bootstrap::new(group.clone())
        .bind_datagram("127.0.0.1:0", move || Pipeline::datagram().inbound(Tap(tx)))
        .unwrap();
    let peer = client();
    let to = peer.local_addr().unwrap();
    // Larger than any UDP payload: the kernel refuses it (EMSGSIZE).
    udp.handle()
        .write(Datagram::new(vec![1u8; 70_000], to))
        .unwrap();
    udp.handle()
        .write_and_flush(Datagram::new(Bytes::from_static(b"after"), to))
        .unwrap();
    assert_eq!(recv(&peer).0, b"after");
    // The channel still reads, and the refused bytes left the queue (the
    // notice waits for every byte queued before it).
    peer.send_to(b"still here", udp.local_addr()).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!((&got.content[..], got.peer), (&b"still here"[..], to));
    let (done_tx, done_rx) = mpsc::channel();
    udp.handle()
        .flush_then(move |r| done_tx.send(r.is_ok()).unwrap())
        .unwrap();
    assert!(done_rx.recv_timeout(Duration::from_secs(5)).unwrap());
    assert!(udp.handle().is_open());
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_connected_channel_hears_only_its_peer_and_outlives_a_closed_port() {
    let group = common::group(1);
    let peer = client();
    let stranger = client();
    let (tx, rx) = mpsc::channel();
    let udp = Bootstrap::new(group.clone())
        .connect_datagram(peer.local_addr().unwrap(), move || {
            Pipeline::datagram().inbound(Tap(tx))
        })
        .unwrap();
    let local = udp.local_addr();
    stranger.send_to(b"not for you", local).unwrap();
    peer.send_to(b"for you", local).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(
        &got.content[..],
        b"for you",
        "the kernel filters other senders"
    );
    assert_eq!(got.peer, peer.local_addr().unwrap());
    // The peer goes away: sends to its closed port draw ICMP refusals,
    // which the channel notes and survives.
    let gone = peer.local_addr().unwrap();
    drop(peer);
    for _ in 0..3 {
        udp.handle()
            .write_and_flush(Datagram::new(Bytes::from_static(b"anyone?"), gone))
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(udp.handle().is_open());
    assert!(
        rx.try_recv().is_err(),
        "neither the stranger's datagram nor an error reached the pipeline"
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn a_connect_datagram_error_names_the_peer() {
    let group = common::group(1);
    // The broadcast address, without SO_BROADCAST: refused (EACCES).
    let bad: SocketAddr = "255.255.255.255:9".parse().unwrap();
    match Bootstrap::new(group.clone()).connect_datagram(bad, Pipeline::datagram) {
        Err(Error::Connect { addr, .. }) => assert_eq!(addr, bad),
        other => panic!("expected a connect error naming {bad}, got {other:?}"),
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn reader_idle_fires_on_a_quiet_udp_channel() {
    let group = common::group(1);
    let (tx, rx) = mpsc::channel();
    let udp = Bootstrap::new(group.clone())
        .bind_datagram("127.0.0.1:0", move || {
            Pipeline::datagram()
                .inbound(IdleStateHandler::<Datagram, Datagram>::new(
                    Duration::from_millis(100),
                    Duration::ZERO,
                    Duration::ZERO,
                ))
                .inbound(Tap(tx))
        })
        .unwrap();
    let c = client();
    c.send_to(b"x", udp.local_addr()).unwrap();
    assert_eq!(
        &rx.recv_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap()
            .content[..],
        b"x"
    );
    let event = rx
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .unwrap_err();
    assert!(
        event.contains(&format!("{:?}", IdleState::ReaderIdle)),
        "got {event}"
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn closing_sends_what_is_queued_then_goes_inactive() {
    let group = common::group(1);
    let (tx, rx) = mpsc::channel();
    let udp = Bootstrap::new(group.clone())
        .bind_datagram("127.0.0.1:0", move || Pipeline::datagram().inbound(Tap(tx)))
        .unwrap();
    let peer = client();
    let to = peer.local_addr().unwrap();
    for i in 0..50u8 {
        // Written, never flushed: the close delivers them.
        udp.handle().write(Datagram::new(vec![i; 10], to)).unwrap();
    }
    udp.handle().close().unwrap();
    for i in 0..50u8 {
        assert_eq!(recv(&peer).0, vec![i; 10]);
    }
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap_err(),
        "inactive"
    );
    assert!(common::eventually(Duration::from_secs(5), || !udp
        .handle()
        .is_open()));
    // The port is free again (on io_uring, once the cancelled poll's
    // completion has let the descriptor go: soon after inactive).
    assert!(
        common::eventually(Duration::from_secs(5), || UdpSocket::bind(udp.local_addr())
            .is_ok()),
        "the socket was closed"
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

#[test]
fn graceful_shutdown_closes_udp_channels() {
    let group = common::group(2);
    let (tx, rx) = mpsc::channel();
    let udp = Bootstrap::new(group.clone())
        .bind_datagram("127.0.0.1:0", move || Pipeline::datagram().inbound(Tap(tx)))
        .unwrap();
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap_err(),
        "inactive"
    );
    assert!(!udp.handle().is_open());
}

#[test]
fn a_bind_error_names_the_address() {
    let group = common::group(1);
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    match Bootstrap::new(group.clone()).bind_datagram(addr, Pipeline::datagram) {
        Err(e @ Error::Bind { .. }) => {
            assert!(e.to_string().contains(&addr.to_string()), "{e}");
        }
        other => panic!("expected a bind error, got {other:?}"),
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// On a TCP channel, writes a datagram where bytes belong.
struct Misdirected(mpsc::Sender<String>);

impl InboundHandler for Misdirected {
    type Read = bytes::BytesMut;
    type Pass = ();
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: bytes::BytesMut) {
        let peer = ctx.channel().peer_addr().unwrap();
        ctx.write_and_flush(Outbound::Datagram(Datagram::new(
            Bytes::from_static(b"x"),
            peer,
        )));
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        let _ = self.0.send(error.to_string());
        ctx.close();
    }
}

#[test]
fn a_datagram_written_to_a_stream_channel_is_an_error() {
    let (tx, rx) = mpsc::channel();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::with_file_regions().inbound(Misdirected(tx.clone()))
        })
        .unwrap();
    let mut c = std::net::TcpStream::connect(server.local_addr()).unwrap();
    std::io::Write::write_all(&mut c, b"hi").unwrap();
    let error = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        error.contains("datagram cannot be sent on a stream"),
        "{error}"
    );
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// Multicast over the loopback interface: a channel bound to `0.0.0.0`
/// hears a group once it joins it and not once it leaves; a channel sends
/// to a group by the interface it is set to; membership calls on a closed
/// channel fail rather than hang. (Loopback multicast needs `lo` to take
/// memberships, as Linux's does.)
#[test]
fn a_channel_joins_and_leaves_a_multicast_group_and_sends_to_one() {
    use std::net::Ipv4Addr;
    let lan = Ipv4Addr::new(239, 255, 42, 7);
    let lo = Ipv4Addr::LOCALHOST;
    let group = common::group(1);
    let (tx, rx) = mpsc::channel();
    let member = Bootstrap::new(group.clone())
        .bind_datagram("0.0.0.0:0", move || Pipeline::datagram().inbound(Tap(tx)))
        .unwrap();
    let port = member.local_addr().port();
    let next = || match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(d)) => d.content,
        other => panic!("no datagram: {other:?}"),
    };
    member.join_multicast_v4(lan, lo).unwrap();

    // A std sender to the group, out by the loopback interface.
    let sender = client();
    let sender_socket = socket2::SockRef::from(&sender);
    sender_socket.set_multicast_if_v4(&lo).unwrap();
    sender_socket.set_multicast_loop_v4(true).unwrap();
    sender.send_to(b"to the group", (lan, port)).unwrap();
    assert_eq!(&next()[..], b"to the group");

    // A Gyre sender to the group, set to the loopback interface.
    let gyre_sender = Bootstrap::new(group.clone())
        .bind_datagram("127.0.0.1:0", Pipeline::datagram)
        .unwrap();
    gyre_sender.set_multicast_interface_v4(lo).unwrap();
    gyre_sender.set_multicast_loop_v4(true).unwrap();
    gyre_sender.set_multicast_ttl_v4(1).unwrap();
    let to_group = SocketAddr::from((lan, port));
    gyre_sender
        .handle()
        .write_and_flush(Datagram::new(Bytes::from_static(b"from gyre"), to_group))
        .unwrap();
    assert_eq!(&next()[..], b"from gyre");

    // Left: the group's next datagram does not arrive, the unicast one
    // sent after it does.
    member.leave_multicast_v4(lan, lo).unwrap();
    sender.send_to(b"not heard", (lan, port)).unwrap();
    sender.send_to(b"unicast", (lo, port)).unwrap();
    assert_eq!(&next()[..], b"unicast");
    let err = member.leave_multicast_v4(lan, lo).unwrap_err();
    assert!(
        err.to_string()
            .contains("leaving 239.255.42.7 on 127.0.0.1"),
        "{err}"
    );

    // Closed: refused, not hung.
    member.handle().close().unwrap();
    common::eventually(Duration::from_secs(5), || !member.handle().is_open());
    match member.join_multicast_v4(lan, lo) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::NotConnected, "{e}"),
        // The close may have reached the loop after the check above.
        Err(Error::LoopShutDown) => panic!("the loop is running"),
        other => panic!("{other:?}"),
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}

/// A datagram and the type-of-service byte it arrived with (`IP_RECVTOS`
/// must be on for `s`).
fn recv_with_tos(s: &UdpSocket) -> (Vec<u8>, Option<u8>) {
    use std::os::fd::AsRawFd;
    let mut data = vec![0u8; 2048];
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: zeroed is a valid msghdr (null name, no iovecs) before the
    // fields below point it at live buffers of the lengths given.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `data` and `control`, which outlive the call;
    // the socket is open (and blocking, with the test's read timeout).
    let n = unsafe { libc::recvmsg(s.as_raw_fd(), &mut msg, 0) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    data.truncate(n as usize);
    let mut tos = None;
    // SAFETY: the kernel filled `control` up to `msg_controllen`; the
    // CMSG macros walk only within it, and IP_TOS carries one byte.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_TOS {
                tos = Some(*libc::CMSG_DATA(c));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    (data, tos)
}

/// `ChannelOptions::ip_tos` marks what a UDP channel sends, and
/// `broadcast` lets it send to a broadcast address, which the kernel
/// refuses a channel without it (dropped, the channel going on).
#[test]
fn the_type_of_service_marks_datagrams_and_broadcast_lets_them_reach_everyone() {
    let receiver = UdpSocket::bind("0.0.0.0:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket2::SockRef::from(&receiver)
        .set_recv_tos_v4(true)
        .unwrap();
    let port = receiver.local_addr().unwrap().port();
    let everyone = SocketAddr::from(([127, 255, 255, 255], port));
    let unicast = SocketAddr::from(([127, 0, 0, 1], port));
    let group = common::group(1);
    let open = |opts: ChannelOptions| {
        Bootstrap::new(group.clone())
            .options(opts)
            .bind_datagram("127.0.0.1:0", Pipeline::datagram)
            .unwrap()
    };
    let send = |udp: &gyre_reactor::BoundDatagram<Datagram>, text: &'static str, to| {
        udp.handle()
            .write_and_flush(Datagram::new(Bytes::from_static(text.as_bytes()), to))
            .unwrap();
    };
    let marked = open(ChannelOptions::default().ip_tos(0xb8).broadcast(true));
    send(&marked, "to everyone", everyone);
    assert_eq!(
        recv_with_tos(&receiver),
        (b"to everyone".to_vec(), Some(0xb8))
    );
    let plain = open(ChannelOptions::default());
    send(&plain, "refused", everyone);
    send(&plain, "unicast", unicast);
    assert_eq!(recv_with_tos(&receiver), (b"unicast".to_vec(), Some(0)));
    assert!(
        plain.handle().is_open(),
        "a refused datagram does not end the channel"
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
}
