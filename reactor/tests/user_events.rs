//! `ChannelHandle::fire_user_event` over real loopback connections: a
//! connection's handle gives the event to the first inbound handler, which
//! passes it along; a handle a handler made gives it to that handler
//! alone; events keep their place among the handle's writes; a closed
//! channel gives the event back.

use bytes::{Bytes, BytesMut};
use gyre_reactor::{
    Bootstrap, ChannelHandle, EventLoopGroup, InboundContext, InboundHandler, Pipeline, UserEvent,
};
use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// Reports each custom event it hears (`name:event`), hands out its own
/// handle when the channel opens, and passes every event on.
struct Hear {
    name: &'static str,
    heard: mpsc::Sender<String>,
    handles: Option<mpsc::Sender<ChannelHandle<Bytes>>>,
}

impl InboundHandler for Hear {
    type Read = BytesMut;
    type Pass = BytesMut;
    type Write = Bytes;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        if let Some(handles) = self.handles.take() {
            handles.send(ctx.handle()).unwrap();
        }
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        ctx.fire_read(msg);
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if let UserEvent::Custom(what) = &event {
            if let Some(what) = what.downcast_ref::<&'static str>() {
                self.heard.send(format!("{}:{what}", self.name)).unwrap();
            }
        }
        ctx.fire_user_event(event);
    }
}

fn event(what: &'static str) -> UserEvent {
    UserEvent::Custom(Box::new(what))
}

/// Two handlers, `first` then `second`; the second hands out its handle.
fn two_handlers(
    heard: &mpsc::Sender<String>,
    handles: mpsc::Sender<ChannelHandle<Bytes>>,
) -> Pipeline<impl gyre_reactor::InboundChain<BytesMut, Bytes, TailWrite = Bytes>> {
    Pipeline::new()
        .inbound(Hear {
            name: "first",
            heard: heard.clone(),
            handles: None,
        })
        .inbound(Hear {
            name: "second",
            heard: heard.clone(),
            handles: Some(handles),
        })
}

fn next(heard: &mpsc::Receiver<String>) -> String {
    heard
        .recv_timeout(Duration::from_secs(5))
        .expect("an event")
}

#[test]
fn events_reach_the_head_or_the_handler_that_made_the_handle() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let group = EventLoopGroup::new(1).unwrap();
    let (heard_tx, heard) = mpsc::channel();
    let (handles_tx, handles) = mpsc::channel();
    let connection = Bootstrap::new(group.clone())
        .connect(listener.local_addr().unwrap(), move |_| {
            two_handlers(&heard_tx, handles_tx.clone())
        })
        .unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let second = handles.recv_timeout(Duration::from_secs(5)).unwrap();

    connection
        .fire_user_event(event("from the connection"))
        .unwrap();
    assert_eq!(next(&heard), "first:from the connection");
    assert_eq!(next(&heard), "second:from the connection");

    second.fire_user_event(event("to the second")).unwrap();
    assert_eq!(
        next(&heard),
        "second:to the second",
        "the first never hears it"
    );

    // In order with the handle's writes: the bytes before the event are
    // on the wire by the time it is heard (one batch, flushed at its end,
    // so the write after it goes in the same flush).
    connection
        .write_and_flush(Bytes::from_static(b"before"))
        .unwrap();
    connection.fire_user_event(event("between")).unwrap();
    connection
        .write_and_flush(Bytes::from_static(b" after"))
        .unwrap();
    assert_eq!(next(&heard), "first:between");
    assert_eq!(next(&heard), "second:between");
    let mut got = [0u8; 12];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"before after");
    assert!(
        heard.try_recv().is_err(),
        "each event heard once per handler"
    );

    // Closed: the event comes back.
    connection.close().unwrap();
    let mut rest = Vec::new();
    peer.read_to_end(&mut rest).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let refused = loop {
        match connection.fire_user_event(event("late")) {
            Err(refused) => break refused,
            Ok(()) => {
                assert!(std::time::Instant::now() < deadline, "never refused");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    };
    let back = refused.into_inner().expect("the event given back");
    assert!(
        matches!(back, UserEvent::Custom(what) if what.downcast_ref::<&str>() == Some(&"late"))
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
}
