//! The ring's floors: the least a ring of Gyre's protocol does per event
//! on this machine, as a ruler for Gyre and its peers (not a product, and
//! not a peer to beat). [`one_to_one`] for one producer, [`three_to_one`]
//! for three (in Gyre's layout and in crossbeam's, see [`LapMark`]).
//!
//! One producer: one array of `u64`, one cursor the producer moves with a release store
//! after each batch, one sequence the consumer moves after each batch it
//! reads; both padded to their own lines. No wait strategy beyond a spin
//! hint, no stage, no handler call, no shutdown protocol but "the consumer
//! knows `n`". Whatever rate it reaches is what the event data and the two
//! counters crossing the cores cost here. Its consumer takes the whole
//! backlog as one batch, as Gyre's did before `max_batch`; a ring that
//! hands room back a batch at a time can pass it (BENCHMARKS.md, ninth
//! session).
//!
//! Its consumer looks at the cursor again at once when it has caught up,
//! as the `disruptor` crate and Java's Disruptor do. A variant that paused
//! first, as Gyre's consumer does (`first_look` in the ring's barrier), ran
//! at the same rate (BENCHMARKS.md, ninth session), so the floor keeps the
//! plainer loop.

use super::check;
use crossbeam_utils::CachePadded;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A counter alone on its cache lines.
type Padded = CachePadded<AtomicI64>;

struct Shared {
    slots: Box<[UnsafeCell<u64>]>,
    mask: usize,
    /// The last sequence the producer has published.
    cursor: Padded,
    /// The last sequence the consumer has read.
    consumed: Padded,
}

// SAFETY: a slot is written only by the producer, and only after `consumed`
// (acquire) shows the consumer is past it, and read only by the consumer,
// and only after `cursor` (acquire) shows the producer published it; the
// release stores on both counters order the slot accesses around them.
unsafe impl Sync for Shared {}

/// One producer publishing `0..n` in batches of `batch` (1 = one event at
/// a time) into a ring of `capacity`, one consumer summing them.
pub fn one_to_one(n: u64, capacity: usize, batch: usize) -> Duration {
    assert!(capacity.is_power_of_two() && batch <= capacity);
    let shared = Arc::new(Shared {
        slots: (0..capacity).map(|_| UnsafeCell::new(0)).collect(),
        mask: capacity - 1,
        cursor: CachePadded::new(AtomicI64::new(-1)),
        consumed: CachePadded::new(AtomicI64::new(-1)),
    });
    let consumer = {
        let shared = shared.clone();
        std::thread::spawn(move || consume(&shared, n))
    };
    let start = Instant::now();
    produce(&shared, n, batch);
    let sum = consumer.join().expect("floor consumer");
    let elapsed = start.elapsed();
    check("floor 1p1c", n, sum);
    elapsed
}

fn produce(shared: &Shared, n: u64, batch: usize) {
    let capacity = shared.slots.len() as i64;
    let mut next = 0i64;
    let mut gate = -1i64;
    while (next as u64) < n {
        let k = (batch as u64).min(n - next as u64) as i64;
        let hi = next + k - 1;
        while hi - capacity > gate {
            gate = shared.consumed.load(Ordering::Acquire);
            if hi - capacity > gate {
                std::hint::spin_loop();
            }
        }
        for s in next..=hi {
            // SAFETY: `gate` shows the consumer is past `s - capacity`, the
            // consumer reads `s` only after the cursor store below, and the
            // masked index is in bounds.
            unsafe { *shared.slots.get_unchecked(s as usize & shared.mask).get() = s as u64 };
        }
        shared.cursor.store(hi, Ordering::Release);
        next = hi + 1;
    }
}

fn consume(shared: &Shared, n: u64) -> u64 {
    let last = n as i64 - 1;
    let mut next = 0i64;
    let mut sum = 0u64;
    while next <= last {
        let available = shared.cursor.load(Ordering::Acquire);
        if available < next {
            std::hint::spin_loop();
            continue;
        }
        for s in next..=available {
            // SAFETY: the acquire load of the cursor shows `s` published,
            // and the producer does not reuse its slot until `consumed`
            // passes it; the masked index is in bounds.
            sum = sum.wrapping_add(unsafe {
                *shared.slots.get_unchecked(s as usize & shared.mask).get()
            });
        }
        shared.consumed.store(available, Ordering::Release);
        next = available + 1;
    }
    sum
}

/// How a multi-producer floor lays out its events and "published" marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LapMark {
    /// Gyre's layout (and the Java Disruptor's): the events packed in one
    /// array (eight `u64`s to a line), each slot's lap in an availability
    /// array of its own (sixteen `i32`s to a line). A publish writes two
    /// lines, each shared with the neighbouring sequences, which other
    /// producers claimed.
    Apart,
    /// crossbeam's array-queue layout: the lap beside the event in a
    /// 16-byte slot (four to a line). A publish writes one line.
    Beside,
}

struct Slot {
    lap: AtomicI64,
    value: UnsafeCell<u64>,
}

