//! What a stream channel does to its socket while it sends files, undone
//! once no file region is queued: it widens the send buffer of a socket
//! whose kernel does not size it by itself (see
//! [`Stream::file_send_buffer`]), and it corks a TCP socket while more
//! than a pipeful of file is left (see [`Stream::corks_file_sends`]).
//! Not undone: a TCP socket whose peer is on this host leaves a
//! congestion control that paces (BBR) for `reno` at its first such file
//! ([`gyre_zerocopy::unpace_local`]), unless the options keep it (see
//! [`ChannelOptions::pace_local_file_sends`](crate::ChannelOptions::pace_local_file_sends)
//! for why and the figures); once per channel, since going back would
//! restart BBR's model at every file and a local peer loses nothing
//! without pacing.
//!
//! Why the room: TCP grows a busy socket's send buffer on its own
//! (autotuning, to `tcp_wmem`'s 4 MiB by default), but a Unix stream
//! socket keeps `wmem_default` (208 KiB) however much is queued, and
//! `sendfile` into it stalls on that room: the sender waits on the reader
//! every few pages. On the Zen 5 VM (`zerocopy -- --quick`, 1 GiB file) a
//! loop sending over a Unix socket moved 3.8 GiB/s with the default room
//! and 10.5-12.4 GiB/s with 1-8 MiB, at half the CPU per GiB on both ends.
//! The room goes back at the end because it would otherwise stay with a
//! keep-alive channel, whose later writes are copies: a slow reader could
//! then hold that much of its memory in the kernel.
//!
//! Why the cork: the kernel sends a file to a socket a pipeful (16 pages)
//! at a time, and lets go of the socket between pipefuls. An
//! acknowledgement that arrives then pushes out whatever partial segment
//! the last pipeful left (on loopback, 64 KiB less a segment's headers
//! leaves 53 bytes), as Nagle's rules or `TCP_NODELAY` allow: on the
//! Intel Xeon VM a 1 GiB `sendfile` put out about 11,000 such runts
//! besides its 16,000 full segments, twice the acknowledgements and three
//! times the context switches of a copy loop, and ran at 1.6-1.8 GiB/s
//! against the copy loop's 2.7-3.0 (BENCHMARKS.md, issue 22,
//! twenty-eighth session). Corked, only full segments leave until the
//! cork comes off: the same `sendfile` ran at 2.8-3.9 GiB/s with half its
//! CPU. The cork comes off as soon as the last region is sent, which
//! pushes out the file's last partial segment at once (a cork left on
//! would hold it for 200 ms). A file of a pipeful or less is one
//! `sendmsg` to the kernel and has no runts to prevent, so it is not
//! corked: the two system calls would be its whole cost.
//!
//! A channel whose options set a send buffer size keeps it: the user's
//! size is never changed. Uses `socket2` on the channel's socket.

use crate::socket::Stream;
use socket2::SockRef;

/// Files longer than this (what is left of the region at the queue's
/// front) cork a TCP socket: the kernel's internal pipe for `sendfile` is
/// 16 pages, so a shorter file reaches TCP in one `sendmsg`.
pub(crate) const CORK_ABOVE: u64 = 64 << 10;

/// What a channel did to its send buffer for the files now queued.
#[derive(Debug, Default)]
enum Room {
    /// Nothing yet: no file has been sent since the last give-back.
    #[default]
    Untouched,
    /// Widened; `SO_SNDBUF` was this before.
    Widened(usize),
    /// Looked at and left as it is (wide enough, not a kind of socket
    /// that needs it, the options set a size, or the kernel refused):
    /// not asked again until the files queued now are sent.
    Kept,
}

/// What a channel did about `TCP_CORK` for the files now queued.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Cork {
    /// Not asked for (yet).
    #[default]
    Off,
    /// On, put there by this channel.
    On,
    /// Asked for and refused: not asked again until the files queued now
    /// are sent, as each `sendfile` would otherwise repeat the refused call.
    Refused,
}

/// What a channel did to its socket for the files now queued.
#[derive(Debug, Default)]
pub(crate) struct FileSetup {
    room: Room,
    cork: Cork,
    /// Whether the channel has looked at its congestion control for a
    /// file send (once per channel: what it did stays).
    pacing_checked: bool,
}

