//! One share-partition's delivery state (KIP-932): which of a topic
//! partition's records a share group has yet to deliver, has handed to a
//! member under an acquisition lock, or is done with.
//!
//! The state is a window of offsets from the share-partition start
//! offset (SPSO, below which every record is done). Each offset in the
//! window is available, acquired (by one member, until its lock runs
//! out), acknowledged, or archived (rejected, a gap, or delivered as
//! often as the group allows). Everything past the window is available
//! and never delivered. The start moves up over the done offsets at the
//! window's front, so a steady group keeps a short window.
//!
//! The window is bounded (`max_in_flight`, Kafka's
//! `group.share.partition.max.record.locks`): no more is acquired while
//! it is full, so a member that holds records without acknowledging
//! them, or one record redelivered again and again, costs bounded
//! memory.
//!
//! Plain data and functions over it; no I/O. Uses only the standard
//! library.

use std::collections::VecDeque;

/// A member of a share group, as the broker numbers it (the member ids
/// are strings; a number keeps an offset's slot small).
pub type MemberKey = u32;

/// What a member says of a record it was given (the acknowledge types of
/// ShareFetch and ShareAcknowledge).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acknowledgement {
    /// Not a record (a gap in a compacted log, a transaction marker):
    /// done with it.
    Gap,
    /// Processed: done with it.
    Accept,
    /// Not processed: deliver it again (to any member).
    Release,
    /// Cannot be processed: never deliver it again.
    Reject,
}

impl Acknowledgement {
    /// The type a request carries (0 gap, 1 accept, 2 release, 3
    /// reject); `None` for any other.
    pub fn from_wire(kind: i8) -> Option<Self> {
        match kind {
            0 => Some(Acknowledgement::Gap),
            1 => Some(Acknowledgement::Accept),
            2 => Some(Acknowledgement::Release),
            3 => Some(Acknowledgement::Reject),
            _ => None,
        }
    }
}

/// An offset's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordState {
    /// To be delivered.
    Available,
    /// Delivered to a member, which holds it until its lock runs out.
    Acquired,
    /// Accepted by the member it was delivered to.
    Acknowledged,
    /// Never to be delivered (again).
    Archived,
}

impl RecordState {
    fn is_done(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

/// One offset of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    state: RecordState,
    /// Times it was acquired.
    deliveries: u16,
    /// The member that holds it, while acquired.
    owner: MemberKey,
    /// When its acquisition lock runs out (ms on the caller's clock),
    /// while acquired.
    deadline: u64,
}

impl Slot {
    const FRESH: Slot = Slot {
        state: RecordState::Available,
        deliveries: 0,
        owner: 0,
        deadline: 0,
    };
}

/// The limits a share group sets on delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long an acquired record stays with its member (ms; Kafka's
    /// `group.share.record.lock.duration.ms`, 30 s).
    pub lock_ms: u64,
    /// Deliveries after which a record that comes back is archived
    /// (`group.share.delivery.count.limit`, 5).
    pub max_deliveries: u16,
    /// Offsets the window may span (`group.share.partition.max.record.locks`,
    /// 2,000).
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            lock_ms: 30_000,
            max_deliveries: 5,
            max_in_flight: 2_000,
        }
    }
}

/// A run of records acquired in one fetch: first and last offset
/// (inclusive) and their delivery count, as ShareFetch answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acquired {
    /// The first offset.
    pub first: i64,
    /// The last offset.
    pub last: i64,
    /// How often these records have been delivered, this time included.
    pub deliveries: u16,
}

/// Why an acknowledgement was refused: nothing of the request's
/// acknowledgements for the partition was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckError {
    /// An offset is not held by the member (never delivered to it, its
    /// lock ran out, or already acknowledged): INVALID_RECORD_STATE.
    NotHeld(i64),
    /// The acknowledge types do not fit the range (neither one type nor
    /// one per offset), a type is unknown, or the range is backwards:
    /// INVALID_REQUEST.
    Malformed,
}

/// A batch of the log as a fetch read it: base and last offset, and
/// whether it is never delivered (a transaction's marker, or a batch of
/// an aborted transaction for a read_committed group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSpan {
    /// The first offset.
    pub base: i64,
    /// The last offset.
    pub last: i64,
    /// Never delivered: archived as the window passes it.
    pub control: bool,
}

