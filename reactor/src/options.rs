//! Socket and channel options, with defaults that serve.

use crate::connection_cap::ConnectionCap;
use crate::file_loader::FileLoader;
use crate::file_send_probe::FileSendProbe;
use crate::traffic_limit::{SharedTrafficLimit, TrafficLimit};
use std::time::Duration;

/// [`ChannelOptions::max_write_bytes_per_event`]'s default.
const DEFAULT_WRITE_BYTES_PER_EVENT: usize = 1 << 20;

/// Per-socket options applied through `socket2` when a channel is accepted
/// or connected, and per-channel settings the loop uses while serving it.
///
/// ```
/// use gyre_reactor::ChannelOptions;
/// let opts = ChannelOptions::default()
///     .tcp_nodelay(true)
///     .write_buffer_watermarks(128 * 1024, 64 * 1024)
///     .read_buffer_size(32 * 1024);
/// assert_eq!(opts.high_watermark(), 128 * 1024);
/// ```
#[derive(Clone, Debug)]
pub struct ChannelOptions {
    pub(crate) tcp_nodelay: bool,
    pub(crate) send_buffer_size: Option<usize>,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) keepalive_probes: Option<(Duration, u32)>,
    pub(crate) tcp_user_timeout: Option<Duration>,
    pub(crate) linger: Option<Duration>,
    pub(crate) tcp_congestion: Option<String>,
    pub(crate) pace_local_file_sends: bool,
    pub(crate) read_buffer_size: usize,
    pub(crate) max_reads_per_event: usize,
    pub(crate) max_write_bytes_per_event: usize,
    pub(crate) high_watermark: usize,
    pub(crate) low_watermark: usize,
    pub(crate) auto_read: bool,
    pub(crate) allow_half_closure: bool,
    pub(crate) close_drain_timeout: Duration,
    pub(crate) lingering_close: Duration,
    pub(crate) zero_copy_send: Option<usize>,
    pub(crate) file_send: FileSend,
    pub(crate) file_loader: Option<FileLoader>,
    pub(crate) direct_writes: bool,
    pub(crate) lend_input: bool,
    pub(crate) read_limit: Option<TrafficLimit>,
    pub(crate) write_limit: Option<TrafficLimit>,
    pub(crate) shared_read_limit: Option<SharedTrafficLimit>,
    pub(crate) shared_write_limit: Option<SharedTrafficLimit>,
    pub(crate) ip_tos: Option<u8>,
    pub(crate) broadcast: bool,
}

/// How a channel sends file regions, on either transport (an io_uring loop
/// sends them itself as an epoll loop does, and polls the ring for room).
///
/// Both keep the bytes in the kernel; which is faster is the host's to
/// say, so the default, [`FileSend::Auto`], measures both on the host it
/// runs on, once per process, and takes the faster. On the VMs this
/// project runs on they have tied so far: `sendfile` and splicing through
/// a 1 MiB pipe send a warm file over loopback TCP at about 2x a copy
/// loop on AMD EPYC and 3.6-4.2x on Intel Xeon, where a host whose
/// congestion control is BBR may pace both far below that (see
/// [`ChannelOptions::tcp_congestion`]).
///
/// ```
/// use gyre_reactor::{ChannelOptions, FileSend};
/// // The default measures; a fixed path skips the probe.
/// assert_eq!(ChannelOptions::default().file_send_path(), FileSend::Auto);
/// let opts = ChannelOptions::default().file_send(FileSend::Splice { pipe: 1 << 20 });
/// assert_eq!(opts.file_send_path(), FileSend::Splice { pipe: 1 << 20 });
/// // Until the probe has measured, `Auto` sends with `sendfile`.
/// let now = FileSend::Auto.resolve();
/// assert!(matches!(now, FileSend::Sendfile | FileSend::Splice { .. }));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FileSend {
    /// Whichever of the other two this host runs faster (the default).
    ///
    /// The first file send under `Auto` starts a probe in a thread of its
    /// own (or call [`FileSend::start_probe`] earlier): it sends a
    /// nameless file of a few MiB over loopback TCP both ways, eight
    /// rounds of one send each, a few tens of milliseconds in all. Until it
    /// has measured, and if it cannot (it needs six descriptors while it
    /// runs), `Auto` sends with `sendfile`; once it has, every channel
    /// under `Auto` sends with the winner, splicing through a 1 MiB pipe
    /// only when that took at least 10% less time in the median round. A
    /// channel that started a file with `sendfile` may finish it spliced:
    /// both send from the region's position, so no byte moves twice.
    ///
    /// The probe measures the host as it finds it: a process busy on both
    /// cores while it runs may measure noise. Where that matters, run the
    /// zero-copy bench on the host and set the path it prints.
    #[default]
    Auto,
    /// `sendfile(2)`: no descriptor per channel.
    Sendfile,
    /// `splice(2)` from the file into a pipe of `pipe` bytes and from the
    /// pipe to the socket. The channel opens its pipe (two descriptors) at
    /// a file send and closes it once no file region is left in its queue,
    /// so an idle channel holds none; should the pipe not open
    /// (descriptors exhausted), that channel uses `sendfile`.
    Splice {
        /// The pipe's size (the kernel rounds up to pages and caps it at
        /// `/proc/sys/fs/pipe-max-size`, 1 MiB by default).
        pipe: usize,
    },
}

