//! The measured window of an echo load run: after `warmup`, for
//! `duration`, each completed round trip (or connection) is counted and
//! timed, and the server's threads' and the generator's CPU time (and a
//! process-wide event counter, if given) are read at its start and end.
//! Shared by the echo load generators (kept connections, churn, TLS),
//! with the [`Report`] each returns.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What a run measured.
pub struct Report {
    /// Round trips completed in the measured window.
    pub messages: u64,
    /// Length of the measured window.
    pub elapsed: Duration,
    /// Round-trip times in nanoseconds.
    pub latency: Histogram<u64>,
    /// CPU time the server's threads used in the measured window.
    pub server_cpu: Duration,
    /// CPU time the generator's thread used in the measured window: near
    /// the window's length, the generator, not the server, sets the pace.
    pub generator_cpu: Duration,
    /// How much the event counter the run was given (see
    /// [`Window::counting`]) moved in the measured window.
    pub counted: u64,
}

impl Report {
    /// Round trips per second.
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    /// The share of one core the generator used (1.0: it never waited).
    pub fn generator_busy(&self) -> f64 {
        self.generator_cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }
}

/// One run's window.
pub struct Window<'a> {
    measure_from: Instant,
    end: Instant,
    duration: Duration,
    server_threads: &'a str,
    counter: Option<&'static AtomicU64>,
    measuring: bool,
    done: u64,
    latency: Histogram<u64>,
    cpu_at_start: Duration,
    generator_at_start: Duration,
    counted_at_start: u64,
}

impl<'a> Window<'a> {
    /// A window opening `warmup` from now and lasting `duration`, reading
    /// the CPU time of the threads whose names start with
    /// `server_threads`.
    pub fn new(warmup: Duration, duration: Duration, server_threads: &'a str) -> Self {
        let measure_from = Instant::now() + warmup;
        Window {
            measure_from,
            end: measure_from + duration,
            duration,
            server_threads,
            counter: None,
            measuring: false,
            done: 0,
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("bounds"),
            cpu_at_start: Duration::ZERO,
            generator_at_start: Duration::ZERO,
            counted_at_start: 0,
        }
    }

    /// Also reads `counter` (a counting allocator's) at the window's ends.
    pub fn counting(mut self, counter: Option<&'static AtomicU64>) -> Self {
        self.counter = counter;
        self
    }

    /// When the window closes.
    pub fn end(&self) -> Instant {
        self.end
    }

    /// Called each turn with the time: opens the window once the warm-up
    /// is over; false once it has closed.
    pub fn tick(&mut self, now: Instant) -> bool {
        if now >= self.end {
            return false;
        }
        if !self.measuring && now >= self.measure_from {
            self.measuring = true;
            self.done = 0;
            self.latency.reset();
            self.cpu_at_start = super::cpu::threads_cpu(self.server_threads);
            self.generator_at_start = crate::stats::thread_cpu_time();
            self.counted_at_start = self.count();
        }
        true
    }

    /// A round trip (or connection) that began at `from` ended at `to`;
    /// counted if the window is open.
    pub fn record(&mut self, from: Instant, to: Instant) {
        if self.measuring {
            self.done += 1;
            let ns = to.saturating_duration_since(from).as_nanos() as u64;
            self.latency.saturating_record(ns.max(1));
        }
    }

    fn count(&self) -> u64 {
        self.counter.map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// What the window measured.
    pub fn report(self) -> Report {
        Report {
            server_cpu: super::cpu::threads_cpu(self.server_threads)
                .saturating_sub(self.cpu_at_start),
            generator_cpu: crate::stats::thread_cpu_time().saturating_sub(self.generator_at_start),
            counted: self.count() - self.counted_at_start,
            messages: self.done,
            elapsed: self.duration,
            latency: self.latency,
        }
    }
}
