//! The broker-wide bound on fetch sessions: how many are open, how many
//! partitions they hold together, and which open session makes room for
//! a new one when the bound is reached.
//!
//! Eviction follows Kafka's `FetchSessionCache`: a session the broker
//! needs room for may take the place of one unused for `min_eviction`
//! (least recently used first), or failing that of one that has been open
//! for `min_eviction` and holds fewer partitions than the new one
//! (smallest first), so a consumer that went quiet, or a small one, does
//! not keep a large, busy one from the cheaper fetches. No session is
//! evicted unless the new one then fits, and sessions evicted for their
//! size together hold fewer partitions than the new one, so an eviction
//! always saves more than it costs.
//!
//! An evicted session is struck off the budget at once, and handed back
//! (its id and `S`, where it is held) to the caller, which takes it out of
//! its connection's slot if no one holds that slot; when the slot is busy,
//! the session is dropped by its own connection, whose next fetch sees its
//! [`Lease`] ended and is refused `FETCH_SESSION_ID_NOT_FOUND`.
//!
//! Locks: the budget's mutex is taken while a loop holds its own slot,
//! never the other way round, and nothing is locked while it is held.
//!
//! May use: std only (what holds a session is the caller's `S`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a session is safe from eviction by default: Kafka's
/// `MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS`.
const DEFAULT_MIN_EVICTION: Duration = Duration::from_secs(120);

/// What a session shares with the budget: when it was last fetched, and
/// whether the budget has evicted it. Its connection touches it on every
/// incremental fetch without taking the budget's lock.
#[derive(Debug)]
pub(super) struct Lease {
    /// Milliseconds from the budget's start to the session's last fetch.
    last_used_ms: AtomicU64,
    ended: AtomicBool,
}

impl Lease {
    /// Notes a fetch of the session at `now`; false if the session was
    /// evicted and must go.
    ///
    /// Relaxed suffices for both: each is a value read alone, publishing
    /// nothing else, and a fetch's time that reaches the budget a little
    /// late at worst lets a session look idle for that long.
    pub(super) fn touch<S>(&self, budget: &Budget<S>, now: Instant) -> bool {
        if self.ended.load(Ordering::Relaxed) {
            return false;
        }
        self.last_used_ms
            .store(budget.millis(now), Ordering::Relaxed);
        true
    }
}

/// How many sessions are open and how many partitions they hold, against
/// the broker's limits; `S` says where each session is held. Its lock is
/// taken when a session opens, grows, shrinks or closes: never for a fetch
/// of an unchanged session.
#[derive(Debug)]
pub struct Budget<S> {
    max_sessions: usize,
    max_partitions: usize,
    min_eviction: Duration,
    /// The time the leases' milliseconds count from.
    start: Instant,
    used: Mutex<Used<S>>,
}

/// One open session, as the budget knows it.
#[derive(Debug)]
struct Held<S> {
    partitions: usize,
    opened_ms: u64,
    lease: Arc<Lease>,
    slot: S,
}

#[derive(Debug)]
struct Used<S> {
    partitions: usize,
    last_id: i32,
    open: HashMap<i32, Held<S>>,
    evictions: u64,
}

/// Sessions struck off the budget (id, where held), still to be taken out
/// of their slots.
pub(super) type Evicted<S> = Vec<(i32, S)>;

impl<S> Budget<S> {
    /// At most `max_sessions` sessions open at once (0: none) holding at
    /// most `max_partitions` partitions together; a session is safe from
    /// eviction for Kafka's two minutes.
    pub fn new(max_sessions: usize, max_partitions: usize) -> Arc<Self> {
        Self::with_min_eviction(max_sessions, max_partitions, DEFAULT_MIN_EVICTION)
    }

    /// As [`Budget::new`], with sessions safe from eviction for
    /// `min_eviction` after they open and after each fetch.
    pub fn with_min_eviction(
        max_sessions: usize,
        max_partitions: usize,
        min_eviction: Duration,
    ) -> Arc<Self> {
        Arc::new(Budget {
            max_sessions,
            max_partitions,
            min_eviction,
            start: Instant::now(),
            used: Mutex::new(Used {
                partitions: 0,
                last_id: 0,
                open: HashMap::new(),
                evictions: 0,
            }),
        })
    }

