//! Building a disruptor: the ring's settings ([`DisruptorBuilder`]), then
//! its consumer graph ([`Graph`]): parallel stages, `then`, diamonds, worker
//! pools and pollers.
//!
//! Producers gate on the graph's leaves (the stages nothing depends on), so
//! the slowest path through the graph holds the producers back, never an
//! intermediate stage.

use crate::claim::{MultiProducerSequencer, Sequencer, SingleProducerSequencer};
use crate::disruptor::Disruptor;
use crate::error::BuildError;
use crate::monitor::Monitor;
use crate::poller::EventPoller;
use crate::producer::Producer;
use crate::ring::{Core, DEFAULT_MAX_BATCH};
use crate::sequence::Sequence;
use crate::stage::{Launch, OwnerStageKind, Stage, StageKind, Threads};
use crate::sync::Arc;
use crate::wait::{BlockingWait, WaitStrategy};

/// The ring's settings: capacity, event factory, wait strategy, thread
/// names, the largest batch a consumer takes.
///
/// Made by [`Disruptor::builder`]; finish with
/// [`single_producer`](Self::single_producer) or
/// [`multi_producer`](Self::multi_producer), which allocate the ring and
/// return the [`Graph`] to add consumers to.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, SleepingWait, Stage};
///
/// // 4096 slots of a preallocated event, a wait strategy, thread names.
/// let mut graph = Disruptor::builder(4096, Vec::<u8>::new)
///     .wait_strategy(SleepingWait::default())
///     .thread_name_prefix("orders")
///     .multi_producer()?;
/// graph.handle_events_with(Stage::new(|order: &Vec<u8>, _seq: i64, _end: bool| {
///     assert_eq!(order, b"buy");
/// }));
/// let (mut producer, disruptor) = graph.start()?;
/// producer.publish(|slot| { slot.clear(); slot.extend_from_slice(b"buy"); })?;
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct DisruptorBuilder<E, W = BlockingWait> {
    capacity: usize,
    factory: Box<dyn FnMut() -> E>,
    wait: W,
    thread_prefix: String,
    max_batch: usize,
}

impl<E> Disruptor<E, BlockingWait> {
    /// Start building a disruptor of `capacity` events (a power of two),
    /// each made once, up front, by `factory`. The wait strategy defaults to
    /// [`BlockingWait`], which costs no CPU when idle.
    pub fn builder(
        capacity: usize,
        factory: impl FnMut() -> E + 'static,
    ) -> DisruptorBuilder<E, BlockingWait> {
        DisruptorBuilder {
            capacity,
            factory: Box::new(factory),
            wait: BlockingWait::new(),
            thread_prefix: "gyre".to_string(),
            max_batch: DEFAULT_MAX_BATCH,
        }
    }
}

