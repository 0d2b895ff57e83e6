//! A hashed timer wheel with millisecond ticks, owned by one loop.
//!
//! 1024 slots of 1 ms. A timer goes in the slot of its deadline tick modulo
//! the wheel size and carries its absolute deadline, so one that is more than
//! a lap away is just skipped on the laps before it is due. Scheduling and
//! cancelling are O(1); cancellation marks the entry and the slot drops it
//! when next visited. Entries live in a [`Slab`] with generations, so a
//! stale [`TimerId`] never cancels somebody else's timer.

use crate::slab::Slab;
use std::time::{Duration, Instant};

const SLOTS: usize = 1024;
const MASK: u64 = SLOTS as u64 - 1;

/// Names a scheduled timer, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    index: u32,
    generation: u32,
}

struct Entry<T> {
    deadline: u64,
    period: u64,
    payload: Option<T>,
}

/// The wheel. `T` is what a timer carries back when it fires.
pub(crate) struct TimerWheel<T> {
    origin: Instant,
    /// The last tick whose slot has been processed.
    tick: u64,
    slots: Vec<Vec<u32>>,
    /// Scheduled entries, and cancelled ones not yet visited.
    entries: Slab<Entry<T>>,
    /// Timers scheduled and not cancelled or fired.
    live: usize,
}

impl<T: Clone> TimerWheel<T> {
    pub(crate) fn new(origin: Instant) -> Self {
        TimerWheel {
            origin,
            tick: 0,
            slots: (0..SLOTS).map(|_| Vec::new()).collect(),
            entries: Slab::new(u32::MAX),
            live: 0,
        }
    }

    fn tick_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_millis() as u64
    }

    /// Timers scheduled and not yet fired (repeating ones count once).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Fires `payload` after `delay` (rounded up to the next tick), then
    /// every `period` if one is given.
    pub(crate) fn schedule(
        &mut self,
        now: Instant,
        delay: Duration,
        period: Option<Duration>,
        payload: T,
    ) -> TimerId {
        let delay_ms = delay.as_nanos().div_ceil(1_000_000) as u64;
        let deadline = (self.tick_of(now) + delay_ms.max(1)).max(self.tick + 1);
        let period = period.map_or(0, |p| (p.as_millis() as u64).max(1));
        let (index, generation) = self.entries.insert(Entry {
            deadline,
            period,
            payload: Some(payload),
        });
        let id = TimerId { index, generation };
        self.slots[(deadline & MASK) as usize].push(index);
        self.live += 1;
        id
    }

    /// Cancels the timer; returns whether it was still pending.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        match self.entries.get_mut(id.index as usize, id.generation) {
            Some(e) if e.payload.is_some() => {
                e.payload = None;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// How long the loop may sleep before the next timer can be due:
    /// `None` when there are no timers.
    pub(crate) fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if self.live == 0 {
            return None;
        }
        let now_tick = self.tick_of(now);
        // The first non-empty slot after the processed tick; an entry there
        // may be a lap early, which only costs one extra wake-up.
        for step in 1..=SLOTS as u64 {
            let t = self.tick + step;
            if !self.slots[(t & MASK) as usize].is_empty() {
                return Some(Duration::from_millis(t.saturating_sub(now_tick)));
            }
        }
        Some(Duration::from_millis(SLOTS as u64))
    }

    /// Moves the wheel to `now`, pushing every payload that came due into
    /// `fired` together with its id (a repeating timer keeps its id).
    pub(crate) fn advance(&mut self, now: Instant, fired: &mut Vec<(TimerId, T)>) {
        let now_tick = self.tick_of(now);
        if now_tick <= self.tick {
            return;
        }
        // Past one lap every slot is visited once; deadlines decide the rest.
        let first = if now_tick - self.tick > SLOTS as u64 {
            now_tick - SLOTS as u64 + 1
        } else {
            self.tick + 1
        };
        for t in first..=now_tick {
            let slot = (t & MASK) as usize;
            if self.slots[slot].is_empty() {
                continue;
            }
            let mut pending = std::mem::take(&mut self.slots[slot]);
            pending.retain(|&index| {
                let entries = &mut self.entries;
                let (_, generation) = entries
                    .full_name(index as usize)
                    .expect("listed entries are held");
                let e = entries
                    .at_mut(index as usize)
                    .expect("listed entries are held");
                if e.payload.is_none() {
                    // Cancelled: recycle the entry.
                    entries.remove(index as usize);
                    return false;
                }
                if e.deadline > now_tick {
                    return true;
                }
                let id = TimerId { index, generation };
                if e.period > 0 {
                    fired.push((id, e.payload.clone().expect("checked above")));
                    e.deadline = now_tick + e.period;
                    let next = (e.deadline & MASK) as usize;
                    if next == slot {
                        return true;
                    }
                    self.slots[next].push(index);
                } else {
                    fired.push((id, e.payload.take().expect("checked above")));
                    entries.remove(index as usize);
                    self.live -= 1;
                }
                false
            });
            // Entries moved into this slot while we held it are kept too.
            pending.append(&mut self.slots[slot]);
            self.slots[slot] = pending;
        }
        self.tick = now_tick;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fires_in_deadline_order_and_not_before() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        w.schedule(t0, ms(5), None, "b");
        w.schedule(t0, ms(2), None, "a");
        w.schedule(t0, ms(3000), None, "far");
        let mut fired = Vec::new();
        w.advance(t0 + ms(1), &mut fired);
        assert!(fired.is_empty());
        w.advance(t0 + ms(2), &mut fired);
        assert_eq!(fired.iter().map(|f| f.1).collect::<Vec<_>>(), ["a"]);
        w.advance(t0 + ms(1500), &mut fired);
        assert_eq!(fired.len(), 2, "the far timer is more than a lap away");
        assert_eq!(w.len(), 1);
        w.advance(t0 + ms(3000), &mut fired);
        assert_eq!(fired.last().unwrap().1, "far");
        assert_eq!(w.len(), 0);
        assert_eq!(w.next_timeout(t0 + ms(3000)), None);
    }

    #[test]
    fn cancel_and_stale_ids() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        let a = w.schedule(t0, ms(10), None, 1);
        assert!(w.cancel(a));
        assert!(!w.cancel(a));
        let mut fired = Vec::new();
        w.advance(t0 + ms(20), &mut fired);
        assert!(fired.is_empty());
        // The slot is reused with a new generation: the old id is dead.
        let b = w.schedule(t0 + ms(20), ms(10), None, 2);
        assert!(!w.cancel(a));
        assert_ne!(a, b);
        w.advance(t0 + ms(40), &mut fired);
        assert_eq!(fired, vec![(b, 2)]);
    }

    #[test]
    fn repeating_timers_repeat_until_cancelled() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        let id = w.schedule(t0, ms(10), Some(ms(10)), 7);
        let mut fired = Vec::new();
        for step in 1..=10 {
            w.advance(t0 + ms(step * 10), &mut fired);
        }
        assert_eq!(fired.len(), 10);
        assert!(fired.iter().all(|&(i, p)| i == id && p == 7));
        assert!(w.cancel(id));
        w.advance(t0 + ms(200), &mut fired);
        assert_eq!(fired.len(), 10);
    }

    #[test]
    fn next_timeout_points_at_the_nearest_slot() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0);
        w.schedule(t0, ms(7), None, ());
        assert_eq!(w.next_timeout(t0), Some(ms(7)));
        assert_eq!(w.next_timeout(t0 + ms(3)), Some(ms(4)));
    }
}
