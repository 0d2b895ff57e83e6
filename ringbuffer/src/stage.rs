//! [`Stage`]: one consumer of the graph (an event handler on its own
//! thread, or a worker pool) with its thread name, core pinning and panic
//! policy.
//!
//! The handler's type stays concrete all the way into the processor loop,
//! so the per-event call is static and inlinable; the only type erasure is
//! the one boxed closure per stage that starts its threads.

use crate::affinity;
use crate::barrier::SequenceBarrier;
use crate::error::BuildError;
use crate::handler::{EventHandler, OwningHandler, OwningWorkHandler, WorkHandler};
use crate::lend::{BatchLend, Owned, Shared, WorkLend};
use crate::monitor::{Monitor, PanicPolicy};
use crate::processor::BatchEventProcessor;
use crate::ring::Core;
use crate::sequence::Sequence;
use crate::sync::{self, Arc, JoinHandle};
use crate::wait::WaitStrategy;
use crate::worker_pool::WorkProcessor;

/// A consumer to add to a disruptor graph, with its settings.
///
/// ```
/// use gyre_ringbuffer::{PanicPolicy, Stage};
/// let stage = Stage::new(|e: &u64, _seq: i64, _end: bool| assert!(*e < 100))
///     .name("checker")
///     .on_panic(PanicPolicy::LogAndContinue);
/// # let _ = stage;
/// ```
#[must_use = "a stage does nothing until it is added to a graph"]
pub struct Stage<K> {
    pub(crate) kind: K,
    pub(crate) name: Option<String>,
    pub(crate) core: Option<usize>,
    pub(crate) policy: PanicPolicy,
}

impl Stage<()> {
    fn of<K>(kind: K) -> Stage<K> {
        Stage {
            kind,
            name: None,
            core: None,
            policy: PanicPolicy::default(),
        }
    }

    /// A stage that runs `handler` on its own thread.
    pub fn new<E, H>(handler: H) -> Stage<impl StageKind<E>>
    where
        E: Send + Sync + 'static,
        H: EventHandler<E> + Send + 'static,
    {
        Stage::with_factory(move || handler)
    }

    /// A stage whose handler is built by `factory` on the stage's own
    /// thread, so the handler itself need not be `Send` (it may hold `Rc`s,
    /// thread-locals, a non-`Send` connection).
    pub fn with_factory<E, H, F>(factory: F) -> Stage<impl StageKind<E>>
    where
        E: Send + Sync + 'static,
        H: EventHandler<E> + 'static,
        F: FnOnce() -> H + Send + 'static,
    {
        Stage::of(HandlerKind {
            factory: move || Shared(factory()),
            _event: std::marker::PhantomData,
        })
    }

    /// A worker pool: one thread per handler, and each event goes to exactly
    /// one of them (the Disruptor's `WorkerPool`).
    pub fn worker_pool<E, H>(workers: Vec<H>) -> Stage<impl StageKind<E>>
    where
        E: Send + Sync + 'static,
        H: WorkHandler<E> + Send + 'static,
    {
        Stage::of(PoolKind {
            factories: workers
                .into_iter()
                .map(|w| move || Shared(w))
                .collect::<Vec<_>>(),
            _event: std::marker::PhantomData,
        })
    }

    /// A worker pool of `n` workers, worker `i` built by `factory(i)` on its own thread.
    pub fn worker_pool_with_factory<E, H, F>(n: usize, factory: F) -> Stage<impl StageKind<E>>
    where
        E: Send + Sync + 'static,
        H: WorkHandler<E> + 'static,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        Stage::of(pool_kind(n, factory, Shared))
    }

    /// The stage that owns the events: it runs `handler`, which gets each
    /// event mutably and may move out of it. Add it with
    /// [`Graph::then_owner`](crate::Graph::then_owner), which puts it after
    /// every other stage and ends the graph; no other way of adding a stage
    /// accepts it.
    pub fn owner<E, H>(handler: H) -> Stage<impl OwnerStageKind<E>>
    where
        E: Send + Sync + 'static,
        H: OwningHandler<E> + Send + 'static,
    {
        Stage::owner_with_factory(move || handler)
    }

    /// As [`owner`](Self::owner), with the handler built by `factory` on
    /// the stage's own thread.
    pub fn owner_with_factory<E, H, F>(factory: F) -> Stage<impl OwnerStageKind<E>>
    where
        E: Send + Sync + 'static,
        H: OwningHandler<E> + 'static,
        F: FnOnce() -> H + Send + 'static,
    {
        Stage::of(HandlerKind {
            factory: move || Owned(factory()),
            _event: std::marker::PhantomData,
        })
    }

    /// A worker pool that owns the events: each event goes to one worker,
    /// which gets it mutably. Add it with
    /// [`Graph::then_owner`](crate::Graph::then_owner).
    pub fn owner_pool<E, H>(workers: Vec<H>) -> Stage<impl OwnerStageKind<E>>
    where
        E: Send + Sync + 'static,
        H: OwningWorkHandler<E> + Send + 'static,
    {
        Stage::of(PoolKind {
            factories: workers
                .into_iter()
                .map(|w| move || Owned(w))
                .collect::<Vec<_>>(),
            _event: std::marker::PhantomData,
        })
    }

    /// An owner pool of `n` workers, worker `i` built by `factory(i)` on
    /// its own thread.
    pub fn owner_pool_with_factory<E, H, F>(n: usize, factory: F) -> Stage<impl OwnerStageKind<E>>
    where
        E: Send + Sync + 'static,
        H: OwningWorkHandler<E> + 'static,
        F: Fn(usize) -> H + Send + Sync + 'static,
    {
        Stage::of(pool_kind(n, factory, Owned))
    }
}

