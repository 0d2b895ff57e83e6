//! Wait strategies: how a consumer waits for a sequence to become available.
//!
//! A strategy is chosen once per disruptor and is a type parameter, so the
//! wait and the signal are static calls the compiler can inline; the busy
//! strategies' `signal_all_when_blocking` compiles to nothing.
//!
//! | strategy | latency | CPU when idle |
//! |---|---|---|
//! | [`BusySpinWait`] | lowest | one core per consumer |
//! | [`YieldingWait`] | low | one core, but yields it |
//! | [`SleepingWait`] | moderate | little |
//! | [`BlockingWait`] | higher | none |
//! | [`TimeoutBlockingWait`] | higher | none, wakes to call `on_timeout` |
//! | [`PhasedBackoffWait`] | low, then none | spins, yields, then blocks |

use crate::availability::Availability;
use crate::error::WaitError;
use crate::sequence::{minimum, Sequence};
use crate::sync::{self, fence, Arc, AtomicBool, AtomicI64, Condvar, Mutex, Ordering};
use std::time::{Duration, Instant};

/// What a waiting consumer is waiting on, handed to a [`WaitStrategy`].
///
/// `available()` is the highest sequence the consumer may read as far as its
/// dependencies go: for a first stage, the producer cursor (one producer) or
/// the last of the published run from the awaited sequence, at most one
/// batch long (several producers); for a later stage, the slowest
/// upstream stage. `check_alert` fails once the disruptor halts, or once it
/// drains and the awaited sequence lies beyond the last published.
///
/// A strategy of one's own, built on it:
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage, WaitCondition, WaitError, WaitStrategy};
///
/// /// Spins for a hundred looks, then gives its core away between looks.
/// struct SpinThenYield;
///
/// impl WaitStrategy for SpinThenYield {
///     fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError> {
///         let mut looks = 0u32;
///         loop {
///             // Before every look: a halt stops the consumer even with
///             // events waiting.
///             condition.check_alert(sequence)?;
///             let available = condition.available();
///             if available >= sequence {
///                 return Ok(available);
///             }
///             looks += 1;
///             if looks < 100 {
///                 std::hint::spin_loop();
///             } else {
///                 std::thread::yield_now();
///             }
///         }
///     }
///
///     // Nobody sleeps, so there is nobody to wake.
///     fn signal_all_when_blocking(&self) {}
///
///     fn spins_first(&self) -> bool {
///         true
///     }
/// }
///
/// let mut graph = Disruptor::builder(64, || 0u64).wait_strategy(SpinThenYield).single_producer()?;
/// graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.batch_publish(10, |i, slot| *slot = i as u64)?;
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 10);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy)]
pub struct WaitCondition<'a> {
    pub(crate) cursor: &'a Sequence,
    pub(crate) dependencies: &'a [Arc<Sequence>],
    pub(crate) stop_at: &'a AtomicI64,
    /// A first stage of a multi-producer ring: the marks it reads instead
    /// of the cursor, over the sequences it may take in one batch (from
    /// the one it awaits).
    pub(crate) published: Option<(&'a Availability, i64, i64)>,
}

impl WaitCondition<'_> {
    /// The highest sequence the consumer may read now (see the type's doc).
    ///
    /// A first stage of a multi-producer ring finds it from the slots'
    /// publication marks and never reads the cursor, which every producer
    /// writes on every claim: looking at it while waiting would pull its
    /// line away from them.
    #[inline(always)]
    pub fn available(&self) -> i64 {
        if let Some((availability, from, through)) = self.published {
            availability.published_through(from, through)
        } else if self.dependencies.is_empty() {
            self.cursor.get()
        } else {
            minimum(self.dependencies, i64::MAX)
        }
    }

    /// `Err(WaitError::Alerted)` when waiting for `sequence` must stop.
    #[inline(always)]
    pub fn check_alert(&self, sequence: i64) -> Result<(), WaitError> {
        if sequence > self.stop_at.load(Ordering::Acquire) {
            Err(WaitError::Alerted)
        } else {
            Ok(())
        }
    }
}

