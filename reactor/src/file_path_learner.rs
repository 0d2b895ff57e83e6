//! Which zero-copy file path (`sendfile`, or `splice` through a pipe) a
//! loop's channels take under [`FileSend::Auto`](crate::FileSend::Auto),
//! learned from their own calls as they send.
//!
//! The probe (`file_send_probe`) measures the host once, at the first file
//! send; on the AMD EPYC VMs which path is faster turns from one phase of
//! the host to the next within minutes (bare splice/`sendfile` rates 0.69,
//! 1.41, 0.82 in three runs of one hour; BENCHMARKS.md, twenty-fourth
//! session), so a choice made once is wrong for part of the day. Each call
//! a channel makes is bounded (a channel's bytes per event, a pipeful), and
//! the time a non-blocking call spends in the kernel per byte is the
//! sender's cost of that path: over loopback it tracked the two paths'
//! whole-transfer rates to within 2% (six rounds, BENCHMARKS.md,
//! twenty-fifth session). So a loop keeps a running cost per byte of each
//! path from the calls its channels make, sends with the cheaper one, and
//! every [`EXPLORE_EVERY`] calls sends a few with the other to keep its
//! cost current.
//!
//! Plain data: one learner per loop thread (a thread-local, as a loop's
//! channels all run on its thread), no locks, no allocation; two counters
//! of the process (one relaxed add per call) say what the loops chose.
//! Uses only `std`; `channel` asks it which path
//! to take and tells it what each call moved and cost.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The two zero-copy file paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FilePath {
    Sendfile,
    Splice,
}

impl FilePath {
    fn index(self) -> usize {
        self as usize
    }

    fn other(self) -> FilePath {
        match self {
            FilePath::Sendfile => FilePath::Splice,
            FilePath::Splice => FilePath::Sendfile,
        }
    }
}

/// How often (in calls) a loop sends with the path it is not using, to
/// keep that path's cost current: the other path's calls are
/// [`EXPLORE_CALLS`] in this many, 6%, which costs at most a few percent
/// while the other path is much the slower (1.4x, the widest gap measured
/// on either host kind, costs 2.5%).
const EXPLORE_EVERY: u32 = 64;

/// Calls in a row on the other path when it is explored: the first call
/// after a change of path pays for the change (a pipe filled or emptied),
/// so one call alone would misjudge it.
const EXPLORE_CALLS: u32 = 4;

/// A call that moved less than this says more about a call's fixed cost
/// than about the path's cost per byte (a file's tail, a socket that
/// filled at once): not counted.
const MIN_SAMPLE: usize = 256 * 1024;

/// A new call's weight in a path's running cost: the last ten or so calls
/// count, enough to ride out one preempted call and short enough to
/// follow a phase change within one exploration.
const WEIGHT: f64 = 0.25;

/// How much cheaper `splice` must be to be taken: a channel that splices
/// holds a pipe (two descriptors) while it sends files, so a tie goes to
/// `sendfile`, as the probe's does.
const SPLICE_MARGIN: f64 = 1.10;

/// The bytes file sends under [`FileSend::Auto`](crate::FileSend::Auto)
/// moved by each path ([`FileSend::auto_bytes`](crate::FileSend::auto_bytes)).
///
/// ```
/// use gyre_reactor::{AutoBytes, FileSend};
/// let AutoBytes { sendfile, splice } = FileSend::auto_bytes();
/// println!("under Auto: {sendfile} bytes with sendfile, {splice} spliced");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AutoBytes {
    /// Sent with `sendfile`.
    pub sendfile: u64,
    /// Spliced through a pipe.
    pub splice: u64,
}

/// A loop's running cost of each path and its count of calls.
#[derive(Debug, Default)]
pub(crate) struct FilePathLearner {
    /// Nanoseconds per byte of each path's recent calls; 0 until one was
    /// counted.
    cost: [f64; 2],
    /// File calls made under `Auto` on this loop (wraps).
    calls: u32,
}

impl FilePathLearner {
    /// The path for the next call. `first` (the probe's choice) is taken
    /// until both paths have a cost; every [`EXPLORE_EVERY`] calls, the
    /// path not in use for [`EXPLORE_CALLS`].
    pub(crate) fn pick(&mut self, first: FilePath) -> FilePath {
        self.calls = self.calls.wrapping_add(1);
        let best = self.cheaper().unwrap_or(first);
        // The first exploration comes early (the eighth call) so a loop
        // has both costs within its first file of a few MiB.
        if (self.calls.wrapping_sub(8) % EXPLORE_EVERY) < EXPLORE_CALLS {
            best.other()
        } else {
            best
        }
    }

