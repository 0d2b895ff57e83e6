//! Traffic shaping: the byte rates a channel's reads and writes are held
//! to, each channel on its own ([`TrafficLimit`], Netty's
//! `ChannelTrafficShapingHandler`, nginx's `limit_rate`) or many channels
//! together ([`SharedTrafficLimit`], Netty's `GlobalTrafficShapingHandler`).
//!
//! Each limit is a token bucket kept as the one number the generic cell
//! rate algorithm keeps: the time by which every byte charged so far is
//! paid for at the rate. Bytes may move while that time is less than a
//! burst ahead of now; moving them pushes it on. A shared limit keeps the
//! number in an atomic, charged with one compare-exchange loop per socket
//! write or read pass (never per message); nothing else is published
//! through it, so relaxed ordering serves (the loom model in
//! `loom-tests/tests/traffic_limit.rs` checks no charge is lost).
//! [`Shaping`] is a channel's set of limits, asked by its write path and
//! charged by its reads. Plain data over the crate's atomics.

use crate::sync::{Arc, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// The shortest burst a limit's default gives: a slow limit still lets a
/// whole small write through at once.
const MIN_DEFAULT_BURST: u64 = 16 * 1024;

/// How long a held channel waits at least before it moves bytes again,
/// so that it moves them in pieces worth a system call (the loop's
/// timers tick in milliseconds).
const MIN_PIECE: Duration = Duration::from_millis(10);

/// A byte rate, and the burst allowed above it: how fast a channel may
/// read or write. Set per channel with
/// [`ChannelOptions::read_limit`](crate::ChannelOptions::read_limit) and
/// [`write_limit`](crate::ChannelOptions::write_limit) (each channel is
/// held to it on its own), or share it between channels with
/// [`SharedTrafficLimit`].
///
/// The burst is what a channel that has been quiet may move at once
/// (default: a tenth of a second's worth, at least 16 KiB); over time it
/// moves no more than the rate.
///
/// ```
/// use gyre_reactor::{ChannelOptions, TrafficLimit};
///
/// // nginx's `limit_rate 1m`: each connection sends at most 1 MiB a second.
/// let limit = TrafficLimit::bytes_per_second(1 << 20);
/// assert_eq!(limit.burst_bytes(), (1 << 20) / 10);
/// let options = ChannelOptions::default().write_limit(limit.burst(256 * 1024));
/// assert_eq!(options.write_limit_set().map(|l| l.burst_bytes()), Some(256 * 1024));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrafficLimit {
    rate: u64,
    burst: u64,
}

impl TrafficLimit {
    /// At most `rate` bytes a second (at least 1), with the default burst.
    pub fn bytes_per_second(rate: u64) -> Self {
        let rate = rate.max(1);
        TrafficLimit {
            rate,
            burst: (rate / 10).max(MIN_DEFAULT_BURST),
        }
    }

    /// The bytes a quiet channel may move at once (at least 1).
    pub fn burst(mut self, bytes: u64) -> Self {
        self.burst = bytes.max(1);
        self
    }

    /// The rate, in bytes a second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The burst, in bytes.
    pub fn burst_bytes(&self) -> u64 {
        self.burst
    }