impl std::fmt::Debug for WaitCondition<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitCondition")
            .field("cursor", &self.cursor.get())
            .field("dependencies", &self.dependencies.len())
            .field("awaiting", &self.published.map(|(_, from, _)| from))
            .finish_non_exhaustive()
    }
}

/// How consumers wait and how producers and stages wake them.
///
/// Implement this for a strategy of your own. `wait_for` must return
/// `Ok(a)` with `a >= sequence` only when `condition.available() >= sequence`
/// was observed, must call `check_alert` before each look at `available`
/// (a halt stops a consumer even when events are waiting) and return its error, and may return early with a smaller value (the
/// caller waits again). `signal_all_when_blocking` is called after every
/// advance of the cursor or of a consumer's sequence, and after an alert.
///
/// ```
/// use gyre_ringbuffer::{BusySpinWait, Disruptor, PhasedBackoffWait, Stage, WaitStrategy};
/// use std::time::Duration;
///
/// /// A graph over any wait strategy: the choice is the builder's.
/// fn run<W: WaitStrategy>(wait: W) -> Result<u64, Box<dyn std::error::Error>> {
///     let mut graph = Disruptor::builder(64, || 0u8).wait_strategy(wait).single_producer()?;
///     graph.handle_events_with(Stage::new(|_: &u8, _: i64, _: bool| {}));
///     let (mut producer, disruptor) = graph.start()?;
///     producer.publish(|slot| *slot = 1)?;
///     drop(producer);
///     Ok(disruptor.join().processed)
/// }
/// assert_eq!(run(BusySpinWait)?, 1);
/// assert_eq!(run(PhasedBackoffWait::new(Duration::from_micros(10), Duration::from_micros(100)))?, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait WaitStrategy: Send + Sync + 'static {
    /// Wait until `condition.available() >= sequence`; return what is available.
    fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError>;

    /// Wake consumers blocked in `wait_for`, if this strategy blocks.
    fn signal_all_when_blocking(&self);

    /// Whether `wait_for` starts by looking at the sequences in a spin loop.
    ///
    /// A consumer on such a strategy that has caught up with a dense
    /// stream pauses for a breath before it looks again (400 ns where
    /// cache lines cross between its core and the producer's quickly, up to
    /// ten look-times where they cross slowly), so it takes the next events
    /// as a batch rather than pulling the producer's cursor line across for
    /// each one (BENCHMARKS.md, issue 22). A strategy that
    /// goes to sleep at once gains nothing from the pause and would burn a
    /// core others may need, so the default is `false`; [`BusySpinWait`],
    /// [`YieldingWait`], [`SleepingWait`] and [`PhasedBackoffWait`] say `true`.
    fn spins_first(&self) -> bool {
        false
    }

    /// Whether `wait_for` never gives up its core for a set time: it spins
    /// or yields, and never sleeps or blocks.
    ///
    /// Such a strategy says every thread of the graph has a core of its
    /// own, so a producer waiting for room in a full ring then yields for
    /// as long as it waits, instead of going on to short sleeps: a consumer
    /// held up for a while (its core taken from it) drains the ring in
    /// microseconds once it runs again, and a producer asleep would leave
    /// it idle after that (BENCHMARKS.md, issue 22). The default is
    /// `false`; [`BusySpinWait`] and [`YieldingWait`] say `true`.
    fn never_parks(&self) -> bool {
        false
    }
}

/// Spin on the sequences: lowest latency, burns a core per consumer.
///
/// Use only with at least as many cores as busy threads. Producers that
/// find the ring full spin and then yield until it has room; they never
/// sleep ([`WaitStrategy::never_parks`]).
///
/// ```
/// use gyre_ringbuffer::{BusySpinWait, Disruptor};
///
/// // Lowest latency, one busy core per consumer thread.
/// let graph = Disruptor::builder(1024, || 0u64).wait_strategy(BusySpinWait).single_producer()?;
/// # drop(graph);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct BusySpinWait;