/// The state of one share-partition.
///
/// ```
/// use gyre_broker::share::partition::{Acknowledgement, BatchSpan, Limits, SharePartition};
///
/// let mut p = SharePartition::new(0);
/// let limits = Limits::default();
/// let batches = [BatchSpan { base: 0, last: 9, control: false }];
/// // Member 1 takes records 0..=9 for 30 s.
/// let got = p.acquire(1, 0, &limits, &batches, 100, 10);
/// assert_eq!((got[0].first, got[0].last), (0, 9));
/// // It accepts 0..=4 and gives 5..=9 back.
/// p.acknowledge(1, &[(0, 4, vec![Acknowledgement::Accept]), (5, 9, vec![Acknowledgement::Release])], &limits)?;
/// assert_eq!(p.start(), 5);
/// assert_eq!(p.next_to_deliver(10, &limits), Some(5));
/// # Ok::<(), gyre_broker::share::partition::AckError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharePartition {
    /// The share-partition start offset.
    start: i64,
    /// Offsets `start..start + window.len()`.
    window: VecDeque<Slot>,
    /// Slots acquired now.
    acquired: usize,
    /// No lock runs out before this (ms; `u64::MAX`: none held). Lowered
    /// by each acquisition and worked out again by each walk for expired
    /// locks; an acknowledgement leaves it early, which costs at most one
    /// walk that finds nothing. Spares a window of thousands of slots a
    /// walk every lock check.
    earliest_deadline: u64,
}

impl SharePartition {
    /// A share-partition whose delivery starts at `start`.
    pub fn new(start: i64) -> Self {
        SharePartition {
            start,
            window: VecDeque::new(),
            acquired: 0,
            earliest_deadline: u64::MAX,
        }
    }

    /// When the first lock held may run out (ms), if any is held.
    pub fn lock_deadline(&self) -> Option<u64> {
        (self.acquired > 0).then_some(self.earliest_deadline)
    }

    /// The share-partition start offset: every record below it is done.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// One past the last offset ever acquired (Kafka's end offset): the
    /// records from here on were never delivered.
    pub fn end(&self) -> i64 {
        self.start + self.window.len() as i64
    }

    /// Records acquired now.
    pub fn acquired_count(&self) -> usize {
        self.acquired
    }

    /// The state of `offset` and its delivery count.
    pub fn state_of(&self, offset: i64) -> (RecordState, u16) {
        if offset < self.start {
            return (RecordState::Acknowledged, 0);
        }
        match self.window.get((offset - self.start) as usize) {
            Some(s) => (s.state, s.deliveries),
            None => (RecordState::Available, 0),
        }
    }

    /// The first record to deliver, below `log_end`; `None` when there is
    /// none (all delivered, or the window is full).
    pub fn next_to_deliver(&self, log_end: i64, limits: &Limits) -> Option<i64> {
        let in_window = self
            .window
            .iter()
            .position(|s| s.state == RecordState::Available)
            .map(|i| self.start + i as i64);
        let past = Some(self.end()).filter(|_| self.has_room(limits));
        in_window.or(past).filter(|&o| o < log_end)
    }

    /// Whether the window has room for records never delivered.
    fn has_room(&self, limits: &Limits) -> bool {
        self.window.len() < limits.max_in_flight
    }

    /// Moves the start up to `log_start` (records retention or
    /// DeleteRecords removed are done: they cannot be delivered).
    pub fn follow_log_start(&mut self, log_start: i64) {
        while self.start < log_start {
            match self.window.pop_front() {
                Some(s) => {
                    if s.state == RecordState::Acquired {
                        self.acquired -= 1;
                    }
                }
                None => {
                    self.start = log_start;
                    return;
                }
            }
            self.start += 1;
        }
    }

    /// Cuts the window back to `log_end` when the log ends before it (an
    /// unclean stop lost records that had been delivered): records written
    /// again at those offsets are new, and are delivered.
    pub fn follow_log_end(&mut self, log_end: i64) {
        if log_end >= self.end() {
            return;
        }
        let keep = (log_end - self.start).max(0) as usize;
        for s in self.window.drain(keep..) {
            if s.state == RecordState::Acquired {
                self.acquired -= 1;
            }
        }
        if self.start > log_end {
            self.start = log_end;
        }
    }

