//! [`ChannelGroup`]: a set of channels written to, or closed, together
//! (Netty's `ChannelGroup`): a chat server's broadcast, a server's notice
//! to every client before it stops. Uses only [`ChannelHandle`].

use crate::handle::ChannelHandle;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

/// Channels written to, or closed, together, from any thread.
///
/// Members are [`ChannelHandle`]s, added as their channels become active
/// (say, in a handler's `active`). A member whose channel closed leaves by
/// itself: it is dropped the next time the group is added to, written to,
/// closed or counted, so the group holds no more handles than the most
/// channels it has had open at once, plus those closed since. The group
/// locks briefly for an add and to copy its list for a broadcast (one
/// allocation per broadcast), never on a channel's own path, so a loop
/// adding a channel does not wait for a broadcast to many; a broadcast
/// queues the message on each channel's mailbox (a write from any
/// thread), so no member waits for another's socket.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_reactor::{ChannelGroup, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
/// use std::io::Read;
/// use std::sync::Arc;
///
/// /// Joins the group as it connects; reads nothing.
/// struct Member(Arc<ChannelGroup<Bytes>>);
/// impl InboundHandler for Member {
///     type Read = BytesMut;
///     type Pass = ();
///     type Write = Bytes;
///     fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
///         self.0.add(ctx.handle());
///     }
///     fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}
/// }
///
/// let everyone = Arc::new(ChannelGroup::new());
/// let joined = everyone.clone();
/// let server = ServerBootstrap::new()
///     .bind("127.0.0.1:0", move |_| Pipeline::new().inbound(Member(joined.clone())))?;
/// let mut clients: Vec<_> = (0..3)
///     .map(|_| std::net::TcpStream::connect(server.local_addr()))
///     .collect::<Result<_, _>>()?;
/// while everyone.len() < 3 {
///     std::thread::sleep(std::time::Duration::from_millis(1));
/// }
/// assert_eq!(everyone.write_and_flush(Bytes::from_static(b"hello")), 3);
/// for client in &mut clients {
///     let mut got = [0; 5];
///     client.read_exact(&mut got)?;
///     assert_eq!(&got, b"hello");
/// }
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ChannelGroup<W> {
    members: Mutex<Vec<ChannelHandle<W>>>,
}

impl<W> Default for ChannelGroup<W> {
    fn default() -> Self {
        ChannelGroup::new()
    }
}

impl<W> fmt::Debug for ChannelGroup<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelGroup")
            .field("members", &self.members().len())
            .finish()
    }
}

impl<W> ChannelGroup<W> {
    /// An empty group.
    pub fn new() -> Self {
        ChannelGroup {
            members: Mutex::new(Vec::new()),
        }
    }

    /// Adds `channel` (a handle to it; it leaves once it closes).
    pub fn add(&self, channel: ChannelHandle<W>) {
        let mut members = self.members();
        if channel.is_open() {
            members.push(channel);
        }
    }

    /// How many members are open.
    pub fn len(&self) -> usize {
        self.members().len()
    }

    /// Whether no member is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `msg` and a flush on every open member; returns how many took
    /// it (a channel closing meanwhile does not).
    pub fn write_and_flush(&self, msg: W) -> usize
    where
        W: Clone,
    {
        let members = self.snapshot();
        members
            .iter()
            .filter(|m| m.write_and_flush(msg.clone()).is_ok())
            .count()
    }

    /// Closes every open member; returns how many were asked to close.
    pub fn close(&self) -> usize {
        let members = self.snapshot();
        members.iter().filter(|m| m.close().is_ok()).count()
    }

    /// The open members, copied out of the lock.
    fn snapshot(&self) -> Vec<ChannelHandle<W>> {
        self.members().clone()
    }

    /// The members, the closed ones dropped first.
    fn members(&self) -> MutexGuard<'_, Vec<ChannelHandle<W>>> {
        // A panic elsewhere while locked leaves a list of handles, whole.
        let mut members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        members.retain(ChannelHandle::is_open);
        members
    }
}