    fn used(&self) -> MutexGuard<'_, Used<S>> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64
    }

    /// A new session's id and lease, if one more session of `partitions`
    /// fits, and the sessions evicted to make it fit. `slot` is where the
    /// session will be held.
    pub(super) fn open(
        &self,
        partitions: usize,
        slot: S,
        now: Instant,
    ) -> Option<(i32, Arc<Lease>, Evicted<S>)> {
        if self.max_sessions == 0 || partitions > self.max_partitions {
            return None;
        }
        let now_ms = self.millis(now);
        let mut used = self.used();
        let evicted = self.make_room(&mut used, 1, partitions, now_ms, Some(partitions), None)?;
        used.partitions += partitions;
        // Positive and never 0 (no session); unique among open sessions,
        // which number far fewer than 2^31.
        let id = loop {
            used.last_id = used.last_id % i32::MAX + 1;
            if !used.open.contains_key(&used.last_id) {
                break used.last_id;
            }
        };
        let lease = Arc::new(Lease {
            last_used_ms: AtomicU64::new(now_ms),
            ended: AtomicBool::new(false),
        });
        used.open.insert(
            id,
            Held {
                partitions,
                opened_ms: now_ms,
                lease: lease.clone(),
                slot,
            },
        );
        Some((id, lease, evicted))
    }

    /// Room for `more` partitions in open session `id`, evicting idle
    /// sessions if that makes room (never one for its size: a session
    /// that grows is not new), and the sessions evicted; `None` if there
    /// is no room, or if `id` was evicted.
    pub(super) fn grow(&self, id: i32, more: usize, now: Instant) -> Option<Evicted<S>> {
        let now_ms = self.millis(now);
        let mut used = self.used();
        if !used.open.contains_key(&id) {
            return None;
        }
        let evicted = self.make_room(&mut used, 0, more, now_ms, None, Some(id))?;
        used.partitions += more;
        used.open
            .get_mut(&id)
            .expect("make_room keeps the session it makes room for")
            .partitions += more;
        Some(evicted)
    }

    /// Open session `id` holds `fewer` partitions fewer.
    pub(super) fn shrink(&self, id: i32, fewer: usize) {
        let mut used = self.used();
        if let Some(held) = used.open.get_mut(&id) {
            held.partitions -= fewer;
            used.partitions -= fewer;
        }
    }

    /// Session `id` is gone (nothing to do if it was evicted).
    pub(super) fn close(&self, id: i32) {
        let mut used = self.used();
        if let Some(held) = used.open.remove(&id) {
            used.partitions -= held.partitions;
        }
    }

    /// Strikes off the sessions that must go for `sessions` more sessions
    /// and `partitions` more partitions to fit, and returns them; `None`
    /// (and nothing struck off) if no choice makes them fit. Idle sessions
    /// go first, least recently used first; then, where `strength` is the
    /// new session's size, sessions open for `min_eviction` that are
    /// smaller than it, smallest first, as long as those together are.
    /// Session `keep` (the one that grows) is never chosen.
    fn make_room(
        &self,
        used: &mut Used<S>,
        sessions: usize,
        partitions: usize,
        now_ms: u64,
        strength: Option<usize>,
        keep: Option<i32>,
    ) -> Option<Evicted<S>> {
        let fits = |open: usize, held: usize| {
            open + sessions <= self.max_sessions && held + partitions <= self.max_partitions
        };
        if fits(used.open.len(), used.partitions) {
            return Some(Vec::new());
        }
        let window = self.min_eviction.as_millis() as u64;
        let idle = |h: &Held<S>| {
            now_ms.saturating_sub(h.lease.last_used_ms.load(Ordering::Relaxed)) >= window
        };
        let others = || used.open.iter().filter(|(&id, _)| Some(id) != keep);
        let mut stale: Vec<(u64, i32)> = others()
            .filter(|(_, h)| idle(h))
            .map(|(&id, h)| (h.lease.last_used_ms.load(Ordering::Relaxed), id))
            .collect();
        stale.sort_unstable();
        let mut weaker: Vec<(usize, i32)> = match strength {
            Some(size) => others()
                .filter(|(_, h)| {
                    !idle(h) && h.partitions < size && now_ms.saturating_sub(h.opened_ms) >= window
                })
                .map(|(&id, h)| (h.partitions, id))
                .collect(),
            None => Vec::new(),
        };
        weaker.sort_unstable();
        let (mut open, mut held) = (used.open.len(), used.partitions);
        let mut chosen = Vec::new();
        let mut for_strength = 0;
        let stale_ids = stale.iter().map(|&(_, id)| id);
        let weaker_ids = weaker.iter().map(|&(_, id)| id);
        for (id, by_size) in stale_ids
            .map(|id| (id, false))
            .chain(weaker_ids.map(|id| (id, true)))
        {
            if fits(open, held) {
                break;
            }
            let size = used.open[&id].partitions;
            if by_size {
                for_strength += size;
                if for_strength >= strength.unwrap_or(0) {
                    break;
                }
            }
            open -= 1;
            held -= size;
            chosen.push(id);
        }
        if !fits(open, held) {
            return None;
        }
        used.evictions += chosen.len() as u64;
        let evicted = chosen
            .into_iter()
            .map(|id| {
                let h = used
                    .open
                    .remove(&id)
                    .expect("chosen from the open sessions");
                used.partitions -= h.partitions;
                h.lease.ended.store(true, Ordering::Relaxed);
                (id, h.slot)
            })
            .collect();
        Some(evicted)
    }

    /// Sessions open now, and the partitions they hold.
    pub fn in_use(&self) -> (usize, usize) {
        let used = self.used();
        (used.open.len(), used.partitions)
    }

    /// Sessions evicted so far to make room for others.
    pub fn evictions(&self) -> u64 {
        self.used().evictions
    }
}