    /// Acquires for `member`, until `now_ms + lock`, the deliverable
    /// records of `batches` (what a read of the log from
    /// [`next_to_deliver`](Self::next_to_deliver) found, in order), at
    /// most `max_records` of them (a batch's records past the limit stay
    /// available) and no further than the window's bound. Offsets the
    /// batches skip (a compacted log's gaps) and control batches are
    /// archived as the window passes them. Returns the runs acquired.
    pub fn acquire(
        &mut self,
        member: MemberKey,
        now_ms: u64,
        limits: &Limits,
        batches: &[BatchSpan],
        max_records: usize,
        log_end: i64,
    ) -> Vec<Acquired> {
        let deadline = now_ms.saturating_add(limits.lock_ms);
        let mut runs: Vec<Acquired> = Vec::new();
        let mut taken = 0usize;
        for b in batches {
            if taken >= max_records {
                break;
            }
            // A gap before the batch, past the window: not records.
            while self.end() < b.base.min(log_end) && b.base > self.end() {
                if !self.has_room(limits) {
                    return runs;
                }
                self.window.push_back(Slot {
                    state: RecordState::Archived,
                    ..Slot::FRESH
                });
            }
            let mut offset = b.base.max(self.start);
            while offset <= b.last && offset < log_end && taken < max_records {
                if offset == self.end() {
                    if !self.has_room(limits) {
                        return runs;
                    }
                    self.window.push_back(Slot::FRESH);
                }
                let i = (offset - self.start) as usize;
                let slot = &mut self.window[i];
                if slot.state == RecordState::Available {
                    if b.control {
                        slot.state = RecordState::Archived;
                    } else {
                        slot.state = RecordState::Acquired;
                        slot.deliveries = slot.deliveries.saturating_add(1);
                        slot.owner = member;
                        slot.deadline = deadline;
                        self.acquired += 1;
                        self.earliest_deadline = self.earliest_deadline.min(deadline);
                        taken += 1;
                        match runs.last_mut() {
                            Some(r) if r.last + 1 == offset && r.deliveries == slot.deliveries => {
                                r.last = offset;
                            }
                            _ => runs.push(Acquired {
                                first: offset,
                                last: offset,
                                deliveries: slot.deliveries,
                            }),
                        }
                    }
                }
                offset += 1;
            }
        }
        self.advance();
        runs
    }

    /// Applies `member`'s acknowledgements: per range (first, last,
    /// types), one type for the whole range or one per offset. Either all
    /// apply or none (the first offset the member does not hold, or a
    /// malformed range, refuses them all).
    pub fn acknowledge(
        &mut self,
        member: MemberKey,
        ranges: &[(i64, i64, Vec<Acknowledgement>)],
        limits: &Limits,
    ) -> Result<(), AckError> {
        for (first, last, types) in ranges {
            if first > last || first < &0 {
                return Err(AckError::Malformed);
            }
            let len = (last - first + 1) as usize;
            if types.len() != 1 && types.len() != len {
                return Err(AckError::Malformed);
            }
            for (k, offset) in (*first..=*last).enumerate() {
                // A gap needs no lock: the member says the offset holds
                // no record, which is true whoever holds it.
                let kind = types[if types.len() == 1 { 0 } else { k }];
                if !self.held_by(offset, member, kind) {
                    return Err(AckError::NotHeld(offset));
                }
            }
        }
        for (first, last, types) in ranges {
            for (k, offset) in (*first..=*last).enumerate() {
                let kind = types[if types.len() == 1 { 0 } else { k }];
                let i = (offset - self.start) as usize;
                let slot = &mut self.window[i];
                if slot.state != RecordState::Acquired {
                    continue; // a gap acknowledged twice
                }
                self.acquired -= 1;
                slot.state = match kind {
                    Acknowledgement::Accept => RecordState::Acknowledged,
                    Acknowledgement::Gap | Acknowledgement::Reject => RecordState::Archived,
                    Acknowledgement::Release => returned(slot.deliveries, limits),
                };
            }
        }
        self.advance();
        Ok(())
    }

    /// Whether `member` may acknowledge `offset` as `kind`.
    fn held_by(&self, offset: i64, member: MemberKey, kind: Acknowledgement) -> bool {
        if offset < self.start {
            return false;
        }
        match self.window.get((offset - self.start) as usize) {
            Some(s) if s.state == RecordState::Acquired => s.owner == member,
            Some(s) => kind == Acknowledgement::Gap && s.state.is_done(),
            None => false,
        }
    }

