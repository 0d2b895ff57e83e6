//! The answer side of a fetch session: what of a fetch's answer the
//! client must hear, and what the session remembers of it.
//!
//! May use: the session ([`super`]), the fetch response's plain data and
//! the error codes.

use super::{lock, SessionStep};
use crate::protocol::error_code as ec;
use crate::protocol::fetch_response::{FetchedPartition, FetchedTopic};
use std::time::Duration;

/// A fetch's answer as far as sessions shape it.
#[derive(Debug)]
pub struct Answered {
    /// The top-level error code (a session the request could not use).
    pub error_code: i16,
    /// The session the client may go on with (0: none).
    pub session_id: i32,
    /// The partitions the client hears.
    pub topics: Vec<FetchedTopic>,
    /// How long a client over its fetch quota must wait.
    pub throttle: Duration,
}

impl Answered {
    fn empty(error_code: i16, session_id: i32, throttle: Duration) -> Self {
        Answered {
            error_code,
            session_id,
            topics: Vec::new(),
            throttle,
        }
    }
}

fn partitions(topics: &[FetchedTopic]) -> impl Iterator<Item = &FetchedPartition> {
    topics.iter().flat_map(|t| &t.partitions)
}

impl SessionStep {
    /// The answer to the fetch from `topics`, which hold every partition
    /// the request stood for, in its order. `throttle` is shown the topics
    /// that would go out (a fetch quota counts their bytes) and says how
    /// long the client must wait for them: a throttled answer carries no
    /// topics and leaves the session as it was, so the next fetch reads
    /// the same records again (Kafka's `getThrottledResponse`).
    pub fn answer(
        &self,
        mut topics: Vec<FetchedTopic>,
        throttle: impl FnOnce(&[FetchedTopic]) -> Duration,
    ) -> Answered {
        match self {
            SessionStep::None => {
                let wait = throttle(&topics);
                if !wait.is_zero() {
                    return Answered::empty(ec::NONE, 0, wait);
                }
                Answered {
                    error_code: ec::NONE,
                    session_id: 0,
                    topics,
                    throttle: wait,
                }
            }
            SessionStep::Refused(code) => Answered::empty(*code, 0, throttle(&[])),
            SessionStep::Open { slot, id, members } => {
                let mut held = lock(slot);
                let wait = throttle(&topics);
                let Some(session) = held.as_mut().filter(|s| s.id == *id && wait.is_zero()) else {
                    // Throttled, the session goes (the client opens one
                    // next time, as after Kafka's throttled full fetch);
                    // replaced by a full fetch pipelined behind this one,
                    // it is gone already.
                    if held.as_ref().is_some_and(|s| s.id == *id) {
                        *held = None;
                    }
                    if !wait.is_zero() {
                        return Answered::empty(ec::NONE, 0, wait);
                    }
                    return Answered {
                        error_code: ec::NONE,
                        session_id: 0,
                        topics,
                        throttle: wait,
                    };
                };
                for (p, &place) in partitions(&topics).zip(members) {
                    session.entry_mut(place).told(p);
                }
                Answered {
                    error_code: ec::NONE,
                    session_id: *id,
                    topics,
                    throttle: wait,
                }
            }
            SessionStep::Incremental {
                slot,
                id,
                next_epoch,
                members,
            } => {
                let mut held = lock(slot);
                let Some(session) = held.as_mut().filter(|s| s.id == *id) else {
                    // A full fetch pipelined behind this one closed it.
                    return Answered::empty(ec::FETCH_SESSION_ID_NOT_FOUND, 0, throttle(&[]));
                };
                if session.next_epoch != *next_epoch {
                    // An incremental fetch pipelined behind this one took
                    // the session on: this answer no longer fits it.
                    return Answered::empty(ec::INVALID_FETCH_SESSION_EPOCH, 0, throttle(&[]));
                }
                // Only this fetch's answer changes the order between its
                // request and the next one's.
                debug_assert_eq!(&session.order, members);
                let mut kept = Vec::new();
                let mut each = members.iter();
                for t in &mut topics {
                    t.partitions.retain(|p| {
                        let place = *each.next().expect("one member per partition");
                        let keep = session.entry(place).must_answer(p);
                        if keep {
                            kept.push(place);
                        }
                        keep
                    });
                }
                topics.retain(|t| !t.partitions.is_empty());
                let wait = throttle(&topics);
                if !wait.is_zero() {
                    return Answered::empty(ec::NONE, *id, wait);
                }
                let mut moved = Vec::new();
                for (p, &place) in partitions(&topics).zip(&kept) {
                    session.entry_mut(place).told(p);
                    if p.records.as_ref().is_some_and(|r| r.remaining() > 0) {
                        moved.push(place);
                    }
                }
                if !moved.is_empty() {
                    // Partitions that returned records go to the back, in
                    // the order they came (`moved` follows `members`), so
                    // the next fetch's byte limit reaches the others first.
                    let mut rest = moved.iter().peekable();
                    let mut order: Vec<u32> = members
                        .iter()
                        .copied()
                        .filter(|&place| {
                            let was_moved = rest.peek() == Some(&&place);
                            if was_moved {
                                rest.next();
                            }
                            !was_moved
                        })
                        .collect();
                    order.extend_from_slice(&moved);
                    session.order = order;
                }
                Answered {
                    error_code: ec::NONE,
                    session_id: *id,
                    topics,
                    throttle: wait,
                }
            }
        }
    }
}
