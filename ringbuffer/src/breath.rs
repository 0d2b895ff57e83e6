//! The breath a consumer takes after catching up with a dense stream (see
//! `SequenceBarrier::first_look`), and how long it is.
//!
//! A breath exists to let a batch gather while the cursor's cache line
//! stays with the producer: a look pulls the line over, and the producer's
//! next store must take it back. So a breath is only worth its latency if it
//! is long next to what a look costs. That cost is not one number: between
//! the two vCPUs of our VMs a line crosses in a few tens of ns most of the
//! time (30 ns on the AMD EPYC Zen 5 VM), and for minutes at a stretch,
//! when the host runs them far apart (the `far` regime of the bench's
//! `regime` module), in several times that (130 ns). A fixed 400 ns breath,
//! right for the first, left the consumer looking about once per event in
//! the second: 1p1c busy-spin publish ran at 66-69 M events/s there against
//! the `disruptor` crate's 63-73.
//!
//! So the breath measures itself: every [`SAMPLE_EVERY`]th breath times
//! itself and the look after it with the CPU's time-stamp counter, and
//! every [`WINDOW`] such samples the breath is set to [`LOOKS_PER_BREATH`]
//! times the median look, never shorter than [`BREATH`] (where quick
//! looks put it: there the breath is what it always was) and never longer
//! than [`MAX_STRETCH`] times that. It stretches only for a stream whose
//! events come faster than one per look: a slower one (an event every
//! 300 ns with a look of 130) is served better one event at a time than by
//! making its events wait out a long breath. In the far regime this took
//! 1p1c publish from 66-69 to 134-163 M events/s; paced traffic's median
//! and 90th-percentile latency moved 7% at most there and not at all in
//! the near regime (BENCHMARKS.md, issue 22, eighteenth session). Traffic
//! the consumer keeps up with never breathes at all.
//!
//! Uses only `sync` (the spin hint), `std`'s clock and the x86-64 counter.

use crate::sync;
use std::cell::Cell;
use std::time::Duration;

/// The shortest breath: a few cache-line transfers between near cores, long
/// enough for a producer to publish a batch, short next to any thread
/// wake-up. On the AMD EPYC VM 1p1c busy-spin publish ran at 190-290 M
/// events/s with 200 ns and 235-350 M with 400 ns, and the latency of paced
/// traffic was the same for both (BENCHMARKS.md).
#[cfg_attr(loom, allow(dead_code))] // the loom build breathes one spin
const BREATH: Duration = Duration::from_nanos(400);

/// How many looks' worth a breath lasts: the line then crosses to the
/// consumer about once per this many look-times of publishing.
const LOOKS_PER_BREATH: u64 = 10;

/// The longest breath, in multiples of [`BREATH`]: bounds what a mismeasured
/// look (a vCPU held up by the host mid-sample) can cost in latency.
const MAX_STRETCH: u32 = 16;

/// One breath in this many is timed; timing costs four counter reads.
const SAMPLE_EVERY: u32 = 8;

/// Timed breaths per decision; the median look of a window decides, so one
/// interrupted (long) or lucky (short) look does not.
const WINDOW: usize = 8;

/// A consumer's breath: its current length and the samples that set it.
/// Belongs to one consumer thread (the barrier's), hence `Cell`s.
#[derive(Debug)]
pub(crate) struct Breath {
    /// Spin hints per breath now.
    spins: Cell<u32>,
    /// Spin hints in a [`BREATH`]: the shortest breath.
    floor: u32,
    /// Breaths until the next timed one.
    countdown: Cell<u32>,
    /// The window's timed looks so far, in counter ticks.
    looks: Cell<[u64; WINDOW]>,
    /// Timed looks in the window so far.
    taken: Cell<usize>,
    /// How many of them found events coming faster than one per look.
    crowded: Cell<usize>,
    /// The fewest counter ticks per spin hint seen in this window's breaths
    /// (an interrupted breath only ever looks slower).
    ticks_per_spin: Cell<u64>,
}

impl Breath {
    /// A breath of [`BREATH`], calibrated for this CPU.
    pub(crate) fn new() -> Self {
        Self::with_floor(breath_spins())
    }

    fn with_floor(floor: u32) -> Self {
        Breath {
            spins: Cell::new(floor),
            floor,
            countdown: Cell::new(SAMPLE_EVERY - 1),
            looks: Cell::new([0; WINDOW]),
            taken: Cell::new(0),
            crowded: Cell::new(0),
            ticks_per_spin: Cell::new(u64::MAX),
        }
    }

    /// Breathe, then return what `look` finds: the highest readable
    /// sequence, the next wanted being `sequence`.
    #[inline(always)]
    pub(crate) fn then_look(&self, sequence: i64, look: impl FnOnce() -> i64) -> i64 {
        let countdown = self.countdown.get();
        if countdown != 0 || cfg!(loom) {
            self.countdown.set(countdown.wrapping_sub(1));
            breathe(self.spins.get());
            return look();
        }
        self.countdown.set(SAMPLE_EVERY - 1);
        self.timed(sequence, look)
    }

