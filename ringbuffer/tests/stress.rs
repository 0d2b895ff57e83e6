//! Multi-threaded stress: every event is checked (count, checksum and
//! per-producer order) across the protocols: 3 producers into 1 consumer, a
//! 3-stage pipeline, a diamond, a worker pool (each event exactly once), and
//! an owner pool that moves each payload out after a journal stage read it.
//!
//! Tens of millions of events in a release build (`scripts/test` runs this
//! file with `--release`); a twentieth of that in a debug build. Override with
//! `GYRE_STRESS_EVENTS=<events per producer>`.

use gyre_ringbuffer::{Disruptor, MultiProducer, Stage, WaitStrategy, YieldingWait};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

fn events() -> u64 {
    std::env::var("GYRE_STRESS_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) {
            500_000
        } else {
            10_000_000
        })
}

#[derive(Default, Clone, Copy)]
struct Event {
    producer: u64,
    index: u64,
    value: u64,
}

fn value_of(producer: u64, index: u64) -> u64 {
    (producer << 40) ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn expected_checksum(producers: u64, n: u64) -> u64 {
    (0..producers)
        .flat_map(|p| (0..n).map(move |i| value_of(p, i)))
        .fold(0, u64::wrapping_add)
}

/// Start `count` producer threads, producer `p` publishing its events
/// `0..n` in order, each a clone of `producer`.
fn spawn_producers<W: WaitStrategy>(
    producer: &MultiProducer<Event, W>,
    count: u64,
    n: u64,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..count)
        .map(|p| {
            let mut producer = producer.clone();
            std::thread::spawn(move || {
                for index in 0..n {
                    producer
                        .publish(|e| {
                            *e = Event {
                                producer: p,
                                index,
                                value: value_of(p, index),
                            }
                        })
                        .unwrap();
                }
            })
        })
        .collect()
}

/// A small ring so producers lap it millions of times.
const CAPACITY: usize = 1024;

fn wait() -> impl WaitStrategy {
    YieldingWait::default()
}

#[test]
fn three_producers_one_consumer() {
    let n = events();
    let checksum = Arc::new(AtomicU64::new(0));
    let count = Arc::new(AtomicU64::new(0));
    let (c, k) = (checksum.clone(), count.clone());
    let mut graph = Disruptor::builder(CAPACITY, Event::default)
        .wait_strategy(wait())
        .multi_producer()
        .unwrap();
    graph.handle_events_with(Stage::with_factory(move || {
        let mut next = [0u64; 3];
        let mut sum = 0u64;
        let mut seen = 0u64;
        let mut last_seq = -1i64;
        move |e: &Event, seq: i64, end: bool| {
            assert_eq!(seq, last_seq + 1, "sequences are contiguous");
            last_seq = seq;
            let p = e.producer as usize;
            assert_eq!(e.index, next[p], "producer {p} out of order");
            next[p] += 1;
            assert_eq!(
                e.value,
                value_of(e.producer, e.index),
                "torn or stale event"
            );
            sum = sum.wrapping_add(e.value);
            seen += 1;
            if end {
                c.store(sum, Relaxed);
                k.store(seen, Relaxed);
            }
        }
    }));
    let (producer, disruptor) = graph.start().unwrap();
    let threads = spawn_producers(&producer, 3, n);
    drop(producer);
    for t in threads {
        t.join().unwrap();
    }
    let report = disruptor.join();
    assert_eq!(report.processed, 3 * n);
    assert_eq!(count.load(Relaxed), 3 * n);
    assert_eq!(checksum.load(Relaxed), expected_checksum(3, n));
}

#[test]
fn one_producer_three_stage_pipeline() {
    let n = 2 * events();
    let checksum = Arc::new(AtomicU64::new(0));
    let progress: Arc<[AtomicI64; 3]> =
        Arc::new([AtomicI64::new(-1), AtomicI64::new(-1), AtomicI64::new(-1)]);
    let stage = |k: usize, progress: Arc<[AtomicI64; 3]>, checksum: Option<Arc<AtomicU64>>| {
        Stage::with_factory(move || {
            let mut sum = 0u64;
            move |e: &Event, seq: i64, end: bool| {
                assert_eq!(e.index as i64, seq);
                assert_eq!(e.value, value_of(0, e.index));
                if k > 0 {
                    assert!(
                        progress[k - 1].load(Relaxed) >= seq,
                        "stage {k} overtook stage {}",
                        k - 1
                    );
                }
                progress[k].store(seq, Relaxed);
                sum = sum.wrapping_add(e.value);
                if end {
                    if let Some(c) = &checksum {
                        c.store(sum, Relaxed);
                    }
                }
            }
        })
    };
    let mut graph = Disruptor::builder(CAPACITY, Event::default)
        .wait_strategy(wait())
        .single_producer()
        .unwrap();
    graph
        .handle_events_with(stage(0, progress.clone(), None))
        .then(stage(1, progress.clone(), None))
        .then(stage(2, progress.clone(), Some(checksum.clone())));
    let (mut producer, disruptor) = graph.start().unwrap();
    let mut index = 0;
    while index < n {
        // Mix single and batch publishes.
        if index % 3 == 0 && index + 16 <= n {
            producer
                .batch_publish(16, |i, e| {
                    let index = index + i as u64;
                    *e = Event {
                        producer: 0,
                        index,
                        value: value_of(0, index),
                    };
                })
                .unwrap();
            index += 16;
        } else {
            producer
                .publish(|e| {
                    *e = Event {
                        producer: 0,
                        index,
                        value: value_of(0, index),
                    }
                })
                .unwrap();
            index += 1;
        }
    }
    drop(producer);
    assert_eq!(disruptor.join().processed, n);
    assert_eq!(progress[2].load(Relaxed), n as i64 - 1);
    assert_eq!(checksum.load(Relaxed), expected_checksum(1, n));
}