    /// Counts a call on `path` that moved `bytes` in `took`.
    pub(crate) fn record(&mut self, path: FilePath, bytes: usize, took: Duration) {
        if bytes < MIN_SAMPLE {
            return;
        }
        let sample = took.as_nanos() as f64 / bytes as f64;
        let cost = &mut self.cost[path.index()];
        *cost = if *cost == 0.0 {
            sample
        } else {
            *cost + WEIGHT * (sample - *cost)
        };
    }

    /// The cheaper path, once both have a cost.
    fn cheaper(&self) -> Option<FilePath> {
        let [sendfile, splice] = self.cost;
        if sendfile == 0.0 || splice == 0.0 {
            return None;
        }
        Some(if splice * SPLICE_MARGIN < sendfile {
            FilePath::Splice
        } else {
            FilePath::Sendfile
        })
    }
}

thread_local! {
    static LEARNER: RefCell<FilePathLearner> = RefCell::default();
}

/// Bytes sent under `Auto` by each path, over every loop.
static SENT: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// This loop thread's [`FilePathLearner::pick`].
pub(crate) fn pick(first: FilePath) -> FilePath {
    LEARNER.with(|l| l.borrow_mut().pick(first))
}

/// This loop thread's [`FilePathLearner::record`], and the bytes counted
/// for [`sent`].
pub(crate) fn record(path: FilePath, bytes: usize, took: Duration) {
    SENT[path.index()].fetch_add(bytes as u64, Ordering::Relaxed);
    LEARNER.with(|l| l.borrow_mut().record(path, bytes, took));
}

/// The bytes sent under `Auto` by each path so far.
pub(crate) fn sent() -> AutoBytes {
    AutoBytes {
        sendfile: SENT[FilePath::Sendfile.index()].load(Ordering::Relaxed),
        splice: SENT[FilePath::Splice.index()].load(Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// Makes `calls` calls as a channel would, each path costing what
    /// `cost` says (µs per MiB); returns the paths taken.
    fn run(l: &mut FilePathLearner, calls: usize, cost: impl Fn(FilePath) -> u64) -> Vec<FilePath> {
        (0..calls)
            .map(|_| {
                let path = l.pick(FilePath::Sendfile);
                l.record(path, MIB, Duration::from_micros(cost(path)));
                path
            })
            .collect()
    }

    fn count(paths: &[FilePath], which: FilePath) -> usize {
        paths.iter().filter(|&&p| p == which).count()
    }

    #[test]
    fn the_probes_choice_until_the_other_path_is_measured() {
        let mut l = FilePathLearner::default();
        let paths = run(&mut l, 7, |_| 200);
        assert_eq!(count(&paths, FilePath::Sendfile), 7);
        // The eighth to eleventh calls explore.
        let paths = run(&mut l, 4, |_| 200);
        assert_eq!(count(&paths, FilePath::Splice), 4);
    }

    #[test]
    fn a_cheaper_splice_is_taken_and_a_tie_stays_with_sendfile() {
        let mut l = FilePathLearner::default();
        let paths = run(
            &mut l,
            640,
            |p| if p == FilePath::Splice { 150 } else { 200 },
        );
        let tail = &paths[64..];
        assert!(
            count(tail, FilePath::Splice) > tail.len() * 9 / 10,
            "{tail:?}"
        );

        let mut l = FilePathLearner::default();
        let paths = run(
            &mut l,
            640,
            |p| if p == FilePath::Splice { 190 } else { 200 },
        );
        let tail = &paths[64..];
        assert!(
            count(tail, FilePath::Sendfile) > tail.len() * 9 / 10,
            "{tail:?}"
        );
    }

    #[test]
    fn the_other_path_is_explored_six_percent_of_the_time() {
        let mut l = FilePathLearner::default();
        let paths = run(
            &mut l,
            6400,
            |p| if p == FilePath::Splice { 400 } else { 200 },
        );
        assert_eq!(count(&paths, FilePath::Splice), 400);
    }

    #[test]
    fn a_phase_change_is_followed_within_a_few_explorations() {
        let mut l = FilePathLearner::default();
        run(
            &mut l,
            640,
            |p| if p == FilePath::Splice { 300 } else { 200 },
        );
        // The host turns: splice is now the cheaper by far.
        let paths = run(
            &mut l,
            640,
            |p| if p == FilePath::Splice { 120 } else { 250 },
        );
        let late = &paths[256..];
        assert!(
            count(late, FilePath::Splice) > late.len() * 9 / 10,
            "{late:?}"
        );
    }

    #[test]
    fn small_calls_are_not_counted() {
        let mut l = FilePathLearner::default();
        l.record(FilePath::Sendfile, MIB, Duration::from_micros(200));
        l.record(FilePath::Splice, 4096, Duration::from_nanos(10));
        assert_eq!(l.cheaper(), None, "a 4 KiB call set splice's cost");
        l.record(FilePath::Splice, MIB, Duration::from_micros(100));
        assert_eq!(l.cheaper(), Some(FilePath::Splice));
    }
}
