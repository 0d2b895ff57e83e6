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
/// closed or counted; an add drops them only once the list has doubled
/// since it last did, so adding a channel costs the same whatever the
/// group's size, and the group holds at most about twice the handles of
/// the channels open in it. The group
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
    members: Mutex<Members<W>>,
}

/// The handles, and the length at which an add drops the closed ones.
struct Members<W> {
    handles: Vec<ChannelHandle<W>>,
    prune_at: usize,
}

/// The shortest list an add prunes.
const PRUNE_AT_LEAST: usize = 16;

impl<W> Default for ChannelGroup<W> {
    fn default() -> Self {
        ChannelGroup::new()
    }
}

impl<W> fmt::Debug for ChannelGroup<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelGroup")
            .field("members", &self.members().handles.len())
            .finish()
    }
}

impl<W> ChannelGroup<W> {
    /// An empty group.
    pub fn new() -> Self {
        ChannelGroup {
            members: Mutex::new(Members {
                handles: Vec::new(),
                prune_at: PRUNE_AT_LEAST,
            }),
        }
    }

    /// Adds `channel` (a handle to it; it leaves once it closes).
    pub fn add(&self, channel: ChannelHandle<W>) {
        if !channel.is_open() {
            return;
        }
        let mut members = self.lock();
        if members.handles.len() >= members.prune_at {
            members.prune();
        }
        members.handles.push(channel);
    }

    /// How many members are open.
    pub fn len(&self) -> usize {
        self.members().handles.len()
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
        self.members().handles.clone()
    }

    /// The open members, the closed ones dropped first.
    fn members(&self) -> MutexGuard<'_, Members<W>> {
        let mut members = self.lock();
        members.prune();
        members
    }

    fn lock(&self) -> MutexGuard<'_, Members<W>> {
        // A panic elsewhere while locked leaves a list of handles, whole.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<W> Members<W> {
    /// Drops the closed handles; the next add prunes at twice what is left.
    fn prune(&mut self) {
        self.handles.retain(ChannelHandle::is_open);
        self.prune_at = (2 * self.handles.len()).max(PRUNE_AT_LEAST);
    }
}