    /// The time `bytes` take at the rate, rounded up.
    fn nanos_for(&self, bytes: u64) -> u64 {
        let nanos = (u128::from(bytes) * NANOS_PER_SECOND).div_ceil(u128::from(self.rate));
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// The bytes the rate gives in `nanos`.
    fn bytes_in(&self, nanos: u64) -> u64 {
        let bytes = u128::from(nanos) * u128::from(self.rate) / NANOS_PER_SECOND;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }

    /// What may move at `now` (ns) with everything paid for by `paid`.
    fn allowance(&self, paid: u64, now: u64) -> u64 {
        let horizon = now.saturating_add(self.nanos_for(self.burst));
        self.bytes_in(horizon.saturating_sub(paid.max(now)))
    }

    /// Where `paid` stands once `bytes` more are charged at `now`.
    fn charged(&self, paid: u64, now: u64, bytes: u64) -> u64 {
        paid.max(now).saturating_add(self.nanos_for(bytes))
    }

    /// Where `paid` stands once `bytes` charged before are given back.
    fn refunded(&self, paid: u64, bytes: u64) -> u64 {
        paid.saturating_sub(self.nanos_for(bytes))
    }

    /// How long from `now` until a held channel may move a piece again:
    /// until a tenth of the burst or [`MIN_PIECE`]'s worth, whichever is
    /// more (never more than the burst), is allowed.
    fn wait(&self, paid: u64, now: u64) -> Duration {
        let piece = self
            .bytes_in(MIN_PIECE.as_nanos() as u64)
            .max(self.burst / 10)
            .min(self.burst);
        let ready = paid
            .max(now)
            .saturating_add(self.nanos_for(piece))
            .saturating_sub(self.nanos_for(self.burst));
        Duration::from_nanos(ready.saturating_sub(now))
    }
}

/// A [`TrafficLimit`] shared by every channel given it: the channels
/// together are held to its rate (Netty's `GlobalTrafficShapingHandler`).
/// Clones share the one limit, across loops, listeners and servers; give
/// it to channels with
/// [`ChannelOptions::shared_read_limit`](crate::ChannelOptions::shared_read_limit)
/// or [`shared_write_limit`](crate::ChannelOptions::shared_write_limit).
///
/// A write takes its bytes from the allowance before it is made (one
/// compare-exchange: what is left, up to what the write wants) and gives
/// back what the socket did not take once it returns (on io_uring, when
/// it completes), so channels on any number of loops never move more
/// than the limit allows between them. Reads are charged once read (the
/// kernel has them already), so a shared read limit may run over by a
/// read per loop at a moment, the rate over time holding. Which channel
/// goes first when the limit frees is the order their timers fire in.
///
/// ```
/// use gyre_reactor::{ChannelOptions, SharedTrafficLimit, TrafficLimit};
///
/// // All downloads together at most 100 MB a second, each at most 10.
/// let all = SharedTrafficLimit::new(TrafficLimit::bytes_per_second(100_000_000));
/// let options = ChannelOptions::default()
///     .shared_write_limit(&all)
///     .write_limit(TrafficLimit::bytes_per_second(10_000_000));
/// assert_eq!(all.limit().rate(), 100_000_000);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct SharedTrafficLimit {
    inner: Arc<SharedBucket>,
}

#[derive(Debug)]
struct SharedBucket {
    limit: TrafficLimit,
    /// What every channel's time is counted from.
    origin: Instant,
    /// When everything charged is paid for, in ns after `origin`.
    paid: AtomicU64,
}

impl SharedTrafficLimit {
    /// A limit that all channels given it (or a clone of it) share.
    pub fn new(limit: TrafficLimit) -> Self {
        SharedTrafficLimit {
            inner: Arc::new(SharedBucket {
                limit,
                origin: Instant::now(),
                paid: AtomicU64::new(0),
            }),
        }
    }

    /// The rate and burst shared.
    pub fn limit(&self) -> TrafficLimit {
        self.inner.limit
    }

    fn nanos(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.inner.origin);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn allowance(&self, now: Instant) -> u64 {
        let t = self.nanos(now);
        let paid = self.inner.paid.load(Ordering::Relaxed);
        self.inner.limit.allowance(paid, t)
    }

    fn wait(&self, now: Instant) -> Duration {
        let t = self.nanos(now);
        let paid = self.inner.paid.load(Ordering::Relaxed);
        self.inner.limit.wait(paid, t)
    }

    fn charge(&self, bytes: u64, now: Instant) {
        self.charge_nanos(self.nanos(now), bytes);
    }

    pub(crate) fn take(&self, wanted: u64, now: Instant) -> u64 {
        self.take_nanos(self.nanos(now), wanted)
    }

