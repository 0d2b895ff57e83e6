//! A partition's leader-epoch history: the first offset written in each
//! leader epoch, as Kafka's `LeaderEpochFileCache` keeps it, and the
//! answers built on it (KIP-101, KIP-320): where an epoch's records end,
//! which epoch an offset was written in. Uses the snapshot text format
//! and nothing else of the log.
//!
//! A consumer keeps, with its position, the epoch of the batch it last
//! read (every batch carries the epoch it was appended in). When the
//! broker's epoch moves (each start of this broker is a new one) the
//! consumer asks where its epoch ended: an end below its position means
//! the records it read are gone (a start after a power cut cut the log's
//! unsynced tail, or a damaged batch), and it moves back to that end
//! rather than skipping the records written there since.

use super::snapshot_text;
use std::fmt::Write as _;

/// The file a partition's history is kept in, in the partition's folder.
pub const EPOCH_SNAPSHOT: &str = "leader-epochs.snapshot";

const FORMAT: &str = "gyre-leader-epochs-v1";

/// Kafka's answer for an epoch nothing is known of: no epoch, no offset.
pub const UNDEFINED: (i32, i64) = (-1, -1);

/// One epoch and the first offset written in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochStart {
    /// The leader epoch.
    pub epoch: i32,
    /// The first offset written in it (or the log's end when it began).
    pub start: i64,
}

/// The epochs of one partition, oldest first, epochs and starts both
/// rising strictly: an epoch that wrote nothing before the next began
/// leaves no entry, as in Kafka.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderEpochs {
    entries: Vec<EpochStart>,
}

impl LeaderEpochs {
    /// The entries, oldest first.
    pub fn entries(&self) -> &[EpochStart] {
        &self.entries
    }

    /// The newest epoch, if any is known.
    pub fn latest(&self) -> Option<EpochStart> {
        self.entries.last().copied()
    }

    /// Records that `epoch` began at offset `start`: every entry of that
    /// epoch or a later one, or starting at or after `start`, is dropped
    /// first (an epoch that wrote nothing leaves no entry). Negative
    /// epochs (a batch from before epochs were kept) are ignored.
    pub fn assign(&mut self, epoch: i32, start: i64) {
        if epoch < 0 {
            return;
        }
        if self
            .latest()
            .is_some_and(|l| l.epoch == epoch && l.start <= start)
        {
            return;
        }
        self.entries.retain(|e| e.epoch < epoch && e.start < start);
        self.entries.push(EpochStart { epoch, start });
    }

    /// Forgets the epochs whose records all lie below `start` (retention
    /// or DeleteRecords moved the log's start past them), as Kafka's
    /// `truncateFromStart`: the epoch holding `start` is kept, beginning
    /// there. So the history holds an entry per epoch with records still
    /// in the log, however often the broker restarts.
    pub fn trim_to(&mut self, start: i64) {
        let Some(holding) = self.entries.iter().rposition(|e| e.start <= start) else {
            return;
        };
        self.entries.drain(..holding);
        self.entries[0].start = start;
    }

    /// Takes a batch written in `epoch` at `base_offset` into the history
    /// (when rebuilding it from the log): a newer epoch than the latest
    /// begins there.
    pub fn observe(&mut self, epoch: i32, base_offset: i64) {
        if epoch >= 0 && self.latest().is_none_or(|l| epoch > l.epoch) {
            self.assign(epoch, base_offset);
        }
    }

