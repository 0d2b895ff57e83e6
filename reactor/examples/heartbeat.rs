//! Heartbeats with the idle-state handler: the server pings a client that
//! has been quiet (writer-idle) and closes one that stopped answering
//! (reader-idle). The client answers three pings, then goes silent.
//!
//! ```text
//! cargo run -p gyre-reactor --example heartbeat
//! ```

use bytes::Bytes;
use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
use gyre_reactor::{
    Bootstrap, EventLoopGroup, IdleState, IdleStateHandler, InboundContext, InboundHandler,
    Pipeline, ServerBootstrap, UserEvent,
};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Server side: ping on writer-idle, close on reader-idle.
struct Heartbeat {
    started: Instant,
}

impl InboundHandler for Heartbeat {
    type Read = Bytes;
    type Pass = ();
    type Write = &'static str;

    fn read(&mut self, _: &mut impl InboundContext<Self>, line: Bytes) {
        println!(
            "[{:>5} ms] server: got {:?}",
            self.started.elapsed().as_millis(),
            String::from_utf8_lossy(&line)
        );
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        let at = self.started.elapsed().as_millis();
        match event {
            UserEvent::Idle(e) if e.state == IdleState::WriterIdle => {
                println!("[{at:>5} ms] server: writer idle, sending PING");
                ctx.write_and_flush("PING");
            }
            UserEvent::Idle(e) if e.state == IdleState::ReaderIdle => {
                println!("[{at:>5} ms] server: reader idle, closing the connection");
                ctx.close();
            }
            other => ctx.fire_user_event(other),
        }
    }

    fn inactive(&mut self, _: &mut impl InboundContext<Self>) {
        println!(
            "[{:>5} ms] server: connection closed",
            self.started.elapsed().as_millis()
        );
    }
}

/// Client side: answers the first three pings, then plays dead.
struct Answer {
    left: usize,
    done: mpsc::Sender<()>,
}

impl InboundHandler for Answer {
    type Read = Bytes;
    type Pass = ();
    type Write = &'static str;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, _ping: Bytes) {
        if self.left > 0 {
            self.left -= 1;
            ctx.write_and_flush("PONG");
        }
    }

    fn inactive(&mut self, _: &mut impl InboundContext<Self>) {
        let _ = self.done.send(());
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let group = EventLoopGroup::new(1)?;
    let started = Instant::now();
    let server = ServerBootstrap::new()
        .group(group.clone())
        .bind("127.0.0.1:0", move |_| {
            Pipeline::new()
                .inbound(IdleStateHandler::new(
                    Duration::from_millis(1500), // reader idle: close
                    Duration::from_millis(500),  // writer idle: ping
                    Duration::ZERO,
                ))
                .codec(LineDecoder::new(64), LineEncoder::new(LineEnding::Lf))
                .inbound(Heartbeat { started })
        })?;
    println!("heartbeat server on {}", server.local_addr());
    let (done, closed) = mpsc::channel();
    let _client = Bootstrap::new(group.clone()).connect(server.local_addr(), move |_| {
        Pipeline::new()
            .codec(LineDecoder::new(64), LineEncoder::new(LineEnding::Lf))
            .inbound(Answer { left: 3, done })
    })?;
    closed.recv_timeout(Duration::from_secs(10))?;
    println!("client: the server hung up on us, as it should");
    server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(2));
    Ok(())
}