impl FileSend {
    /// A short name of the path, for logs and bench output; for `Auto`,
    /// also what it means now.
    pub fn describe(self) -> String {
        match self {
            FileSend::Auto => match FileSend::probe() {
                Some(Ok(probe)) => format!("auto: {}", FileSend::chosen_by(probe).describe()),
                Some(Err(_)) => "auto: sendfile (not measured)".into(),
                None => "auto: sendfile until measured".into(),
            },
            FileSend::Sendfile => "sendfile".into(),
            FileSend::Splice { pipe } => format!("splice through a {} KiB pipe", pipe / 1024),
        }
    }

    /// The path this setting sends with now: itself, or for `Auto` the
    /// probe's choice ([`FileSend::Sendfile`] until it has one).
    pub fn resolve(self) -> FileSend {
        match self {
            FileSend::Auto => match FileSend::probe() {
                Some(Ok(probe)) => FileSend::chosen_by(probe),
                _ => FileSend::Sendfile,
            },
            fixed => fixed,
        }
    }

    /// The path `Auto` takes once the probe has measured `probe`.
    fn chosen_by(probe: &FileSendProbe) -> FileSend {
        if probe.splice_wins() {
            FileSend::Splice {
                pipe: crate::file_send_probe::PROBE_PIPE,
            }
        } else {
            FileSend::Sendfile
        }
    }

    /// Starts the probe behind [`FileSend::Auto`] now, in a thread of its
    /// own, rather than at the first file send; once per process, so
    /// later calls (and file sends) cost one atomic load.
    pub fn start_probe() {
        crate::file_send_probe::start();
    }

    /// The probe's outcome: `None` until it has run, then what it measured
    /// or why it could not (an error naming the step that failed).
    pub fn probe() -> Option<&'static std::io::Result<FileSendProbe>> {
        crate::file_send_probe::outcome()
    }

    /// The path a file send takes now under this setting, starting the
    /// probe if it is `Auto`'s first.
    pub(crate) fn for_send(self) -> FileSend {
        if self == FileSend::Auto {
            FileSend::start_probe();
        }
        self.resolve()
    }
}

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            tcp_nodelay: true,
            send_buffer_size: None,
            recv_buffer_size: None,
            keepalive: None,
            keepalive_probes: None,
            tcp_user_timeout: None,
            linger: None,
            tcp_congestion: None,
            pace_local_file_sends: false,
            read_buffer_size: 64 * 1024,
            max_reads_per_event: 16,
            max_write_bytes_per_event: DEFAULT_WRITE_BYTES_PER_EVENT,
            high_watermark: 64 * 1024,
            low_watermark: 32 * 1024,
            auto_read: true,
            allow_half_closure: false,
            close_drain_timeout: Duration::from_secs(10),
            lingering_close: Duration::ZERO,
            zero_copy_send: None,
            direct_writes: false,
            lend_input: false,
            read_limit: None,
            write_limit: None,
            shared_read_limit: None,
            shared_write_limit: None,
            file_send: FileSend::Auto,
            file_loader: None,
            ip_tos: None,
            broadcast: false,
        }
    }
}

impl ChannelOptions {
    /// How the epoll transport sends file regions (default
    /// [`FileSend::Auto`]: measured on this host; see [`FileSend`]).
    pub fn file_send(mut self, path: FileSend) -> Self {
        self.file_send = path;
        self
    }

