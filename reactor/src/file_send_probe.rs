//! Which of the two zero-copy file paths this host runs faster: `sendfile`
//! or `splice` through a 1 MiB pipe, measured once per process for
//! [`FileSend::Auto`](crate::FileSend::Auto).
//!
//! The two keep the bytes in the kernel alike, and which is faster is the
//! host's to say, so the choice is measured where it runs, as
//! `../shared/DESIGN.md` asks. On the VMs this project runs on they have
//! tied so far: within each other's spread on AMD EPYC (both about 2x a
//! copy loop over loopback TCP), and on Intel Xeon both 3.6-4.2x a copy
//! loop once the connection's congestion control no longer paces it. The
//! gap issue 22 first saw there (`sendfile` at 0.84-0.88x a copy loop,
//! splicing at 1.16-1.19x) was that pacing: the host's BBR caps a
//! CPU-bound loopback sender at the rate it measured, and which path a
//! connection caught it on was chance (BENCHMARKS.md, twenty-ninth
//! session). So the probe's own connection runs `reno`, which does not
//! pace and which every process may set: it times the two paths, not the
//! congestion control's state.
//!
//! The probe runs in a thread of its own, started by the first file send
//! that asks for it (or by [`start`]), never on a loop thread: it sends a
//! nameless file of [`PROBE_BYTES`] (`O_TMPFILE` in the temporary folder,
//! else `memfd`: nothing is left behind) over a loopback TCP connection to
//! a reader thread, alternating the two paths, and decides by the median
//! of the rounds' paired ratios (splice's time over `sendfile`'s in the
//! same round). It holds six descriptors for the few tens of milliseconds
//! it takes; should it fail (descriptors exhausted, a full disk, no
//! `memfd`), the outcome says why and `Auto` means `sendfile`.
//!
//! Holds `send_region`, where the channels' two file paths part. Uses
//! `gyre-zerocopy` (the region and the pipe the channels send with),
//! `libc` (`O_TMPFILE`, `memfd_create`, `poll`) and `std`'s files, sockets
//! and threads; knows nothing of channels or loops.

use gyre_zerocopy::{FileRegion, RegionPipe, SharedFile};
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// How many bytes each timed send moves: eight pipefuls, enough that a
/// path's per-call cost shows and short enough (a few ms a send) that the
/// probe's eighteen sends stay far below a second on a slow host.
pub const PROBE_BYTES: u64 = 8 << 20;

/// The pipe the probe splices through: 1 MiB, the largest an unprivileged
/// process gets by default.
pub const PROBE_PIPE: usize = 1 << 20;

/// Timed rounds, each one send of each path back to back. The median of
/// the rounds' paired ratios decides: a round's two sends see the same
/// state of the host, which drifts between rounds. Eight, not four, and
/// the median, not each path's best: on the AMD EPYC Zen 4 VM a short
/// send is timed mostly by how soon the reader's vCPU wakes, one path's
/// single lucky send decided, and the best-of-four probe chose splice in
/// ten of sixteen processes where the median of eight paired rounds chose
/// it in four (the host's long sends favour `sendfile` 1.3-1.8x;
/// BENCHMARKS.md, issue 22, nineteenth session).
const ROUNDS: usize = 8;

/// The most one `sendfile` call of the probe moves: a pipeful, as one
/// splice moves, and what a channel's default bytes per event
/// (`ChannelOptions::max_write_bytes_per_event`, 1 MiB) lets one of its
/// calls move, so both paths are timed as channels run them.
const SENDFILE_CALL: usize = PROBE_PIPE;

/// How much faster `splice` must be for the probe to choose it: each
/// channel that splices holds a pipe (two descriptors), so a tie, or a
/// lead inside the measurement's spread, goes to `sendfile`.
const SPLICE_MARGIN: f64 = 1.10;