impl<E: Send + Sync + 'static, W: WaitStrategy> DisruptorBuilder<E, W> {
    /// Use `wait` for every consumer.
    pub fn wait_strategy<W2: WaitStrategy>(self, wait: W2) -> DisruptorBuilder<E, W2> {
        DisruptorBuilder {
            capacity: self.capacity,
            factory: self.factory,
            wait,
            thread_prefix: self.thread_prefix,
            max_batch: self.max_batch,
        }
    }

    /// Name unnamed stage threads `{prefix}-{stage number}` (default `gyre`).
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.thread_prefix = prefix.into();
        self
    }

    /// The most events a stage takes in one batch before it publishes its
    /// progress and looks again (default [`DEFAULT_MAX_BATCH`], 1024; a
    /// bound above the capacity means the capacity).
    ///
    /// A consumer that fell behind a full ring then hands room back to
    /// the producers a batch at a time, not after the whole ring, and a
    /// consumer of several producers scans at most this many publication
    /// marks in one look. A handler that acts on `end_of_batch` (a flush,
    /// a write to a socket) sees it at least this often under load. Pollers
    /// get at most this many events per [`poll`](crate::EventPoller::poll).
    ///
    /// ```
    /// use gyre_ringbuffer::{Disruptor, Stage};
    /// use std::sync::{atomic::{AtomicUsize, Ordering}, Arc};
    ///
    /// // A journal that flushes at the end of each batch: at most 16 events a flush.
    /// let largest = Arc::new(AtomicUsize::new(0));
    /// let seen = largest.clone();
    /// let mut graph = Disruptor::builder(1024, || 0u64).max_batch(16).single_producer()?;
    /// graph.handle_events_with(Stage::with_factory(move || {
    ///     let (seen, mut pending) = (seen.clone(), 0);
    ///     move |_: &u64, _seq: i64, end: bool| {
    ///         pending += 1;
    ///         if end {
    ///             seen.fetch_max(pending, Ordering::Relaxed); // flush here
    ///             pending = 0;
    ///         }
    ///     }
    /// }));
    /// let (mut producer, disruptor) = graph.start()?;
    /// producer.batch_publish(100, |i, slot| *slot = i as u64)?;
    /// drop(producer);
    /// assert_eq!(disruptor.join().processed, 100);
    /// assert!(largest.load(Ordering::Relaxed) <= 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_batch(mut self, events: usize) -> Self {
        self.max_batch = events;
        self
    }

    /// Allocate the ring for exactly one producer thread.
    ///
    /// # Errors
    /// [`BuildError::CapacityNotPowerOfTwo`], [`BuildError::CapacityTooLarge`]
    /// or [`BuildError::ZeroMaxBatch`].
    pub fn single_producer(self) -> Result<Graph<E, W, SingleProducerSequencer>, BuildError> {
        self.graph(false, SingleProducerSequencer::new)
    }

    /// Allocate the ring for any number of producer threads (clone the
    /// producer: a single producer cannot be cloned, see
    /// [`SharedSequencer`](crate::SharedSequencer)).
    ///
    /// # Errors
    /// [`BuildError::CapacityNotPowerOfTwo`], [`BuildError::CapacityTooLarge`]
    /// or [`BuildError::ZeroMaxBatch`].
    #[doc(alias = "clone")]
    pub fn multi_producer(self) -> Result<Graph<E, W, MultiProducerSequencer>, BuildError> {
        self.graph(true, MultiProducerSequencer::new)
    }

    fn graph<C: Sequencer>(
        mut self,
        multi: bool,
        make_claim: fn(Box<[Arc<Sequence>]>) -> C,
    ) -> Result<Graph<E, W, C>, BuildError> {
        if self.max_batch == 0 {
            return Err(BuildError::ZeroMaxBatch);
        }
        let mut core = Core::new(self.capacity, &mut *self.factory, self.wait, multi)?;
        core.max_batch = self.max_batch.min(self.capacity) as i64;
        Ok(Graph {
            core: Arc::new(core),
            nodes: Vec::new(),
            launches: Vec::new(),
            monitor: Arc::new(Monitor::default()),
            thread_prefix: self.thread_prefix,
            make_claim,
            error: None,
        })
    }
}

impl<E, W> std::fmt::Debug for DisruptorBuilder<E, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DisruptorBuilder")
            .field("capacity", &self.capacity)
            .field("thread_prefix", &self.thread_prefix)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

/// Identifies a stage (or poller) of a [`Graph`], to make others depend on it.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(64, || 0u64).single_producer()?;
/// let journal = graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {})).ids();
/// let replicate = graph.handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {})).ids();
/// // `apply` runs after both, named by their ids.
/// let gates: Vec<_> = journal.into_iter().chain(replicate).collect();
/// graph.after(&gates).handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}));
/// let (producer, disruptor) = graph.start()?;
/// drop(producer);
/// disruptor.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StageId(usize);

struct Node {
    outputs: Vec<Arc<Sequence>>,
    has_dependents: bool,
}

type LaunchFn = Box<dyn FnOnce(&mut Threads) -> Result<(), BuildError>>;