struct MultiShared {
    /// `Beside`: every slot; `Apart`: empty.
    slots: Box<[Slot]>,
    /// `Apart`: the events and their laps; empty under `Beside`.
    values: Box<[UnsafeCell<u64>]>,
    laps: Box<[AtomicI32]>,
    mask: usize,
    shift: u32,
    /// The last sequence claimed.
    cursor: Padded,
    consumed: Padded,
}

// SAFETY: as for `Shared`: a slot's value is written only by the producer
// that claimed its sequence, after `consumed` shows the previous lap read,
// and read only after its lap mark (release/acquire) says it is written.
unsafe impl Sync for MultiShared {}

impl MultiShared {
    fn new(capacity: usize, layout: LapMark) -> Self {
        let (slots, beside) = match layout {
            LapMark::Beside => (capacity, 0),
            LapMark::Apart => (0, capacity),
        };
        MultiShared {
            slots: (0..slots)
                .map(|_| Slot {
                    lap: AtomicI64::new(-1),
                    value: UnsafeCell::new(0),
                })
                .collect(),
            values: (0..beside).map(|_| UnsafeCell::new(0)).collect(),
            laps: (0..beside).map(|_| AtomicI32::new(-1)).collect(),
            mask: capacity - 1,
            shift: capacity.trailing_zeros(),
            cursor: CachePadded::new(AtomicI64::new(-1)),
            consumed: CachePadded::new(AtomicI64::new(-1)),
        }
    }

    fn value(&self, sequence: i64) -> *mut u64 {
        let index = sequence as usize & self.mask;
        if self.slots.is_empty() {
            self.values[index].get()
        } else {
            self.slots[index].value.get()
        }
    }

    fn publish(&self, sequence: i64) {
        let index = sequence as usize & self.mask;
        let lap = sequence >> self.shift;
        if self.slots.is_empty() {
            self.laps[index].store(lap as i32, Ordering::Release);
        } else {
            self.slots[index].lap.store(lap, Ordering::Release);
        }
    }

    fn is_published(&self, sequence: i64) -> bool {
        let index = sequence as usize & self.mask;
        let lap = sequence >> self.shift;
        if self.slots.is_empty() {
            self.laps[index].load(Ordering::Acquire) == lap as i32
        } else {
            self.slots[index].lap.load(Ordering::Acquire) == lap
        }
    }
}

/// Spin a little, then yield: threads outnumber cores in the 3p1c case.
fn snooze(step: &mut u32) {
    if *step < 64 {
        std::hint::spin_loop();
        *step += 1;
    } else {
        std::thread::yield_now();
    }
}

/// Three producers claiming with `fetch_add` on one cursor, one consumer
/// that finds their events by their lap marks alone (it never reads the
/// cursor), laid out as `layout` says.
pub fn three_to_one(n: u64, capacity: usize, layout: LapMark) -> Duration {
    assert!(capacity.is_power_of_two());
    let shared = Arc::new(MultiShared::new(capacity, layout));
    let consumer = {
        let shared = shared.clone();
        std::thread::spawn(move || consume_laps(&shared, n))
    };
    let start = Instant::now();
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let capacity = capacity as i64;
                let mut gate = -1i64;
                for v in super::share(n, 3, p) {
                    let sequence = shared.cursor.fetch_add(1, Ordering::AcqRel) + 1;
                    let mut step = 0;
                    while sequence - capacity > gate {
                        gate = shared.consumed.load(Ordering::Acquire);
                        if sequence - capacity > gate {
                            snooze(&mut step);
                        }
                    }
                    // SAFETY: claimed by this producer alone, and `gate`
                    // shows the consumer done with the slot's last lap.
                    unsafe { *shared.value(sequence) = v };
                    shared.publish(sequence);
                }
            })
        })
        .collect();
    for p in producers {
        p.join().expect("floor producer");
    }
    let sum = consumer.join().expect("floor consumer");
    let elapsed = start.elapsed();
    check("floor 3p1c", n, sum);
    elapsed
}

fn consume_laps(shared: &MultiShared, n: u64) -> u64 {
    let mut sum = 0u64;
    let mut next = 0i64;
    let mut step = 0;
    while (next as u64) < n {
        if !shared.is_published(next) {
            shared.consumed.store(next - 1, Ordering::Release);
            snooze(&mut step);
            continue;
        }
        step = 0;
        // SAFETY: the acquire load of its lap shows `next` written, and no
        // producer reuses the slot until `consumed` passes it.
        sum = sum.wrapping_add(unsafe { *shared.value(next) });
        next += 1;
        if next & 63 == 0 {
            shared.consumed.store(next - 1, Ordering::Release);
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_arrives_through_many_laps_of_a_small_ring() {
        // `one_to_one` panics on a wrong sum; 64 slots wrap thousands of times.
        for batch in [1, 7, 64] {
            one_to_one(200_000, 64, batch);
        }
    }

    #[test]
    fn a_batch_larger_than_what_remains_ends_on_the_last_event() {
        one_to_one(1_000, 256, 64);
    }

    #[test]
    fn three_producers_lose_no_event_in_either_layout() {
        // A small ring: the producers wait on the consumer thousands of times.
        for layout in [LapMark::Apart, LapMark::Beside] {
            three_to_one(300_000, 64, layout);
        }
    }
}