/// How long any one step of the probe may wait on its own sockets before
/// it gives up (they are loopback and drained by a thread of ours, so only
/// a stalled host ever hits this).
const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the probe measured: each path's best time to send [`PROBE_BYTES`]
/// from a nameless file over loopback TCP, and the median ratio of the
/// two paths' times in the same round, which decides.
///
/// ```
/// use gyre_reactor::FileSend;
/// use std::time::Duration;
///
/// // A server's first file send starts it; so can its owner, earlier.
/// FileSend::start_probe();
/// while FileSend::probe().is_none() {
///     std::thread::sleep(Duration::from_millis(5));
/// }
/// if let Some(Ok(probe)) = FileSend::probe() {
///     println!("{probe}; Auto now sends with {}", FileSend::Auto.resolve().describe());
///     assert!(probe.sendfile > Duration::ZERO && probe.splice > Duration::ZERO);
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FileSendProbe {
    /// `sendfile`'s best time.
    pub sendfile: Duration,
    /// `splice` through a [`PROBE_PIPE`] pipe: its best time.
    pub splice: Duration,
    /// The bytes each timed send moved.
    pub bytes: u64,
    /// The median over the rounds of splice's time over `sendfile`'s in
    /// the same round (below 1: splice faster).
    pub splice_per_sendfile: f64,
}

impl FileSendProbe {
    /// Whether splicing won by enough to be chosen: in the median round at
    /// least 10% less time (a tie goes to `sendfile`, which costs a
    /// channel no pipe).
    pub fn splice_wins(&self) -> bool {
        self.splice_per_sendfile * SPLICE_MARGIN < 1.0
    }

    fn rate(&self, took: Duration) -> f64 {
        self.bytes as f64 / (1u64 << 30) as f64 / took.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for FileSendProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sendfile {:.2} GiB/s, splice through a {} KiB pipe {:.2} GiB/s ({} MiB sends, best of {ROUNDS}); splice's time over sendfile's {:.2} (median round)",
            self.rate(self.sendfile),
            PROBE_PIPE / 1024,
            self.rate(self.splice),
            self.bytes >> 20,
            self.splice_per_sendfile
        )
    }
}

static STARTED: Once = Once::new();
static OUTCOME: OnceLock<io::Result<FileSendProbe>> = OnceLock::new();

/// Starts the probe in a thread of its own, once per process; later calls
/// do nothing (one atomic load).
pub(crate) fn start() {
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("gyre-file-send-probe".into())
            .spawn(|| settle(measure(PROBE_BYTES)));
        if let Err(e) = spawned {
            settle(Err(context("start its thread", e)));
        }
    });
}

/// The probe's outcome, once it has one.
pub(crate) fn outcome() -> Option<&'static io::Result<FileSendProbe>> {
    OUTCOME.get()
}

fn settle(outcome: io::Result<FileSendProbe>) {
    match &outcome {
        Ok(probe) => tracing::info!(
            %probe,
            splice = probe.splice_wins(),
            "file sends: measured which path this host runs faster"
        ),
        Err(e) => tracing::warn!(error = %e, "file sends: not measured; sending with sendfile"),
    }
    let _ = OUTCOME.set(outcome);
}

/// An error that says which step of the probe failed.
fn context(step: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("file-send probe: {step}: {e}"))
}

/// Times both paths, alternating, [`ROUNDS`] sends each after one untimed
/// send of each (which faults the file's pages in and grows the socket's
/// buffers), and keeps each path's best and each round's pair.
pub(crate) fn measure(bytes: u64) -> io::Result<FileSendProbe> {
    let file = probe_file(bytes)?;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| context("bind", e))?;
    let addr = listener.local_addr().map_err(|e| context("bind", e))?;
    let ours = TcpStream::connect(addr).map_err(|e| context("connect", e))?;
    let (theirs, _) = listener.accept().map_err(|e| context("accept", e))?;
    drop(listener);
    // Not paced, so both paths run at what they cost (see the module's
    // doc); a kernel without `reno` (none we know of) measures as it is.
    if let Err(e) = socket2::SockRef::from(&ours).set_tcp_congestion(b"reno") {
        tracing::debug!(error = %e, "file-send probe: runs the host's congestion control");
    }
    ours.set_nonblocking(true)
        .map_err(|e| context("set non-blocking", e))?;
    theirs
        .set_read_timeout(Some(STEP_TIMEOUT))
        .map_err(|e| context("set a read timeout", e))?;
    let reader = std::thread::Builder::new()
        .name("gyre-file-send-probe-reader".into())
        .spawn(move || drain(theirs, bytes))
        .map_err(|e| context("start its reader", e))?;
    let mut pipe = RegionPipe::new(PROBE_PIPE).map_err(|e| context("open a pipe", e))?;
    // Each round's two times, sendfile first; each round alternates which
    // goes first, so drift in the host hits both alike.
    let mut pairs = [[Duration::ZERO; 2]; ROUNDS];
    let timed = (|| {
        for round in 0..=ROUNDS {
            for turn in 0..2 {
                let splice = (round + turn) % 2 == 1;
                let took = send_once(&file, bytes, &ours, splice.then_some(&mut pipe))?;
                if round > 0 {
                    pairs[round - 1][usize::from(splice)] = took;
                }
            }
        }
        Ok::<_, io::Error>(())
    })();
    drop(ours);
    let drained = reader
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("file-send probe: its reader panicked")));
    timed?;
    drained?;
    let best = |path: usize| {
        pairs
            .iter()
            .map(|pair| pair[path])
            .min()
            .unwrap_or_default()
    };
    Ok(FileSendProbe {
        sendfile: best(0),
        splice: best(1),
        bytes,
        splice_per_sendfile: median_ratio(&pairs),
    })
}