    /// Gives back every record `member` holds (it left the group, or its
    /// share session closed); how many.
    pub fn release_member(&mut self, member: MemberKey, limits: &Limits) -> usize {
        self.release_where(limits, |s| s.owner == member)
    }

    /// Gives back every record whose lock ran out by `now_ms`; how many.
    /// Walks the window only once the earliest lock is due.
    pub fn expire(&mut self, now_ms: u64, limits: &Limits) -> usize {
        if self.acquired == 0 || now_ms < self.earliest_deadline {
            return 0;
        }
        let n = self.release_where(limits, |s| s.deadline <= now_ms);
        self.earliest_deadline = self
            .window
            .iter()
            .filter(|s| s.state == RecordState::Acquired)
            .map(|s| s.deadline)
            .min()
            .unwrap_or(u64::MAX);
        n
    }

    fn release_where(&mut self, limits: &Limits, which: impl Fn(&Slot) -> bool) -> usize {
        if self.acquired == 0 {
            return 0;
        }
        let mut n = 0;
        for slot in self.window.iter_mut() {
            if slot.state == RecordState::Acquired && which(slot) {
                slot.state = returned(slot.deliveries, limits);
                n += 1;
            }
        }
        self.acquired -= n;
        self.advance();
        n
    }

    /// Moves the start over the done records at the window's front.
    fn advance(&mut self) {
        while self.window.front().is_some_and(|s| s.state.is_done()) {
            self.window.pop_front();
            self.start += 1;
        }
    }

    /// What a restart must know: the start and, per offset of the window,
    /// its state (an acquired record as available: no lock outlives the
    /// broker) and delivery count, as runs of equal slots.
    pub fn snapshot(&self) -> Snapshot {
        let mut runs: Vec<StateRun> = Vec::new();
        for (i, s) in self.window.iter().enumerate() {
            let offset = self.start + i as i64;
            let state = match s.state {
                RecordState::Acquired => RecordState::Available,
                other => other,
            };
            match runs.last_mut() {
                Some(r) if r.state == state && r.deliveries == s.deliveries => r.last = offset,
                _ => runs.push(StateRun {
                    first: offset,
                    last: offset,
                    state,
                    deliveries: s.deliveries,
                }),
            }
        }
        Snapshot {
            start: self.start,
            runs,
        }
    }

    /// The share-partition a [`snapshot`](Self::snapshot) describes, with
    /// no record acquired. Runs outside the window it names, or out of
    /// order, are dropped (a damaged snapshot costs redeliveries, never a
    /// record skipped).
    pub fn from_snapshot(snapshot: &Snapshot) -> Self {
        let mut p = SharePartition::new(snapshot.start);
        for r in &snapshot.runs {
            if r.first != p.end() || r.last < r.first || r.state == RecordState::Acquired {
                break;
            }
            for _ in r.first..=r.last {
                p.window.push_back(Slot {
                    state: r.state,
                    deliveries: r.deliveries,
                    ..Slot::FRESH
                });
            }
        }
        // Trailing fresh slots say nothing the window's end does not.
        while p.window.back() == Some(&Slot::FRESH) {
            p.window.pop_back();
        }
        p.advance();
        p
    }
}

/// The state of a record given back after `deliveries` deliveries.
fn returned(deliveries: u16, limits: &Limits) -> RecordState {
    if deliveries >= limits.max_deliveries {
        RecordState::Archived
    } else {
        RecordState::Available
    }
}

/// A run of offsets in one state with one delivery count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateRun {
    /// The first offset.
    pub first: i64,
    /// The last offset.
    pub last: i64,
    /// Their state (never acquired).
    pub state: RecordState,
    /// Their delivery count.
    pub deliveries: u16,
}

/// A share-partition's durable state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The start offset.
    pub start: i64,
    /// The window, as runs from the start.
    pub runs: Vec<StateRun>,
}

#[cfg(test)]
mod tests {
    use super::Acknowledgement::*;
    use super::*;

    fn batch(base: i64, last: i64) -> BatchSpan {
        BatchSpan {
            base,
            last,
            control: false,
        }
    }

    fn limits() -> Limits {
        Limits {
            lock_ms: 1000,
            max_deliveries: 3,
            max_in_flight: 100,
        }
    }

