//! A byte rate measured as Kafka's quota sensors measure it: samples of
//! one window each (1 s), the last [`SAMPLES`] kept, the rate their sum
//! over the time they cover, counted as at least `SAMPLES - 1` whole
//! windows (so a client's first burst is averaged over ten seconds, not
//! over the instant it took). And the throttle time a rate over its quota
//! earns: `(rate - quota) / quota` times the time measured, the delay
//! after which the average is back at the quota (Kafka's
//! `QuotaUtils.throttleTime`). And a token bucket, as Kafka measures
//! controller mutations (KIP-599): a quota's rate of tokens, up to a
//! burst of [`SAMPLES`] windows' worth, each partition created or deleted
//! taking one. Plain data; the caller gives the time.

use std::time::{Duration, Instant};

/// Samples kept (Kafka's `quota.window.num`).
pub const SAMPLES: usize = 11;
/// One sample's window (Kafka's `quota.window.size.seconds`).
pub const WINDOW: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
struct Sample {
    start: Instant,
    bytes: f64,
}

/// A windowed byte rate.
#[derive(Debug)]
pub struct Rate {
    samples: [Option<Sample>; SAMPLES],
    current: usize,
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            samples: [None; SAMPLES],
            current: 0,
        }
    }
}

impl Rate {
    /// Counts `bytes` at `now`.
    pub fn record(&mut self, now: Instant, bytes: f64) {
        let complete = match &self.samples[self.current] {
            Some(s) => now.saturating_duration_since(s.start) >= WINDOW,
            None => true,
        };
        if complete {
            if self.samples[self.current].is_some() {
                self.current = (self.current + 1) % SAMPLES;
            }
            self.samples[self.current] = Some(Sample {
                start: now,
                bytes: 0.0,
            });
        }
        if let Some(s) = &mut self.samples[self.current] {
            s.bytes += bytes;
        }
    }

    /// When the newest sample began (about when bytes were last counted).
    pub fn last_recorded(&self) -> Option<Instant> {
        self.samples[self.current].map(|s| s.start)
    }

    /// The bytes counted in the samples still current at `now`, and the
    /// time they are averaged over (at least `SAMPLES - 1` windows).
    fn measured(&self, now: Instant) -> (f64, Duration) {
        let horizon = WINDOW * SAMPLES as u32;
        let mut total = 0.0;
        let mut oldest = now;
        for s in self.samples.iter().flatten() {
            if now.saturating_duration_since(s.start) < horizon {
                total += s.bytes;
                oldest = oldest.min(s.start);
            }
        }
        let elapsed = now.saturating_duration_since(oldest);
        (total, elapsed.max(WINDOW * (SAMPLES as u32 - 1)))
    }

    /// Bytes per second at `now`.
    #[cfg(test)]
    pub fn rate(&self, now: Instant) -> f64 {
        let (total, over) = self.measured(now);
        total / over.as_secs_f64()
    }

    /// How long the client must wait at `now` for its rate to come back to
    /// `quota` bytes/s: zero when it is within it.
    pub fn throttle(&self, now: Instant, quota: f64) -> Duration {
        let (total, over) = self.measured(now);
        let rate = total / over.as_secs_f64();
        if rate <= quota || quota <= 0.0 {
            return Duration::ZERO;
        }
        over.mul_f64((rate - quota) / quota)
    }
}

/// The loops' timer tick, by which a throttle's end may come early.
const TICK: Duration = Duration::from_millis(1);

/// Tokens for controller mutations (partitions created or deleted).
#[derive(Debug, Default)]
pub struct TokenBucket {
    tokens: f64,
    /// When tokens were last added; `None` before the first use (the
    /// bucket starts full).
    at: Option<Instant>,
}

impl TokenBucket {
    fn refill(&mut self, now: Instant, quota: f64) {
        let burst = quota * (WINDOW * SAMPLES as u32).as_secs_f64();
        self.tokens = match self.at {
            None => burst,
            Some(at) => {
                let gained = quota * now.saturating_duration_since(at).as_secs_f64();
                (self.tokens + gained).min(burst)
            }
        };
        self.at = Some(now);
    }