/// The median over `pairs` (each a round's `sendfile` and splice times) of
/// splice's time over `sendfile`'s.
fn median_ratio(pairs: &[[Duration; 2]]) -> f64 {
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|[sendfile, splice]| splice.as_secs_f64() / sendfile.as_secs_f64().max(1e-9))
        .collect();
    ratios.sort_by(f64::total_cmp);
    match ratios.len() {
        0 => 1.0,
        n if n % 2 == 1 => ratios[n / 2],
        n => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
    }
}

/// Sends the next part of `region` to `socket`: through `pipe` with
/// `splice` when there is one (what it holds, then up to a pipeful more),
/// else with `sendfile`; either moves no more than `limit` bytes (a write
/// limit's allowance, the bytes per event) and reads no more of the file
/// than that, nor than `cached` (what a file loader knows is in the page
/// cache). The one place the two file paths part, for the channels
/// and for the probe that times them.
pub(crate) fn send_region(
    region: &mut FileRegion,
    pipe: Option<&mut RegionPipe>,
    socket: &impl AsFd,
    limit: usize,
    cached: u64,
) -> Result<usize, gyre_zerocopy::Error> {
    let most = usize::try_from(cached).unwrap_or(usize::MAX).min(limit);
    match pipe {
        // What the pipe holds from the last call goes first, and counts
        // towards `limit`: what is past it waits in the pipe.
        Some(pipe) => pipe.send_within(region, socket, most, limit),
        None => region.transfer_up_to(socket, most),
    }
}

/// One timed send of the whole file: from the first byte handed to the
/// kernel until the reader says it has them all.
fn send_once(
    file: &SharedFile,
    bytes: u64,
    socket: &TcpStream,
    mut pipe: Option<&mut RegionPipe>,
) -> io::Result<Duration> {
    let mut region = FileRegion::new(file.clone(), 0, bytes).map_err(io::Error::other)?;
    let started = Instant::now();
    while !region.is_done() {
        let sent = send_region(
            &mut region,
            pipe.as_deref_mut(),
            socket,
            SENDFILE_CALL,
            u64::MAX,
        )
        .map_err(io::Error::other)?;
        if sent == 0 && !region.is_done() {
            wait_for(socket, libc::POLLOUT, "wait for room in the socket")?;
        }
    }
    wait_for(socket, libc::POLLIN, "wait for the reader")?;
    let mut ack = [0u8; 1];
    let mut socket_ref = socket;
    match socket_ref.read(&mut ack) {
        Ok(1) => Ok(started.elapsed()),
        Ok(_) => Err(context(
            "read the reader's answer",
            io::ErrorKind::UnexpectedEof.into(),
        )),
        Err(e) => Err(context("read the reader's answer", e)),
    }
}

/// Reads `bytes` at a time and answers each with one byte, until the
/// sender closes.
fn drain(mut socket: TcpStream, bytes: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        match socket.read(&mut buf) {
            Ok(0) if got == 0 => return Ok(()),
            Ok(0) => {
                return Err(context(
                    "drain",
                    io::Error::new(io::ErrorKind::UnexpectedEof, "a send ended early"),
                ))
            }
            Ok(n) => got += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(context("drain", e)),
        }
        if got == bytes {
            got = 0;
            socket
                .write_all(&[1])
                .map_err(|e| context("answer the sender", e))?;
        }
    }
}

/// Waits until `socket` is ready for `events`, at most [`STEP_TIMEOUT`].
fn wait_for(socket: &TcpStream, events: libc::c_short, step: &str) -> io::Result<()> {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `fd` is one valid `pollfd` on our stack for the call, and
        // its descriptor is borrowed from `socket`, open for the call.
        let n = unsafe { libc::poll(&mut fd, 1, STEP_TIMEOUT.as_millis() as libc::c_int) };
        match n {
            1.. => return Ok(()),
            0 => return Err(context(step, io::ErrorKind::TimedOut.into())),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(context(step, e));
                }
            }
        }
    }
}

