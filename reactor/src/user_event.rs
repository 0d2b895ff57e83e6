//! The events a pipeline passes along besides reads: [`UserEvent`] and the
//! idle handler's [`IdleStateEvent`]. Plain data; `handler` and `handle`
//! (which queues an event from another thread) both use it.

/// Which kind of idleness an [`IdleStateEvent`] reports.
///
/// ```
/// use gyre_reactor::{IdleState, IdleStateEvent};
///
/// /// What a heartbeat-keeping handler does about each kind.
/// fn action(event: IdleStateEvent) -> &'static str {
///     match event.state {
///         IdleState::ReaderIdle => "close: the peer went silent",
///         IdleState::WriterIdle => "send a heartbeat",
///         IdleState::AllIdle => "nothing either way: close",
///     }
/// }
/// let quiet = IdleStateEvent { state: IdleState::WriterIdle, first: true };
/// assert_eq!(action(quiet), "send a heartbeat");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdleState {
    /// Nothing was read for the reader-idle time.
    ReaderIdle,
    /// Nothing was written (and no pending write progressed) for the
    /// writer-idle time.
    WriterIdle,
    /// Neither read nor write for the all-idle time.
    AllIdle,
}

/// Fired by the [`IdleStateHandler`](crate::IdleStateHandler), as
/// [`UserEvent::Idle`].
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_reactor::{IdleState, IdleStateHandler, InboundContext, InboundHandler, Pipeline, UserEvent};
/// use std::time::Duration;
///
/// /// Pings a quiet peer once per quiet spell, not at every tick of it.
/// struct Heartbeat;
///
/// impl InboundHandler for Heartbeat {
///     type Read = BytesMut;
///     type Pass = BytesMut;
///     type Write = Bytes;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
///         ctx.fire_read(msg);
///     }
///
///     fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
///         match event {
///             UserEvent::Idle(idle) if idle.state == IdleState::WriterIdle => {
///                 if idle.first {
///                     ctx.write_and_flush(Bytes::from_static(b"PING\r\n"));
///                 }
///             }
///             other => ctx.fire_user_event(other),
///         }
///     }
/// }
/// let every_30s = IdleStateHandler::new(Duration::ZERO, Duration::from_secs(30), Duration::ZERO);
/// # let _ = Pipeline::new().inbound(every_30s).inbound(Heartbeat);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdleStateEvent {
    /// What has been idle.
    pub state: IdleState,
    /// Whether this is the first such event since the last activity.
    pub first: bool,
}

/// An out-of-band event travelling the inbound direction.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_reactor::{IdleState, InboundContext, InboundHandler, UserEvent};
///
/// /// Closes a connection that has sent nothing for the reader-idle time
/// /// (with an `IdleStateHandler` before it), and notes the peer's half-close.
/// struct Reaper;
///
/// impl InboundHandler for Reaper {
///     type Read = BytesMut;
///     type Pass = ();
///     type Write = bytes::Bytes;
///
///     fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}
///
///     fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
///         match event {
///             UserEvent::Idle(idle) if idle.state == IdleState::ReaderIdle => ctx.close(),
///             UserEvent::InputClosed => ctx.close(),
///             other => ctx.fire_user_event(other),
///         }
///     }
/// }
/// # let _ = gyre_reactor::Pipeline::new().inbound(gyre_reactor::IdleStateHandler::new(
/// #     std::time::Duration::from_secs(30), std::time::Duration::ZERO, std::time::Duration::ZERO)).inbound(Reaper);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum UserEvent {
    /// From the idle-state handler.
    Idle(IdleStateEvent),
    /// The peer closed its side (read returned end of stream). Decoders
    /// flush what they hold when they see it.
    InputClosed,
    /// Anything an application wants to send down its own pipeline (from
    /// another thread: [`ChannelHandle::fire_user_event`](crate::ChannelHandle::fire_user_event)).
    Custom(Box<dyn std::any::Any + Send>),
    /// The PROXY protocol header a load balancer sent first, taken off by
    /// a [`ProxyProtocolHandler`](crate::ProxyProtocolHandler): who the
    /// client really is. Fired before any of the connection's bytes.
    ProxyHeader(Box<gyre_codec::ProxyHeader>),
    /// The TLS layer's handshake has finished (feature `tls`): what it
    /// agreed, including the peer's verified certificates.
    #[cfg(feature = "tls")]
    TlsHandshake(Box<crate::tls::session::TlsSession>),
}