    /// Kafka's `endOffsetFor`: for a consumer whose records were read in
    /// `requested`, the largest epoch at or below it and the offset where
    /// that epoch's records end (the next epoch's start, or `log_end` for
    /// the latest). [`UNDEFINED`] for an undefined (negative) epoch or
    /// one newer than any known. For one older than every entry, the
    /// requested epoch itself and the first entry's start, as Kafka
    /// answers.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested < 0 {
            return UNDEFINED;
        }
        if self.latest().is_some_and(|l| l.epoch == requested) {
            return (requested, log_end);
        }
        let Some(higher) = self.entries.iter().find(|e| e.epoch > requested) else {
            return UNDEFINED;
        };
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            Some(floor) => (floor.epoch, higher.start),
            None => (requested, higher.start),
        }
    }

    /// The epoch `offset` was written in: the newest entry starting at or
    /// below it; -1 when none does (records from before epochs were kept).
    pub fn epoch_for(&self, offset: i64) -> i32 {
        self.entries
            .iter()
            .rev()
            .find(|e| e.start <= offset)
            .map_or(-1, |e| e.epoch)
    }

    /// The snapshot text, taken at log end `end_offset`: every batch below
    /// it is in the history.
    pub fn snapshot(&self, end_offset: i64) -> String {
        let mut out = snapshot_text::begin(FORMAT, end_offset);
        for e in &self.entries {
            let _ = writeln!(out, "{} {}", e.epoch, e.start);
        }
        snapshot_text::seal(out)
    }

    /// A snapshot read back, and the log end it was taken at; `None` if
    /// it is damaged or its entries do not rise.
    pub fn from_snapshot(text: &str) -> Option<(LeaderEpochs, i64)> {
        let (end, lines) = snapshot_text::open(text, FORMAT)?;
        let mut entries: Vec<EpochStart> = Vec::new();
        for line in lines {
            let (epoch, start) = line.split_once(' ')?;
            let e = EpochStart {
                epoch: epoch.parse().ok()?,
                start: start.parse().ok()?,
            };
            let rises = entries
                .last()
                .is_none_or(|l| e.epoch > l.epoch && e.start > l.start);
            if e.epoch < 0 || e.start < 0 || !rises {
                return None;
            }
            entries.push(e);
        }
        Some((LeaderEpochs { entries }, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(pairs: &[(i32, i64)]) -> LeaderEpochs {
        let mut h = LeaderEpochs::default();
        for &(epoch, start) in pairs {
            h.assign(epoch, start);
        }
        h
    }

    fn pairs(h: &LeaderEpochs) -> Vec<(i32, i64)> {
        h.entries().iter().map(|e| (e.epoch, e.start)).collect()
    }

    #[test]
    fn an_epoch_that_wrote_nothing_is_replaced_by_the_next() {
        let h = history(&[(1, 0), (2, 10), (3, 10), (4, 25)]);
        assert_eq!(pairs(&h), [(1, 0), (3, 10), (4, 25)]);
        // The same epoch again changes nothing; an older one is ignored
        // only by `observe`.
        let mut same = h.clone();
        same.assign(4, 30);
        assert_eq!(same, h);
        let mut older = h.clone();
        older.assign(2, 12);
        assert_eq!(pairs(&older), [(1, 0), (2, 12)]);
        let mut legacy = h.clone();
        legacy.assign(-1, 40);
        legacy.observe(-1, 40);
        legacy.observe(3, 40);
        assert_eq!(legacy, h);
    }

    #[test]
    fn the_end_of_an_epoch_is_where_the_next_began_or_the_log_end() {
        let h = history(&[(1, 0), (3, 10), (4, 25)]);
        assert_eq!(h.end_offset_for(4, 40), (4, 40));
        assert_eq!(h.end_offset_for(3, 40), (3, 25));
        // An epoch with no entry of its own: the one before it, ending
        // where the next began.
        assert_eq!(h.end_offset_for(2, 40), (1, 10));
        // Older than all: itself, ending where the first began.
        assert_eq!(history(&[(5, 7)]).end_offset_for(2, 9), (2, 7));
        assert_eq!(h.end_offset_for(9, 40), UNDEFINED);
        assert_eq!(h.end_offset_for(-1, 40), UNDEFINED);
        assert_eq!(LeaderEpochs::default().end_offset_for(0, 5), UNDEFINED);
    }

    #[test]
    fn a_new_epoch_at_a_cut_forgets_the_epochs_that_began_past_it() {
        let mut h = history(&[(1, 0), (3, 10), (4, 25)]);
        h.assign(5, 18);
        assert_eq!(pairs(&h), [(1, 0), (3, 10), (5, 18)]);
        // A consumer that read to 30 in epoch 4 hears that epoch 3 (the
        // newest at or below 4) ended at 18: its records past 18 are gone.
        assert_eq!(h.end_offset_for(4, 50), (3, 18));
    }

    #[test]
    fn epochs_whose_records_are_all_gone_are_forgotten() {
        let mut h = history(&[(1, 0), (3, 10), (4, 25)]);
        h.trim_to(0);
        assert_eq!(pairs(&h), [(1, 0), (3, 10), (4, 25)]);
        h.trim_to(12);
        assert_eq!(pairs(&h), [(3, 12), (4, 25)]);
        h.trim_to(25);
        assert_eq!(pairs(&h), [(4, 25)]);
        h.trim_to(40);
        assert_eq!(pairs(&h), [(4, 40)]);
        assert_eq!(h.end_offset_for(3, 50), (3, 40));
        let mut empty = LeaderEpochs::default();
        empty.trim_to(5);
        assert_eq!(empty, LeaderEpochs::default());
    }

    #[test]
    fn each_offset_has_the_epoch_it_was_written_in() {
        let h = history(&[(1, 5), (3, 10)]);
        assert_eq!(h.epoch_for(0), -1);
        assert_eq!(h.epoch_for(5), 1);
        assert_eq!(h.epoch_for(9), 1);
        assert_eq!(h.epoch_for(10), 3);
        assert_eq!(h.epoch_for(1_000), 3);
    }

    #[test]
    fn a_snapshot_reads_back_and_a_damaged_one_does_not() {
        let h = history(&[(1, 0), (3, 10), (4, 25)]);
        let text = h.snapshot(40);
        assert_eq!(LeaderEpochs::from_snapshot(&text), Some((h.clone(), 40)));
        let empty = LeaderEpochs::default();
        assert_eq!(
            LeaderEpochs::from_snapshot(&empty.snapshot(0)),
            Some((empty, 0))
        );
        let flipped = text.replacen("3 10", "3 11", 1);
        assert_eq!(LeaderEpochs::from_snapshot(&flipped), None);
        assert_eq!(LeaderEpochs::from_snapshot(&text[..text.len() - 4]), None);
        // Entries out of order are refused even under a good CRC.
        let unordered = snapshot_text::seal(format!("{FORMAT} 5\n3 10\n1 0\n"));
        assert_eq!(LeaderEpochs::from_snapshot(&unordered), None);
    }
}