/// The consumer graph of a disruptor whose ring is allocated; add stages,
/// then [`start`](Self::start).
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage, YieldingWait};
/// // journal and replicate run in parallel; apply runs after both (a diamond).
/// let mut graph = Disruptor::builder(1024, || 0u64)
///     .wait_strategy(YieldingWait::default())
///     .multi_producer()?;
/// graph
///     .handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}).name("journal"))
///     .and(Stage::new(|_: &u64, _: i64, _: bool| {}).name("replicate"))
///     .then(Stage::new(|_: &u64, _: i64, _: bool| {}).name("apply"));
/// let (producer, disruptor) = graph.start()?;
/// let mut other = producer.clone();
/// std::thread::spawn(move || { other.publish(|e| *e = 1).unwrap(); }).join().unwrap();
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Graph<E, W, C> {
    core: Arc<Core<E, W>>,
    nodes: Vec<Node>,
    launches: Vec<LaunchFn>,
    monitor: Arc<Monitor>,
    thread_prefix: String,
    make_claim: fn(Box<[Arc<Sequence>]>) -> C,
    error: Option<BuildError>,
}

impl<E: Send + Sync + 'static, W: WaitStrategy, C: Sequencer> Graph<E, W, C> {
    /// Add `stage` consuming straight from the producers. Chain
    /// [`and`](Stages::and) for more stages in parallel with it and
    /// [`then`](Stages::then) for stages after them.
    pub fn handle_events_with<K: StageKind<E>>(&mut self, stage: Stage<K>) -> Stages<'_, E, W, C> {
        let id = self.add(&[], stage);
        Stages {
            graph: self,
            dependencies: Vec::new(),
            ids: id.into_iter().collect(),
        }
    }

    /// Start a group of stages that run after all of `stages` (for diamonds
    /// and other shapes `then` cannot express).
    pub fn after(&mut self, stages: &[StageId]) -> Stages<'_, E, W, C> {
        Stages {
            graph: self,
            dependencies: stages.to_vec(),
            ids: Vec::new(),
        }
    }

    /// Add a poller that consumes after `stages` (or straight from the
    /// producers, given none) on whatever thread calls its `poll`.
    ///
    /// # Errors
    /// [`BuildError::UnknownStage`] if a dependency is not of this graph.
    pub fn poller(
        &mut self,
        stages: &[StageId],
    ) -> Result<(StageId, EventPoller<E, W>), BuildError> {
        let dependencies = self.dependencies(stages)?;
        let sequence = Arc::new(Sequence::default());
        let id = self.push_node(stages, vec![sequence.clone()]);
        let barrier = crate::barrier::SequenceBarrier::new(self.core.clone(), dependencies);
        Ok((id, EventPoller::new(barrier, sequence)))
    }

    /// End the graph with the stage that owns the events ([`Stage::owner`],
    /// [`Stage::owner_pool`]): it runs after every stage added so far, and
    /// nothing can be added after it, so while it holds an event no other
    /// stage can reach it, and its handler gets the event mutably (to move
    /// a message out of it rather than clone it). Producers gate on it
    /// alone. With no stage added before, it is the only consumer.
    ///
    /// ```
    /// use gyre_ringbuffer::{Disruptor, Stage};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let journal = Arc::new(Mutex::new(0usize));
    /// let taken = Arc::new(Mutex::new(Vec::new()));
    /// let (j, t) = (journal.clone(), taken.clone());
    /// let mut graph = Disruptor::builder(64, Vec::<u8>::new).single_producer()?;
    /// graph.handle_events_with(Stage::new(move |e: &Vec<u8>, _: i64, _: bool| {
    ///     *j.lock().unwrap() += e.len(); // reads it, shares it
    /// }));
    /// let graph = graph.then_owner(Stage::owner_pool_with_factory(2, move |_worker| {
    ///     let t = t.clone();
    ///     move |e: &mut Vec<u8>, _: i64| t.lock().unwrap().push(std::mem::take(e))
    /// }));
    /// let (mut producer, disruptor) = graph.start()?;
    /// producer.publish(|e| e.extend_from_slice(b"abc"))?;
    /// drop(producer);
    /// disruptor.join();
    /// assert_eq!(*journal.lock().unwrap(), 3);
    /// assert_eq!(taken.lock().unwrap()[0], b"abc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn then_owner<K: OwnerStageKind<E>>(mut self, stage: Stage<K>) -> OwnedGraph<E, W, C> {
        let leaves: Vec<StageId> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].has_dependents)
            .map(StageId)
            .collect();
        // Every stage is upstream of some leaf (follow its dependents until
        // one has none), so after the leaves means after every stage.
        self.add(&leaves, stage);
        OwnedGraph { graph: self }
    }

    /// Start every stage's threads and return the producer and the running
    /// disruptor. Producers gate on the graph's leaves.
    ///
    /// # Errors
    /// The first error of graph construction, [`BuildError::NoConsumers`] for
    /// an empty graph, or [`BuildError::Spawn`] (the threads already
    /// started are halted and joined first).
    // The pair is the natural result of starting; naming it would hide it.
    #[allow(clippy::type_complexity)]
    pub fn start(mut self) -> Result<(Producer<E, W, C>, Disruptor<E, W>), BuildError> {
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if self.nodes.is_empty() {
            return Err(BuildError::NoConsumers);
        }
        let leaves: Vec<Arc<Sequence>> = self
            .nodes
            .iter()
            .filter(|n| !n.has_dependents)
            .flat_map(|n| n.outputs.iter().cloned())
            .collect();
        let mut threads = Threads::new();
        for launch in std::mem::take(&mut self.launches) {
            if let Err(error) = launch(&mut threads) {
                self.core.halt();
                for (_, handle) in threads {
                    let _ = handle.join();
                }
                return Err(error);
            }
        }
        let gating: Box<[Arc<Sequence>]> = leaves.clone().into_boxed_slice();
        let producer = Producer::new(self.core.clone(), (self.make_claim)(gating));
        Ok((
            producer,
            Disruptor::new(self.core.clone(), threads, leaves, self.monitor.clone()),
        ))
    }

    fn dependencies(&self, stages: &[StageId]) -> Result<Vec<Arc<Sequence>>, BuildError> {
        let mut sequences = Vec::new();
        for id in stages {
            let node = self.nodes.get(id.0).ok_or(BuildError::UnknownStage(id.0))?;
            sequences.extend(node.outputs.iter().cloned());
        }
        Ok(sequences)
    }

    fn push_node(&mut self, dependencies: &[StageId], outputs: Vec<Arc<Sequence>>) -> StageId {
        for id in dependencies {
            self.nodes[id.0].has_dependents = true;
        }
        self.nodes.push(Node {
            outputs,
            has_dependents: false,
        });
        StageId(self.nodes.len() - 1)
    }

    /// Add `stage` after `stages`; record (rather than return) errors so the
    /// chaining API stays fluent, and report the first at `start`.
    fn add<K: crate::stage::private::Kind<E>>(
        &mut self,
        stages: &[StageId],
        stage: Stage<K>,
    ) -> Option<StageId> {
        let result = (|| {
            let dependencies = self.dependencies(stages)?;
            let width = stage.kind.width();
            if width == 0 {
                return Err(BuildError::EmptyWorkerPool);
            }
            let outputs: Vec<Arc<Sequence>> =
                (0..width).map(|_| Arc::new(Sequence::default())).collect();
            let name = stage
                .name
                .clone()
                .unwrap_or_else(|| format!("{}-{}", self.thread_prefix, self.nodes.len()));
            let launch = Launch {
                core: self.core.clone(),
                dependencies,
                outputs: outputs.clone(),
                name,
                cpu: stage.core,
                policy: stage.policy,
                monitor: self.monitor.clone(),
            };
            let kind = stage.kind;
            self.launches.push(Box::new(move |threads: &mut Threads| {
                kind.launch(launch, threads)
            }));
            Ok(self.push_node(stages, outputs))
        })();
        match result {
            Ok(id) => Some(id),
            Err(error) => {
                self.error.get_or_insert(error);
                None
            }
        }
    }
}