    /// Read file regions' cold bytes into the page cache on `loader`'s
    /// threads before sending them (default: none, and a send of bytes
    /// only on disk waits for the disk on the loop). See [`FileLoader`].
    ///
    /// ```
    /// use gyre_reactor::{ChannelOptions, FileLoader};
    /// let opts = ChannelOptions::default().file_loader(FileLoader::builder().start()?);
    /// assert!(opts.file_loader_set().is_some());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn file_loader(mut self, loader: FileLoader) -> Self {
        self.file_loader = Some(loader);
        self
    }

    /// The file loader set, if any.
    pub fn file_loader_set(&self) -> Option<&FileLoader> {
        self.file_loader.as_ref()
    }

    /// The file-send path set.
    pub fn file_send_path(&self) -> FileSend {
        self.file_send
    }

    /// `TCP_NODELAY` (default on: a server framework's writes are already
    /// gathered, so Nagle only adds latency).
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = on;
        self
    }

    /// `SO_SNDBUF`; the kernel's default when unset, except that a Unix
    /// stream channel widens it to
    /// [`UNIX_FILE_SEND_BUFFER`](crate::UNIX_FILE_SEND_BUFFER) while file
    /// regions are queued (TCP widens its own). Set here, it is kept as
    /// set.
    pub fn send_buffer_size(mut self, bytes: usize) -> Self {
        self.send_buffer_size = Some(bytes);
        self
    }

    /// `SO_RCVBUF`; the kernel's default when unset.
    pub fn recv_buffer_size(mut self, bytes: usize) -> Self {
        self.recv_buffer_size = Some(bytes);
        self
    }

    /// `SO_KEEPALIVE` with this idle time before the first probe
    /// (`TCP_KEEPIDLE`).
    pub fn keepalive(mut self, idle: Duration) -> Self {
        self.keepalive = Some(idle);
        self
    }

    /// `SO_KEEPALIVE` probes every `interval` (`TCP_KEEPINTVL`), and the
    /// connection dropped after `count` unanswered (`TCP_KEEPCNT`):
    /// Netty's `EpollChannelOption.TCP_KEEPINTVL` and `TCP_KEEPCNT`. With
    /// [`keepalive`](Self::keepalive) for the idle time before the first
    /// (the kernel's, 2 hours, without it).
    ///
    /// ```
    /// use gyre_reactor::ChannelOptions;
    /// use std::time::Duration;
    ///
    /// // A silent peer is found dead after 60 + 5 x 10 seconds.
    /// let opts = ChannelOptions::default()
    ///     .keepalive(Duration::from_secs(60))
    ///     .keepalive_probes(Duration::from_secs(10), 5);
    /// # let _ = opts;
    /// ```
    pub fn keepalive_probes(mut self, interval: Duration, count: u32) -> Self {
        self.keepalive_probes = Some((interval, count.max(1)));
        self
    }

    /// `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged
    /// before the kernel gives up on the connection (Netty's
    /// `EpollChannelOption.TCP_USER_TIMEOUT`). Without it a peer that
    /// vanished (a pulled cable, a host gone without a reset) holds a
    /// connection with output queued for the kernel's retransmissions,
    /// some 15 minutes; with it the channel fails with the kernel's
    /// `ETIMEDOUT` after this long. Millisecond resolution.
    ///
    /// ```
    /// use gyre_reactor::ChannelOptions;
    /// use std::time::Duration;
    ///
    /// let opts = ChannelOptions::default().tcp_user_timeout(Duration::from_secs(30));
    /// # let _ = opts;
    /// ```
    pub fn tcp_user_timeout(mut self, timeout: Duration) -> Self {
        self.tcp_user_timeout = Some(timeout);
        self
    }

    /// The type-of-service byte of the channel's IP packets (Netty's
    /// `IP_TOS`): its DSCP class in the upper six bits (`0xb8`, expedited
    /// forwarding, for latency-sensitive traffic; `0x20`, CS1, for bulk),
    /// ECN in the lower two. Set with `IP_TOS` on IPv4 sockets and as the
    /// traffic class (`IPV6_TCLASS`) on IPv6 ones; a Unix socket has none
    /// and is left alone. The kernel's default when unset (0).
    ///
    /// ```
    /// use gyre_reactor::ChannelOptions;
    ///
    /// // Expedited forwarding, for a latency-sensitive protocol.
    /// let opts = ChannelOptions::default().ip_tos(0xb8);
    /// # let _ = opts;
    /// ```
    pub fn ip_tos(mut self, tos: u8) -> Self {
        self.ip_tos = Some(tos);
        self
    }

    /// Whether a UDP channel may send to broadcast addresses
    /// (`SO_BROADCAST`, Netty's `SO_BROADCAST`); without it the kernel
    /// refuses such a datagram (`EACCES`, logged at debug and dropped as
    /// any refused datagram). Off by default, as the kernel's; stream
    /// sockets ignore it.
    pub fn broadcast(mut self, on: bool) -> Self {
        self.broadcast = on;
        self
    }

    /// `SO_LINGER`: how long `close` may block sending what is left.
    /// `Duration::ZERO` resets the connection on close.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// `TCP_CONGESTION`: the congestion control a TCP channel runs, by
    /// the kernel's name for it (`"cubic"`, `"reno"`, `"bbr"`); the host's
    /// default (`net.ipv4.tcp_congestion_control`) when unset.
    ///
    /// Where it matters: BBR paces its sends to the bandwidth it has
    /// measured, and a sender whose CPU, not its path, is the limit (any
    /// bulk sender over loopback) can measure its own paced rate and keep
    /// it. On an Intel Xeon VM whose default is BBR, a 1 GiB file sent
    /// over loopback ran at 3 GiB/s and 0.3 CPU seconds per GiB in most
    /// connections and at 15 GiB/s and 0.06 in the rest, with nothing but
    /// the connection changed; under `reno` or `cubic` every connection
    /// ran at 13-16 GiB/s (BENCHMARKS.md, issue 22, twenty-ninth
    /// session). File sends to a peer on this host leave BBR by
    /// themselves (see [`pace_local_file_sends`](Self::pace_local_file_sends));
    /// a server whose peers share its host and which sends bulk bytes
    /// another way may set one here. Over a real network the host's
    /// choice is usually the right one.
    ///
    /// A server checks the name when it binds (it sets it on its
    /// listener, whose connections inherit it): a name the kernel refuses
    /// (not built or loaded, or outside `net.ipv4.tcp_allowed_congestion_control`
    /// for a process without `CAP_NET_ADMIN`; `reno` is always allowed)
    /// fails [`ServerBootstrap::bind`](crate::ServerBootstrap::bind) or
    /// [`bind_listener`](crate::ServerBootstrap::bind_listener), and a
    /// client's [`Bootstrap::connect`](crate::Bootstrap::connect), with an
    /// error naming the option. Not applied to Unix domain sockets.
    ///
    /// ```
    /// use gyre_reactor::ChannelOptions;
    ///
    /// let opts = ChannelOptions::default().tcp_congestion("reno");
    /// assert_eq!(opts.tcp_congestion_name(), Some("reno"));
    /// assert_eq!(ChannelOptions::default().tcp_congestion_name(), None);
    /// ```
    pub fn tcp_congestion(mut self, name: impl Into<String>) -> Self {
        self.tcp_congestion = Some(name.into());
        self
    }

    /// The congestion control set with [`tcp_congestion`](Self::tcp_congestion),
    /// if any.
    pub fn tcp_congestion_name(&self) -> Option<&str> {
        self.tcp_congestion.as_deref()
    }

    /// Whether a TCP channel whose peer is on this host keeps a pacing
    /// congestion control (BBR) for its file sends (default `false`).
    ///
    /// By default, when such a channel first sends more than a pipeful of
    /// file (64 KiB) and no [`tcp_congestion`](Self::tcp_congestion) is
    /// set, it moves its socket from BBR to `reno` (which every process
    /// may set, and which does not pace) and keeps it there. A peer on
    /// this host (a loopback address, or the socket's own address) has no
    /// path to measure, and BBR paced such bulk sends to the rate of the
    /// sender's own CPU, a timer per segment burst, each leaving the VM:
    /// on the Intel Xeon VM whose default is BBR the reactor sent a 1 GiB
    /// file at 1.12-1.19x a copy loop with 0.80-0.86 of its CPU, and at
    /// 5.4-9.3x with 0.08-0.16 once its file sends left BBR (3.5-4.0x
    /// with the copy loop on `reno` too; BENCHMARKS.md, issue 22,
    /// fifty-third session). Peers elsewhere, other congestion controls,
    /// Unix sockets and channels that send no file are left as they are.
    /// `true` keeps the host's choice for local peers too.
    ///
    /// A server whose peers are all on this host and which sends mostly
    /// files does better still running `reno` from the start
    /// ([`tcp_congestion("reno")`](Self::tcp_congestion), or
    /// [`gyre_zerocopy::leave_pacing`] on its listener): the kernel goes
    /// on pacing a socket that ran BBR, at the next congestion control's
    /// rate. `gyre-fileserver` sending 1 GiB to curl over loopback used
    /// 0.23-0.26 s of CPU per GiB switched at the file against 0.06 from
    /// the start (0.43-0.46 left on BBR). Not the default for every local
    /// connection: the broker's consumers read 3.40-3.83 M records/s with
    /// all of them on `reno` from the start against 4.06-4.48 M on BBR.
    ///
    /// ```
    /// use gyre_reactor::ChannelOptions;
    ///
    /// assert!(!ChannelOptions::default().paces_local_file_sends());
    /// let opts = ChannelOptions::default().pace_local_file_sends(true);
    /// assert!(opts.paces_local_file_sends());
    /// ```
    pub fn pace_local_file_sends(mut self, pace: bool) -> Self {
        self.pace_local_file_sends = pace;
        self
    }

    /// Whether local file sends keep a pacing congestion control; see
    /// [`pace_local_file_sends`](Self::pace_local_file_sends).
    pub fn paces_local_file_sends(&self) -> bool {
        self.pace_local_file_sends
    }

    /// Bytes asked of the socket per read (default 64 KiB). The read buffer
    /// is reused: once every chunk read into it has been dropped, the next
    /// read starts at the front of the same memory again (still in cache,
    /// and only the pages a connection's largest read touched are ever
    /// resident); it is reallocated only while chunks from it are still
    /// alive and it has run low.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(64);
        self
    }

    /// Reads per readiness event before the loop serves other channels
    /// (default 16); the channel is read again on the next turn.
    pub fn max_reads_per_event(mut self, reads: usize) -> Self {
        self.max_reads_per_event = reads.max(1);
        self
    }

    /// Bytes a channel writes per readiness event or flush before the loop
    /// serves other channels (default 1 MiB, what the default 16 reads of
    /// 64 KiB take in); the rest goes out on the loop's next turn, and no
    /// one `sendfile` call moves more. Without a bound, a file (or a long
    /// queue) sent to a reader that keeps up held its loop until the end:
    /// one `sendfile` took a whole 1 GiB file in 130-330 ms on the AMD
    /// EPYC VM, and every other channel of the loop waited for it.
    ///
    /// ```
    /// use gyre_reactor::ChannelOptions;
    /// let opts = ChannelOptions::default().max_write_bytes_per_event(256 * 1024);
    /// assert_eq!(opts.write_bytes_per_event(), 256 * 1024);
    /// assert_eq!(ChannelOptions::default().write_bytes_per_event(), 1 << 20);
    /// ```
    pub fn max_write_bytes_per_event(mut self, bytes: usize) -> Self {
        self.max_write_bytes_per_event = bytes.max(1);
        self
    }

    /// The bytes a channel writes per event before yielding
    /// ([`max_write_bytes_per_event`](ChannelOptions::max_write_bytes_per_event)).
    pub fn write_bytes_per_event(&self) -> usize {
        self.max_write_bytes_per_event
    }

    /// Outbound queue watermarks (default 64 KiB / 32 KiB): above `high` the
    /// channel turns unwritable, below `low` writable again, and the
    /// pipeline hears of each change.
    ///
    /// # Panics
    /// If `low > high`.
    pub fn write_buffer_watermarks(mut self, high: usize, low: usize) -> Self {
        assert!(low <= high, "low watermark {low} above high {high}");
        self.high_watermark = high;
        self.low_watermark = low;
        self
    }

    /// Whether the channel starts reading as soon as it is active (default
    /// on). Handlers switch it with `set_auto_read`.
    pub fn auto_read(mut self, on: bool) -> Self {
        self.auto_read = on;
        self
    }

    /// Whether a peer's half-close (EOF) leaves the channel open for writing
    /// (default off: the channel flushes what it has queued and closes).
    pub fn allow_half_closure(mut self, on: bool) -> Self {
        self.allow_half_closure = on;
        self
    }

    /// How long a closing channel keeps trying to deliver queued output to a
    /// peer that is not reading before it gives up (default 10 s), counted
    /// from the output's last progress: a peer still taking bytes, however
    /// slowly (or a channel held by its [write limit](Self::write_limit)),
    /// gets its output whole.
    pub fn close_drain_timeout(mut self, timeout: Duration) -> Self {
        self.close_drain_timeout = timeout;
        self
    }

    /// After a close the channel asked for, once its output is delivered,
    /// shut down the sending side (the peer reads EOF after the last byte)
    /// and read and discard what the peer still sends, until its EOF or for
    /// at most `timeout` (and 256 KiB), before closing. Without it, closing
    /// with input unread makes the kernel answer with a reset, which can
    /// destroy the last response before the peer has read it: an HTTP
    /// server refusing a request that is still arriving (431, 413) is the
    /// classic case, which Apache calls a lingering close. Default zero:
    /// close at once, as Netty does.
    ///
    /// ```
    /// use gyre_reactor::ChannelOptions;
    /// use std::time::Duration;
    ///
    /// let opts = ChannelOptions::default().lingering_close(Duration::from_secs(2));
    /// # let _ = opts;
    /// ```
    pub fn lingering_close(mut self, timeout: Duration) -> Self {
        self.lingering_close = timeout;
        self
    }

    /// On io_uring, gathered sends of at least `threshold` bytes use
    /// `IORING_OP_SENDMSG_ZC`: the kernel sends from our buffers instead of
    /// copying them, and the channel keeps them until the kernel says it is
    /// done. Default off: on loopback the kernel copies anyway, and for small
    /// sends the extra notification costs more than the copy. Ignored on
    /// epoll, and where the kernel lacks the opcode.
    pub fn zero_copy_send(mut self, threshold: usize) -> Self {
        self.zero_copy_send = Some(threshold);
        self
    }

    /// Lets [`ChannelHandle::write_direct`](crate::ChannelHandle::write_direct)
    /// send from the calling thread when the channel's loop has nothing of
    /// its own to write: a request goes out with one system call on the
    /// caller's thread instead of a wake-up of the loop and a send there.
    /// Default off. Only on the epoll transport and on stream sockets (TCP,
    /// Unix); a channel with a TLS layer refuses direct writes, as the
    /// bytes would bypass the encryption.
    pub fn direct_writes(mut self, on: bool) -> Self {
        self.direct_writes = on;
        self
    }

    /// Lets [`ChannelHandle::lend_input`](crate::ChannelHandle::lend_input)
    /// lend the socket's input to the calling thread while the loop has
    /// none of its own in hand: a thread that sent a request directly can
    /// then read its answer the moment it arrives, instead of waiting for
    /// the loop to be woken, read, decode and hand it over. Default off.
    /// It needs [`direct_writes`](Self::direct_writes) (the two share one
    /// gate), so it too is only on the epoll transport and stream sockets,
    /// and refused with a TLS layer. Every handler of the channel's
    /// pipeline that keeps input across reads must say so in
    /// [`InboundHandler::holds_input`](crate::InboundHandler::holds_input)
    /// (the reactor's decoders do). A lending channel takes one more
    /// descriptor, a duplicate of its socket's that the loop watches for
    /// input, so that a holder can turn that watch off while it reads and
    /// the loop sleeps through the answers (without one to spare the
    /// channel registers once, and lends still work); it is closed with
    /// the socket.
    ///
    /// ```
    /// use gyre_reactor::ChannelOptions;
    ///
    /// let opts = ChannelOptions::default().direct_writes(true).lend_input(true);
    /// assert!(opts.lends_input());
    /// ```
    pub fn lend_input(mut self, on: bool) -> Self {
        self.lend_input = on;
        self
    }

    /// Whether the channel's input may be lent (both
    /// [`lend_input`](Self::lend_input) and
    /// [`direct_writes`](Self::direct_writes) on).
    pub fn lends_input(&self) -> bool {
        self.lend_input && self.takes_direct_writes() && !self.limits_reads()
    }

    /// Whether direct writes are on and no write limit forbids them.
    pub(crate) fn takes_direct_writes(&self) -> bool {
        self.direct_writes && !self.limits_writes()
    }

    /// Holds each channel's writes to `limit`, on its own (Netty's
    /// `ChannelTrafficShapingHandler`, nginx's `limit_rate`): what the
    /// socket takes is counted, bytes and file regions alike, and once the
    /// burst is spent the channel writes nothing more until the rate has
    /// paid for a piece again (a tenth of the burst, or 10 ms' worth if
    /// that is more); a file sent through a splice pipe too, what the
    /// pipe holds counted in. Output held back stays queued, so the
    /// watermarks and
    /// [`InboundHandler::writability_changed`](crate::InboundHandler::writability_changed)
    /// tell a handler to stop producing, as with a slow reader. A channel
    /// with a write limit takes no [direct writes](Self::direct_writes).
    ///
    /// ```
    /// use gyre_reactor::{ChannelOptions, TrafficLimit};
    ///
    /// let opts = ChannelOptions::default().write_limit(TrafficLimit::bytes_per_second(1 << 20));
    /// assert_eq!(opts.write_limit_set().map(|l| l.rate()), Some(1 << 20));
    /// ```
    pub fn write_limit(mut self, limit: TrafficLimit) -> Self {
        self.write_limit = Some(limit);
        self
    }

    /// Holds each channel's reads to `limit`, on its own: once a read
    /// pass takes the channel past its burst, the channel stops reading
    /// until the rate has paid for what it read, and the peer is slowed
    /// by TCP's flow control meanwhile. A read pass may overshoot by what
    /// it read (at most [`max_reads_per_event`](Self::max_reads_per_event)
    /// reads of [`read_buffer_size`](Self::read_buffer_size)); the wait
    /// after it makes up for that. A channel with a read limit does not
    /// [lend its input](Self::lend_input), whose reads the loop does not
    /// see.
    ///
    /// ```
    /// use gyre_reactor::{ChannelOptions, TrafficLimit};
    ///
    /// let opts = ChannelOptions::default().read_limit(TrafficLimit::bytes_per_second(64 * 1024));
    /// assert!(opts.read_limit_set().is_some());
    /// ```
    pub fn read_limit(mut self, limit: TrafficLimit) -> Self {
        self.read_limit = Some(limit);
        self
    }

    /// Holds the writes of every channel given `limit` (or a clone of it)
    /// to its rate together (Netty's `GlobalTrafficShapingHandler`); with
    /// a [`write_limit`](Self::write_limit) too, each channel is held to
    /// the tighter of the two. As with `write_limit`, no direct writes.
    ///
    /// ```
    /// use gyre_reactor::{ChannelOptions, SharedTrafficLimit, TrafficLimit};
    ///
    /// let uplink = SharedTrafficLimit::new(TrafficLimit::bytes_per_second(10_000_000));
    /// let opts = ChannelOptions::default().shared_write_limit(&uplink);
    /// # let _ = opts;
    /// ```
    pub fn shared_write_limit(mut self, limit: &SharedTrafficLimit) -> Self {
        self.shared_write_limit = Some(limit.clone());
        self
    }

    /// Holds the reads of every channel given `limit` (or a clone of it)
    /// to its rate together; with a [`read_limit`](Self::read_limit) too,
    /// the tighter of the two holds. As with `read_limit`, no input lent.
    ///
    /// ```
    /// use gyre_reactor::{ChannelOptions, SharedTrafficLimit, TrafficLimit};
    ///
    /// let ingest = SharedTrafficLimit::new(TrafficLimit::bytes_per_second(50_000_000));
    /// let opts = ChannelOptions::default().shared_read_limit(&ingest);
    /// # let _ = opts;
    /// ```
    pub fn shared_read_limit(mut self, limit: &SharedTrafficLimit) -> Self {
        self.shared_read_limit = Some(limit.clone());
        self
    }

    /// The per-channel write limit, if set.
    pub fn write_limit_set(&self) -> Option<TrafficLimit> {
        self.write_limit
    }

    /// The per-channel read limit, if set.
    pub fn read_limit_set(&self) -> Option<TrafficLimit> {
        self.read_limit
    }

    /// Whether a write limit, own or shared, is set.
    fn limits_writes(&self) -> bool {
        self.write_limit.is_some() || self.shared_write_limit.is_some()
    }

    /// Whether a read limit, own or shared, is set.
    fn limits_reads(&self) -> bool {
        self.read_limit.is_some() || self.shared_read_limit.is_some()
    }

    /// The high watermark in bytes.
    pub fn high_watermark(&self) -> usize {
        self.high_watermark
    }

    /// The low watermark in bytes.
    pub fn low_watermark(&self) -> usize {
        self.low_watermark
    }

    /// Sets the options on a socket; `tcp` says whether TCP's own
    /// (no-delay, keep-alive) apply (not to a Unix domain socket).
    pub(crate) fn apply(&self, sock: socket2::SockRef<'_>, tcp: bool) -> std::io::Result<()> {
        if tcp {
            sock.set_tcp_nodelay(self.tcp_nodelay)?;
        }
        if let Some(n) = self.send_buffer_size {
            sock.set_send_buffer_size(n)?;
        }
        if let Some(n) = self.recv_buffer_size {
            sock.set_recv_buffer_size(n)?;
        }
        if tcp && (self.keepalive.is_some() || self.keepalive_probes.is_some()) {
            let mut keepalive = socket2::TcpKeepalive::new();
            if let Some(idle) = self.keepalive {
                keepalive = keepalive.with_time(idle);
            }
            if let Some((interval, count)) = self.keepalive_probes {
                keepalive = keepalive.with_interval(interval).with_retries(count);
            }
            sock.set_tcp_keepalive(&keepalive)?;
        }
        if let (true, Some(timeout)) = (tcp, self.tcp_user_timeout) {
            sock.set_tcp_user_timeout(Some(timeout))?;
        }
        if let Some(l) = self.linger {
            sock.set_linger(Some(l))?;
        }
        if let (true, Some(name)) = (tcp, &self.tcp_congestion) {
            set_tcp_congestion(&sock, name)?;
        }
        if let Some(tos) = self.ip_tos {
            let set = match sock.domain()? {
                socket2::Domain::IPV4 => sock.set_tos_v4(tos.into()),
                socket2::Domain::IPV6 => sock.set_tclass_v6(tos.into()),
                _ => Ok(()),
            };
            set.map_err(|e| std::io::Error::new(e.kind(), format!("IP_TOS {tos:#04x}: {e}")))?;
        }
        if self.broadcast && sock.r#type()? == socket2::Type::DGRAM {
            sock.set_broadcast(true)?;
        }
        Ok(())
    }
}

