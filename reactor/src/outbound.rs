//! `Outbound`: what a channel's outbound queue holds: bytes, a file
//! region, or a datagram. Uses the datagram type below it.

use crate::datagram::Datagram;
use bytes::Bytes;
use gyre_zerocopy::FileRegion;

/// One item of a channel's outbound queue.
///
/// On a stream socket, runs of `Bytes` go out in gathered `sendmsg`
/// calls, file regions with `sendfile`, in the order written. On a UDP
/// socket each [`Datagram`] (or `Bytes`, to the connected peer) goes out as
/// one datagram; a file region there is refused. All count against the
/// write watermarks, a file region by the bytes it has left to send.
///
/// A pipeline whose socket end takes `Outbound` (start it with
/// [`Pipeline::with_file_regions`]) lets its handlers write either:
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_reactor::{InboundContext, InboundHandler, Outbound, Pipeline};
/// use gyre_zerocopy::FileRegion;
///
/// /// Answers any input with a header and the contents of a file.
/// struct SendFile(std::path::PathBuf);
///
/// impl InboundHandler for SendFile {
///     type Read = BytesMut;
///     type Pass = ();
///     type Write = Outbound;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
///         match FileRegion::open(&self.0) {
///             Ok(region) => {
///                 ctx.write(Bytes::from(format!("{}\n", region.len())).into());
///                 ctx.write_and_flush(region.into());
///             }
///             Err(e) => ctx.close(),
///         }
///     }
/// }
///
/// let pipeline = Pipeline::with_file_regions().inbound(SendFile("/etc/hostname".into()));
/// # let _ = pipeline;
/// ```
///
/// [`Pipeline::with_file_regions`]: crate::Pipeline::with_file_regions
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Outbound {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A range of a file, sent with `sendfile`.
    File(FileRegion),
    /// One UDP datagram and its recipient.
    Datagram(Datagram),
}

impl Outbound {
    /// Bytes this item has left to send.
    pub fn remaining(&self) -> usize {
        match self {
            Outbound::Bytes(b) => b.len(),
            Outbound::File(f) => usize::try_from(f.remaining()).unwrap_or(usize::MAX),
            Outbound::Datagram(d) => d.content.len(),
        }
    }
}

impl From<Bytes> for Outbound {
    #[inline]
    fn from(b: Bytes) -> Self {
        Outbound::Bytes(b)
    }
}

impl From<FileRegion> for Outbound {
    #[inline]
    fn from(f: FileRegion) -> Self {
        Outbound::File(f)
    }
}

impl From<Datagram> for Outbound {
    #[inline]
    fn from(d: Datagram) -> Self {
        Outbound::Datagram(d)
    }
}