    /// A breath and a look, both timed.
    #[cold]
    #[inline(never)]
    fn timed(&self, sequence: i64, look: impl FnOnce() -> i64) -> i64 {
        let spins = self.spins.get();
        let before = ticks();
        let start = ticks();
        breathe(spins);
        let breathed = ticks();
        let found = look();
        let looked = ticks();
        // Two reads in a row time the reading itself, which the look's
        // interval holds too: where a hypervisor traps the counter, a read
        // costs more than a look, and only the difference is the look.
        let reading = start.saturating_sub(before);
        let breath = breathed.saturating_sub(start);
        self.record(Sample {
            ticks_per_spin: breath / u64::from(spins),
            look: looked.saturating_sub(breathed).saturating_sub(reading),
            gathered: u64::try_from(found - sequence + 1).unwrap_or(0),
            breath,
        });
        found
    }

    /// Add one timed breath to the window; at its end, set the breath.
    fn record(&self, sample: Sample) {
        self.ticks_per_spin
            .set(self.ticks_per_spin.get().min(sample.ticks_per_spin.max(1)));
        // Events came faster than one per look: looking for each would
        // keep the line crossing, and a longer breath saves crossings. A
        // slower stream (one event every few looks) is better served one
        // event at a time, with no longer wait than the shortest breath.
        let crowded = sample.gathered.saturating_mul(sample.look) >= sample.breath;
        self.crowded.set(self.crowded.get() + usize::from(crowded));
        let mut looks = self.looks.get();
        let taken = self.taken.get();
        looks[taken] = sample.look;
        if taken + 1 < WINDOW {
            self.looks.set(looks);
            self.taken.set(taken + 1);
            return;
        }
        looks.sort_unstable();
        let spins = if self.crowded.get() > WINDOW / 2 {
            LOOKS_PER_BREATH
                .saturating_mul(looks[WINDOW / 2])
                .div_ceil(self.ticks_per_spin.get())
        } else {
            0
        };
        self.spins.set(stretch(self.floor, spins));
        self.taken.set(0);
        self.crowded.set(0);
        self.ticks_per_spin.set(u64::MAX);
    }

    /// Spin hints per breath now.
    #[cfg(test)]
    pub(crate) fn spins(&self) -> u32 {
        self.spins.get()
    }
}

/// One timed breath and the look after it, in counter ticks.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// The breath's length over its spin hints.
    ticks_per_spin: u64,
    /// The look after the breath, less what reading the counter costs.
    look: u64,
    /// Events the look found (0 if none).
    gathered: u64,
    /// The breath.
    breath: u64,
}

/// `spins`, but no shorter than `floor` and no longer than [`MAX_STRETCH`]
/// floors.
fn stretch(floor: u32, spins: u64) -> u32 {
    let most = floor.saturating_mul(MAX_STRETCH);
    u32::try_from(spins).unwrap_or(most).clamp(floor, most)
}

/// The CPU's time-stamp counter, ordered after every earlier load and before
/// every later one (each `lfence` waits for the loads before it), so the
/// ticks between two reads cover a look's miss whole.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ticks() -> u64 {
    use std::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: `lfence` needs SSE2, which every x86-64 CPU has (it is in the
    // target's baseline), and only orders this thread's loads. `rdtsc` reads
    // a counter into registers; Linux lets user space run it unless the
    // process asked otherwise with `prctl(PR_SET_TSC)` (which this crate
    // never does; a tool that does, like `rr`, emulates it or raises a
    // signal, never leaves memory undefined). Neither writes memory.
    unsafe {
        _mm_lfence();
        let now = _rdtsc();
        _mm_lfence();
        now
    }
}

/// Elsewhere, the monotonic clock's nanoseconds since the first call.
#[cfg(not(target_arch = "x86_64"))]
fn ticks() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

/// How many spin-loop hints make up a [`BREATH`] on this CPU.
///
/// A hint's length differs by an order of magnitude between CPU kinds
/// (about 24 ns on the AMD EPYC VMs we measure on, 35-45 ns on Intel
/// cores since Skylake, a few ns on older ones), so a fixed count would
/// breathe for very different times. It is measured once per process, on
/// the first call, as the shortest of four samples of 256 hints (about
/// 25 µs in all here).
pub(crate) fn breath_spins() -> u32 {
    #[cfg(not(loom))]
    {
        static SPINS_PER_BREATH: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        *SPINS_PER_BREATH.get_or_init(|| {
            const SAMPLE: u32 = 256;
            // The shortest of a few samples: a sample the scheduler (or the
            // hypervisor) interrupted is long, and would make the breath short.
            let fastest = (0..4)
                .map(|_| {
                    let start = std::time::Instant::now();
                    for _ in 0..SAMPLE {
                        std::hint::spin_loop();
                    }
                    start.elapsed()
                })
                .min()
                .unwrap_or_default();
            let per_spin = fastest.as_nanos().max(1) as f64 / f64::from(SAMPLE);
            (BREATH.as_nanos() as f64 / per_spin)
                .ceil()
                .clamp(1.0, 256.0) as u32
        })
    }
    #[cfg(loom)]
    {
        1
    }
}