impl WaitStrategy for BusySpinWait {
    #[inline]
    fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError> {
        let mut available = condition.available();
        while available < sequence {
            condition.check_alert(sequence)?;
            sync::spin_loop();
            available = condition.available();
        }
        condition.check_alert(sequence)?;
        Ok(available)
    }

    #[inline(always)]
    fn signal_all_when_blocking(&self) {}

    #[inline(always)]
    fn spins_first(&self) -> bool {
        true
    }

    #[inline(always)]
    fn never_parks(&self) -> bool {
        true
    }
}

/// Spin a little, then yield the CPU between checks.
///
/// Lower latency than sleeping when a core is free for the yielding
/// thread. When threads outnumber cores a yield is a system call that
/// often hands the core straight back: with three producers and one
/// consumer on two cores, [`SleepingWait::with_phases`] with no yields ran
/// 1.40x as fast at the median of 26 runs on an AMD EPYC VM, before
/// producers backed off from each other's claims; since, on an Intel Xeon
/// VM, yielding ran a little ahead of it (see
/// [Choosing a wait strategy](crate#choosing-a-wait-strategy)). Producers
/// that find the ring full likewise spin and then yield, and never sleep
/// ([`WaitStrategy::never_parks`]).
///
/// ```
/// use gyre_ringbuffer::{Disruptor, YieldingWait};
///
/// // Spin 100 times, then yield the core between looks.
/// let graph = Disruptor::builder(1024, || 0u64).wait_strategy(YieldingWait::new(100)).single_producer()?;
/// # drop(graph);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct YieldingWait {
    spin_tries: u32,
}

impl YieldingWait {
    /// Spin `spin_tries` times before starting to yield.
    pub fn new(spin_tries: u32) -> Self {
        YieldingWait { spin_tries }
    }
}

impl Default for YieldingWait {
    fn default() -> Self {
        YieldingWait::new(100)
    }
}

impl WaitStrategy for YieldingWait {
    #[inline]
    fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError> {
        let mut counter = self.spin_tries;
        loop {
            condition.check_alert(sequence)?;
            let available = condition.available();
            if available >= sequence {
                return Ok(available);
            }
            if counter == 0 {
                sync::yield_now();
            } else {
                counter -= 1;
                sync::spin_loop();
            }
        }
    }

    #[inline(always)]
    fn signal_all_when_blocking(&self) {}

    #[inline(always)]
    fn spins_first(&self) -> bool {
        true
    }

    #[inline(always)]
    fn never_parks(&self) -> bool {
        true
    }
}

/// Spin, then yield, then sleep between checks.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, SleepingWait};
/// use std::time::Duration;
///
/// // 100 spins, then 100 yields, then sleep 100 us between looks.
/// let wait = SleepingWait::new(200, Duration::from_micros(100));
/// let graph = Disruptor::builder(1024, || 0u64).wait_strategy(wait).single_producer()?;
/// # drop(graph);
/// // More threads than cores: spin a little, then sleep, never yield.
/// let wait = SleepingWait::with_phases(64, 0, Duration::from_micros(50));
/// let graph = Disruptor::builder(1024, || 0u64).wait_strategy(wait).multi_producer()?;
/// # drop(graph);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SleepingWait {
    spins: u32,
    yields: u32,
    sleep: Duration,
}

impl SleepingWait {
    /// Make `retries` attempts (the first half spinning, the second half
    /// yielding) before sleeping `sleep` between checks, as the Java
    /// Disruptor's `SleepingWaitStrategy` does.
    pub fn new(retries: u32, sleep: Duration) -> Self {
        SleepingWait::with_phases(retries - retries / 2, retries / 2, sleep)
    }

    /// `spins` looks with a spin hint between them, then `yields` looks
    /// with a yield between them, then sleep `sleep` between looks.
    ///
    /// With no yields, a consumer that finds nothing soon steps aside for
    /// the producers it waits on. Three producers and a consumer on two
    /// cores ran 1.4-2.1x as fast as with `YieldingWait` (median 1.87 of
    /// seven runs) on the VMs we measure on, where a yield is a costly
    /// system call that frees no core (BENCHMARKS.md, issue 22, eleventh
    /// session).
    pub fn with_phases(spins: u32, yields: u32, sleep: Duration) -> Self {
        SleepingWait {
            spins,
            yields,
            sleep,
        }
    }
}

