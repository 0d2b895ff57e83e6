//! An LMAX-Disruptor-style ring buffer for passing events between threads
//! with no allocation, no lock and no dynamic call per event.
//!
//! Events live in a preallocated power-of-two ring. Producers claim
//! sequences, fill the slots in place through a closure and publish;
//! consumers are stages of a dependency graph (parallel stages, `then`,
//! diamonds, worker pools, pollers), each on its own thread, each handed
//! the available events in batches (at most
//! [`max_batch`](DisruptorBuilder::max_batch) each) with `end_of_batch` on
//! the last.
//! Producers never overtake the slowest consumer, and consumers never read a
//! slot that is claimed but not yet published.
//!
//! ```
//! use gyre_ringbuffer::{Disruptor, Stage, YieldingWait};
//! use std::sync::{Arc, atomic::{AtomicU64, Ordering::Relaxed}};
//!
//! #[derive(Default)]
//! struct Trade { price: u64, qty: u64 }
//!
//! let notional = Arc::new(AtomicU64::new(0));
//! let total = notional.clone();
//! let mut graph = Disruptor::builder(1 << 16, Trade::default)
//!     .wait_strategy(YieldingWait::default())
//!     .single_producer()?;
//! graph
//!     .handle_events_with(Stage::new(|t: &Trade, _seq: i64, _end: bool| assert!(t.qty > 0)).name("validate"))
//!     .then(Stage::new(move |t: &Trade, _seq: i64, _end: bool| {
//!         total.fetch_add(t.price * t.qty, Relaxed);
//!     }).name("book"));
//! let (mut producer, disruptor) = graph.start()?;
//! for i in 1..=1000 {
//!     producer.publish(|t| { t.price = i; t.qty = 2; })?;
//! }
//! drop(producer); // the last producer gone: drain, then the stages stop
//! let report = disruptor.join();
//! assert_eq!(report.processed, 1000);
//! assert_eq!(notional.load(Relaxed), 1000 * 1001);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Choosing a wait strategy
//!
//! A consumer that has caught up waits by its [`WaitStrategy`], chosen
//! once for the ring with
//! [`wait_strategy`](DisruptorBuilder::wait_strategy):
//!
//! | the threads | what matters | strategy |
//! |---|---|---|
//! | no more busy threads than cores | latency | [`BusySpinWait`] |
//! | any | an idle ring costs no CPU (the default) | [`BlockingWait`], or [`TimeoutBlockingWait`] for a handler's `on_timeout` |
//! | any | latency under load, no CPU when idle | [`PhasedBackoffWait`] |
//! | more threads than cores | throughput | [`SleepingWait::with_phases`]`(64, 0, 50 µs)` |
//!
//! When threads outnumber cores, a waiting thread that spins holds a core
//! the producers need, and one that yields asks the scheduler for a core
//! with a system call that, where the cores are a VM's, often hands it
//! straight back. A thread that sleeps leaves the producers a stretch of
//! the ring to fill. Three producers into one consumer on a 2-vCPU AMD EPYC
//! VM (`ring -- --quick --only 3p1c-sleeping`; BENCHMARKS.md, issue 22,
//! twelfth session), `SleepingWait::with_phases(64, 0, 50 µs)` against
//! each of the others, the median of each run's ratio:
//!
//! | against | runs | median (range) |
//! |---|---|---|
//! | `YieldingWait::default()` | 26 | 1.40 (0.35-2.82) |
//! | `BlockingWait` | 10 | 1.64 (0.32-1.95) |
//! | `PhasedBackoffWait::new(2 µs, 2 µs)` | 10 | 1.53 (0.88-1.91) |
//! | crossbeam's bounded channel | 26 | 1.25 (0.52-3.74) |
//!
//! The VM's speed changes from minute to minute, hence the ranges: in
//! some runs another strategy won, in most the sleeping one did.
//!
//! Those runs predate producers that back off when another wins the race
//! for a claim (see [`MultiProducerSequencer`]), which took every strategy
//! here up by 1.7-7x. On a 2-vCPU Intel Xeon VM since (five quick runs,
//! BENCHMARKS.md, issue 22, twenty-eighth session) the sleeping strategy
//! ran 0.87-0.98x `YieldingWait` (yielding is now a little ahead where
//! nothing else wants the cores), 1.54-2.16x `BlockingWait`, 1.18-1.45x
//! `PhasedBackoffWait` and 1.00-1.70x crossbeam's channel.
//!
//! The price of sleeping is the first event after a quiet spell: it waits
//! out the sleep, about 50 µs plus the kernel's timer slack (about 106 µs
//! in all on that VM). A consumer that finds an event within its 64 spins
//! never sleeps, so a dense stream pays nothing.
//!
//! The strategy also says how producers wait for room in a full ring.
//! They spin, then yield; under [`BusySpinWait`] and [`YieldingWait`]
//! (which never park: every thread has a core) they yield for as long as
//! the ring stays full, and under every other strategy they go on to
//! sleeps of 20 µs once it has been full for thousands of checks, leaving
//! the core to the consumers they wait for.
//!
//! Memory ordering and the wake-up protocols are model-checked with loom
//! (the `gyre-loom-tests` crate runs this crate's own code built with
//! `--cfg loom`; see [`sync`](crate) in the source).

mod affinity;
mod availability;
mod backoff;
mod barrier;
mod breath;
mod builder;
mod claim;
mod disruptor;
mod error;
mod handler;
mod lend;
mod monitor;
mod poller;
mod processor;
mod producer;
mod ring;
mod sequence;
mod stage;
mod sync;
mod wait;
mod worker_pool;

pub use affinity::pin_current_thread;
pub use builder::{DisruptorBuilder, Graph, OwnedGraph, StageId, Stages};
pub use claim::{MultiProducerSequencer, Sequencer, SharedSequencer, SingleProducerSequencer};
pub use disruptor::{Disruptor, ShutdownReport};
pub use error::{BuildError, PublishError, WaitError};
pub use handler::{EventHandler, OwningHandler, OwningWorkHandler, WorkHandler};
pub use monitor::{panic_message, PanicPolicy, StagePanic};
pub use poller::{EventPoller, PollState};
pub use producer::{MultiProducer, Producer, SingleProducer};
pub use ring::{DEFAULT_MAX_BATCH, MAX_CAPACITY};
pub use sequence::{Sequence, INITIAL_SEQUENCE};
pub use stage::{OwnerStageKind, Stage, StageKind};
pub use wait::{
    BlockingWait, BusySpinWait, PhasedBackoffWait, SleepingWait, TimeoutBlockingWait,
    TimeoutNudger, WaitCondition, WaitStrategy, YieldingWait,
};

/// The crate's README example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;