    /// When it was last used.
    pub fn last_used(&self) -> Option<Instant> {
        self.at
    }

    fn debt(&self, quota: f64) -> Duration {
        if self.tokens >= 0.0 || quota <= 0.0 {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(-self.tokens / quota)
    }

    /// Whether the quota is spent at `now` (the bucket is in debt), and
    /// for how long: a mutation asked for now is refused. A debt the next
    /// millisecond pays is none: the throttle's timer fires on a
    /// millisecond tick, up to one early, and a client that waited its
    /// throttle time is not refused again for the rounding.
    pub fn exceeded(&mut self, now: Instant, quota: f64) -> Duration {
        self.refill(now, quota);
        if self.tokens >= -quota * TICK.as_secs_f64() {
            return Duration::ZERO;
        }
        self.debt(quota)
    }

    /// Takes `n` tokens at `now` (the bucket may go into debt: a request
    /// within the quota when it came is served whole); the throttle time
    /// that leaves.
    pub fn take(&mut self, now: Instant, quota: f64, n: f64) -> Duration {
        self.refill(now, quota);
        self.tokens -= n;
        self.debt(quota)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_bucket_gives_its_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::default();
        // 2 partitions a second: a burst of 22.
        assert_eq!(b.exceeded(t0, 2.0), Duration::ZERO);
        assert_eq!(b.take(t0, 2.0, 20.0), Duration::ZERO);
        // 10 more: 8 in debt, 4 s to pay.
        assert_eq!(b.take(t0, 2.0, 10.0), Duration::from_secs(4));
        assert_eq!(
            b.exceeded(t0 + Duration::from_secs(1), 2.0),
            Duration::from_secs(3)
        );
        assert_eq!(b.exceeded(t0 + Duration::from_secs(4), 2.0), Duration::ZERO);
        // Within a tick of the end, the debt is paid.
        let mut c = TokenBucket::default();
        c.take(t0, 2.0, 23.0);
        let early = t0 + Duration::from_millis(490);
        assert!(!c.exceeded(early, 2.0).is_zero());
        let almost = t0 + Duration::from_micros(499_500);
        assert_eq!(c.exceeded(almost, 2.0), Duration::ZERO);
        // A long quiet fills it back to the burst, no further.
        assert_eq!(
            b.take(t0 + Duration::from_secs(600), 2.0, 22.0),
            Duration::ZERO
        );
        assert_eq!(
            b.take(t0 + Duration::from_secs(600), 2.0, 2.0),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn a_first_burst_is_averaged_over_ten_windows() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        r.record(t0, 1_000_000.0);
        assert_eq!(r.rate(t0), 100_000.0);
        // A quota of 50 kB/s: twice over it, so as long again as measured.
        assert_eq!(r.throttle(t0, 50_000.0), Duration::from_secs(10));
        assert_eq!(r.throttle(t0, 100_000.0), Duration::ZERO);
    }

    #[test]
    fn old_samples_stop_counting_and_a_steady_rate_is_measured_as_it_is() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        // 30 s at 10 kB a second: only the last eleven windows count.
        for s in 0..30 {
            r.record(t0 + Duration::from_secs(s), 10_000.0);
        }
        let now = t0 + Duration::from_millis(29_500);
        let rate = r.rate(now);
        assert!((rate - 10_000.0).abs() < 500.0, "{rate}");
        // Quiet for a minute: nothing is left.
        assert_eq!(r.rate(now + Duration::from_secs(60)), 0.0);
    }

    #[test]
    fn waiting_out_the_throttle_brings_the_rate_back_to_the_quota() {
        let t0 = Instant::now();
        let mut r = Rate::default();
        let quota = 100_000.0;
        let mut now = t0;
        let mut sent = 0.0;
        // A client sending 64 kB at once whenever it is allowed to.
        while now < t0 + Duration::from_secs(60) {
            r.record(now, 64_000.0);
            sent += 64_000.0;
            now += r.throttle(now, quota).max(Duration::from_millis(1));
        }
        let average = sent / now.duration_since(t0).as_secs_f64();
        assert!(
            (average - quota).abs() / quota < 0.15,
            "{average} bytes/s against a quota of {quota}"
        );
    }
}