impl Default for SleepingWait {
    fn default() -> Self {
        SleepingWait::new(200, Duration::from_micros(100))
    }
}

impl WaitStrategy for SleepingWait {
    fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError> {
        let mut looks = 0u32;
        loop {
            condition.check_alert(sequence)?;
            let available = condition.available();
            if available >= sequence {
                return Ok(available);
            }
            if looks < self.spins {
                sync::spin_loop();
            } else if looks - self.spins < self.yields {
                sync::yield_now();
            } else {
                sync::sleep(self.sleep);
                continue;
            }
            looks += 1;
        }
    }

    #[inline(always)]
    fn signal_all_when_blocking(&self) {}

    #[inline(always)]
    fn spins_first(&self) -> bool {
        true
    }
}

/// Block on a condition variable: an idle consumer uses no CPU.
///
/// Unlike the Java Disruptor's blocking strategy, a consumer that waits on a
/// slower upstream stage blocks too (stages signal as they advance), so no
/// thread spins while another is slow.
///
/// Signalling costs a `SeqCst` fence and a load of a line that is only
/// written when someone is about to block, so an active pipeline pays no
/// lock and no shared write per publish.
///
/// ```
/// use gyre_ringbuffer::{BlockingWait, Disruptor};
///
/// // The default: an idle consumer sleeps on a condition variable.
/// let graph = Disruptor::builder(1024, || 0u64).wait_strategy(BlockingWait::new()).single_producer()?;
/// # drop(graph);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct BlockingWait {
    inner: Blocker,
}

impl BlockingWait {
    /// A new blocking strategy.
    pub fn new() -> Self {
        Self::default()
    }
}

impl WaitStrategy for BlockingWait {
    fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError> {
        self.inner.wait(sequence, condition, None)
    }

    #[inline]
    fn signal_all_when_blocking(&self) {
        self.inner.signal();
    }
}

/// Like [`BlockingWait`], but gives up after a timeout so the consumer's
/// handler gets `on_timeout` (for heartbeats, flushes, housekeeping).
///
/// ```
/// use gyre_ringbuffer::{Disruptor, EventHandler, Stage, TimeoutBlockingWait};
/// use std::time::Duration;
///
/// /// Flushes what it has batched when no event came for 5 ms.
/// struct Batcher(Vec<u64>);
///
/// impl EventHandler<u64> for Batcher {
///     fn on_event(&mut self, e: &u64, _: i64, _: bool) {
///         self.0.push(*e);
///     }
///     fn on_timeout(&mut self, _last: i64) {
///         self.0.clear(); // flush
///     }
/// }
///
/// let mut graph = Disruptor::builder(64, || 0u64)
///     .wait_strategy(TimeoutBlockingWait::new(Duration::from_millis(5)))
///     .single_producer()?;
/// graph.handle_events_with(Stage::new(Batcher(Vec::new())));
/// let (producer, disruptor) = graph.start()?;
/// drop(producer);
/// disruptor.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TimeoutBlockingWait {
    inner: Arc<Nudgeable>,
    timeout: Duration,
}

/// A blocker whose wait another thread may end early, as a timeout (the
/// flag saying so is the data under the blocker's mutex).
#[derive(Debug, Default)]
struct Nudgeable {
    blocker: Blocker,
}

impl TimeoutBlockingWait {
    /// Time out after `timeout` without progress.
    pub fn new(timeout: Duration) -> Self {
        TimeoutBlockingWait {
            inner: Arc::new(Nudgeable::default()),
            timeout,
        }
    }

