//! The send buffer a stream channel widens while it sends files, on a
//! socket whose kernel does not size it by itself (see
//! [`Stream::file_send_buffer`]), and gives back once no file region is
//! queued.
//!
//! Why: TCP grows a busy socket's send buffer on its own (autotuning, to
//! `tcp_wmem`'s 4 MiB by default), but a Unix stream socket keeps
//! `wmem_default` (208 KiB) however much is queued, and `sendfile` into
//! it stalls on that room: the sender waits on the reader every few
//! pages. On the Zen 5 VM (`zerocopy -- --quick`, 1 GiB file) a loop
//! sending over a Unix socket moved 3.8 GiB/s with the default room and
//! 10.5-12.4 GiB/s with 1-8 MiB, at half the CPU per GiB on both ends.
//! The room goes back at the end because it would otherwise stay with a
//! keep-alive channel, whose later writes are copies: a slow reader could
//! then hold that much of its memory in the kernel.
//!
//! A channel whose options set a send buffer size keeps it: the user's
//! size is never changed. Uses `socket2` on the channel's socket.

use crate::socket::Stream;
use socket2::SockRef;

/// What a channel did to its send buffer for the files now queued.
#[derive(Debug, Default)]
pub(crate) enum FileRoom {
    /// Nothing yet: no file has been sent since the last give-back.
    #[default]
    Untouched,
    /// Widened; `SO_SNDBUF` was this before.
    Widened(usize),
    /// Looked at and left as it is (wide enough, not a kind of socket
    /// that needs it, or the kernel refused): not asked again until the
    /// files queued now are sent.
    Kept,
}

impl FileRoom {
    /// Widens `stream`'s send buffer for a file send, if its kind of
    /// socket asks for it and it is smaller; decided once per run of
    /// queued files, so the sends after the first make no system call
    /// here. Failing to read or set the size costs only speed: the file
    /// goes out either way.
    pub(crate) fn widen(&mut self, stream: &Stream) {
        if !matches!(self, FileRoom::Untouched) {
            return;
        }
        *self = FileRoom::Kept;
        let Some(wanted) = stream.file_send_buffer() else {
            return;
        };
        let sock = SockRef::from(stream);
        let Ok(before) = sock.send_buffer_size() else {
            return;
        };
        // The kernel doubles what it is asked for (for its own
        // bookkeeping) and reports the doubled size back.
        if before < 2 * wanted && sock.set_send_buffer_size(wanted).is_ok() {
            *self = FileRoom::Widened(before);
        }
    }

    /// Gives the send buffer back its size from before the widening, if
    /// it was widened, and forgets the decision for the next file.
    pub(crate) fn give_back(&mut self, stream: &Stream) {
        if let FileRoom::Widened(before) = std::mem::take(self) {
            // Asked for half, since the kernel doubles it again.
            if let Err(e) = SockRef::from(stream).set_send_buffer_size(before / 2) {
                tracing::debug!(error = %e, "cannot give back the send buffer widened for files");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! A channel on the hand-driven loop (`event_loop::by_hand`) sends a
    //! file over a Unix socket pair while the test plays the reader and
    //! looks at the channel's socket through a second descriptor.
    use crate::event_loop::by_hand;
    use crate::handler::{InboundContext, InboundHandler};
    use crate::options::ChannelOptions;
    use crate::outbound::Outbound;
    use crate::pipeline::Pipeline;
    use bytes::BytesMut;
    use gyre_zerocopy::FileRegion;
    use socket2::SockRef;
    use std::io::{ErrorKind, Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::sync::Arc;

    const FILE_LEN: usize = 4 << 20;

    /// Writes the file as one region when the peer says anything.
    struct SendsFile(PathBuf);

    impl InboundHandler for SendsFile {
        type Read = BytesMut;
        type Pass = ();
        type Write = Outbound;

        fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
            ctx.write_and_flush(FileRegion::open(&self.0).unwrap().into());
        }
    }

    fn byte(i: usize) -> u8 {
        (i % 253) as u8
    }

    /// Sends a 4 MiB file over a Unix socket with `opts`; the channel's
    /// `SO_SNDBUF` before the send, while the file is queued, and after.
    fn send_buffer_around_a_file(name: &str, opts: ChannelOptions) -> [usize; 3] {
        let path = std::env::temp_dir().join(format!("gyre-{name}-{}", std::process::id()));
        std::fs::write(&path, (0..FILE_LEN).map(byte).collect::<Vec<u8>>()).unwrap();
        let (ours, mut peer) = UnixStream::pair().unwrap();
        let look = ours.try_clone().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.set_nonblocking(true).unwrap();
        let (mut lp, _poll) = by_hand::new();
        let pipeline = Pipeline::with_file_regions().inbound(SendsFile(path.clone()));
        lp.add_accepted::<_, Outbound>(
            crate::socket::Stream::Unix(mio::net::UnixStream::from_std(ours)),
            Arc::new(opts),
            pipeline.layers,
        );
        let token = lp.tokens()[0];
        let size = || SockRef::from(&look).send_buffer_size().unwrap();
        let before = size();
        peer.write_all(b"go").unwrap();
        lp.dispatch(token, |ch, lp| ch.ready(lp, true, false, false));
        // 4 MiB is more than any send buffer here: the file is still queued.
        let during = size();
        let mut got = Vec::with_capacity(FILE_LEN);
        let mut buf = vec![0u8; 256 << 10];
        for _ in 0..100_000 {
            if got.len() == FILE_LEN {
                break;
            }
            match peer.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    lp.dispatch(token, |ch, lp| ch.ready(lp, false, false, true))
                }
                Err(e) => panic!("reading the file: {e}"),
            }
        }
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.len(), FILE_LEN, "the whole file arrives");
        assert!(got.iter().enumerate().all(|(i, b)| *b == byte(i)));
        [before, during, size()]
    }

    #[test]
    fn a_unix_channel_widens_its_send_buffer_while_it_sends_a_file() {
        let [before, during, after] =
            send_buffer_around_a_file("file-room", ChannelOptions::default());
        if before >= 2 * crate::UNIX_FILE_SEND_BUFFER {
            // A host whose default is already as wide is left alone.
            assert_eq!(during, before);
        } else {
            // The kernel grants at most twice `net.core.wmem_max`, which
            // is never below its default on a stock host: at least double.
            assert!(during > before, "widened from {before} to {during} bytes");
        }
        assert_eq!(after, before, "given back once the file is sent");
    }

    #[test]
    fn a_send_buffer_size_the_options_set_is_left_alone() {
        let opts = ChannelOptions::default().send_buffer_size(64 << 10);
        let [before, during, after] = send_buffer_around_a_file("file-room-set", opts);
        assert_eq!((during, after), (before, before));
    }
}