    /// Takes what is left of the allowance at `t` ns after the origin, up
    /// to `wanted` bytes, and charges it in the same step: two channels
    /// taking at once share the allowance, never both spend it. Public
    /// only for the loom model.
    #[doc(hidden)]
    pub fn take_nanos(&self, t: u64, wanted: u64) -> u64 {
        let limit = self.inner.limit;
        let mut took = 0;
        // As `charge_nanos`; relaxed for the same reason.
        let _ = self
            .inner
            .paid
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |paid| {
                took = wanted.min(limit.allowance(paid, t));
                (took > 0).then(|| limit.charged(paid, t, took))
            });
        took
    }

    /// Charges `bytes` at `t` ns after the origin. Public only for the
    /// loom model.
    #[doc(hidden)]
    pub fn charge_nanos(&self, t: u64, bytes: u64) {
        let limit = self.inner.limit;
        // A compare-exchange loop: a racing channel's charge is added to,
        // never overwritten. Relaxed: the count is the only thing shared.
        let _ = self
            .inner
            .paid
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |paid| {
                Some(limit.charged(paid, t, bytes))
            });
    }

    /// Gives back `bytes` charged before and not moved. Public only for
    /// the loom model.
    #[doc(hidden)]
    pub fn refund(&self, bytes: u64) {
        let limit = self.inner.limit;
        // As `charge_nanos`: a racing charge or refund is never lost.
        let _ = self
            .inner
            .paid
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |paid| {
                Some(limit.refunded(paid, bytes))
            });
    }

    /// When everything charged is paid for, in ns after the origin.
    /// Public only for the loom model.
    #[doc(hidden)]
    pub fn paid_nanos(&self) -> u64 {
        self.inner.paid.load(Ordering::Relaxed)
    }
}

/// One channel's own bucket.
#[derive(Clone, Copy, Debug)]
struct OwnBucket {
    limit: TrafficLimit,
    /// When everything charged is paid for, in ns after the channel's
    /// origin.
    paid: u64,
}

/// The limits on one direction of one channel: its own, a shared one,
/// both or neither.
#[derive(Debug, Default)]
pub(crate) struct Limits {
    own: Option<OwnBucket>,
    shared: Option<SharedTrafficLimit>,
}

impl Limits {
    fn new(own: Option<TrafficLimit>, shared: Option<SharedTrafficLimit>) -> Self {
        Limits {
            own: own.map(|limit| OwnBucket { limit, paid: 0 }),
            shared,
        }
    }

    fn is_set(&self) -> bool {
        self.own.is_some() || self.shared.is_some()
    }

    /// What may move now (`usize::MAX` without a limit).
    fn allowance(&self, origin: Instant, now: Instant) -> usize {
        let own = self
            .own
            .map_or(u64::MAX, |b| b.limit.allowance(b.paid, nanos(origin, now)));
        let shared = self.shared.as_ref().map_or(u64::MAX, |s| s.allowance(now));
        usize::try_from(own.min(shared)).unwrap_or(usize::MAX)
    }

    /// Takes up to `wanted` bytes of what may move now, charging them:
    /// the channel's own allowance bounds what it asks of the shared one.
    fn take(&mut self, wanted: usize, origin: Instant, now: Instant) -> usize {
        let t = nanos(origin, now);
        let mut want = wanted as u64;
        if let Some(b) = &self.own {
            want = want.min(b.limit.allowance(b.paid, t));
        }
        let took = match &self.shared {
            Some(s) if want > 0 => s.take(want, now),
            _ => want,
        };
        if let Some(b) = &mut self.own {
            b.paid = b.limit.charged(b.paid, t, took);
        }
        usize::try_from(took).unwrap_or(usize::MAX)
    }

    fn charge(&mut self, bytes: usize, origin: Instant, now: Instant) {
        let bytes = bytes as u64;
        if let Some(b) = &mut self.own {
            b.paid = b.limit.charged(b.paid, nanos(origin, now), bytes);
        }
        if let Some(s) = &self.shared {
            s.charge(bytes, now);
        }
    }

    fn refund(&mut self, bytes: usize) {
        let bytes = bytes as u64;
        if let Some(b) = &mut self.own {
            b.paid = b.limit.refunded(b.paid, bytes);
        }
        if let Some(s) = &self.shared {
            s.refund(bytes);
        }
    }

    /// How long until a held direction may move a piece again.
    fn wait(&self, origin: Instant, now: Instant) -> Duration {
        let own = self
            .own
            .map_or(Duration::ZERO, |b| b.limit.wait(b.paid, nanos(origin, now)));
        let shared = self.shared.as_ref().map_or(Duration::ZERO, |s| s.wait(now));
        own.max(shared)
    }
}

fn nanos(origin: Instant, now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(origin).as_nanos()).unwrap_or(u64::MAX)
}