impl<E, W, C> std::fmt::Debug for Graph<E, W, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("stages", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

/// A graph that ends with its owner stage ([`Graph::then_owner`]): nothing
/// more can be added, only started.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(64, String::new).single_producer()?;
/// graph.handle_events_with(Stage::new(|_line: &String, _: i64, _: bool| { /* journal */ }));
/// // The owner runs last and may move out of the slot.
/// let owned = graph.then_owner(Stage::owner(|line: &mut String, _: i64, _: bool| {
///     let _taken = std::mem::take(line);
/// }));
/// let (mut producer, disruptor) = owned.start()?;
/// producer.publish(|slot| slot.push_str("hi"))?;
/// drop(producer);
/// assert_eq!(disruptor.join().processed, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OwnedGraph<E, W, C> {
    graph: Graph<E, W, C>,
}

impl<E: Send + Sync + 'static, W: WaitStrategy, C: Sequencer> OwnedGraph<E, W, C> {
    /// As [`Graph::start`].
    ///
    /// # Errors
    /// As [`Graph::start`].
    #[allow(clippy::type_complexity)]
    pub fn start(self) -> Result<(Producer<E, W, C>, Disruptor<E, W>), BuildError> {
        self.graph.start()
    }
}

impl<E, W, C> std::fmt::Debug for OwnedGraph<E, W, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedGraph")
            .field("stages", &self.graph.nodes.len())
            .finish_non_exhaustive()
    }
}

