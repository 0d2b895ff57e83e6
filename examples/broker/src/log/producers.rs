//! Idempotent producers in one partition: for each producer id, its
//! current epoch and the sequence ranges and offsets of its last
//! [`KEPT_BATCHES`] batches, which is what Kafka keeps to answer a retried
//! batch with its original offsets instead of appending it twice. Plain
//! data: the partition log checks each incoming batch here before staging
//! it, records it once staged, and keeps or undoes the group's changes as
//! its write succeeds or fails. Also the snapshot written at a clean stop,
//! so a restart need not read the log to rebuild this. Uses only
//! [`batch`](super::batch)'s header and the snapshots' text form.
//!
//! The rules are Kafka's (its `ProducerStateManager`), for batches whose
//! producer id and base sequence are set:
//! - an epoch older than the producer's current one is refused
//!   ([`SequenceError::Fenced`], INVALID_PRODUCER_EPOCH);
//! - a batch whose epoch and sequence range match one of the last five is
//!   a retry, answered with that batch's offsets and not written;
//! - a newer epoch must start at sequence 0; within an epoch each batch
//!   must start one past the last one's end (wrapping after `i32::MAX`),
//!   else [`SequenceError::OutOfOrder`] (OUT_OF_ORDER_SEQUENCE_NUMBER);
//! - a producer the partition does not know (new, or forgotten: expired,
//!   or older than what a restart reads back) is taken at any sequence.

use super::batch::BatchHeader;
use super::snapshot_text;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

/// The snapshot's first word and version.
const FORMAT: &str = "gyre-producers 1";

/// Batches remembered per producer, as Kafka keeps (and as many as a
/// client may have in flight with idempotence on).
pub const KEPT_BATCHES: usize = 5;

/// Producers a partition remembers before it forgets the least recently
/// seen eighth: bounds the memory a flood of new producer ids can take.
pub const MAX_PRODUCERS: usize = 1 << 16;

/// One batch as remembered: its sequence range and its offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Written {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
    last_offset: i64,
}

/// One producer's state in the partition.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Producer {
    epoch: i16,
    batches: VecDeque<Written>,
    /// When it last appended (ms since the epoch), for expiry.
    last_append_ms: i64,
}

impl Producer {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }
}

/// What a batch is, once checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not written before: stage it.
    New,
    /// A retry of a batch already written (or staged) at these offsets.
    Duplicate {
        /// Its first offset.
        base: i64,
        /// Its last offset.
        last: i64,
    },
}

/// Why a producer's batch was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The sequence does not follow on from the producer's last batch.
    #[error("producer {producer_id} epoch {epoch}: sequence {got} where {expected} was due")]
    OutOfOrder {
        /// The producer.
        producer_id: i64,
        /// Its epoch.
        epoch: i16,
        /// The next sequence the partition expected.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
    /// The batch's epoch is older than the producer's current one: a
    /// zombie instance of a producer that has since started again.
    #[error("producer {producer_id}: epoch {got} is older than its current epoch {current}")]
    Fenced {
        /// The producer.
        producer_id: i64,
        /// Its current epoch here.
        current: i16,
        /// The batch's epoch.
        got: i16,
    },
    /// A request of several batches holds one already written: Kafka
    /// clients send one batch per partition, so a retry is never part of
    /// a larger request, and half of one cannot be answered.
    #[error("producer {producer_id}: sequences {first}..={last} were already written")]
    DuplicateInRequest {
        /// The producer.
        producer_id: i64,
        /// The repeated batch's first sequence.
        first: i32,
        /// Its last sequence.
        last: i32,
    },
}

/// The last sequence of a batch starting at `base` whose last offset
/// delta is `delta`; sequences wrap to 0 after `i32::MAX`.
pub fn last_sequence(base: i32, delta: i32) -> i32 {
    if base > i32::MAX - delta {
        delta - (i32::MAX - base) - 1
    } else {
        base + delta
    }
}

fn follows(last: i32, next: i32) -> bool {
    next == if last == i32::MAX { 0 } else { last + 1 }
}

fn is_idempotent(h: &BatchHeader) -> bool {
    h.producer_id >= 0 && h.base_sequence >= 0
}

