//! Transactions in one partition: which producers have a transaction
//! open here (and the offset of its first batch), and which transactions
//! ended in an abort (their producer and offset range). Plain data: the
//! partition log shows it each batch as it is staged and keeps or undoes
//! the group's events as the write succeeds or fails. Also the snapshot
//! written at a clean stop. Uses only [`batch`](super::batch)'s header
//! and markers and the snapshots' text form.
//!
//! It also keeps which producers the coordinator has added this partition
//! to a transaction for (and at which epoch), so a transactional batch
//! from any other is refused: Kafka's verification (KIP-890), which
//! keeps a producer that never added the partition from opening a
//! transaction no marker would ever end, holding `read_committed`
//! readers back for good. The coordinator's word comes through the
//! writer's ring ahead of the producer's batches, which the producer
//! sends only once it has heard the partition was added.
//!
//! This is what a `read_committed` consumer needs from the partition, as
//! Kafka serves it: the last stable offset (LSO), below which every
//! transaction has ended, is the first offset of the oldest open one (the
//! log's end when none is open), and a fetch stops there; the aborted
//! transactions overlapping what a fetch returns go with it, so the
//! client can drop their records (it drops the control batches itself).

use super::batch::{BatchHeader, Marker};
use super::snapshot_text;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

/// The snapshot's first word and version.
const FORMAT: &str = "gyre-transactions 1";

/// A transaction that ended in an abort: its producer and the offsets
/// from its first batch to its marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer.
    pub producer_id: i64,
    /// Its first batch's offset in this partition.
    pub first_offset: i64,
    /// The abort marker's offset.
    pub last_offset: i64,
}

/// One batch's effect, applied when its group is written.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// A transactional producer's batch at `base`.
    Data { producer_id: i64, base: i64 },
    /// A marker at `offset` ended the producer's transaction.
    End {
        producer_id: i64,
        marker: Marker,
        offset: i64,
    },
}

/// The transactions of one partition.
#[derive(Debug, Default)]
pub struct PartitionTxns {
    /// Producer id → its open transaction's first offset.
    open: HashMap<i64, i64>,
    /// Ended in an abort, oldest marker first.
    aborted: VecDeque<AbortedTxn>,
    /// The group being written: applied on [`keep_group`](Self::keep_group).
    staged: Vec<Event>,
    /// Producer id → the epoch the coordinator added this partition to
    /// its transaction at; cleared by the transaction's marker.
    added: HashMap<i64, i16>,
}

/// A transactional batch from a producer the coordinator did not add
/// this partition for (or at another epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("producer {producer_id} epoch {epoch} wrote a transactional batch to a partition its transaction did not add")]
pub struct NotAdded {
    /// The producer.
    pub producer_id: i64,
    /// Its epoch in the batch.
    pub epoch: i16,
}

impl PartitionTxns {
    /// The coordinator added this partition to producer `producer_id`'s
    /// transaction at `epoch`.
    pub fn add(&mut self, producer_id: i64, epoch: i16) {
        self.added.insert(producer_id, epoch);
    }

    /// Refuses a producer's transactional batch unless the coordinator
    /// added this partition to its transaction at the batch's epoch.
    /// (Markers, which the broker writes, pass.)
    pub fn check(&self, h: &BatchHeader) -> Result<(), NotAdded> {
        if !h.is_transactional() || h.is_control() {
            return Ok(());
        }
        match self.added.get(&h.producer_id) {
            Some(&epoch) if epoch == h.producer_epoch => Ok(()),
            _ => Err(NotAdded {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
            }),
        }
    }

    /// Whether the transaction that producer `producer_id`'s batch at
    /// `offset` belongs to has ended: a marker of the producer, written or
    /// staged in this group, follows the batch.
    pub fn ended_after(&self, producer_id: i64, offset: i64) -> bool {
        let mut began_in_group = false;
        for event in &self.staged {
            match *event {
                Event::End {
                    producer_id: p,
                    offset: at,
                    ..
                } if p == producer_id && at > offset => return true,
                Event::Data {
                    producer_id: p,
                    base,
                } if p == producer_id && base <= offset => {
                    began_in_group = true;
                }
                _ => {}
            }
        }
        !began_in_group
            && self
                .open
                .get(&producer_id)
                .is_none_or(|&first| first > offset)
    }

