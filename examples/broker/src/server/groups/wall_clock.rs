//! The bridge between the coordinator's monotonic times (`Instant`, which
//! it ages offsets by) and the wall-clock times the offsets file keeps
//! across restarts (milliseconds since the Unix epoch, as Kafka's
//! `commitTimestamp`), read once so every conversion in one pass agrees.
//!
//! May use: std only.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One reading of both clocks.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    instant: Instant,
    wall_ms: i64,
}

impl WallClock {
    /// Both clocks now.
    pub fn now() -> Self {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        WallClock {
            instant: Instant::now(),
            wall_ms,
        }
    }

    /// The clocks `by` later: what a reading then would give.
    #[cfg(test)]
    pub fn later(self, by: Duration) -> Self {
        WallClock {
            instant: self.instant + by,
            wall_ms: self.wall_ms + by.as_millis() as i64,
        }
    }

    /// The monotonic reading.
    pub fn instant(self) -> Instant {
        self.instant
    }

    /// `at` on the wall clock.
    pub fn wall(self, at: Instant) -> i64 {
        match at.checked_duration_since(self.instant) {
            Some(ahead) => self.wall_ms + ahead.as_millis() as i64,
            None => self.wall_ms - self.instant.duration_since(at).as_millis() as i64,
        }
    }

    /// Wall-clock time `wall_ms` as an `Instant`. A time ahead of the wall
    /// clock (it was set back since), or too far back for an `Instant`, is
    /// taken as now: an age read back is never more than the time that
    /// really passed.
    pub fn instant_of(self, wall_ms: i64) -> Instant {
        let ago = Duration::from_millis(self.wall_ms.saturating_sub(wall_ms).max(0) as u64);
        self.instant.checked_sub(ago).unwrap_or(self.instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_go_there_and_back_and_future_ones_are_now() {
        let c = WallClock::now();
        let before = c.instant() - Duration::from_secs(30);
        assert_eq!(c.wall(before), c.wall_ms - 30_000);
        assert_eq!(c.instant_of(c.wall(before)), before);
        let after = c.instant() + Duration::from_millis(1_500);
        assert_eq!(c.wall(after), c.wall_ms + 1_500);
        assert_eq!(c.instant_of(c.wall_ms + 60_000), c.instant());
        assert_eq!(
            c.later(Duration::from_secs(2)).wall(after),
            c.wall_ms + 1_500
        );
    }
}