/// A channel's traffic shaping: the limits on its reads and on its
/// writes, and the bytes read it has charged so far.
#[derive(Debug)]
pub(crate) struct Shaping {
    origin: Instant,
    read: Limits,
    write: Limits,
    read_charged: u64,
}

impl Shaping {
    /// The channel's shaping from its options' limits; `None` when it has
    /// none (the channel then pays one branch per write and read pass).
    pub(crate) fn new(
        read: (Option<TrafficLimit>, Option<SharedTrafficLimit>),
        write: (Option<TrafficLimit>, Option<SharedTrafficLimit>),
        now: Instant,
    ) -> Option<Box<Self>> {
        let (read, write) = (Limits::new(read.0, read.1), Limits::new(write.0, write.1));
        (read.is_set() || write.is_set()).then(|| {
            Box::new(Shaping {
                origin: now,
                read,
                write,
                read_charged: 0,
            })
        })
    }

    /// Bytes the channel may write now (`usize::MAX` with no write limit).
    pub(crate) fn write_allowance(&self, now: Instant) -> usize {
        self.write.allowance(self.origin, now)
    }

    /// Takes up to `wanted` bytes of the write limits' allowance for a
    /// write about to be made, charging them; what the write does not
    /// move is given back with [`refund_write`](Self::refund_write).
    pub(crate) fn take_write(&mut self, wanted: usize, now: Instant) -> usize {
        self.write.take(wanted, self.origin, now)
    }

    /// The socket took `bytes`.
    pub(crate) fn charge_write(&mut self, bytes: usize, now: Instant) {
        if self.write.is_set() {
            self.write.charge(bytes, self.origin, now);
        }
    }

    /// Whether writes are limited at all.
    pub(crate) fn limits_writes(&self) -> bool {
        self.write.is_set()
    }

    /// Gives back `bytes` charged for a write that did not move them.
    pub(crate) fn refund_write(&mut self, bytes: usize) {
        if self.write.is_set() && bytes > 0 {
            self.write.refund(bytes);
        }
    }

    /// How long a channel with output held by its write limit waits.
    pub(crate) fn write_wait(&self, now: Instant) -> Duration {
        self.write.wait(self.origin, now)
    }

