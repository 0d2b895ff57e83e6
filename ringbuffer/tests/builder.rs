//! Building graphs: bad capacities, bad dependencies and empty graphs are
//! errors, not panics.

use gyre_ringbuffer::{BuildError, Disruptor, Stage};

fn noop() -> Stage<impl gyre_ringbuffer::StageKind<u64>> {
    Stage::new(|_: &u64, _: i64, _: bool| {})
}

#[test]
fn capacity_must_be_a_power_of_two() {
    for bad in [0usize, 3, 1000, 65535] {
        let err = Disruptor::builder(bad, || 0u64)
            .single_producer()
            .unwrap_err();
        assert_eq!(err, BuildError::CapacityNotPowerOfTwo(bad));
        assert!(err.to_string().contains("power of two"));
    }
    let err = Disruptor::builder(1 << 31, || 0u8)
        .multi_producer()
        .unwrap_err();
    assert_eq!(err, BuildError::CapacityTooLarge(1 << 31));
    assert!(Disruptor::builder(1, || 0u64).single_producer().is_ok());
}

#[test]
fn events_are_made_once_up_front() {
    let mut made = 0;
    let counter = std::rc::Rc::new(std::cell::Cell::new(0));
    let c = counter.clone();
    let graph = Disruptor::builder(64, move || {
        c.set(c.get() + 1);
        0u64
    })
    .single_producer()
    .unwrap();
    made += counter.get();
    assert_eq!(made, 64);
    drop(graph);
}

#[test]
fn an_empty_graph_cannot_start() {
    let graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    assert_eq!(graph.start().err(), Some(BuildError::NoConsumers));
}

#[test]
fn unknown_dependency_is_reported_at_start() {
    let mut other = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    let a = other.handle_events_with(noop()).and(noop()).ids();
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    graph.handle_events_with(noop());
    graph.after(&a).handle_events_with(noop());
    assert_eq!(graph.start().err(), Some(BuildError::UnknownStage(1)));
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    assert_eq!(graph.poller(&a).err(), Some(BuildError::UnknownStage(0)));
}

#[test]
fn an_empty_worker_pool_is_an_error() {
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    graph.handle_events_with(Stage::worker_pool(Vec::<fn(&u64, i64)>::new()));
    assert_eq!(graph.start().err(), Some(BuildError::EmptyWorkerPool));
}

#[test]
fn stage_threads_carry_their_names() {
    let names = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (n1, n2) = (names.clone(), names.clone());
    let mut graph = Disruptor::builder(8, || 0u64)
        .thread_name_prefix("unit")
        .single_producer()
        .unwrap();
    graph
        .handle_events_with(Stage::with_factory(move || {
            n1.lock()
                .unwrap()
                .push(std::thread::current().name().unwrap().to_string());
            |_: &u64, _: i64, _: bool| {}
        }))
        .then(
            Stage::worker_pool_with_factory(2, move |_| {
                n2.lock()
                    .unwrap()
                    .push(std::thread::current().name().unwrap().to_string());
                |_: &u64, _: i64| {}
            })
            .name("pool"),
        );
    let (producer, disruptor) = graph.start().unwrap();
    drop(producer);
    disruptor.join();
    let mut names = names.lock().unwrap().clone();
    names.sort();
    assert_eq!(names, ["pool-0", "pool-1", "unit-0"]);
}

#[test]
fn pinning_to_a_core_still_runs_the_stage() {
    let tally = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let t = tally.clone();
    let mut graph = Disruptor::builder(8, || 0u64).single_producer().unwrap();
    graph.handle_events_with(
        Stage::new(move |e: &u64, _: i64, _: bool| {
            t.fetch_add(*e, std::sync::atomic::Ordering::Relaxed);
        })
        .pin_to_core(0),
    );
    // A CPU that does not exist is refused by the OS, logged, and ignored.
    graph
        .after(&[])
        .handle_events_with(noop().pin_to_core(4096));
    let (mut producer, disruptor) = graph.start().unwrap();
    for i in 0..100 {
        producer.publish(|e| *e = i).unwrap();
    }
    drop(producer);
    assert_eq!(disruptor.join().processed, 100);
    assert_eq!(tally.load(std::sync::atomic::Ordering::Relaxed), 4950);
}

#[test]
fn handles_cross_threads() {
    fn send<T: Send>() {}
    fn clone_send<T: Clone + Send>() {}
    clone_send::<gyre_ringbuffer::MultiProducer<u64>>();
    clone_send::<gyre_ringbuffer::MultiProducer<u64, gyre_ringbuffer::BusySpinWait>>();
    send::<gyre_ringbuffer::SingleProducer<u64>>();
    send::<gyre_ringbuffer::EventPoller<u64>>();
    send::<Disruptor<u64>>();
    send::<gyre_ringbuffer::ShutdownReport>();
}

#[test]
fn a_zero_max_batch_is_an_error() {
    let err = Disruptor::builder(64, || 0u64)
        .max_batch(0)
        .multi_producer()
        .unwrap_err();
    assert_eq!(err, BuildError::ZeroMaxBatch);
    assert!(err.to_string().contains("max_batch"), "{err}");
    // A bound above the capacity is the capacity.
    assert!(Disruptor::builder(64, || 0u64)
        .max_batch(1 << 20)
        .single_producer()
        .is_ok());
}
