//! A panic in user code on an event loop (a handler, a pipeline factory, a
//! task) ends only what it belongs to: the panicking channel is closed,
//! the connection whose pipeline could not be made is dropped, the task is
//! dropped (a repeating one cancelled), and the loop and every other
//! channel on it go on, as Netty's loop outlives a handler's exception.
//! Before: the panic ended the loop thread, and with it every connection
//! it served and its share of the listener.

mod common;

use bytes::Bytes;
use common::{eventually, open_channels};
use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
use gyre_reactor::{InboundContext, InboundHandler, Pipeline, ServerBootstrap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Echoes each line, and panics on `boom`.
struct Touchy;

impl InboundHandler for Touchy {
    type Read = Bytes;
    type Pass = ();
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, line: Bytes) {
        assert!(&line[..] != b"boom", "the handler was told boom");
        ctx.write_and_flush(line);
    }
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    BufReader::new(s)
}

/// Sends `line` and reads the echo back.
fn echo(c: &mut BufReader<TcpStream>, line: &str) -> String {
    c.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let mut back = String::new();
    c.read_line(&mut back).unwrap();
    back
}

#[test]
fn a_panicking_handler_closes_its_channel_and_the_loop_serves_the_rest() {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    // One loop: every channel shares the loop that sees the panics.
    let server = ServerBootstrap::new()
        .group(common::group(1))
        .bind("127.0.0.1:0", move |_| {
            // The third pipeline asked for cannot be made.
            assert!(
                counter.fetch_add(1, Ordering::SeqCst) != 2,
                "no third pipeline"
            );
            Pipeline::new()
                .codec(LineDecoder::new(1024), LineEncoder::new(LineEnding::Lf))
                .inbound(Touchy)
        })
        .unwrap();
    let addr = server.local_addr();
    let mut calm = connect(addr);
    assert_eq!(echo(&mut calm, "hello"), "hello\n");

    // The panicking channel is closed: its client reads the end.
    let mut victim = connect(addr);
    victim.get_mut().write_all(b"boom\n").unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        victim.read_to_end(&mut rest).unwrap(),
        0,
        "closed, unanswered"
    );

    // The third connection's pipeline panicked: it is dropped.
    let mut dropped = connect(addr);
    let mut rest = Vec::new();
    assert_eq!(dropped.read_to_end(&mut rest).unwrap(), 0);

    // The same loop still serves the channel it had, and new ones.
    assert_eq!(echo(&mut calm, "still here"), "still here\n");
    let mut fresh = connect(addr);
    assert_eq!(echo(&mut fresh, "new"), "new\n");
    assert!(eventually(Duration::from_secs(5), || open_channels(
        &server
    ) == 2));

    // A task that panics, and a repeating one, on that loop.
    let lp = server.worker_group().loops()[0].clone();
    lp.execute(|| panic!("a task panicked")).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    lp.schedule_repeating(Duration::ZERO, Duration::from_millis(5), move || {
        r.fetch_add(1, Ordering::SeqCst);
        panic!("a repeating task panicked");
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "cancelled after its panic");
    let (tx, rx) = std::sync::mpsc::channel();
    lp.execute(move || tx.send(()).unwrap()).unwrap();
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the loop still runs tasks");
    assert_eq!(echo(&mut calm, "after tasks"), "after tasks\n");

    drop((calm, fresh));
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
