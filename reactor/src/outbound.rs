//! `Outbound`: what a channel's outbound queue holds: bytes, a file
//! region, or a datagram; and `gather`, which lays the queue's front out
//! for one gathered write on either transport. Uses the datagram type
//! below it.

use crate::datagram::Datagram;
use bytes::Bytes;
use gyre_zerocopy::{FileRegion, MAX_IOVECS};
use std::collections::VecDeque;

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

/// The released `Bytes` at the front of `out` (its first `flushed`
/// items) for one gathered write: at most [`MAX_IOVECS`] of them and
/// `room` bytes in all (the last one cut short to fit), each handed to
/// `put` with its index. Returns how many, their bytes, and whether a
/// file region follows them at once (the kernel may then hold their tail
/// for the file's first segment). Both transports' byte writes.
pub(crate) fn gather<'a>(
    out: &'a VecDeque<Outbound>,
    flushed: usize,
    room: usize,
    mut put: impl FnMut(usize, &'a [u8]),
) -> (usize, usize, bool) {
    let mut n = 0;
    let mut total = 0;
    for item in out.iter().take(flushed.min(MAX_IOVECS)) {
        match item {
            Outbound::Bytes(b) => {
                let take = b.len().min(room - total);
                put(n, &b[..take]);
                n += 1;
                total += take;
                if total == room {
                    return (n, total, false);
                }
            }
            Outbound::File(_) => return (n, total, true),
            Outbound::Datagram(_) => unreachable!("refused when queued"),
        }
    }
    (n, total, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathered(
        out: &VecDeque<Outbound>,
        flushed: usize,
        room: usize,
    ) -> (Vec<Vec<u8>>, usize, bool) {
        let mut parts = Vec::new();
        let (n, total, file_next) = gather(out, flushed, room, |i, b| {
            assert_eq!(i, parts.len());
            parts.push(b.to_vec());
        });
        assert_eq!(n, parts.len());
        (parts, total, file_next)
    }

    #[test]
    fn the_last_buffer_is_cut_to_the_room_left() {
        let out: VecDeque<Outbound> = ["abc", "defg", "hi"]
            .map(|s| Bytes::from_static(s.as_bytes()).into())
            .into();
        let (parts, total, file_next) = gathered(&out, 3, 5);
        assert_eq!(parts, [b"abc".to_vec(), b"de".to_vec()]);
        assert_eq!((total, file_next), (5, false));
        let (parts, total, _) = gathered(&out, 3, usize::MAX);
        assert_eq!(parts.concat(), b"abcdefghi");
        assert_eq!(total, 9);
        // Only what a flush released.
        let (parts, _, _) = gathered(&out, 1, usize::MAX);
        assert_eq!(parts, [b"abc".to_vec()]);
    }

    #[test]
    fn a_file_region_ends_the_run_and_is_told() {
        let path = gyre_testkit::scratch_root().join(format!("gyre-gather-{}", std::process::id()));
        std::fs::write(&path, b"file").unwrap();
        let out: VecDeque<Outbound> = [
            Bytes::from_static(b"head").into(),
            FileRegion::open(&path).unwrap().into(),
            Bytes::from_static(b"tail").into(),
        ]
        .into();
        let (parts, total, file_next) = gathered(&out, 3, usize::MAX);
        assert_eq!((parts, total, file_next), (vec![b"head".to_vec()], 4, true));
        // Cut short, the run does not reach the file: no hint to hold it.
        assert!(!gathered(&out, 3, 2).2);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn at_most_max_iovecs_buffers() {
        let out: VecDeque<Outbound> = (0..MAX_IOVECS + 5)
            .map(|_| Bytes::from_static(b"x").into())
            .collect();
        let (parts, total, _) = gathered(&out, out.len(), usize::MAX);
        assert_eq!((parts.len(), total), (MAX_IOVECS, MAX_IOVECS));
    }
}