    /// A handle that ends the consumer's wait at once, as if it had timed
    /// out, so its handler's `on_timeout` runs now rather than at the end
    /// of the timeout: for work that reaches the handler by another road
    /// than the ring (an answer from a helper thread, say).
    ///
    /// ```
    /// use gyre_ringbuffer::{Disruptor, EventHandler, Stage, TimeoutBlockingWait};
    /// use std::sync::mpsc;
    /// use std::time::{Duration, Instant};
    ///
    /// /// Reports each `on_timeout`.
    /// struct Ticks(mpsc::Sender<Instant>);
    ///
    /// impl EventHandler<u64> for Ticks {
    ///     fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
    ///     fn on_timeout(&mut self, _last: i64) {
    ///         let _ = self.0.send(Instant::now());
    ///     }
    /// }
    ///
    /// let wait = TimeoutBlockingWait::new(Duration::from_secs(60));
    /// let nudger = wait.nudger();
    /// let (tx, ticks) = mpsc::channel();
    /// let mut graph = Disruptor::builder(64, || 0u64).wait_strategy(wait).single_producer()?;
    /// graph.handle_events_with(Stage::new(Ticks(tx)));
    /// let (producer, disruptor) = graph.start()?;
    /// let asked = Instant::now();
    /// nudger.nudge();
    /// // Well before the minute is up.
    /// let tick = ticks.recv()?;
    /// assert!(tick.duration_since(asked) < Duration::from_secs(30));
    /// drop(producer);
    /// disruptor.join();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nudger(&self) -> TimeoutNudger {
        TimeoutNudger {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl WaitStrategy for TimeoutBlockingWait {
    fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError> {
        let deadline = Some(Instant::now() + self.timeout);
        self.inner
            .blocker
            .wait_or_nudge(sequence, condition, deadline, true)
    }

    #[inline]
    fn signal_all_when_blocking(&self) {
        self.inner.blocker.signal();
    }
}

/// Ends a [`TimeoutBlockingWait`]'s current or next wait as a timeout
/// (see [`TimeoutBlockingWait::nudger`]). Nudges before the consumer
/// looks count once: one `on_timeout` answers them all.
#[derive(Clone, Debug)]
pub struct TimeoutNudger {
    inner: Arc<Nudgeable>,
}

impl TimeoutNudger {
    /// Has the consumer's handler run `on_timeout` now: it wakes the
    /// consumer if it sleeps, or makes its next wait end at once.
    pub fn nudge(&self) {
        self.inner.blocker.nudge();
    }
}

/// Spin for a while, yield for a while, then block: low latency under load
/// and no CPU when idle.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, PhasedBackoffWait};
/// use std::time::Duration;
///
/// // Spin for 20 us, yield until 1 ms, then block.
/// let wait = PhasedBackoffWait::new(Duration::from_micros(20), Duration::from_millis(1));
/// let graph = Disruptor::builder(1024, || 0u64).wait_strategy(wait).single_producer()?;
/// # drop(graph);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PhasedBackoffWait {
    spin_for: Duration,
    yield_for: Duration,
    inner: Blocker,
}

impl PhasedBackoffWait {
    /// Spin for `spin_for`, then yield until `spin_for + yield_for`, then block.
    pub fn new(spin_for: Duration, yield_for: Duration) -> Self {
        PhasedBackoffWait {
            spin_for,
            yield_for,
            inner: Blocker::default(),
        }
    }
}

impl Default for PhasedBackoffWait {
    fn default() -> Self {
        PhasedBackoffWait::new(Duration::from_micros(10), Duration::from_micros(100))
    }
}

impl WaitStrategy for PhasedBackoffWait {
    fn wait_for(&self, sequence: i64, condition: &WaitCondition<'_>) -> Result<i64, WaitError> {
        // Reading the clock costs more than a check, so only look every so often.
        const CHECKS_PER_CLOCK_READ: u32 = 64;
        let mut start: Option<Instant> = None;
        let mut counter = CHECKS_PER_CLOCK_READ;
        loop {
            condition.check_alert(sequence)?;
            let available = condition.available();
            if available >= sequence {
                return Ok(available);
            }
            counter -= 1;
            if counter == 0 {
                counter = CHECKS_PER_CLOCK_READ;
                let started = *start.get_or_insert_with(Instant::now);
                let elapsed = started.elapsed();
                if elapsed > self.spin_for + self.yield_for {
                    return self.inner.wait(sequence, condition, None);
                }
                if elapsed > self.spin_for {
                    sync::yield_now();
                    continue;
                }
            }
            sync::spin_loop();
        }
    }