/// One change the group being written made, undone in reverse order if
/// its write fails. Plain values, so a steady producer's group records its
/// changes without allocating (the log reuses its capacity).
#[derive(Debug)]
enum Change {
    /// A producer first seen in this group.
    Added(i64),
    /// A batch pushed onto a known producer's list: the batch that made
    /// room for it, and the producer's last append time before.
    Pushed {
        id: i64,
        evicted: Option<Written>,
        last_append_ms: i64,
    },
    /// A new epoch replaced a producer's batches: the producer as it was
    /// (a copy, but epochs change rarely).
    NewEpoch(i64, Producer),
}

/// Every producer of one partition, and the changes of the group being
/// written, to undo if its write fails.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, Producer>,
    /// This group's changes, in order: undone by
    /// [`undo_group`](Self::undo_group).
    changes: Vec<Change>,
}

impl ProducerStates {
    /// The highest producer id remembered.
    pub fn max_id(&self) -> Option<i64> {
        self.producers.keys().max().copied()
    }

    /// Producers remembered.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer is remembered.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Each remembered producer's last batch, by its last offset
    /// (`i64::MIN` for one whose last word was a marker with a new
    /// epoch): what the log cleaner must not take the last trace of.
    pub fn last_offsets(&self) -> HashMap<i64, i64> {
        self.producers
            .iter()
            .map(|(&id, p)| (id, p.batches.back().map_or(i64::MIN, |b| b.last_offset)))
            .collect()
    }

    /// Checks the batches of one request for one partition, in order,
    /// against what was written before and against each other.
    pub fn check(&self, batches: &[BatchHeader]) -> Result<Verdict, SequenceError> {
        if let [one] = batches {
            return self.check_one(one, None);
        }
        // Several batches: each must follow the one before it.
        let mut seen: Vec<(i64, i16, i32)> = Vec::new();
        for h in batches.iter().filter(|h| is_idempotent(h)) {
            let before = seen
                .iter()
                .find(|s| s.0 == h.producer_id)
                .map(|s| (s.1, s.2));
            if let Verdict::Duplicate { .. } = self.check_one(h, before)? {
                return Err(SequenceError::DuplicateInRequest {
                    producer_id: h.producer_id,
                    first: h.base_sequence,
                    last: last_sequence(h.base_sequence, h.last_offset_delta),
                });
            }
            let last = last_sequence(h.base_sequence, h.last_offset_delta);
            seen.retain(|s| s.0 != h.producer_id);
            seen.push((h.producer_id, h.producer_epoch, last));
        }
        Ok(Verdict::New)
    }

    /// Checks one batch; `before` is the epoch and last sequence of an
    /// earlier batch of the same request, which counts as written.
    fn check_one(
        &self,
        h: &BatchHeader,
        before: Option<(i16, i32)>,
    ) -> Result<Verdict, SequenceError> {
        if !is_idempotent(h) {
            return Ok(Verdict::New);
        }
        let known = self.producers.get(&h.producer_id);
        let (epoch, last) = match (before, known) {
            (Some((epoch, last)), _) => (epoch, Some(last)),
            (None, Some(p)) => (p.epoch, p.last_seq()),
            (None, None) => return Ok(Verdict::New),
        };
        if h.producer_epoch < epoch {
            return Err(SequenceError::Fenced {
                producer_id: h.producer_id,
                current: epoch,
                got: h.producer_epoch,
            });
        }
        let last_seq = last_sequence(h.base_sequence, h.last_offset_delta);
        if h.producer_epoch > epoch {
            return if h.base_sequence == 0 {
                Ok(Verdict::New)
            } else {
                Err(SequenceError::OutOfOrder {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    expected: 0,
                    got: h.base_sequence,
                })
            };
        }
        if before.is_none() {
            let retry = known.and_then(|p| {
                p.batches
                    .iter()
                    .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
            });
            if let Some(b) = retry {
                return Ok(Verdict::Duplicate {
                    base: b.base_offset,
                    last: b.last_offset,
                });
            }
        }
        match last {
            Some(last) if !follows(last, h.base_sequence) => Err(SequenceError::OutOfOrder {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                expected: if last == i32::MAX { 0 } else { last + 1 },
                got: h.base_sequence,
            }),
            _ => Ok(Verdict::New),
        }
    }

    /// The refusal of batch `h`, which repeats a remembered batch's
    /// sequences but is not its retry: out of order, the next sequence due
    /// named.
    pub fn reused(&self, h: &BatchHeader) -> SequenceError {
        let last = self
            .producers
            .get(&h.producer_id)
            .and_then(Producer::last_seq);
        SequenceError::OutOfOrder {
            producer_id: h.producer_id,
            epoch: h.producer_epoch,
            expected: last.map_or(0, |l| if l == i32::MAX { 0 } else { l + 1 }),
            got: h.base_sequence,
        }
    }