    /// Charges the reads since the last call (`bytes_read`: the channel's
    /// count over its life); the time reading must stop for, if the read
    /// limit is spent.
    pub(crate) fn charge_reads(&mut self, bytes_read: u64, now: Instant) -> Option<Duration> {
        if !self.read.is_set() {
            return None;
        }
        let new = bytes_read.saturating_sub(self.read_charged);
        self.read_charged = bytes_read;
        if new > 0 {
            self.read.charge(new as usize, self.origin, now);
        }
        (self.read.allowance(self.origin, now) == 0).then(|| self.read.wait(self.origin, now))
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_quiet_bucket_gives_its_burst_then_the_rate() {
        let l = TrafficLimit::bytes_per_second(1_000_000).burst(100_000);
        assert_eq!(l.allowance(0, 0), 100_000);
        let paid = l.charged(0, 0, 100_000);
        assert_eq!(l.allowance(paid, 0), 0);
        // 10 ms later, 10 ms' worth.
        assert_eq!(l.allowance(paid, 10 * MS), 10_000);
        // A long quiet time gives back the burst, no more.
        assert_eq!(l.allowance(paid, 60_000 * MS), 100_000);
    }

    #[test]
    fn debt_is_waited_out() {
        let l = TrafficLimit::bytes_per_second(1_000_000).burst(100_000);
        // A 300 kB datagram charged at once: 200 ms over the burst.
        let paid = l.charged(0, 0, 300_000);
        assert_eq!(l.allowance(paid, 100 * MS), 0);
        // Held until a piece (a tenth of the burst, 10 kB) is allowed.
        assert_eq!(l.wait(paid, 0), Duration::from_millis(210));
        assert_eq!(l.allowance(paid, 210 * MS), 10_000);
    }

    #[test]
    fn the_wait_is_for_a_piece_worth_a_system_call() {
        // 1 kB/s with a 100-byte burst: a piece is 10 ms' worth, 10 bytes.
        let l = TrafficLimit::bytes_per_second(1_000).burst(100);
        let paid = l.charged(0, 0, 100);
        assert_eq!(l.wait(paid, 0), Duration::from_millis(10));
        // With a 5 kB burst, a tenth of it: 500 bytes, half a second.
        let l = l.burst(5_000);
        let paid = l.charged(0, 0, 5_000);
        assert_eq!(l.wait(paid, 0), Duration::from_millis(500));
        // 1 GB/s: at least 10 ms' worth (10 MB) or a tenth of the burst.
        let l = TrafficLimit::bytes_per_second(1_000_000_000);
        let paid = l.charged(0, 0, l.burst_bytes());
        assert_eq!(l.wait(paid, 0), Duration::from_millis(10));
    }

    #[test]
    fn a_limit_moves_its_rate_over_time() {
        let l = TrafficLimit::bytes_per_second(2_000_000).burst(50_000);
        let mut paid = 0;
        let mut now = 0;
        let mut moved = 0u64;
        // A writer that sends what it may whenever it wakes.
        while now < 5_000 * MS {
            let n = l.allowance(paid, now).min(64 * 1024);
            paid = l.charged(paid, now, n);
            moved += n;
            now += l.wait(paid, now).as_nanos() as u64 + 1;
        }
        let rate = moved as f64 / 5.0;
        assert!((rate - 2_000_000.0).abs() < 2_000_000.0 * 0.02, "{rate}");
    }

    #[test]
    fn the_tighter_of_own_and_shared_holds() {
        let t0 = Instant::now();
        let shared = SharedTrafficLimit::new(TrafficLimit::bytes_per_second(1_000).burst(500));
        let mut a = Limits::new(
            Some(TrafficLimit::bytes_per_second(1_000_000).burst(1_000)),
            Some(shared.clone()),
        );
        let b = Limits::new(None, Some(shared.clone()));
        let now = t0 + Duration::from_millis(1);
        assert!(a.allowance(t0, now) <= 501);
        a.charge(500, t0, now);
        // The other channel sees the shared bucket spent.
        assert_eq!(b.allowance(t0, now), 0);
        // Until a tenth of the shared burst is back: 50 ms.
        let wait = b.wait(t0, now);
        assert!(
            wait > Duration::from_millis(48) && wait <= Duration::from_millis(50),
            "{wait:?}"
        );
    }

    #[test]
    fn threads_charging_a_shared_limit_at_once_lose_no_byte() {
        // 1 GB/s: each byte one nanosecond, all charged at the origin.
        let shared = SharedTrafficLimit::new(TrafficLimit::bytes_per_second(1_000_000_000));
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let s = shared.clone();
                std::thread::spawn(move || {
                    for _ in 0..100_000 {
                        s.charge_nanos(0, i + 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(shared.paid_nanos(), 100_000 * (1 + 2 + 3 + 4));
    }

    #[test]
    fn threads_taking_a_shared_allowance_at_once_never_take_more_than_it() {
        // 1 kB/s with a 1 MB burst, all taken at the origin: the rate adds
        // nothing, so four threads taking in small bites must stop at the
        // burst between them.
        let shared =
            SharedTrafficLimit::new(TrafficLimit::bytes_per_second(1_000).burst(1_000_000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = shared.clone();
                std::thread::spawn(move || {
                    let mut took = 0;
                    loop {
                        match s.take_nanos(0, 7) {
                            0 => return took,
                            n => took += n,
                        }
                    }
                })
            })
            .collect();
        let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(total, 1_000_000);
    }

    #[test]
    fn reads_are_charged_once_and_hold_past_the_burst() {
        let t0 = Instant::now();
        let mut s = Shaping::new(
            (
                Some(TrafficLimit::bytes_per_second(100_000).burst(10_000)),
                None,
            ),
            (None, None),
            t0,
        )
        .unwrap();
        assert_eq!(s.write_allowance(t0), usize::MAX);
        assert_eq!(s.charge_reads(5_000, t0), None);
        assert_eq!(s.charge_reads(5_000, t0), None, "counted twice");
        // 64 kB read in one pass: 590 ms past the burst, then held until
        // 1 kB (10 ms' worth) is back.
        let held = s.charge_reads(69_000, t0).expect("held");
        assert_eq!(held, Duration::from_millis(600));
        assert!(Shaping::new((None, None), (None, None), t0).is_none());
    }
}