    /// Notes a batch given its offset (staged, or read back from the log);
    /// `marker` is what a control batch marks.
    pub fn observe(&mut self, h: &BatchHeader, marker: Option<Marker>) {
        if !h.is_transactional() {
            return;
        }
        let producer_id = h.producer_id;
        if marker.is_some() {
            // The transaction ends here: the next must be added again.
            self.added.remove(&producer_id);
        }
        self.staged.push(match marker {
            Some(marker) => Event::End {
                producer_id,
                marker,
                offset: h.base_offset,
            },
            None if h.is_control() => return, // another kind of control record
            None => Event::Data {
                producer_id,
                base: h.base_offset,
            },
        });
    }

    /// The group was written: its batches count.
    pub fn keep_group(&mut self) {
        for event in std::mem::take(&mut self.staged) {
            match event {
                Event::Data { producer_id, base } => {
                    self.open.entry(producer_id).or_insert(base);
                }
                Event::End {
                    producer_id,
                    marker,
                    offset,
                } => {
                    let first = self.open.remove(&producer_id);
                    if let (Marker::Abort, Some(first_offset)) = (marker, first) {
                        self.aborted.push_back(AbortedTxn {
                            producer_id,
                            first_offset,
                            last_offset: offset,
                        });
                    }
                }
            }
        }
    }

    /// The group's write failed: nothing of it happened.
    pub fn undo_group(&mut self) {
        self.staged.clear();
    }

    /// The last stable offset of a log ending at `end`.
    pub fn last_stable(&self, end: i64) -> i64 {
        self.open.values().copied().min().unwrap_or(end).min(end)
    }

    /// The first offset of `producer_id`'s open transaction here, if any.
    pub fn open_since(&self, producer_id: i64) -> Option<i64> {
        self.open.get(&producer_id).copied()
    }

