//! The glue that gives a loop a connection: a socket and the pipeline made
//! for it become one `ChannelTask`, which the loop then drives through its
//! `ChannelOps` interface without knowing the pipeline's type. The only
//! generic code on a loop's path sits here, above the loop, the channel and
//! the pipeline, and uses all three.

use crate::chain::InboundChain;
use crate::channel::task::{ChannelTask, Connect};
use crate::channel::CONNECT_TIMER;
use crate::connection_cap::CapSlot;
use crate::datagram::FromSocket;
use crate::event_loop::LoopInner;
use crate::handle::ChannelHandle;
use crate::loop_handle::EventLoop;
use crate::options::ChannelOptions;
use crate::outbound::Outbound;
use crate::pipeline::Pipeline;
use crate::socket::Stream;
use bytes::BytesMut;
use mio::Token;
use std::sync::Arc;
use std::time::Duration;

impl LoopInner {
    /// Registers an accepted connection and runs its pipeline's `active`.
    pub(crate) fn add_accepted<L, S>(
        &mut self,
        stream: Stream,
        slot: Option<CapSlot>,
        opts: Arc<ChannelOptions>,
        pipeline: L,
    ) where
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
    {
        self.add_stream::<L, S>(stream, slot, opts, pipeline, false);
    }

    /// [`add_accepted`](Self::add_accepted), returning the channel's token
    /// and, with `tail_handle`, a handle made before its `active` runs,
    /// whose writes enter at the pipeline's tail and whose user events at
    /// its head (what a connect returns); `None` if the socket was
    /// refused (logged).
    pub(crate) fn add_stream<L, S>(
        &mut self,
        stream: Stream,
        slot: Option<CapSlot>,
        opts: Arc<ChannelOptions>,
        pipeline: L,
        tail_handle: bool,
    ) -> Option<(Token, Option<ChannelHandle<L::TailWrite>>)>
    where
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
    {
        if let Err(e) = opts.apply(socket2::SockRef::from(&stream), stream.is_tcp()) {
            tracing::warn!(error = %e, "could not apply socket options; dropping connection");
            return None;
        }
        let token = self.vacant();
        let mut task =
            ChannelTask::<L, S>::accepted(stream, token, opts, pipeline, self.local.now());
        task.hold_cap_slot(slot);
        if let Err(e) = task.register(&mut self.local) {
            tracing::warn!(error = %e, "could not register connection; dropping it");
            self.release(token);
            return None;
        }
        let handle = tail_handle.then(|| task.tail_handle(&self.local));
        tracing::debug!(peer = ?task.channel().peer_addr(), "channel active");
        self.install(token, Box::new(task));
        self.counts.accepted += 1;
        self.dispatch(token, |ch, lp| ch.activate(lp));
        Some((token, handle))
    }

    /// Registers a connecting client channel (or a UDP socket, which is
    /// ready at its first writable poll; its pipeline reads `M`); its
    /// outcome is sent on `connect.reply`.
    pub(crate) fn add_connecting<L, S, M>(
        &mut self,
        stream: Stream,
        opts: Arc<ChannelOptions>,
        pipeline: L,
        connect: Connect<L::TailWrite>,
    ) where
        L: InboundChain<M, S> + 'static,
        S: Into<Outbound> + 'static,
        M: FromSocket,
        L::TailWrite: 'static,
    {
        let token = self.vacant();
        let timeout = Duration::from_millis(connect.timeout_ms);
        let mut task = ChannelTask::<L, S, M>::connecting(
            stream,
            token,
            opts,
            pipeline,
            self.local.now(),
            connect,
        );
        if let Err(e) = task.register(&mut self.local) {
            self.release(token);
            task.fail_connect(e);
            return;
        }
        let id = self
            .local
            .schedule_for_channel(token, CONNECT_TIMER, 0, timeout, None);
        task.set_connect_timer(id);
        self.install(token, Box::new(task));
        self.counts.connected += 1;
    }
}

impl EventLoop {
    /// Hands an accepted connection to this loop with a pipeline made on the
    /// loop's thread by `init`.
    pub(crate) fn adopt<F, L, R, W, S>(
        &self,
        stream: Stream,
        slot: Option<CapSlot>,
        opts: Arc<ChannelOptions>,
        init: Arc<F>,
    ) where
        F: Fn(&Stream) -> Option<Pipeline<L, R, W, S>> + Send + Sync + 'static,
        L: InboundChain<BytesMut, S> + 'static,
        S: Into<Outbound> + 'static,
        R: 'static,
        W: 'static,
    {
        let _ = self.execute_inner(move |inner| {
            let Some(pipeline) = init(&stream) else {
                return;
            };
            inner.add_accepted::<L, S>(stream, slot, opts, pipeline.layers);
        });
    }
}