/// Sets `TCP_CONGESTION` to `name` on a TCP socket; the error names the
/// option and the algorithm, and what the kernel's refusal means.
pub(crate) fn set_tcp_congestion(sock: &socket2::SockRef<'_>, name: &str) -> std::io::Result<()> {
    sock.set_tcp_congestion(name.as_bytes()).map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOENT) => " (no such algorithm in this kernel)",
            Some(libc::EPERM) => {
                " (not in net.ipv4.tcp_allowed_congestion_control, and the process lacks CAP_NET_ADMIN)"
            }
            _ => "",
        };
        std::io::Error::new(e.kind(), format!("TCP_CONGESTION {name:?}: {e}{why}"))
    })
}

/// Options of a listening socket.
///
/// ```
/// use gyre_reactor::{ListenOptions, Pipeline, ServerBootstrap};
///
/// // A deep accept queue, and one listener per loop on the same port.
/// let server = ServerBootstrap::new()
///     .listen_options(ListenOptions::default().backlog(4096).reuse_port(true))
///     .bind("127.0.0.1:0", |_peer| Pipeline::new())?;
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct ListenOptions {
    pub(crate) backlog: i32,
    pub(crate) reuse_address: bool,
    pub(crate) reuse_port: bool,
    pub(crate) accepts_per_event: usize,
    pub(crate) cap: Option<ConnectionCap>,
    pub(crate) fastopen: Option<u32>,
    pub(crate) defer_accept: Option<Duration>,
}