impl<K> Stage<K> {
    /// The stage's thread name (a worker pool appends `-0`, `-1`, …).
    /// Defaults to the builder's prefix and the stage's number.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Pin the stage's thread (every thread, for a pool) to CPU `core`.
    /// Pinning that the OS refuses is logged, not fatal.
    pub fn pin_to_core(mut self, core: usize) -> Self {
        self.core = Some(core);
        self
    }

    /// What to do when the handler panics (default [`PanicPolicy::Halt`]).
    pub fn on_panic(mut self, policy: PanicPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl<K> std::fmt::Debug for Stage<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .field("core", &self.core)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Everything a stage needs to start its threads.
pub struct Launch<E, W> {
    pub(crate) core: Arc<Core<E, W>>,
    pub(crate) dependencies: Vec<Arc<Sequence>>,
    pub(crate) outputs: Vec<Arc<Sequence>>,
    pub(crate) name: String,
    pub(crate) cpu: Option<usize>,
    pub(crate) policy: PanicPolicy,
    pub(crate) monitor: Arc<Monitor>,
}

pub type Threads = Vec<(String, JoinHandle<()>)>;

pub(crate) mod private {
    use super::*;

    /// What kind of consumer a stage is; sealed.
    pub trait Kind<E>: Send + 'static {
        /// How many gating sequences (threads) the stage has.
        fn width(&self) -> usize;
        /// Start the stage's threads.
        fn launch<W: WaitStrategy>(
            self,
            launch: Launch<E, W>,
            threads: &mut Threads,
        ) -> Result<(), BuildError>
        where
            E: Send + Sync + 'static;
    }
}

/// The kinds of stage that share events ([`Stage::new`],
/// [`Stage::worker_pool`], ...), added anywhere in a graph; made by
/// [`Stage`]'s constructors, not implementable outside. Name it to take any
/// such stage:
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Graph, Sequencer, Stage, StageKind, WaitStrategy};
///
/// /// Every graph of this service journals first, then runs `business`
/// /// (a single stage or a worker pool) after the journal.
/// fn journal_then<W: WaitStrategy, C: Sequencer>(
///     graph: &mut Graph<u64, W, C>,
///     business: Stage<impl StageKind<u64>>,
/// ) {
///     graph
///         .handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| { /* append to a journal */ }))
///         .then(business);
/// }
///
/// let mut graph = Disruptor::builder(64, || 0u64).single_producer()?;
/// journal_then(&mut graph, Stage::new(|_: &u64, _: i64, _: bool| {}));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.publish(|slot| *slot = 1)?;
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait StageKind<E>: private::Kind<E> {}

/// The kinds of stage that own events ([`Stage::owner`],
/// [`Stage::owner_pool`], ...), added only by
/// [`Graph::then_owner`](crate::Graph::then_owner); not implementable
/// outside. Name it to take any such stage:
///
/// ```
/// use gyre_ringbuffer::{
///     BlockingWait, BuildError, Disruptor, OwnedGraph, OwnerStageKind, SingleProducerSequencer, Stage,
/// };
///
/// type Orders = OwnedGraph<Option<String>, BlockingWait, SingleProducerSequencer>;
///
/// /// A graph whose last stage takes each order out of its slot.
/// fn orders(owner: Stage<impl OwnerStageKind<Option<String>>>) -> Result<Orders, BuildError> {
///     let mut graph = Disruptor::builder(64, || None::<String>).single_producer()?;
///     graph.handle_events_with(Stage::new(|_: &Option<String>, _: i64, _: bool| { /* validate */ }));
///     Ok(graph.then_owner(owner))
/// }
///
/// let graph = orders(Stage::owner(|order: &mut Option<String>, _: i64, _: bool| {
///     let taken = order.take();
///     assert!(taken.is_some());
/// }))?;
/// let (mut producer, disruptor) = graph.start()?;
/// producer.publish(|slot| *slot = Some("buy 10".to_owned()))?;
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait OwnerStageKind<E>: private::Kind<E> {}