/// A group of stages just added to a [`Graph`], to chain more onto.
///
/// ```
/// use gyre_ringbuffer::{Disruptor, Stage};
///
/// let mut graph = Disruptor::builder(64, || 0u64).single_producer()?;
/// // a and b in parallel, then c after both.
/// graph
///     .handle_events_with(Stage::new(|_: &u64, _: i64, _: bool| {}).name("a"))
///     .and(Stage::new(|_: &u64, _: i64, _: bool| {}).name("b"))
///     .then(Stage::new(|_: &u64, _: i64, _: bool| {}).name("c"));
/// let (producer, disruptor) = graph.start()?;
/// drop(producer);
/// disruptor.join();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Stages<'g, E, W, C> {
    graph: &'g mut Graph<E, W, C>,
    /// What the stages of this group depend on.
    dependencies: Vec<StageId>,
    /// The stages of this group.
    ids: Vec<StageId>,
}

impl<'g, E: Send + Sync + 'static, W: WaitStrategy, C: Sequencer> Stages<'g, E, W, C> {
    /// Add `stage` in parallel with this group (same dependencies).
    pub fn and<K: StageKind<E>>(mut self, stage: Stage<K>) -> Self {
        let id = self.graph.add(&self.dependencies, stage);
        self.ids.extend(id);
        self
    }

    /// Add `stage` to this group; the same as [`and`](Self::and), to read
    /// well after [`Graph::after`].
    pub fn handle_events_with<K: StageKind<E>>(self, stage: Stage<K>) -> Self {
        self.and(stage)
    }

    /// Add `stage` after every stage of this group; it becomes the group.
    pub fn then<K: StageKind<E>>(self, stage: Stage<K>) -> Self {
        let dependencies = self.ids;
        let id = self.graph.add(&dependencies, stage);
        Stages {
            graph: self.graph,
            dependencies,
            ids: id.into_iter().collect(),
        }
    }

    /// Add a poller after every stage of this group.
    ///
    /// # Errors
    /// As [`Graph::poller`].
    pub fn then_poller(self) -> Result<(StageId, EventPoller<E, W>), BuildError> {
        self.graph.poller(&self.ids)
    }

    /// The stages of this group, to depend on later with [`Graph::after`].
    pub fn ids(&self) -> Vec<StageId> {
        self.ids.clone()
    }
}

impl<E, W, C> std::fmt::Debug for Stages<'_, E, W, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stages")
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}