    #[inline]
    fn signal_all_when_blocking(&self) {
        self.inner.signal();
    }

    #[inline(always)]
    fn spins_first(&self) -> bool {
        true
    }
}

/// The mutex, condition variable and "someone may be asleep" flag shared by
/// the blocking strategies.
///
/// Protocol (Dekker-style, so no wake-up is lost without a lock per publish):
/// a waiter, holding the mutex, sets `sleepers`, issues a `SeqCst` fence and
/// re-checks the condition before `wait`. A signaller stores its sequence,
/// issues a `SeqCst` fence and reads `sleepers`. One of the two fences comes
/// first in the single total order of `SeqCst` fences: if the waiter's does,
/// the signaller sees `sleepers` set and takes the mutex, which it can only
/// get once the waiter is inside `wait`, then notifies; if the signaller's does,
/// the waiter's re-check sees the new sequence and does not sleep.
#[derive(Debug, Default)]
struct Blocker {
    /// Guards the sleep; holds whether a nudge is waiting to end a
    /// nudgeable wait (see [`TimeoutNudger`]).
    mutex: Mutex<bool>,
    condvar: Condvar,
    sleepers: AtomicBool,
}

impl Blocker {
    fn wait(
        &self,
        sequence: i64,
        condition: &WaitCondition<'_>,
        deadline: Option<Instant>,
    ) -> Result<i64, WaitError> {
        self.wait_or_nudge(sequence, condition, deadline, false)
    }

    /// [`wait`](Self::wait), which, if `nudgeable`, also ends as a timeout
    /// once a nudge is found waiting (and takes it).
    fn wait_or_nudge(
        &self,
        sequence: i64,
        condition: &WaitCondition<'_>,
        deadline: Option<Instant>,
        nudgeable: bool,
    ) -> Result<i64, WaitError> {
        condition.check_alert(sequence)?;
        let available = condition.available();
        if available >= sequence {
            return Ok(available);
        }
        let mut guard = sync::lock(&self.mutex);
        loop {
            self.sleepers.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            condition.check_alert(sequence)?;
            let available = condition.available();
            if available >= sequence {
                return Ok(available);
            }
            if nudgeable && *guard {
                *guard = false;
                return Err(WaitError::Timeout);
            }
            guard = match deadline {
                None => sync::wait(&self.condvar, guard),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(WaitError::Timeout);
                    }
                    sync::wait_timeout(&self.condvar, guard, deadline - now)
                }
            };
        }
    }

    /// Leaves a nudge under the mutex and wakes every waiter. The waiter
    /// reads the nudge only while it holds the mutex, and lets the mutex
    /// go only by going to sleep on the condition variable: a nudge left
    /// before it locks is seen when it looks, and one left while it holds
    /// the mutex waits here until it sleeps, and then wakes it. Unlike a
    /// publisher's wake-up this takes the mutex every time; nudges are
    /// rare, and the argument needs no fences.
    fn nudge(&self) {
        {
            let mut nudged = sync::lock(&self.mutex);
            *nudged = true;
            self.sleepers.store(false, Ordering::Relaxed);
        }
        self.condvar.notify_all();
    }

    #[inline]
    fn signal(&self) {
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) {
            // Taking the mutex waits for a waiter that saw the old sequence
            // to be inside `wait`. The flag is cleared under it (a waiter
            // that comes after sets it again before it sleeps); notifying
            // after letting the mutex go spares the woken thread from
            // blocking at once on the mutex we hold (a second futex sleep
            // and wake per wake-up). A waiter that came after us may be
            // woken too: it re-checks and sleeps again.
            {
                let _guard = sync::lock(&self.mutex);
                self.sleepers.store(false, Ordering::Relaxed);
            }
            self.condvar.notify_all();
        }
    }
}