    /// Every producer remembered: id, epoch, last sequence (-1 if none)
    /// and when it last appended (ms), for DescribeProducers.
    pub fn describe(&self) -> impl Iterator<Item = (i64, i16, i32, i64)> + '_ {
        self.producers
            .iter()
            .map(|(&id, p)| (id, p.epoch, p.last_seq().unwrap_or(-1), p.last_append_ms))
    }

    /// The producer's current epoch here, if it is remembered.
    pub fn epoch(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|p| p.epoch)
    }

    /// Remembers a batch given its offsets (staged, or read back from the
    /// log), appended at `now_ms`. A transaction marker carries the
    /// producer's epoch as the coordinator last set it: a newer one fences
    /// the older (its batches are refused from then on), as in Kafka.
    pub fn record(&mut self, h: &BatchHeader, now_ms: i64) {
        if h.is_control() {
            if let Some(p) = self.producers.get_mut(&h.producer_id) {
                if p.epoch < h.producer_epoch {
                    self.changes
                        .push(Change::NewEpoch(h.producer_id, p.clone()));
                    p.epoch = h.producer_epoch;
                    p.batches.clear();
                }
            }
            return;
        }
        if !is_idempotent(h) {
            return;
        }
        let written = Written {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h.base_sequence, h.last_offset_delta),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        };
        match self.producers.get_mut(&h.producer_id) {
            None => {
                let mut batches = VecDeque::with_capacity(KEPT_BATCHES);
                batches.push_back(written);
                let p = Producer {
                    epoch: h.producer_epoch,
                    batches,
                    last_append_ms: now_ms,
                };
                self.producers.insert(h.producer_id, p);
                self.changes.push(Change::Added(h.producer_id));
            }
            Some(p) if p.epoch != h.producer_epoch => {
                self.changes
                    .push(Change::NewEpoch(h.producer_id, p.clone()));
                p.epoch = h.producer_epoch;
                p.batches.clear();
                p.batches.push_back(written);
                p.last_append_ms = p.last_append_ms.max(now_ms);
            }
            Some(p) => {
                let evicted = if p.batches.len() == KEPT_BATCHES {
                    p.batches.pop_front()
                } else {
                    None
                };
                self.changes.push(Change::Pushed {
                    id: h.producer_id,
                    evicted,
                    last_append_ms: p.last_append_ms,
                });
                p.batches.push_back(written);
                p.last_append_ms = p.last_append_ms.max(now_ms);
            }
        }
        if self.producers.len() > MAX_PRODUCERS {
            self.forget_least_recent(MAX_PRODUCERS / 8);
        }
    }

    /// The group was written: its changes stay.
    pub fn keep_group(&mut self) {
        self.changes.clear();
    }

    /// The group's write failed: every producer it changed is as it was.
    /// (One forgotten meanwhile to bound memory stays forgotten.)
    pub fn undo_group(&mut self) {
        for change in self.changes.drain(..).rev() {
            match change {
                Change::Added(id) => {
                    self.producers.remove(&id);
                }
                Change::NewEpoch(id, before) => {
                    self.producers.insert(id, before);
                }
                Change::Pushed {
                    id,
                    evicted,
                    last_append_ms,
                } => {
                    if let Some(p) = self.producers.get_mut(&id) {
                        p.batches.pop_back();
                        if let Some(b) = evicted {
                            p.batches.push_front(b);
                        }
                        p.last_append_ms = last_append_ms;
                    }
                }
            }
        }
    }

    /// Forgets producers that have not appended since `before_ms`, as
    /// Kafka expires them (`producer.id.expiration.ms`); returns how many.
    pub fn expire(&mut self, before_ms: i64) -> usize {
        let was = self.producers.len();
        self.producers.retain(|_, p| p.last_append_ms >= before_ms);
        was - self.producers.len()
    }

    fn forget_least_recent(&mut self, count: usize) {
        let mut times: Vec<i64> = self.producers.values().map(|p| p.last_append_ms).collect();
        let k = count.min(times.len().saturating_sub(1));
        let (_, cut, _) = times.select_nth_unstable(k);
        let cut = *cut;
        self.producers.retain(|_, p| p.last_append_ms > cut);
    }

    /// The state as text, for a snapshot taken when the log's end is
    /// `end_offset`: a first line naming the format and the offset, a line
    /// per producer, and a CRC-32C of everything before it.
    pub fn snapshot(&self, end_offset: i64) -> String {
        let mut out = snapshot_text::begin(FORMAT, end_offset);
        // In producer order: the same state always reads the same, so a
        // clean stop can tell a snapshot that would say nothing new.
        let mut producers: Vec<_> = self.producers.iter().collect();
        producers.sort_unstable_by_key(|(id, _)| **id);
        for (id, p) in producers {
            let _ = write!(out, "{id} {} {}", p.epoch, p.last_append_ms);
            for b in &p.batches {
                let _ = write!(
                    out,
                    " {}:{}:{}:{}",
                    b.first_seq, b.last_seq, b.base_offset, b.last_offset
                );
            }
            out.push('\n');
        }
        snapshot_text::seal(out)
    }

    /// Reads back a [`snapshot`](Self::snapshot): the state and the log
    /// end it was taken at, or `None` if the text is damaged in any way.
    pub fn from_snapshot(text: &str) -> Option<(Self, i64)> {
        let (end, lines) = snapshot_text::open(text, FORMAT)?;
        let mut states = ProducerStates::default();
        for line in lines {
            let mut f = line.split(' ');
            let id = f.next()?.parse().ok()?;
            let epoch = f.next()?.parse().ok()?;
            let last_append_ms = f.next()?.parse().ok()?;
            let mut batches = VecDeque::with_capacity(KEPT_BATCHES);
            for b in f {
                let mut n = b.split(':');
                batches.push_back(Written {
                    first_seq: n.next()?.parse().ok()?,
                    last_seq: n.next()?.parse().ok()?,
                    base_offset: n.next()?.parse().ok()?,
                    last_offset: n.next()?.parse().ok()?,
                });
            }
            states.producers.insert(
                id,
                Producer {
                    epoch,
                    batches,
                    last_append_ms,
                },
            );
        }
        Some((states, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, epoch: i16, seq: i32, records: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            size: 100,
            partition_leader_epoch: -1,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            record_count: records,
            crc: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            attributes: 0,
        }
    }

    #[test]
    fn a_retry_gets_its_original_offsets_and_a_gap_is_refused() {
        let mut s = ProducerStates::default();
        let first = batch(7, 0, 0, 10, 100);
        assert_eq!(s.check(&[first]), Ok(Verdict::New));
        s.record(&first, 1);
        let second = batch(7, 0, 10, 5, 110);
        s.record(&second, 1);
        s.keep_group();
        // Both retried: their own offsets back.
        assert_eq!(
            s.check(&[batch(7, 0, 0, 10, -1)]),
            Ok(Verdict::Duplicate {
                base: 100,
                last: 109
            })
        );
        assert_eq!(
            s.check(&[batch(7, 0, 10, 5, -1)]),
            Ok(Verdict::Duplicate {
                base: 110,
                last: 114
            })
        );
        assert_eq!(s.check(&[batch(7, 0, 15, 1, -1)]), Ok(Verdict::New));
        assert_eq!(
            s.check(&[batch(7, 0, 16, 1, -1)]),
            Err(SequenceError::OutOfOrder {
                producer_id: 7,
                epoch: 0,
                expected: 15,
                got: 16
            })
        );
        // Another producer is independent; an unknown one starts anywhere.
        assert_eq!(s.check(&[batch(8, 0, 42, 1, -1)]), Ok(Verdict::New));
    }

    #[test]
    fn epochs_fence_and_a_new_epoch_starts_at_zero() {
        let mut s = ProducerStates::default();
        s.record(&batch(7, 3, 0, 1, 0), 1);
        assert_eq!(
            s.check(&[batch(7, 2, 1, 1, -1)]),
            Err(SequenceError::Fenced {
                producer_id: 7,
                current: 3,
                got: 2
            })
        );
        assert!(matches!(
            s.check(&[batch(7, 4, 5, 1, -1)]),
            Err(SequenceError::OutOfOrder { expected: 0, .. })
        ));
        assert_eq!(s.check(&[batch(7, 4, 0, 1, -1)]), Ok(Verdict::New));
        s.record(&batch(7, 4, 0, 1, 1), 1);
        // The old epoch's batches are gone: its retry is now fenced.
        assert!(matches!(
            s.check(&[batch(7, 3, 0, 1, -1)]),
            Err(SequenceError::Fenced { .. })
        ));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered_and_sequences_wrap() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&batch(1, 0, i, 1, i64::from(i)), 1);
        }
        assert!(matches!(
            s.check(&[batch(1, 0, 2, 1, -1)]),
            Ok(Verdict::Duplicate { base: 2, .. })
        ));
        assert!(
            matches!(
                s.check(&[batch(1, 0, 1, 1, -1)]),
                Err(SequenceError::OutOfOrder { .. })
            ),
            "older than five batches: not a known retry"
        );
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        let mut s = ProducerStates::default();
        s.record(&batch(1, 0, i32::MAX - 1, 2, 0), 1);
        assert_eq!(s.check(&[batch(1, 0, 0, 1, -1)]), Ok(Verdict::New));
    }

    #[test]
    fn a_failed_group_is_undone_and_a_request_is_checked_against_itself() {
        let mut s = ProducerStates::default();
        s.record(&batch(1, 0, 0, 1, 0), 1);
        s.keep_group();
        s.record(&batch(1, 0, 1, 1, 1), 1);
        s.record(&batch(2, 0, 0, 1, 2), 1);
        s.undo_group();
        assert_eq!(s.len(), 1);
        assert_eq!(s.check(&[batch(1, 0, 1, 1, -1)]), Ok(Verdict::New));
        // An undone push gives back the batch it evicted; an undone epoch
        // change gives back the old epoch and its batches.
        let mut full = ProducerStates::default();
        for i in 0..KEPT_BATCHES as i32 {
            full.record(&batch(3, 0, i, 1, i64::from(i)), 1);
        }
        full.record(&batch(4, 0, 0, 1, 10), 1);
        full.keep_group();
        full.record(&batch(3, 0, 5, 1, 20), 2);
        full.record(&batch(3, 0, 6, 1, 21), 2);
        full.record(&batch(4, 1, 0, 1, 22), 2);
        full.undo_group();
        assert_eq!(
            full.check(&[batch(3, 0, 0, 1, -1)]),
            Ok(Verdict::Duplicate { base: 0, last: 0 })
        );
        assert_eq!(full.check(&[batch(3, 0, 5, 1, -1)]), Ok(Verdict::New));
        assert_eq!(
            full.check(&[batch(4, 0, 0, 1, -1)]),
            Ok(Verdict::Duplicate { base: 10, last: 10 })
        );
        assert_eq!(full.producers[&3].last_append_ms, 1);
        // Two batches in one request: the second must follow the first.
        let (a, b) = (batch(1, 0, 1, 2, -1), batch(1, 0, 3, 1, -1));
        assert_eq!(s.check(&[a, b]), Ok(Verdict::New));
        assert!(matches!(
            s.check(&[a, batch(1, 0, 4, 1, -1)]),
            Err(SequenceError::OutOfOrder { expected: 3, .. })
        ));
        assert!(matches!(
            s.check(&[batch(1, 0, 0, 1, -1), a]),
            Err(SequenceError::DuplicateInRequest { .. })
        ));
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_refused() {
        let mut s = ProducerStates::default();
        s.record(&batch(1, 2, 0, 3, 10), 5);
        s.record(&batch(1, 2, 3, 1, 13), 6);
        s.record(&batch(9, 0, 7, 1, 14), 7);
        let text = s.snapshot(15);
        let (back, end) = ProducerStates::from_snapshot(&text).unwrap();
        assert_eq!(end, 15);
        assert_eq!(back.producers, s.producers);
        let flipped = text.replacen("13", "12", 1);
        assert!(ProducerStates::from_snapshot(&flipped).is_none());
        assert!(ProducerStates::from_snapshot(&text[..text.len() - 4]).is_none());
        assert!(ProducerStates::from_snapshot("").is_none());
    }

    #[test]
    fn idle_producers_expire_and_a_flood_is_bounded() {
        let mut s = ProducerStates::default();
        s.record(&batch(1, 0, 0, 1, 0), 100);
        s.record(&batch(2, 0, 0, 1, 1), 200);
        assert_eq!(s.expire(150), 1);
        assert_eq!(s.len(), 1);
        let mut s = ProducerStates::default();
        for id in 0..=MAX_PRODUCERS as i64 {
            s.record(&batch(id, 0, 0, 1, id), id);
            s.keep_group();
        }
        assert!(s.len() <= MAX_PRODUCERS, "{}", s.len());
        assert!(s.producers.contains_key(&(MAX_PRODUCERS as i64)));
    }
}