/// Connections a loop accepts per turn by default: what Netty's server
/// channels read per event (`maxMessagesPerRead`), a few hundred
/// microseconds of a loop's time at the 10-20 µs an accepted connection
/// costs it here.
const DEFAULT_ACCEPTS_PER_EVENT: usize = 16;

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions {
            backlog: 1024,
            reuse_address: true,
            reuse_port: false,
            accepts_per_event: DEFAULT_ACCEPTS_PER_EVENT,
            cap: None,
            fastopen: None,
            defer_accept: None,
        }
    }
}

impl ListenOptions {
    /// The accept backlog (default 1024).
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// `SO_REUSEADDR` (default on).
    pub fn reuse_address(mut self, on: bool) -> Self {
        self.reuse_address = on;
        self
    }

    /// `SO_REUSEPORT`: every worker loop binds its own listener on the same
    /// address and accepts for itself; the kernel spreads connections.
    pub fn reuse_port(mut self, on: bool) -> Self {
        self.reuse_port = on;
        self
    }

    /// The most connections a loop accepts from this listener in one turn
    /// (default 16, at least 1); the rest wait for its next turn, which
    /// comes after the loop's other channels have had theirs. Without it
    /// a loop handed a thousand waiting connections (a reconnect storm
    /// after a restart) answers none of its open ones until it has set up
    /// all of them: 8-22 ms on the AMD EPYC VM. A loop's own setting, not
    /// the socket's, so it applies to
    /// [`bind_listener`](crate::ServerBootstrap::bind_listener)'s sockets
    /// too.
    ///
    /// On io_uring the ring accepts ahead of the loop, and the connections
    /// past a turn's share wait in the listener, in order. It keeps at
    /// most four shares of them (at least 64) before it stops accepting
    /// until half are set up: a loop that falls behind a flood leaves the
    /// rest in the kernel's backlog, as on epoll, where they hold no
    /// descriptor and a full backlog slows the clients down.
    ///
    /// ```
    /// use gyre_reactor::{ListenOptions, Pipeline, ServerBootstrap};
    ///
    /// // A server whose connections come in storms and stay: take them
    /// // faster, at some cost to the open ones' latency meanwhile.
    /// let opts = ListenOptions::default().backlog(8192).max_accepts_per_event(64);
    /// assert_eq!(opts.accepts_per_event(), 64);
    /// let server = ServerBootstrap::new()
    ///     .listen_options(opts)
    ///     .bind("127.0.0.1:0", |_peer| Pipeline::new())?;
    /// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_accepts_per_event(mut self, connections: usize) -> Self {
        self.accepts_per_event = connections.max(1);
        self
    }

    /// The most connections a loop accepts from this listener in one turn
    /// (see [`max_accepts_per_event`](Self::max_accepts_per_event)).
    pub fn accepts_per_event(&self) -> usize {
        self.accepts_per_event
    }

    /// Holds the connections open at once through this listener, and
    /// every other given the same cap, to its maximum (Kafka's
    /// `max.connections`): at the cap, new connections wait in the
    /// kernel's backlog until one closes. See [`ConnectionCap`].
    ///
    /// ```
    /// use gyre_reactor::{ConnectionCap, ListenOptions};
    ///
    /// let opts = ListenOptions::default().connection_cap(&ConnectionCap::new(1_000));
    /// assert_eq!(opts.connection_cap_set().map(ConnectionCap::max), Some(1_000));
    /// ```
    pub fn connection_cap(mut self, cap: &ConnectionCap) -> Self {
        self.cap = Some(cap.clone());
        self
    }

    /// The connection cap, if set.
    pub fn connection_cap_set(&self) -> Option<&ConnectionCap> {
        self.cap.as_ref()
    }

    /// `TCP_FASTOPEN` on a TCP listener, with room for `queue` connections
    /// whose handshake is not yet done (Netty's
    /// `EpollChannelOption.TCP_FASTOPEN`): a client that has been here
    /// before sends its first request in its SYN, a round trip saved. The
    /// kernel serves it only where `net.ipv4.tcp_fastopen` has the server
    /// bit (2) set.
    ///
    /// ```
    /// use gyre_reactor::ListenOptions;
    /// let opts = ListenOptions::default().tcp_fastopen(256);
    /// # let _ = opts;
    /// ```
    pub fn tcp_fastopen(mut self, queue: u32) -> Self {
        self.fastopen = Some(queue.max(1));
        self
    }

    /// `TCP_DEFER_ACCEPT` on a TCP listener (Netty's
    /// `EpollChannelOption.TCP_DEFER_ACCEPT`, nginx's `deferred`): the
    /// kernel hands over a connection only once its first bytes have come
    /// (or after `wait`, whole seconds, rounded up), so a client that
    /// connects and says nothing costs the server no accept, descriptor
    /// or channel meanwhile. For protocols where the client speaks first
    /// (HTTP, Kafka, gyre-rpc), not where the server greets.
    ///
    /// ```
    /// use gyre_reactor::ListenOptions;
    /// use std::time::Duration;
    /// let opts = ListenOptions::default().defer_accept(Duration::from_secs(5));
    /// # let _ = opts;
    /// ```
    pub fn defer_accept(mut self, wait: Duration) -> Self {
        self.defer_accept = Some(wait);
        self
    }

    /// Sets the TCP listener options on `socket`, before it listens.
    pub(crate) fn apply_tcp(&self, socket: &socket2::Socket) -> std::io::Result<()> {
        if let Some(queue) = self.fastopen {
            set_tcp_int(socket, libc::TCP_FASTOPEN, queue)?;
        }
        if let Some(wait) = self.defer_accept {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            set_tcp_int(
                socket,
                libc::TCP_DEFER_ACCEPT,
                secs.clamp(1, u32::MAX.into()) as u32,
            )?;
        }
        Ok(())
    }
}