/// A file of `bytes` bytes to send, its pages written (so resident, as a
/// file a server sends is usually in the page cache): a nameless file in
/// the temporary folder's file system (`O_TMPFILE`), where one can be made,
/// else in memory (`memfd`). Neither leaves anything behind. The first is
/// preferred because servers send files from file systems like it, and the
/// two paths compare differently from memory: on the AMD EPYC Zen 4 VM, in
/// twenty probes of each, alternated, the `memfd` probe chose splice six
/// times and the disk-backed one once, while that host's long sends from
/// disk favour `sendfile` 1.3-1.8x (BENCHMARKS.md, issue 22, nineteenth
/// session).
fn probe_file(bytes: u64) -> io::Result<SharedFile> {
    let (mut file, name) = match nameless_file(&std::env::temp_dir()) {
        Ok(file) => (file, "O_TMPFILE:gyre-file-send-probe"),
        Err(_) => (memory_file()?, "memfd:gyre-file-send-probe"),
    };
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        file.write_all(&chunk[..n])
            .map_err(|e| context("fill the probe's file", e))?;
        left -= n as u64;
    }
    Ok(SharedFile::from_file(file, name))
}

/// A file with no name in `dir`'s file system, gone when closed.
fn nameless_file(dir: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
}

/// An empty file in memory.
fn memory_file() -> io::Result<File> {
    // SAFETY: the name is a valid NUL-terminated string and the flags are
    // the documented ones; the call touches nothing else of ours.
    let fd = unsafe { libc::memfd_create(c"gyre-file-send-probe".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(context("memfd_create", io::Error::last_os_error()));
    }
    // SAFETY: `memfd_create` just returned `fd`, open and owned by no one else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_is_chosen_only_when_it_wins_by_the_margin() {
        let probe = |sendfile_ms: u64, splice_ms: u64| FileSendProbe {
            sendfile: Duration::from_millis(sendfile_ms),
            splice: Duration::from_millis(splice_ms),
            bytes: PROBE_BYTES,
            splice_per_sendfile: splice_ms as f64 / sendfile_ms as f64,
        };
        assert!(probe(140, 100).splice_wins(), "a clear win");
        assert!(!probe(100, 100).splice_wins(), "a tie goes to sendfile");
        assert!(!probe(105, 100).splice_wins(), "inside the margin");
        assert!(!probe(100, 140).splice_wins(), "sendfile faster");
    }

    #[test]
    fn one_lucky_send_does_not_decide() {
        let ms = Duration::from_millis;
        // Splice ran one send in 60 ms; every round had sendfile ahead.
        let mut pairs = [[ms(90), ms(100)]; ROUNDS];
        pairs[2] = [ms(100), ms(60)];
        let ratio = median_ratio(&pairs);
        assert!((ratio - 100.0 / 90.0).abs() < 1e-9, "{ratio}");
        // A clear win, in every round but one.
        let mut pairs = [[ms(140), ms(100)]; ROUNDS];
        pairs[5] = [ms(100), ms(140)];
        assert!(median_ratio(&pairs) * SPLICE_MARGIN < 1.0);
        // An even count takes the middle two.
        assert_eq!(median_ratio(&[[ms(100), ms(80)], [ms(100), ms(120)]]), 1.0);
    }

    #[test]
    fn the_probe_file_leaves_nothing_behind() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        match nameless_file(&dir) {
            Ok(mut file) => {
                file.write_all(b"probe").unwrap();
                assert_eq!(file.metadata().unwrap().len(), 5);
            }
            // A file system without O_TMPFILE: the probe uses memory.
            Err(e) => println!("no O_TMPFILE here: {e}"),
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
        assert!(memory_file().is_ok());
    }

    #[test]
    fn the_probe_times_both_paths_on_this_host() {
        let probe = measure(1 << 20).expect("the probe runs here");
        assert_eq!(probe.bytes, 1 << 20);
        for took in [probe.sendfile, probe.splice] {
            assert!(took > Duration::ZERO && took < STEP_TIMEOUT, "{probe:?}");
        }
        assert!(probe.splice_per_sendfile > 0.0, "{probe:?}");
        println!("{probe}; splice wins: {}", probe.splice_wins());
    }
}