#[test]
fn diamond() {
    let n = events();
    let a = Arc::new(AtomicI64::new(-1));
    let b = Arc::new(AtomicI64::new(-1));
    let checksum = Arc::new(AtomicU64::new(0));
    let side = |mine: Arc<AtomicI64>| {
        Stage::new(move |e: &Event, seq: i64, _: bool| {
            assert_eq!(e.value, value_of(0, e.index));
            mine.store(seq, Relaxed);
        })
    };
    let (ra, rb, c) = (a.clone(), b.clone(), checksum.clone());
    let join = Stage::with_factory(move || {
        let mut sum = 0u64;
        let mut last = -1;
        move |e: &Event, seq: i64, end: bool| {
            assert_eq!(seq, last + 1);
            last = seq;
            assert!(
                ra.load(Relaxed) >= seq && rb.load(Relaxed) >= seq,
                "join ran ahead of a branch"
            );
            sum = sum.wrapping_add(e.value);
            if end {
                c.store(sum, Relaxed);
            }
        }
    });
    let mut graph = Disruptor::builder(CAPACITY, Event::default)
        .wait_strategy(wait())
        .single_producer()
        .unwrap();
    let branches = graph.handle_events_with(side(a)).and(side(b)).ids();
    graph.after(&branches).handle_events_with(join);
    let (mut producer, disruptor) = graph.start().unwrap();
    for index in 0..n {
        producer
            .publish(|e| {
                *e = Event {
                    producer: 0,
                    index,
                    value: value_of(0, index),
                }
            })
            .unwrap();
    }
    drop(producer);
    assert_eq!(disruptor.join().processed, n);
    assert_eq!(checksum.load(Relaxed), expected_checksum(1, n));
}

#[test]
fn worker_pool_handles_each_event_exactly_once() {
    let n = events();
    let producers = 2u64;
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..producers * n).map(|_| AtomicU8::new(0)).collect());
    let checksum = Arc::new(AtomicU64::new(0));
    let (s, c) = (seen.clone(), checksum.clone());
    let mut graph = Disruptor::builder(CAPACITY, Event::default)
        .wait_strategy(wait())
        .multi_producer()
        .unwrap();
    graph.handle_events_with(Stage::worker_pool_with_factory(3, move |_| {
        let (s, c) = (s.clone(), c.clone());
        move |e: &Event, _: i64| {
            assert_eq!(e.value, value_of(e.producer, e.index));
            let slot = (e.producer * n + e.index) as usize;
            assert_eq!(s[slot].fetch_add(1, Relaxed), 0, "event handled twice");
            c.fetch_add(e.value, Relaxed);
        }
    }));
    let (producer, disruptor) = graph.start().unwrap();
    let threads = spawn_producers(&producer, producers, n);
    drop(producer);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(disruptor.join().processed, producers * n);
    assert!(
        seen.iter().all(|s| s.load(Relaxed) == 1),
        "an event was never handled"
    );
    assert_eq!(checksum.load(Relaxed), expected_checksum(producers, n));
}

/// An event whose payload the owner stage moves out.
#[derive(Default)]
struct Owned {
    producer: u64,
    index: u64,
    payload: Option<u64>,
}

#[test]
fn owner_pool_takes_every_payload_after_the_journal_read_it() {
    let n = events();
    let producers = 2u64;
    let seen: Arc<Vec<AtomicU8>> = Arc::new((0..producers * n).map(|_| AtomicU8::new(0)).collect());
    let journal_sum = Arc::new(AtomicU64::new(0));
    let taken_sum = Arc::new(AtomicU64::new(0));
    let (j, s, t) = (journal_sum.clone(), seen.clone(), taken_sum.clone());
    let mut graph = Disruptor::builder(CAPACITY, Owned::default)
        .wait_strategy(wait())
        .multi_producer()
        .unwrap();
    // The journal shares each event; the owner pool runs after it and
    // takes the payload, which the journal must always still have seen.
    graph.handle_events_with(Stage::new(move |e: &Owned, _: i64, _: bool| {
        let v = e
            .payload
            .expect("the owner took a payload before the journal read it");
        assert_eq!(v, value_of(e.producer, e.index));
        j.fetch_add(v, Relaxed);
    }));
    let graph = graph.then_owner(Stage::owner_pool_with_factory(3, move |_| {
        let (s, t) = (s.clone(), t.clone());
        move |e: &mut Owned, _: i64| {
            let v = e.payload.take().expect("a payload taken twice");
            assert_eq!(v, value_of(e.producer, e.index));
            let slot = (e.producer * n + e.index) as usize;
            assert_eq!(s[slot].fetch_add(1, Relaxed), 0, "event owned twice");
            t.fetch_add(v, Relaxed);
        }
    }));
    let (producer, disruptor) = graph.start().unwrap();
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let mut producer = producer.clone();
            std::thread::spawn(move || {
                for i in 0..n {
                    producer
                        .publish(|e| {
                            e.producer = p;
                            e.index = i;
                            e.payload = Some(value_of(p, i));
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    drop(producer);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(disruptor.join().processed, producers * n);
    assert!(
        seen.iter().all(|s| s.load(Relaxed) == 1),
        "an event was never owned"
    );
    assert_eq!(journal_sum.load(Relaxed), expected_checksum(producers, n));
    assert_eq!(taken_sum.load(Relaxed), expected_checksum(producers, n));
}