/// Sets the `IPPROTO_TCP` option `name` of `socket` to `value` (an int).
fn set_tcp_int(socket: &socket2::Socket, name: libc::c_int, value: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is the live socket `socket` borrows for the
    // call, and the option value is a local `c_int` whose size is passed
    // with it, as the option expects.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::SockRef;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn tcp_int(fd: &impl AsRawFd, name: libc::c_int) -> i32 {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a live descriptor, and a local int with its size.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                name,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        value
    }

    #[test]
    fn channel_options_reach_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let opts = ChannelOptions::default()
            .keepalive(Duration::from_secs(60))
            .keepalive_probes(Duration::from_secs(10), 5)
            .tcp_user_timeout(Duration::from_millis(30_500));
        opts.apply(SockRef::from(&accepted), true).unwrap();
        let s = SockRef::from(&accepted);
        assert!(s.keepalive().unwrap());
        assert_eq!(s.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
        assert_eq!(s.tcp_keepalive_interval().unwrap(), Duration::from_secs(10));
        assert_eq!(s.tcp_keepalive_retries().unwrap(), 5);
        assert_eq!(
            s.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(30_500))
        );
        assert!(s.tcp_nodelay().unwrap());
        // Probes alone turn keepalive on with the kernel's idle time.
        let (other, _) = {
            let _c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            listener.accept().unwrap()
        };
        ChannelOptions::default()
            .keepalive_probes(Duration::from_secs(3), 2)
            .apply(SockRef::from(&other), true)
            .unwrap();
        assert!(SockRef::from(&other).keepalive().unwrap());
        assert_eq!(SockRef::from(&other).tcp_keepalive_retries().unwrap(), 2);
    }

    #[test]
    fn the_type_of_service_and_broadcast_reach_ip_sockets_only() {
        use socket2::{Domain, Socket, Type};
        let opts = ChannelOptions::default().ip_tos(0xb8).broadcast(true);
        let v4 = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        opts.apply(SockRef::from(&v4), false).unwrap();
        assert_eq!(v4.tos_v4().unwrap(), 0xb8);
        assert!(v4.broadcast().unwrap());
        match Socket::new(Domain::IPV6, Type::STREAM, None) {
            Ok(v6) => {
                opts.apply(SockRef::from(&v6), true).unwrap();
                assert_eq!(v6.tclass_v6().unwrap(), 0xb8);
                assert!(!v6.broadcast().unwrap(), "a stream socket is left alone");
            }
            // A kernel without IPv6 has no traffic class to set.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EAFNOSUPPORT), "{e}"),
        }
        let (unix, _) = std::os::unix::net::UnixStream::pair().unwrap();
        opts.apply(SockRef::from(&unix), false).unwrap();
        // Unset: the kernel's defaults.
        let plain = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
        ChannelOptions::default()
            .apply(SockRef::from(&plain), false)
            .unwrap();
        assert_eq!(plain.tos_v4().unwrap(), 0);
        assert!(!plain.broadcast().unwrap());
    }

    #[test]
    fn listen_options_reach_the_listener() {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        ListenOptions::default()
            .tcp_fastopen(64)
            .defer_accept(Duration::from_millis(2_500))
            .apply_tcp(&socket)
            .unwrap();
        assert_eq!(tcp_int(&socket, libc::TCP_FASTOPEN), 64);
        // The kernel keeps whole seconds as SYN-ACK retransmissions, and
        // gives back the seconds they cover: at least the 3 asked (2.5
        // rounded up).
        assert!(tcp_int(&socket, libc::TCP_DEFER_ACCEPT) >= 3);
    }
}
