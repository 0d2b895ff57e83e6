//! Load balancers: which provider gets the next call.
//!
//! Four, as Dubbo has them: [`WeightedRandom`] (the default),
//! [`SmoothRoundRobin`] (nginx's smooth weighted round robin),
//! [`LeastActive`] (fewest calls in flight, weighted random among ties) and
//! [`ConsistentHash`] (160 virtual nodes per provider, keyed on what the
//! caller chooses). [`LoadBalancer`] is the extension point for a fifth.
//!
//! Balancers keep their per-provider state in the [`Endpoint`]s themselves
//! (atomics), so a selection takes no lock and allocates nothing, except
//! the consistent-hash ring, rebuilt when the provider list changes.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// A provider as the balancers see it: its address, its weight, and the
/// state they keep about it.
#[derive(Debug)]
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its share of calls relative to the others (0 takes none unless all
    /// are 0).
    pub weight: u32,
    active: AtomicUsize,
    current_weight: AtomicI64,
}

impl Endpoint {
    /// An endpoint at `addr` with `weight`.
    pub fn new(addr: SocketAddr, weight: u32) -> Endpoint {
        Endpoint {
            addr,
            weight,
            active: AtomicUsize::new(0),
            current_weight: AtomicI64::new(0),
        }
    }

    /// Calls in flight to it.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Counts a call in flight until the guard drops.
    pub fn begin_call(self: &Arc<Self>) -> ActiveCall {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveCall(self.clone())
    }
}

/// A call in flight to an endpoint (see [`Endpoint::begin_call`]).
#[derive(Debug)]
pub struct ActiveCall(Arc<Endpoint>);

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Picks a provider for a call.
pub trait LoadBalancer: Send + Sync + std::fmt::Debug {
    /// The index in `endpoints` of the provider for a call whose hash key
    /// is `key` (only [`ConsistentHash`] reads it); `None` when the list is
    /// empty.
    fn select(&self, endpoints: &[Arc<Endpoint>], key: u64) -> Option<usize>;
}

/// A hash of `value` for [`LoadBalancer::select`]'s key.
pub fn hash_key<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

fn random_below(n: u64) -> u64 {
    use rand::Rng;
    rand::rng().random_range(0..n)
}

/// Weighted random among `candidates` (indices into `endpoints`).
fn weighted_random(
    endpoints: &[Arc<Endpoint>],
    candidates: impl Iterator<Item = usize> + Clone,
) -> Option<usize> {
    let total: u64 = candidates
        .clone()
        .map(|i| u64::from(endpoints[i].weight))
        .sum();
    let count = candidates.clone().count() as u64;
    if count == 0 {
        return None;
    }
    if total == 0 {
        return candidates.clone().nth(random_below(count) as usize);
    }
    let mut point = random_below(total);
    for i in candidates {
        let w = u64::from(endpoints[i].weight);
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    unreachable!("the point is below the total weight")
}

/// Random, in proportion to weight (Dubbo's default).
#[derive(Debug, Default)]
pub struct WeightedRandom;

impl LoadBalancer for WeightedRandom {
    fn select(&self, endpoints: &[Arc<Endpoint>], _key: u64) -> Option<usize> {
        weighted_random(endpoints, 0..endpoints.len())
    }
}

/// Smooth weighted round robin: over any window of the total weight's
/// length each provider gets exactly its weight's share, interleaved
/// (weights 5, 1, 1 give a a b a c a a) rather than in bursts.
#[derive(Debug, Default)]
pub struct SmoothRoundRobin;

impl LoadBalancer for SmoothRoundRobin {
    fn select(&self, endpoints: &[Arc<Endpoint>], _key: u64) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for (i, e) in endpoints.iter().enumerate() {
            let w = i64::from(e.weight.max(1));
            total += w;
            let current = e.current_weight.fetch_add(w, Ordering::Relaxed) + w;
            if best.is_none_or(|(_, b)| current > b) {
                best = Some((i, current));
            }
        }
        let (i, _) = best?;
        endpoints[i]
            .current_weight
            .fetch_sub(total, Ordering::Relaxed);
        Some(i)
    }
}

/// The provider with the fewest calls in flight; weighted random among
/// those tied. A slow provider collects calls and so stops being chosen.
#[derive(Debug, Default)]
pub struct LeastActive;

impl LoadBalancer for LeastActive {
    fn select(&self, endpoints: &[Arc<Endpoint>], _key: u64) -> Option<usize> {
        // One reading of the counts: other threads move them meanwhile,
        // and the tie set must not change between summing and choosing.
        let active: Vec<usize> = endpoints.iter().map(|e| e.active()).collect();
        let least = *active.iter().min()?;
        let ties: Vec<usize> = (0..endpoints.len())
            .filter(|&i| active[i] == least)
            .collect();
        weighted_random(endpoints, ties.iter().copied())
    }
}

/// Virtual nodes per provider on the ring (Dubbo's default).
pub const VIRTUAL_NODES: usize = 160;

#[derive(Debug)]
struct Ring {
    /// Which provider list it was built for.
    fingerprint: u64,
    /// (point, address), sorted by point.
    points: Vec<(u64, SocketAddr)>,
}

/// Consistent hashing: each provider owns [`VIRTUAL_NODES`] points on a
/// ring and a call goes to the first point at or after its key's hash, so
/// a key stays on one provider, and when one of N providers leaves only its
/// keys (about 1/N) move.
#[derive(Debug, Default)]
pub struct ConsistentHash {
    ring: RwLock<Option<Arc<Ring>>>,
}

fn fingerprint(endpoints: &[Arc<Endpoint>]) -> u64 {
    let mut h = DefaultHasher::new();
    for e in endpoints {
        e.addr.hash(&mut h);
    }
    h.finish()
}