    #[test]
    fn two_members_never_hold_the_same_record() {
        let mut p = SharePartition::new(0);
        let l = limits();
        let a = p.acquire(1, 0, &l, &[batch(0, 9)], 4, 10);
        assert_eq!(
            a,
            [Acquired {
                first: 0,
                last: 3,
                deliveries: 1
            }]
        );
        assert_eq!(p.next_to_deliver(10, &l), Some(4));
        let b = p.acquire(2, 0, &l, &[batch(0, 9)], 100, 10);
        assert_eq!((b[0].first, b[0].last), (4, 9));
        assert_eq!(p.next_to_deliver(10, &l), None);
        assert_eq!(p.acquired_count(), 10);
        // Member 2 cannot acknowledge member 1's records.
        assert_eq!(
            p.acknowledge(2, &[(0, 0, vec![Accept])], &l),
            Err(AckError::NotHeld(0))
        );
    }

    #[test]
    fn the_start_moves_over_done_records_only() {
        let mut p = SharePartition::new(0);
        let l = limits();
        p.acquire(1, 0, &l, &[batch(0, 9)], 100, 10);
        p.acknowledge(1, &[(2, 9, vec![Accept])], &l).unwrap();
        assert_eq!(p.start(), 0);
        p.acknowledge(1, &[(0, 1, vec![Reject, Accept])], &l)
            .unwrap();
        assert_eq!(p.start(), 10);
        assert_eq!(p.end(), 10);
    }

    #[test]
    fn a_refused_acknowledgement_applies_nothing() {
        let mut p = SharePartition::new(0);
        let l = limits();
        p.acquire(1, 0, &l, &[batch(0, 4)], 100, 5);
        let before = p.clone();
        // The second range names an offset never delivered.
        assert_eq!(
            p.acknowledge(1, &[(0, 1, vec![Accept]), (4, 6, vec![Accept])], &l),
            Err(AckError::NotHeld(5))
        );
        assert_eq!(p, before);
        assert_eq!(
            p.acknowledge(1, &[(0, 2, vec![Accept, Accept])], &l),
            Err(AckError::Malformed)
        );
        assert_eq!(
            p.acknowledge(1, &[(3, 2, vec![Accept])], &l),
            Err(AckError::Malformed)
        );
        assert_eq!(p, before);
    }

    #[test]
    fn released_and_expired_records_come_back_until_the_delivery_limit() {
        let mut p = SharePartition::new(0);
        let l = limits();
        p.acquire(1, 0, &l, &[batch(0, 0)], 100, 1);
        p.acknowledge(1, &[(0, 0, vec![Release])], &l).unwrap();
        let again = p.acquire(2, 10, &l, &[batch(0, 0)], 100, 1);
        assert_eq!(again[0].deliveries, 2);
        assert_eq!(p.expire(1009, &l), 0);
        assert_eq!(p.expire(1010, &l), 1);
        let third = p.acquire(1, 2000, &l, &[batch(0, 0)], 100, 1);
        assert_eq!(third[0].deliveries, 3);
        // The third time back it is archived: the start moves past it.
        assert_eq!(p.release_member(1, &l), 1);
        assert_eq!(p.start(), 1);
        assert_eq!(p.next_to_deliver(1, &l), None);
    }

    #[test]
    fn locks_run_out_in_turn_whatever_was_acknowledged_between() {
        let mut p = SharePartition::new(0);
        let l = limits(); // a 1 s lock
        assert_eq!(p.lock_deadline(), None);
        p.acquire(1, 0, &l, &[batch(0, 0)], 100, 3);
        p.acquire(2, 300, &l, &[batch(1, 1)], 100, 3);
        p.acquire(3, 600, &l, &[batch(2, 2)], 100, 3);
        assert_eq!(p.lock_deadline(), Some(1_000));
        // The first lock is acknowledged away: its deadline stands until
        // a walk finds nothing due and moves on to the next.
        p.acknowledge(1, &[(0, 0, vec![Accept])], &l).unwrap();
        assert_eq!(p.expire(999, &l), 0);
        assert_eq!(p.expire(1_000, &l), 0);
        assert_eq!(p.lock_deadline(), Some(1_300));
        assert_eq!(p.expire(1_299, &l), 0);
        assert_eq!(p.expire(1_300, &l), 1);
        assert_eq!(p.lock_deadline(), Some(1_600));
        assert_eq!(p.expire(5_000, &l), 1);
        assert_eq!(p.lock_deadline(), None);
        assert_eq!(p.acquired_count(), 0);
    }

