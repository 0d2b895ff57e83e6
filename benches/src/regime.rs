//! Where a bench's two cores sit on the host, measured: the round trip of
//! one cache line between two spinning threads. Uses only std and
//! `crossbeam-utils`.
//!
//! Our 2-vCPU VMs move between placements within seconds: on the AMD EPYC
//! Zen 3 VM the round trip takes about 32 ns, 80 ns or 480 ns (on the Zen 5
//! one 45-60 ns, now and then 100-150 ns, or 250 ns to 2 µs; on the Zen 4
//! one 50-77 ns or 250-370 ns), and which ring leads a 1p1c case depends
//! on which of the three it ran in (BENCHMARKS.md, issue 22, twelfth
//! session). A bench that samples the regime around each sample can
//! compare cases that ran in the same one, rather than a case that drew
//! the fast placement with one that drew the slow.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The two cores' placement, by the round trip of a cache line between
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Regime {
    /// Under 75 ns: two hardware threads of one core, or two cores of one
    /// core complex (the Zen 5 VM's usual 45-60 ns, the Zen 4 VM's 50-77).
    Near,
    /// 75-200 ns: two cores sharing a package, further apart.
    Middle,
    /// Over 200 ns: further apart (another die or socket, or a vCPU the
    /// host has preempted).
    Far,
}

impl Regime {
    /// The regime a measured round trip falls in.
    pub fn of(round_trip: Duration) -> Regime {
        match round_trip.as_nanos() {
            // 75, not 50 or 65: the Zen 5 VM's usual placement spans 45-60
            // ns and the Zen 4 VM's 50-77 (99% of it under 75), and a bound
            // inside one split like samples into two regimes (on the Zen 4
            // VM Gyre's 1p1c publish ran 216 M events/s under 65 ns and 210
            // at 65-77). The Zen 3 VM's second placement, 80 ns, stays
            // apart.
            0..75 => Regime::Near,
            75..200 => Regime::Middle,
            _ => Regime::Far,
        }
    }

    /// The regime now: [`Regime::of`] a fresh [`line_round_trip`].
    pub fn now() -> Regime {
        Regime::of(line_round_trip())
    }

    /// Its name in bench output: `near`, `middle` or `far`.
    pub fn name(self) -> &'static str {
        match self {
            Regime::Near => "near",
            Regime::Middle => "middle",
            Regime::Far => "far",
        }
    }
}

/// How many times the line goes there and back per measurement: 1-10 ms.
const ROUND_TRIPS: u64 = 20_000;

/// Round trips timed together: enough that reading the clock (about 20 ns)
/// is lost in them, few enough for a measurement to hold 200 blocks.
const BLOCK: u64 = 100;

/// The round trip of one cache line between this thread and a thread it
/// spawns, both spinning: the median of the mean trips of 200 blocks of
/// 100 (`ROUND_TRIPS` in blocks of `BLOCK`).
///
/// The clock starts only once the echo thread has answered, and the median
/// leaves out a block the host interrupted: on the AMD EPYC Zen 4 VM the
/// first answer from a vCPU that was idle takes 2-8 ms (the host wakes it),
/// which alone made a plain mean of 20,000 trips read 500-1,500 ns while
/// the line crossed in 60 (BENCHMARKS.md, issue 22, nineteenth session).
pub fn line_round_trip() -> Duration {
    let line = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let echo = {
        let line = line.clone();
        std::thread::spawn(move || {
            for i in 0..=ROUND_TRIPS {
                while line.load(Ordering::Acquire) != 2 * i + 1 {
                    std::hint::spin_loop();
                }
                line.store(2 * i + 2, Ordering::Release);
            }
        })
    };
    let trip = |i: u64| {
        line.store(2 * i + 1, Ordering::Release);
        while line.load(Ordering::Acquire) != 2 * i + 2 {
            std::hint::spin_loop();
        }
    };
    // The first trip waits for the echo thread to start and its vCPU to
    // wake; it is not a line crossing.
    trip(0);
    let mut blocks = Vec::with_capacity((ROUND_TRIPS / BLOCK) as usize);
    for block in 0..ROUND_TRIPS / BLOCK {
        let start = Instant::now();
        for i in 1..=BLOCK {
            trip(block * BLOCK + i);
        }
        blocks.push(start.elapsed() / BLOCK as u32);
    }
    echo.join().expect("echo thread");
    typical(blocks)
}

/// The median of `blocks`' round trips: what the line took when nothing
/// else held either thread up.
fn typical(mut blocks: Vec<Duration>) -> Duration {
    blocks.sort_unstable();
    blocks[blocks.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_fall_where_documented() {
        assert_eq!(Regime::of(Duration::from_nanos(32)), Regime::Near);
        assert_eq!(Regime::of(Duration::from_nanos(60)), Regime::Near);
        assert_eq!(Regime::of(Duration::from_nanos(70)), Regime::Near);
        assert_eq!(Regime::of(Duration::from_nanos(75)), Regime::Middle);
        assert_eq!(Regime::of(Duration::from_nanos(80)), Regime::Middle);
        assert_eq!(Regime::of(Duration::from_nanos(199)), Regime::Middle);
        assert_eq!(Regime::of(Duration::from_nanos(480)), Regime::Far);
    }

    #[test]
    fn one_held_up_block_does_not_move_the_round_trip() {
        // The Zen 4 VM: the line crosses in 60 ns, and one block waits 8 ms
        // for a vCPU to wake. A mean of the blocks would read 40 µs.
        let mut blocks = vec![Duration::from_nanos(60); 199];
        blocks.insert(3, Duration::from_millis(8));
        assert_eq!(typical(blocks), Duration::from_nanos(60));
    }

    #[test]
    fn a_round_trip_is_measured_and_named() {
        let rtt = line_round_trip();
        assert!(
            rtt > Duration::ZERO && rtt < Duration::from_millis(1),
            "{rtt:?}"
        );
        println!("line round trip {rtt:?}: {}", Regime::of(rtt).name());
    }
}
