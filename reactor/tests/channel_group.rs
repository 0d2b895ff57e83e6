//! A `ChannelGroup` over real loopback connections: a broadcast reaches
//! every member, a member whose peer went away leaves by itself, and
//! closing the group closes the rest.

mod common;

use bytes::{Bytes, BytesMut};
use gyre_reactor::{ChannelGroup, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// Joins the group as it connects; reads nothing.
struct Member(Arc<ChannelGroup<Bytes>>);

impl InboundHandler for Member {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;
    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.0.add(ctx.handle());
    }
    fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}
}

fn until(what: &str, done: impl FnMut() -> bool) {
    assert!(common::eventually(Duration::from_secs(5), done), "{what}");
}

#[test]
fn a_broadcast_reaches_the_open_members_and_the_closed_leave_by_themselves() {
    let group = Arc::new(ChannelGroup::new());
    let joined = group.clone();
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new().inbound(Member(joined.clone()))
        })
        .unwrap();
    let mut clients: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(server.local_addr()).unwrap())
        .collect();
    for c in &clients {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    until("four members", || group.len() == 4);
    // One goes away: its channel closes, and it leaves the group.
    drop(clients.pop());
    until("the closed member left", || group.len() == 3);
    assert_eq!(group.write_and_flush(Bytes::from_static(b"news")), 3);
    for c in &mut clients {
        let mut got = [0; 4];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"news");
    }
    // Closing the group closes every member: each client reads the end.
    assert_eq!(group.close(), 3);
    for c in &mut clients {
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap(), 0);
    }
    until("an empty group", || group.is_empty());
    assert_eq!(group.write_and_flush(Bytes::from_static(b"late")), 0);
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
}