impl FileSetup {
    /// Sets `stream` up for sending a file of which `left` bytes remain:
    /// widens its send buffer if its kind of socket asks for it and it is
    /// smaller, unless `keep_room` (the options set a size), decided once
    /// per run of queued files; corks it if it is TCP and `left` is
    /// more than [`CORK_ABOVE`], asked at most once per run of queued
    /// files too; with `unpace`, moves a TCP socket to a local peer off a
    /// pacing congestion control at the first such file (see the module's
    /// doc). The sends after that make no system call here. Failing to
    /// read or set any of them costs only speed: the file goes out either
    /// way.
    pub(crate) fn begin(&mut self, stream: &Stream, left: u64, keep_room: bool, unpace: bool) {
        if unpace && !self.pacing_checked && left > CORK_ABOVE && stream.corks_file_sends() {
            self.pacing_checked = true;
            if let Err(e) = gyre_zerocopy::unpace_local(stream) {
                tracing::debug!(error = %e, "cannot move a local file send off a pacing congestion control");
            }
        }
        if self.cork == Cork::Off && left > CORK_ABOVE && stream.corks_file_sends() {
            self.cork = match SockRef::from(stream).set_tcp_cork(true) {
                Ok(()) => Cork::On,
                Err(e) => {
                    tracing::debug!(error = %e, "cannot cork the socket for a file send");
                    Cork::Refused
                }
            };
        }
        if !matches!(self.room, Room::Untouched) {
            return;
        }
        self.room = Room::Kept;
        if keep_room {
            return;
        }
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
            self.room = Room::Widened(before);
        }
    }

    /// Undoes [`begin`](FileSetup::begin) once no file is queued: takes
    /// the cork off (which sends the last partial segment now) and gives
    /// the send buffer back its size from before, and forgets the decision
    /// for the next file.
    pub(crate) fn end(&mut self, stream: &Stream) {
        // `pacing_checked` stays: see the module's doc.
        if std::mem::take(&mut self.cork) == Cork::On {
            if let Err(e) = SockRef::from(stream).set_tcp_cork(false) {
                tracing::debug!(error = %e, "cannot take the cork off after a file send");
            }
        }
        if let Room::Widened(before) = std::mem::take(&mut self.room) {
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
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;
    use std::sync::Arc;

    const FILE_LEN: usize = 4 << 20;

    /// Writes the file as one region when the peer says anything; with
    /// `then_unflushed`, writes it once more after that without flushing.
    struct SendsFile(PathBuf, bool);

    impl InboundHandler for SendsFile {
        type Read = BytesMut;
        type Pass = ();
        type Write = Outbound;

        fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
            ctx.write_and_flush(FileRegion::open(&self.0).unwrap().into());
            if self.1 {
                ctx.write(FileRegion::open(&self.0).unwrap().into());
            }
        }
    }

    fn byte(i: usize) -> u8 {
        (i % 253) as u8
    }

    /// A socket pair of one kind: the channel's end (non-blocking, for the
    /// loop), a second descriptor of it to look through, and the peer.
    fn unix_pair() -> (crate::socket::Stream, socket2::Socket, Box<dyn ReadPeer>) {
        let (ours, peer) = UnixStream::pair().unwrap();
        let look = socket2::Socket::from(std::os::fd::OwnedFd::from(ours.try_clone().unwrap()));
        ours.set_nonblocking(true).unwrap();
        peer.set_nonblocking(true).unwrap();
        let ours = crate::socket::Stream::Unix(mio::net::UnixStream::from_std(ours));
        (ours, look, Box::new(peer))
    }

    fn tcp_pair() -> (crate::socket::Stream, socket2::Socket, Box<dyn ReadPeer>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        ours.set_nodelay(true).unwrap();
        let look = socket2::Socket::from(std::os::fd::OwnedFd::from(ours.try_clone().unwrap()));
        ours.set_nonblocking(true).unwrap();
        peer.set_nonblocking(true).unwrap();
        let ours = crate::socket::Stream::Tcp(mio::net::TcpStream::from_std(ours));
        (ours, look, Box::new(peer))
    }

    /// The test's end of the pair.
    trait ReadPeer: Read + Write {}
    impl<T: Read + Write> ReadPeer for T {}

    /// Sends a file of `len` bytes over `pair` with `opts`; `look`'s
    /// reading of the channel's socket before the send, while the file is
    /// queued, and after.
    fn around_a_file<T>(
        name: &str,
        len: usize,
        then_unflushed: bool,
        pair: (crate::socket::Stream, socket2::Socket, Box<dyn ReadPeer>),
        opts: ChannelOptions,
        look: impl Fn(&socket2::Socket) -> T,
    ) -> [T; 3] {
        let path = gyre_testkit::scratch_root().join(format!("gyre-{name}-{}", std::process::id()));
        std::fs::write(&path, (0..len).map(byte).collect::<Vec<u8>>()).unwrap();
        let (ours, socket, mut peer) = pair;
        let (mut lp, _poll) = by_hand::new().unwrap();
        let pipeline =
            Pipeline::with_file_regions().inbound(SendsFile(path.clone(), then_unflushed));
        lp.add_accepted::<_, Outbound>(ours, None, Arc::new(opts), pipeline.layers);
        let token = lp.tokens()[0];
        let before = look(&socket);
        peer.write_all(b"go").unwrap();
        lp.dispatch(token, |ch, lp| ch.ready(lp, true, false, false));
        let during = look(&socket);
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 256 << 10];
        for _ in 0..100_000 {
            if got.len() == len {
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
        assert_eq!(got.len(), len, "the whole file arrives");
        assert!(got.iter().enumerate().all(|(i, b)| *b == byte(i)));
        [before, during, look(&socket)]
    }

    /// Sends a 4 MiB file over a Unix socket with `opts`; the channel's
    /// `SO_SNDBUF` before the send, while the file is queued, and after.
    fn send_buffer_around_a_file(name: &str, opts: ChannelOptions) -> [usize; 3] {
        // 4 MiB is more than any send buffer here: the file is still
        // queued after the first writes.
        around_a_file(name, FILE_LEN, false, unix_pair(), opts, |s| {
            s.send_buffer_size().unwrap()
        })
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

    /// Whether the channel's TCP socket is corked before, while and after
    /// it sends a file of `len` bytes (then another, unflushed, if asked).
    fn cork_around_a_file(name: &str, len: usize, then_unflushed: bool) -> [bool; 3] {
        let opts = ChannelOptions::default();
        around_a_file(name, len, then_unflushed, tcp_pair(), opts, |s| {
            s.tcp_cork().unwrap()
        })
    }

    #[test]
    fn a_tcp_channel_is_corked_while_a_long_file_is_sent_and_uncorked_after() {
        let corked = cork_around_a_file("file-cork", FILE_LEN, false);
        assert_eq!(corked, [false, true, false]);
    }

    #[test]
    fn a_file_of_a_pipeful_or_less_is_not_corked() {
        let corked = cork_around_a_file("file-no-cork", super::CORK_ABOVE as usize, false);
        assert_eq!(corked, [false, false, false]);
    }

    #[test]
    fn a_file_written_but_not_flushed_does_not_keep_the_cork_on() {
        // The first file must arrive whole at once (the test reads exactly
        // its length), though a second waits in the queue unflushed.
        let corked = cork_around_a_file("file-cork-unflushed", FILE_LEN, true);
        assert_eq!(corked, [false, true, false]);
    }

    /// Log lines written to a buffer the test reads.
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_refused_cork_is_asked_once_per_run_of_files() {
        use std::os::fd::{FromRawFd, IntoRawFd};
        // A UDP socket behind a TCP stream: `TCP_CORK` is refused
        // (`ENOPROTOOPT`), as a kernel or socket without it would.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // SAFETY: the descriptor was just given up by `into_raw_fd`, so the
        // stream is its only owner; nothing reads or writes through it.
        let tcp = unsafe { mio::net::TcpStream::from_raw_fd(udp.into_raw_fd()) };
        let stream = crate::socket::Stream::Tcp(tcp);
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .finish();
        let asked = || {
            let text = lines.0.lock().unwrap();
            String::from_utf8_lossy(&text)
                .matches("cannot cork")
                .count()
        };
        let left = 2 * super::CORK_ABOVE;
        let mut setup = super::FileSetup::default();
        tracing::subscriber::with_default(subscriber, || {
            // One run of queued files: a `begin` per send, one refusal.
            for _ in 0..3 {
                setup.begin(&stream, left, false, true);
            }
            assert_eq!(asked(), 1, "asked once while the files are queued");
            // The next run of files asks again.
            setup.end(&stream);
            setup.begin(&stream, left, false, true);
            assert_eq!(asked(), 2, "asked again for the next run");
        });
    }
}