    #[test]
    fn gaps_and_markers_are_archived_not_delivered() {
        let mut p = SharePartition::new(0);
        let l = limits();
        let batches = [
            batch(0, 1),
            // 2..=4 compacted away.
            batch(5, 5),
            BatchSpan {
                base: 6,
                last: 6,
                control: true,
            },
            batch(7, 8),
        ];
        let got = p.acquire(1, 0, &l, &batches, 100, 9);
        assert_eq!(
            got.iter().map(|a| (a.first, a.last)).collect::<Vec<_>>(),
            [(0, 1), (5, 5), (7, 8)]
        );
        assert_eq!(p.state_of(3).0, RecordState::Archived);
        assert_eq!(p.state_of(6).0, RecordState::Archived);
        // A gap inside a batch the member says holds no record.
        p.acknowledge(
            1,
            &[
                (0, 1, vec![Accept]),
                (5, 5, vec![Gap]),
                (7, 8, vec![Accept]),
            ],
            &l,
        )
        .unwrap();
        assert_eq!(p.start(), 9);
    }

    #[test]
    fn the_window_is_bounded() {
        let mut p = SharePartition::new(0);
        let l = Limits {
            max_in_flight: 5,
            ..limits()
        };
        let got = p.acquire(1, 0, &l, &[batch(0, 99)], 1000, 100);
        assert_eq!((got[0].first, got[0].last), (0, 4));
        assert_eq!(p.next_to_deliver(100, &l), None);
        p.acknowledge(1, &[(0, 1, vec![Accept])], &l).unwrap();
        assert_eq!(p.next_to_deliver(100, &l), Some(5));
        let more = p.acquire(1, 0, &l, &[batch(0, 99)], 1000, 100);
        assert_eq!((more[0].first, more[0].last), (5, 6));
    }

    #[test]
    fn the_log_start_moving_up_drops_what_it_passes() {
        let mut p = SharePartition::new(0);
        let l = limits();
        p.acquire(1, 0, &l, &[batch(0, 9)], 100, 10);
        p.follow_log_start(4);
        assert_eq!((p.start(), p.acquired_count()), (4, 6));
        p.follow_log_start(20);
        assert_eq!((p.start(), p.end(), p.acquired_count()), (20, 20, 0));
    }

    #[test]
    fn records_written_again_after_a_cut_log_are_delivered() {
        let mut p = SharePartition::new(0);
        let l = limits();
        p.acquire(1, 0, &l, &[batch(0, 9)], 100, 10);
        p.acknowledge(1, &[(0, 9, vec![Accept])], &l).unwrap();
        assert_eq!(p.start(), 10);
        // An unclean stop cut the log at 6; offsets 6.. are written again.
        p.follow_log_end(6);
        assert_eq!((p.start(), p.end()), (6, 6));
        assert_eq!(p.next_to_deliver(8, &l), Some(6));
        let mut q = SharePartition::new(0);
        q.acquire(1, 0, &l, &[batch(0, 9)], 100, 10);
        q.follow_log_end(4);
        assert_eq!((q.start(), q.end(), q.acquired_count()), (0, 4, 4));
    }

    #[test]
    fn a_snapshot_restores_all_but_the_locks() {
        let mut p = SharePartition::new(3);
        let l = limits();
        p.acquire(1, 0, &l, &[batch(3, 12)], 100, 13);
        p.acknowledge(1, &[(5, 6, vec![Accept]), (7, 7, vec![Release])], &l)
            .unwrap();
        let restored = SharePartition::from_snapshot(&p.snapshot());
        assert_eq!(restored.start(), 3);
        assert_eq!(restored.acquired_count(), 0);
        assert_eq!(restored.state_of(3), (RecordState::Available, 1));
        assert_eq!(restored.state_of(5), (RecordState::Acknowledged, 1));
        assert_eq!(restored.state_of(7), (RecordState::Available, 1));
        assert_eq!(restored.end(), 13);
        // A damaged snapshot whose runs skip ahead keeps what came first.
        let mut s = p.snapshot();
        s.runs[1].first += 1;
        assert_eq!(SharePartition::from_snapshot(&s).end(), 5);
    }
}