    /// The producers with a transaction open here.
    pub fn open_producers(&self) -> impl Iterator<Item = i64> + '_ {
        self.open.keys().copied()
    }

    /// Aborted transactions with records in `from..to`: each one's
    /// producer and first offset, as a fetch response lists them.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        // Markers come in offset order, so skip those ending before `from`.
        let skip = self.aborted.partition_point(|a| a.last_offset < from);
        self.aborted
            .range(skip..)
            .filter(|a| a.first_offset < to)
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Aborted transactions whose first record is below `to`.
    pub fn aborted_below(&self, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.first_offset < to)
            .copied()
            .collect()
    }

    /// Forgets the aborted transactions `gone`.
    pub fn forget(&mut self, gone: &[AbortedTxn]) {
        self.aborted.retain(|a| !gone.contains(a));
    }

    /// Forgets aborted transactions wholly below `start` (the log start
    /// moved past them).
    pub fn trim(&mut self, start: i64) {
        while self.aborted.front().is_some_and(|a| a.last_offset < start) {
            self.aborted.pop_front();
        }
    }

    /// The state as text, for a snapshot taken when the log's end is
    /// `end_offset`: a first line naming the format and the offset, a line
    /// per open or aborted transaction, and a CRC-32C of everything before.
    pub fn snapshot(&self, end_offset: i64) -> String {
        let mut out = snapshot_text::begin(FORMAT, end_offset);
        // In producer order: the same state always reads the same.
        let mut open: Vec<_> = self.open.iter().collect();
        open.sort_unstable();
        for (id, first) in open {
            let _ = writeln!(out, "open {id} {first}");
        }
        for a in &self.aborted {
            let _ = writeln!(
                out,
                "aborted {} {} {}",
                a.producer_id, a.first_offset, a.last_offset
            );
        }
        snapshot_text::seal(out)
    }

    /// Reads back a [`snapshot`](Self::snapshot): the state and the log
    /// end it was taken at, or `None` if the text is damaged in any way.
    pub fn from_snapshot(text: &str) -> Option<(Self, i64)> {
        let (end, lines) = snapshot_text::open(text, FORMAT)?;
        let mut txns = PartitionTxns::default();
        for line in lines {
            let f: Vec<i64> = line
                .split(' ')
                .skip(1)
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            match (line.split(' ').next()?, &f[..]) {
                ("open", &[id, first]) => {
                    txns.open.insert(id, first);
                }
                ("aborted", &[producer_id, first_offset, last_offset]) => {
                    txns.aborted.push_back(AbortedTxn {
                        producer_id,
                        first_offset,
                        last_offset,
                    })
                }
                _ => return None,
            }
        }
        Some((txns, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(pid: i64, base: i64, attributes: i16) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            size: 100,
            partition_leader_epoch: -1,
            last_offset_delta: 0,
            base_timestamp: 0,
            max_timestamp: 0,
            record_count: 1,
            crc: 0,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            attributes,
        }
    }
    const TXN: i16 = 1 << 4;
    const MARKER: i16 = (1 << 4) | (1 << 5);

    #[test]
    fn the_stable_offset_waits_for_the_oldest_open_transaction_and_aborts_are_listed() {
        let mut t = PartitionTxns::default();
        t.observe(&batch(1, 0, 0), None); // not transactional
        t.observe(&batch(7, 1, TXN), None);
        t.observe(&batch(8, 2, TXN), None);
        t.observe(&batch(7, 3, TXN), None);
        assert_eq!(t.last_stable(4), 4, "nothing counts before the write");
        t.keep_group();
        assert_eq!(t.last_stable(4), 1);
        t.observe(&batch(7, 4, MARKER), Some(Marker::Commit));
        t.keep_group();
        assert_eq!(t.last_stable(5), 2, "producer 8 is still open");
        t.observe(&batch(8, 5, MARKER), Some(Marker::Abort));
        t.keep_group();
        assert_eq!(t.last_stable(6), 6);
        assert_eq!(t.aborted_between(0, 6), vec![(8, 2)]);
        assert_eq!(t.aborted_between(6, 9), vec![], "ended before the fetch");
        assert_eq!(t.aborted_between(0, 2), vec![], "starts after the fetch");
        t.observe(&batch(8, 6, TXN), None);
        t.undo_group();
        assert_eq!(t.last_stable(6), 6, "an undone group opens nothing");
        t.trim(6);
        assert_eq!(t.aborted_between(0, 6), vec![]);
    }

    #[test]
    fn only_producers_added_by_the_coordinator_may_write_until_their_marker() {
        let mut t = PartitionTxns::default();
        let refused = NotAdded {
            producer_id: 7,
            epoch: 0,
        };
        assert_eq!(t.check(&batch(7, 0, TXN)), Err(refused));
        assert_eq!(t.check(&batch(7, 0, 0)), Ok(()), "not transactional");
        t.add(7, 0);
        assert_eq!(t.check(&batch(7, 0, TXN)), Ok(()));
        let mut newer = batch(7, 0, TXN);
        newer.producer_epoch = 1;
        assert!(t.check(&newer).is_err(), "another epoch");
        t.observe(&batch(7, 1, MARKER), Some(Marker::Commit));
        assert_eq!(
            t.check(&batch(7, 2, TXN)),
            Err(refused),
            "the marker ended it"
        );
        assert_eq!(t.check(&batch(7, 2, MARKER)), Ok(()), "markers pass");
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_refused() {
        let mut t = PartitionTxns::default();
        t.observe(&batch(3, 10, TXN), None);
        t.observe(&batch(3, 11, MARKER), Some(Marker::Abort));
        t.observe(&batch(4, 12, TXN), None);
        t.keep_group();
        let text = t.snapshot(13);
        let (back, end) = PartitionTxns::from_snapshot(&text).expect("reads back");
        assert_eq!(end, 13);
        assert_eq!(back.last_stable(13), 12);
        assert_eq!(back.aborted_between(0, 13), vec![(3, 10)]);
        let damaged = text.replace("open 4 12", "open 4 13");
        assert!(PartitionTxns::from_snapshot(&damaged).is_none());
    }
}