impl ConsistentHash {
    fn ring(&self, endpoints: &[Arc<Endpoint>]) -> Arc<Ring> {
        let fp = fingerprint(endpoints);
        if let Some(r) = self.ring.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            if r.fingerprint == fp {
                return r.clone();
            }
        }
        let mut points = Vec::with_capacity(endpoints.len() * VIRTUAL_NODES);
        for e in endpoints {
            for node in 0..VIRTUAL_NODES {
                points.push((hash_key(&(e.addr, node)), e.addr));
            }
        }
        points.sort_unstable();
        let ring = Arc::new(Ring {
            fingerprint: fp,
            points,
        });
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Some(ring.clone());
        ring
    }
}

impl LoadBalancer for ConsistentHash {
    fn select(&self, endpoints: &[Arc<Endpoint>], key: u64) -> Option<usize> {
        if endpoints.is_empty() {
            return None;
        }
        let ring = self.ring(endpoints);
        // Mix the key so nearby keys (small integers) spread over the ring.
        let point = hash_key(&key);
        let at = ring.points.partition_point(|(p, _)| *p < point);
        let (_, addr) = ring.points[at % ring.points.len()];
        endpoints.iter().position(|e| e.addr == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(weights: &[u32]) -> Vec<Arc<Endpoint>> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| {
                Arc::new(Endpoint::new(
                    SocketAddr::from(([10, 0, 0, i as u8], 20880)),
                    w,
                ))
            })
            .collect()
    }

    fn shares(lb: &dyn LoadBalancer, eps: &[Arc<Endpoint>], calls: usize) -> Vec<f64> {
        let mut counts = vec![0usize; eps.len()];
        for k in 0..calls {
            counts[lb.select(eps, k as u64).unwrap()] += 1;
        }
        counts.iter().map(|&c| c as f64 / calls as f64).collect()
    }

    /// Weighted random over 200 000 calls lands within 1 percentage point
    /// of each weight's share (the standard deviation is under 0.1 point).
    #[test]
    fn weighted_random_follows_the_weights() {
        let eps = endpoints(&[1, 2, 3, 4]);
        let got = shares(&WeightedRandom, &eps, 200_000);
        for (i, share) in got.iter().enumerate() {
            let want = (i + 1) as f64 / 10.0;
            assert!(
                (share - want).abs() < 0.01,
                "endpoint {i}: {share} vs {want}"
            );
        }
        assert_eq!(WeightedRandom.select(&[], 0), None);
        // All weights zero: uniform.
        let zero = endpoints(&[0, 0]);
        let got = shares(&WeightedRandom, &zero, 20_000);
        assert!((got[0] - 0.5).abs() < 0.02, "{got:?}");
    }

    #[test]
    fn smooth_round_robin_interleaves_exactly() {
        let eps = endpoints(&[5, 1, 1]);
        let order: String = (0..14)
            .map(|_| [b'a', b'b', b'c'][SmoothRoundRobin.select(&eps, 0).unwrap()] as char)
            .collect();
        assert_eq!(order, "aabacaaaabacaa");
        let eps = endpoints(&[1, 2, 3, 4]);
        let got = shares(&SmoothRoundRobin, &eps, 10_000);
        for (i, share) in got.iter().enumerate() {
            assert_eq!(*share, (i + 1) as f64 / 10.0, "exact over whole cycles");
        }
    }

    #[test]
    fn least_active_avoids_the_busy_provider_and_weights_the_ties() {
        let eps = endpoints(&[1, 1, 3]);
        let _busy: Vec<_> = (0..5).map(|_| eps[0].begin_call()).collect();
        let got = shares(&LeastActive, &eps, 40_000);
        assert_eq!(got[0], 0.0, "the busy one is never picked");
        assert!(
            (got[1] - 0.25).abs() < 0.02 && (got[2] - 0.75).abs() < 0.02,
            "{got:?}"
        );
        drop(_busy);
        assert_eq!(eps[0].active(), 0, "guards count calls out");
    }

    #[test]
    fn consistent_hash_keeps_keys_and_moves_about_one_in_n() {
        let eps = endpoints(&[1, 1, 1, 1, 1]);
        let lb = ConsistentHash::default();
        let keys: Vec<u64> = (0..20_000)
            .map(|k| hash_key(&format!("user-{k}")))
            .collect();
        let before: Vec<SocketAddr> = keys
            .iter()
            .map(|&k| eps[lb.select(&eps, k).unwrap()].addr)
            .collect();
        // Stable: the same key, the same provider.
        for (&k, &addr) in keys.iter().zip(&before).take(1000) {
            assert_eq!(eps[lb.select(&eps, k).unwrap()].addr, addr);
        }
        // Balanced: 160 virtual nodes keep each share within 0.12-0.28.
        for e in &eps {
            let share = before.iter().filter(|a| **a == e.addr).count() as f64 / keys.len() as f64;
            assert!((0.12..0.28).contains(&share), "{}: {share}", e.addr);
        }
        // One leaves: only its keys move.
        let gone = eps[2].addr;
        let rest: Vec<_> = eps.iter().filter(|e| e.addr != gone).cloned().collect();
        let mut moved = 0;
        for (&k, &was) in keys.iter().zip(&before) {
            let now = rest[lb.select(&rest, k).unwrap()].addr;
            if now != was {
                assert_eq!(was, gone, "a key of a provider that stayed moved");
                moved += 1;
            }
        }
        let fraction = moved as f64 / keys.len() as f64;
        assert!((0.12..0.28).contains(&fraction), "moved {fraction}");
    }
}
