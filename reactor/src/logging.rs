//! [`LoggingHandler`] and [`LoggingOutbound`]: a channel's events logged
//! through `tracing` as they pass (Netty's `LoggingHandler`), each with the
//! channel's peer and, for a message, its length and first bytes in hex.
//! A debugging aid: place the pair where the bytes are to be seen (first,
//! for what the socket reads and is given). Uses the handler traits.

use crate::handler::{InboundContext, InboundHandler, OutboundContext, OutboundHandler};
use crate::{Error, UserEvent};
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::marker::PhantomData;
use tracing::Level;

/// The bytes of a message shown in hex; the rest is counted.
pub const LOGGED_BYTES: usize = 64;

/// The tracing target every event is logged under.
pub const TARGET: &str = "gyre_reactor::logging";

/// A message's length and its first [`LOGGED_BYTES`] bytes in hex.
struct Dump<'a>(&'a [u8]);

impl fmt::Display for Dump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B ", self.0.len())?;
        for b in self.0.iter().take(LOGGED_BYTES) {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > LOGGED_BYTES {
            write!(f, "..")?;
        }
        Ok(())
    }
}

// `tracing`'s macros take the level as a constant: one arm per level.
macro_rules! log_at {
    ($level:expr, $($rest:tt)+) => {
        match $level {
            Level::ERROR => tracing::error!(target: TARGET, $($rest)+),
            Level::WARN => tracing::warn!(target: TARGET, $($rest)+),
            Level::INFO => tracing::info!(target: TARGET, $($rest)+),
            Level::DEBUG => tracing::debug!(target: TARGET, $($rest)+),
            Level::TRACE => tracing::trace!(target: TARGET, $($rest)+),
        }
    };
}

/// Logs every inbound event at its level (DEBUG by default, as Netty's),
/// then passes it on unchanged: active, each read (its length and first
/// bytes), read complete, writability, user events, errors, inactive.
/// Its outbound half is [`LoggingOutbound`].
///
/// ```
/// use gyre_reactor::{LoggingHandler, LoggingOutbound, Pipeline};
/// use tracing::Level;
///
/// // Everything the socket reads and is given, at INFO.
/// let pipeline = Pipeline::new().duplex(
///     LoggingHandler::with_level(Level::INFO),
///     LoggingOutbound::with_level(Level::INFO),
/// );
/// # let _ = pipeline;
/// ```
pub struct LoggingHandler<M = BytesMut, W = Bytes> {
    level: Level,
    _types: PhantomData<fn(M, W)>,
}

impl<M, W> LoggingHandler<M, W> {
    /// Logs at DEBUG.
    pub fn new() -> Self {
        Self::with_level(Level::DEBUG)
    }

    /// Logs at `level`.
    pub fn with_level(level: Level) -> Self {
        LoggingHandler {
            level,
            _types: PhantomData,
        }
    }
}

impl<M, W> Default for LoggingHandler<M, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M, W> fmt::Debug for LoggingHandler<M, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggingHandler")
            .field("level", &self.level)
            .finish()
    }
}

impl<M: AsRef<[u8]> + 'static, W: 'static> InboundHandler for LoggingHandler<M, W> {
    type Read = M;
    type Pass = M;
    type Write = W;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "active");
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: M) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "read {}", Dump(msg.as_ref()));
        ctx.fire_read(msg);
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "read complete");
        ctx.fire_read_complete();
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), writable, "writability changed");
        ctx.fire_writability_changed(writable);
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "user event {event:?}");
        ctx.fire_user_event(event);
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "error {error}");
        ctx.fire_error(error);
    }

    fn inactive(&mut self, ctx: &mut impl InboundContext<Self>) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "inactive");
        ctx.fire_inactive();
    }
}

/// Logs every outbound event at its level (DEBUG by default), then passes
/// it on unchanged: each write (its length and first bytes), flush,
/// close. The inbound half is [`LoggingHandler`].
///
/// ```
/// use gyre_reactor::{LoggingOutbound, Pipeline};
///
/// // What is written towards the socket, at DEBUG.
/// let pipeline = Pipeline::new().outbound(LoggingOutbound::new());
/// # let _ = pipeline;
/// ```
pub struct LoggingOutbound<W = Bytes> {
    level: Level,
    _types: PhantomData<fn(W)>,
}

impl<W> LoggingOutbound<W> {
    /// Logs at DEBUG.
    pub fn new() -> Self {
        Self::with_level(Level::DEBUG)
    }

    /// Logs at `level`.
    pub fn with_level(level: Level) -> Self {
        LoggingOutbound {
            level,
            _types: PhantomData,
        }
    }
}

impl<W> Default for LoggingOutbound<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> fmt::Debug for LoggingOutbound<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggingOutbound")
            .field("level", &self.level)
            .finish()
    }
}

impl<W: AsRef<[u8]> + 'static> OutboundHandler for LoggingOutbound<W> {
    type Write = W;
    type Pass = W;

    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, msg: W) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "write {}", Dump(msg.as_ref()));
        ctx.write(msg);
    }

    fn flush(&mut self, ctx: &mut impl OutboundContext<Self>) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "flush");
        ctx.flush();
    }

    fn close(&mut self, ctx: &mut impl OutboundContext<Self>) {
        log_at!(self.level, peer = ?ctx.channel().peer_addr(), "close");
        ctx.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_shows_the_length_and_the_first_bytes_in_hex() {
        assert_eq!(Dump(b"\x00\xffhi").to_string(), "4B 00ff6869");
        assert_eq!(Dump(b"").to_string(), "0B ");
        let long = Dump(&[0xab; 100]).to_string();
        assert!(long.starts_with("100B abab"), "{long}");
        assert!(long.ends_with(".."), "{long}");
        assert_eq!(long.len(), "100B ".len() + 2 * LOGGED_BYTES + 2);
    }
}