/// Pause for `spins` spin-loop hints.
#[cold]
#[inline(never)]
fn breathe(spins: u32) {
    for _ in 0..spins {
        sync::spin_loop();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A breath of 40 spin hints, 10 ticks each, that gathered `gathered`
    /// events, then a look of `look` ticks.
    fn sample(look: u64, gathered: u64) -> Sample {
        Sample {
            ticks_per_spin: 10,
            look,
            gathered,
            breath: 400,
        }
    }

    /// Record `sample` `times` times.
    fn feed(breath: &Breath, times: usize, sample: Sample) {
        for _ in 0..times {
            breath.record(sample);
        }
    }

    /// Feed a window of looks of `look` ticks into a dense stream.
    fn window(breath: &Breath, look: u64) {
        feed(breath, WINDOW, sample(look, 64));
    }

    #[test]
    fn a_breath_is_at_least_one_spin_and_bounded() {
        let spins = breath_spins();
        println!("a breath is {spins} spin hints here");
        assert!((1..=256).contains(&spins), "{spins}");
    }

    #[test]
    fn quick_looks_keep_the_shortest_breath() {
        let breath = Breath::with_floor(40);
        window(&breath, 30);
        assert_eq!(breath.spins(), 40, "10 looks of 30 ticks are 30 spins");
    }

    #[test]
    fn slow_looks_stretch_the_breath_and_quick_ones_bring_it_back() {
        let breath = Breath::with_floor(40);
        window(&breath, 100);
        assert_eq!(breath.spins(), 100, "10 looks of 100 ticks, 10 a spin");
        window(&breath, 30);
        assert_eq!(breath.spins(), 40);
    }

    #[test]
    fn a_stream_slower_than_one_event_per_look_keeps_the_shortest_breath() {
        let breath = Breath::with_floor(40);
        // Three events in a breath of 400 ticks, a look 100: one event
        // every 133 ticks, slower than looking for each.
        feed(&breath, WINDOW, sample(100, 3));
        assert_eq!(breath.spins(), 40);
        // Four in the same breath come one per look: stretch.
        feed(&breath, WINDOW, sample(100, 4));
        assert_eq!(breath.spins(), 100);
    }

    #[test]
    fn nothing_changes_before_a_window_is_full() {
        let breath = Breath::with_floor(40);
        feed(&breath, WINDOW - 1, sample(100, 64));
        assert_eq!(breath.spins(), 40);
        breath.record(sample(100, 64));
        assert_eq!(breath.spins(), 100);
    }

    #[test]
    fn the_median_look_decides_and_the_stretch_is_bounded() {
        let breath = Breath::with_floor(40);
        // Three looks the host held up for a millisecond do not count...
        for look in [3_000_000, 3_000_000, 3_000_000, 150, 150, 150, 150, 150] {
            breath.record(sample(look, 64));
        }
        assert_eq!(breath.spins(), 150);
        // ...but a window of them stretches the breath only so far.
        window(&breath, 3_000_000);
        assert_eq!(breath.spins(), 40 * MAX_STRETCH);
        // A counter that jumped (a thread moved to a core whose counter
        // runs ahead) neither overflows nor stretches further.
        window(&breath, u64::MAX);
        assert_eq!(breath.spins(), 40 * MAX_STRETCH);
    }

    #[test]
    fn an_interrupted_breath_does_not_shorten_the_next() {
        let breath = Breath::with_floor(40);
        // One breath in the window took 100x its time: the fastest decides.
        breath.record(Sample {
            ticks_per_spin: 1_000,
            breath: 40_000,
            ..sample(100, 64)
        });
        feed(&breath, WINDOW - 1, sample(100, 64));
        assert_eq!(breath.spins(), 100);
    }

    #[test]
    fn a_timed_breath_returns_the_look_and_records_it() {
        let breath = Breath::with_floor(1);
        for _ in 0..SAMPLE_EVERY * WINDOW as u32 {
            assert_eq!(breath.then_look(5, || 7), 7);
        }
        assert_eq!(breath.taken.get(), 0, "one window done");
        assert_eq!(breath.ticks_per_spin.get(), u64::MAX);
        assert!((1..=MAX_STRETCH).contains(&breath.spins()));
    }
}