impl<E: 'static, F, H> StageKind<E> for HandlerKind<F, E>
where
    H: EventHandler<E> + 'static,
    F: FnOnce() -> Shared<H> + Send + 'static,
{
}
impl<E: 'static, F, H> OwnerStageKind<E> for HandlerKind<F, E>
where
    H: OwningHandler<E> + 'static,
    F: FnOnce() -> Owned<H> + Send + 'static,
{
}
impl<E: 'static, F, H> StageKind<E> for PoolKind<F, E>
where
    H: WorkHandler<E> + 'static,
    F: FnOnce() -> Shared<H> + Send + 'static,
{
}
impl<E: 'static, F, H> OwnerStageKind<E> for PoolKind<F, E>
where
    H: OwningWorkHandler<E> + 'static,
    F: FnOnce() -> Owned<H> + Send + 'static,
{
}

struct HandlerKind<F, E> {
    factory: F,
    _event: std::marker::PhantomData<fn(&E)>,
}

impl<E, L, F> private::Kind<E> for HandlerKind<F, E>
where
    E: 'static,
    L: BatchLend<E> + 'static,
    F: FnOnce() -> L + Send + 'static,
{
    fn width(&self) -> usize {
        1
    }

    fn launch<W: WaitStrategy>(
        self,
        launch: Launch<E, W>,
        threads: &mut Threads,
    ) -> Result<(), BuildError>
    where
        E: Send + Sync + 'static,
    {
        let processor = BatchEventProcessor {
            barrier: SequenceBarrier::new(launch.core.clone(), launch.dependencies),
            sequence: launch.outputs[0].clone(),
            stage: launch.name.clone(),
            policy: launch.policy,
            monitor: launch.monitor.clone(),
        };
        let factory = self.factory;
        let cpu = launch.cpu;
        spawn(
            threads,
            launch.name,
            launch.core,
            launch.monitor,
            move || {
                affinity::pin(cpu);
                let mut handler = factory();
                processor.run(&mut handler);
            },
        )
    }
}

/// A pool of `n` workers, worker `i` built by `factory(i)` on its own
/// thread and lent events as `lend` wraps it (shared or owned).
fn pool_kind<E, H, L, F>(
    n: usize,
    factory: F,
    lend: fn(H) -> L,
) -> PoolKind<impl FnOnce() -> L + Send + 'static, E>
where
    H: 'static,
    L: 'static,
    F: Fn(usize) -> H + Send + Sync + 'static,
{
    let factory = std::sync::Arc::new(factory);
    PoolKind {
        factories: (0..n)
            .map(|i| {
                let factory = factory.clone();
                move || lend(factory(i))
            })
            .collect::<Vec<_>>(),
        _event: std::marker::PhantomData,
    }
}

struct PoolKind<F, E> {
    factories: Vec<F>,
    _event: std::marker::PhantomData<fn(&E)>,
}

impl<E, L, F> private::Kind<E> for PoolKind<F, E>
where
    E: 'static,
    L: WorkLend<E> + 'static,
    F: FnOnce() -> L + Send + 'static,
{
    fn width(&self) -> usize {
        self.factories.len()
    }

    fn launch<W: WaitStrategy>(
        self,
        launch: Launch<E, W>,
        threads: &mut Threads,
    ) -> Result<(), BuildError>
    where
        E: Send + Sync + 'static,
    {
        let work_sequence = Arc::new(Sequence::default());
        for (i, (factory, sequence)) in self.factories.into_iter().zip(launch.outputs).enumerate() {
            let name = format!("{}-{i}", launch.name);
            let processor = WorkProcessor {
                barrier: SequenceBarrier::new(launch.core.clone(), launch.dependencies.clone()),
                sequence,
                work_sequence: work_sequence.clone(),
                stage: name.clone(),
                policy: launch.policy,
                monitor: launch.monitor.clone(),
            };
            let cpu = launch.cpu;
            spawn(
                threads,
                name,
                launch.core.clone(),
                launch.monitor.clone(),
                move || {
                    affinity::pin(cpu);
                    let mut handler = factory();
                    processor.run(&mut handler);
                },
            )?;
        }
        Ok(())
    }
}

/// Start `body` on a thread named `name`. A panic that escapes it (from a
/// factory or a lifecycle callback; event panics are caught closer in) is
/// recorded and halts the disruptor, so it can never stall the producers.
fn spawn<E, W: WaitStrategy>(
    threads: &mut Threads,
    name: String,
    core: Arc<Core<E, W>>,
    monitor: Arc<Monitor>,
    body: impl FnOnce() + Send + 'static,
) -> Result<(), BuildError>
where
    E: Send + Sync + 'static,
{
    let stage = name.clone();
    let guarded = move || {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            monitor.record_panic(
                &stage,
                core.cursor.get(),
                payload.as_ref(),
                PanicPolicy::Halt,
            );
            core.halt();
        }
    };
    match sync::spawn(name.clone(), guarded) {
        Ok(handle) => {
            threads.push((name, handle));
            Ok(())
        }
        Err(e) => Err(BuildError::Spawn {
            name,
            message: e.to_string(),
        }),
    }
}
