//! The offload benchmark's two servers: 64-byte requests whose answers are
//! computed on a business thread, not on the I/O thread. Gyre runs one
//! event loop feeding one business stage through the offload stage (the
//! LMAX shape: the ring's owner stage moves each request out of its slot);
//! tokio runs the idiomatic design, a task per connection sending each
//! request over a `tokio::sync::mpsc` channel to a business thread that
//! answers through the connection's own channel, drained by a writer task.
//! Both have one I/O thread and one business thread, and both compute the
//! same answer into a fresh 64-byte buffer.

use crate::echo::servers::Running;
use bytes::{Bytes, BytesMut};
use std::time::Duration;

/// Bytes per request and per answer.
pub const SIZE: usize = 64;
/// Name prefix of gyre's server threads (loop and business stage).
pub const GYRE_THREADS: &str = "gyre-off";
/// Name prefix of tokio's server threads (worker and business thread).
pub const TOKIO_THREADS: &str = "tokio-off";

/// The business logic both servers run: an answer derived from every byte
/// of the request (a running FNV-1a hash, written out), so neither can skip
/// reading it.
pub fn answer(request: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(SIZE);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in request {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        out.extend_from_slice(&[(h >> 24) as u8]);
    }
    out.resize(SIZE, 0);
    out.freeze()
}

/// Gyre: one event loop, `FixedLengthDecoder` frames, the offload layer,
/// and a business stage that owns the events, waiting with `BlockingWait`
/// (the default: an idle business thread costs nothing).
pub fn gyre(transport: gyre_reactor::Transport) -> Running {
    gyre_with(transport, gyre_ringbuffer::BlockingWait::new())
}

/// As [`gyre`], the business stage waiting with `wait` (a phased back-off
/// spins and yields a little before it blocks, as the Disruptor's
/// low-latency configurations do).
pub fn gyre_with<Wt: gyre_ringbuffer::WaitStrategy + 'static>(
    transport: gyre_reactor::Transport,
    wait: Wt,
) -> Running {
    use gyre_codec::FixedLengthDecoder;
    use gyre_reactor::{EventLoopGroup, Job, OffloadStage, Pipeline, ServerBootstrap};
    use gyre_ringbuffer::{Disruptor, Stage};

    type Request = Job<Bytes, Bytes>;
    let graph = Disruptor::builder(4096, Request::default)
        .wait_strategy(wait)
        .thread_name_prefix("gyre-off-biz")
        .multi_producer()
        .expect("ring");
    let graph = graph.then_owner(
        Stage::owner(|job: &mut Request, _seq: i64, _end: bool| {
            let (Some(request), Some(reply)) = (job.take_message(), job.take_reply()) else {
                return;
            };
            let _ = reply.send(answer(&request));
        })
        .name("gyre-off-biz"),
    );
    let (producer, disruptor) = graph.start().expect("business stage");
    let stage = OffloadStage::new(producer);
    let group = EventLoopGroup::builder()
        .threads(1)
        .name("gyre-off-io")
        .transport(transport)
        .build()
        .expect("event loop");
    let server = ServerBootstrap::new()
        .group(group)
        .bind("127.0.0.1:0", move |_peer| {
            Pipeline::new()
                .decoder(FixedLengthDecoder::new(SIZE).expect("frame length"))
                .offload(stage.connection())
        })
        .expect("bind");
    Running::new(server.local_addr(), move || {
        server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
        disruptor.shutdown();
    })
}

/// The ceiling for any hand-off on this host: gyre's loop computing the
/// same answer itself, with no business thread. On a machine whose cores
/// are all busy (the load generator takes one of two), a business thread
/// can only add work to each message, never take it away, so no offload
/// design can beat this figure here.
pub fn gyre_inline(transport: gyre_reactor::Transport) -> Running {
    use gyre_codec::FixedLengthDecoder;
    use gyre_reactor::{EventLoopGroup, InboundContext, InboundHandler, Pipeline, ServerBootstrap};

    struct Answer;
    impl InboundHandler for Answer {
        type Read = Bytes;
        type Pass = ();
        type Write = Bytes;
        fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: Bytes) {
            ctx.write(answer(&msg));
        }
        fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
            ctx.flush();
        }
    }

    let group = EventLoopGroup::builder()
        .threads(1)
        .name("gyre-off-io")
        .transport(transport)
        .build()
        .expect("event loop");
    let server = ServerBootstrap::new()
        .group(group)
        .bind("127.0.0.1:0", move |_peer| {
            Pipeline::new()
                .decoder(FixedLengthDecoder::new(SIZE).expect("frame length"))
                .inbound(Answer)
        })
        .expect("bind");
    Running::new(server.local_addr(), move || {
        server.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
    })
}

/// tokio: a current-thread runtime on its own thread (one I/O thread), a
/// reader task and a writer task per connection, one business thread.
pub fn tokio() -> Running {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    let (jobs_tx, mut jobs_rx) = mpsc::channel::<(Bytes, mpsc::UnboundedSender<Bytes>)>(4096);
    let business = std::thread::Builder::new()
        .name("tokio-off-biz".into())
        .spawn(move || {
            while let Some((request, reply)) = jobs_rx.blocking_recv() {
                let _ = reply.send(answer(&request));
            }
        })
        .expect("business thread");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tokio-off-io")
        .enable_io()
        .build()
        .expect("tokio runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            let (mut rd, mut wr) = socket.into_split();
            let (reply_tx, mut reply_rx) = mpsc::unbounded_channel::<Bytes>();
            let jobs = jobs_tx.clone();
            tokio::spawn(async move {
                let mut buf = BytesMut::with_capacity(64 * 1024);
                loop {
                    match rd.read_buf(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    while buf.len() >= SIZE {
                        let request = buf.split_to(SIZE).freeze();
                        if jobs.send((request, reply_tx.clone())).await.is_err() {
                            return;
                        }
                    }
                    if buf.capacity() - buf.len() < 4096 {
                        buf.reserve(64 * 1024);
                    }
                }
            });
            tokio::spawn(async move {
                let mut out = Vec::with_capacity(64 * 1024);
                while let Some(answer) = reply_rx.recv().await {
                    out.extend_from_slice(&answer);
                    // Gather what else is ready into one write.
                    while let Ok(more) = reply_rx.try_recv() {
                        out.extend_from_slice(&more);
                    }
                    if wr.write_all(&out).await.is_err() {
                        return;
                    }
                    out.clear();
                }
            });
        }
    });
    Running::new(addr, move || {
        rt.shutdown_timeout(Duration::from_secs(5));
        let _ = business.join();
    })
}
