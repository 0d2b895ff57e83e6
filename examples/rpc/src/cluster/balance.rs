//! Load balancers: which provider gets the next call.
//!
//! Five, as Dubbo has them: [`WeightedRandom`] (the default),
//! [`SmoothRoundRobin`] (nginx's smooth weighted round robin),
//! [`LeastActive`] (fewest calls in flight, weighted random among ties),
//! [`ShortestResponse`] (the shortest expected wait: recent response time
//! times the calls queued ahead) and [`ConsistentHash`] (160 virtual nodes
//! per provider, keyed on what the caller chooses). [`LoadBalancer`] is
//! the extension point for a sixth.
//!
//! Balancers keep their per-provider state in the [`Endpoint`]s themselves
//! (atomics), so a selection takes no lock and allocates nothing, except
//! the consistent-hash ring, rebuilt when the provider list changes. A
//! balancer sees the whole list with the eligible providers marked
//! ([`Candidates`]), so the cluster need not build a list per call.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A provider as the balancers see it: its address, its weight, and the
/// state they keep about it.
///
/// ```
/// use gyre_rpc::cluster::Endpoint;
/// use std::sync::Arc;
///
/// let endpoint = Arc::new(Endpoint::new("10.0.0.1:20880".parse()?, 100));
/// let call = endpoint.begin_call(); // what `LeastActive` counts
/// assert_eq!(endpoint.active(), 1);
/// drop(call); // the call ended
/// assert_eq!(endpoint.active(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Endpoint {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its share of calls relative to the others (0 takes none unless all
    /// are 0).
    pub weight: u32,
    active: AtomicUsize,
    current_weight: AtomicI64,
    /// A moving average of its successful calls' times in nanoseconds
    /// (0: none measured yet), for [`ShortestResponse`].
    response_ns: AtomicU64,
}

impl Endpoint {
    /// An endpoint at `addr` with `weight`.
    pub fn new(addr: SocketAddr, weight: u32) -> Endpoint {
        Endpoint {
            addr,
            weight,
            active: AtomicUsize::new(0),
            current_weight: AtomicI64::new(0),
            response_ns: AtomicU64::new(0),
        }
    }

    /// Calls in flight to it.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Takes a call's time into the moving average [`ShortestResponse`]
    /// reads: an exponentially weighted one, each new time weighing 1/8,
    /// so a provider that slows down (or recovers) is seen within a few
    /// calls. Clusters record it when their balancer asks
    /// ([`LoadBalancer::uses_response_times`]): an answered call's time
    /// (the method's own error is an answer), and for a call the provider
    /// failed (overloaded, crashed, timed out, gone) the call's whole
    /// timeout, so a provider quick to refuse does not look fast.
    ///
    /// ```
    /// use gyre_rpc::cluster::Endpoint;
    /// use std::time::Duration;
    ///
    /// let endpoint = Endpoint::new("10.0.0.1:20880".parse()?, 100);
    /// assert_eq!(endpoint.response_time(), None);
    /// endpoint.record_response(Duration::from_millis(8));
    /// assert_eq!(endpoint.response_time(), Some(Duration::from_millis(8)));
    /// endpoint.record_response(Duration::from_millis(16));
    /// assert_eq!(endpoint.response_time(), Some(Duration::from_millis(9)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_response(&self, elapsed: Duration) {
        // At least 1 ns: 0 means "none measured".
        let sample = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        let _ = self
            .response_ns
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    (old - old / 8).saturating_add(sample / 8).max(1)
                })
            });
    }

    /// The moving average of its successful calls' times, if any was
    /// recorded.
    pub fn response_time(&self) -> Option<Duration> {
        match self.response_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(Duration::from_nanos(ns)),
        }
    }

    /// Counts a call in flight until the guard drops.
    pub fn begin_call(self: &Arc<Self>) -> ActiveCall {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveCall(self.clone())
    }
}

/// A call in flight to an endpoint (see [`Endpoint::begin_call`]): counted
/// as long as the guard lives, which is what [`LeastActive`] reads.
///
/// ```
/// use gyre_rpc::cluster::balance::ActiveCall;
/// use gyre_rpc::cluster::{Candidates, Endpoint, LeastActive, LoadBalancer};
/// use std::sync::Arc;
///
/// let endpoints: Vec<Arc<Endpoint>> = ["10.0.0.1:20880", "10.0.0.2:20880"]
///     .iter()
///     .map(|a| Arc::new(Endpoint::new(a.parse().unwrap(), 100)))
///     .collect();
/// // A slow call holds the first provider.
/// let slow: ActiveCall = endpoints[0].begin_call();
/// assert_eq!(LeastActive.select(&Candidates::all(&endpoints), 0), Some(1));
/// drop(slow);
/// assert_eq!(endpoints[0].active(), 0);
/// ```
#[derive(Debug)]
pub struct ActiveCall(Arc<Endpoint>);

impl Drop for ActiveCall {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Picks a provider for a call: the extension point for a balancer of
/// your own, given to [`ClusterBuilder::balancer`](crate::cluster::ClusterBuilder::balancer).
///
/// A balancer is called on every call's thread at once, so it keeps its
/// state in atomics (its own, or the [`Endpoint`]s'), and it sees the
/// whole provider list with the eligible ones marked: it must return an
/// index that [`Candidates::is_eligible`] accepts, or `None`.
///
/// ```
/// use gyre_rpc::cluster::{Candidates, Cluster, Endpoint, LoadBalancer};
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::ServiceKey;
/// use std::cmp::Reverse;
/// use std::sync::Arc;
///
/// /// The heaviest eligible provider (the first of equals): all calls to
/// /// the primary while it is up, to the next heaviest when it is not.
/// #[derive(Debug)]
/// struct Heaviest;
///
/// impl LoadBalancer for Heaviest {
///     fn select(&self, candidates: &Candidates<'_>, _key: u64) -> Option<usize> {
///         let endpoints = candidates.endpoints();
///         // `min_by_key` keeps the first of equals.
///         candidates.eligible().min_by_key(|&i| Reverse(endpoints[i].weight))
///     }
/// }
///
/// let endpoints: Vec<Arc<Endpoint>> = [("10.0.0.1:20880", 10), ("10.0.0.2:20880", 200)]
///     .iter()
///     .map(|(a, w)| Arc::new(Endpoint::new(a.parse().unwrap(), *w)))
///     .collect();
/// let mut candidates = Candidates::all(&endpoints);
/// assert_eq!(Heaviest.select(&candidates, 0), Some(1));
/// candidates.exclude(1); // already tried by this call, or down
/// assert_eq!(Heaviest.select(&candidates, 0), Some(0));
///
/// // A cluster calls it for every call.
/// let cluster = Cluster::builder(ServiceKey::new("demo.Calc"))
///     .balancer(Heaviest)
///     .build(Consumer::builder().build()?);
/// # drop(cluster);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait LoadBalancer: Send + Sync + std::fmt::Debug {
    /// The index in `candidates.endpoints()` of an eligible provider for a
    /// call whose hash key is `key`; `None` when none is eligible.
    fn select(&self, candidates: &Candidates<'_>, key: u64) -> Option<usize>;

    /// Whether [`select`](Self::select) reads its `key` (only
    /// [`ConsistentHash`] does); when not, the cluster does not hash the
    /// call's arguments to make one.
    fn uses_key(&self) -> bool {
        false
    }

    /// Whether [`select`](Self::select) reads the providers' response
    /// times ([`Endpoint::response_time`]; only [`ShortestResponse`]
    /// does); when not, the cluster does not time its calls.
    fn uses_response_times(&self) -> bool {
        false
    }
}

/// Endpoints at most this many are marked eligible without allocating.
const INLINE_ENDPOINTS: usize = 256;

/// The providers a call may go to: the cluster's whole list, which of them
/// are eligible (connected, and not already tried by this call), and a
/// fingerprint of the list that changes whenever the list does, for
/// balancers that cache what they build from it.
///
/// The cluster makes one per call without allocating (up to 256
/// providers) or touching a lock.
///
/// ```
/// use gyre_rpc::cluster::{Candidates, Endpoint, LoadBalancer, SmoothRoundRobin};
/// use std::sync::Arc;
/// let endpoints: Vec<Arc<Endpoint>> = ["10.0.0.1:20880", "10.0.0.2:20880"]
///     .iter()
///     .map(|a| Arc::new(Endpoint::new(a.parse().unwrap(), 100)))
///     .collect();
/// let mut candidates = Candidates::all(&endpoints);
/// candidates.exclude(0);
/// assert_eq!(SmoothRoundRobin.select(&candidates, 0), Some(1));
/// ```
#[derive(Debug, Clone)]
pub struct Candidates<'a> {
    endpoints: &'a [Arc<Endpoint>],
    fingerprint: u64,
    inline: [u64; INLINE_ENDPOINTS / 64],
    /// The bits for lists longer than `INLINE_ENDPOINTS`.
    spilled: Vec<u64>,
}

impl<'a> Candidates<'a> {
    /// Every one of `endpoints`, all eligible (hashes the list for its
    /// fingerprint).
    pub fn all(endpoints: &'a [Arc<Endpoint>]) -> Self {
        Candidates::new(endpoints, fingerprint(endpoints), |_| true)
    }

    /// `endpoints` (whose [`fingerprint`] is `fingerprint`), eligible where
    /// `eligible(index)` holds.
    pub(crate) fn new(
        endpoints: &'a [Arc<Endpoint>],
        fingerprint: u64,
        eligible: impl Fn(usize) -> bool,
    ) -> Self {
        let mut c = Candidates {
            endpoints,
            fingerprint,
            inline: [0; INLINE_ENDPOINTS / 64],
            spilled: Vec::new(),
        };
        if endpoints.len() > INLINE_ENDPOINTS {
            c.spilled = vec![0; endpoints.len().div_ceil(64)];
        }
        let words = c.words_mut();
        for i in (0..endpoints.len()).filter(|&i| eligible(i)) {
            words[i / 64] |= 1 << (i % 64);
        }
        c
    }

    fn words(&self) -> &[u64] {
        if self.spilled.is_empty() {
            &self.inline
        } else {
            &self.spilled
        }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        if self.spilled.is_empty() {
            &mut self.inline
        } else {
            &mut self.spilled
        }
    }

    /// The cluster's whole provider list.
    pub fn endpoints(&self) -> &'a [Arc<Endpoint>] {
        self.endpoints
    }

    /// Whether the call may go to `endpoints()[index]`.
    pub fn is_eligible(&self, index: usize) -> bool {
        self.words()
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    /// The eligible indices, in order.
    pub fn eligible(&self) -> impl Iterator<Item = usize> + Clone + '_ {
        (0..self.endpoints.len()).filter(|&i| self.is_eligible(i))
    }

    /// Whether no provider is eligible.
    pub fn is_empty(&self) -> bool {
        self.words().iter().all(|w| *w == 0)
    }

    /// Takes `endpoints()[index]` out of the choice (a provider already
    /// tried by this call).
    pub fn exclude(&mut self, index: usize) {
        if let Some(w) = self.words_mut().get_mut(index / 64) {
            *w &= !(1 << (index % 64));
        }
    }

    /// A hash of the list's addresses, in order: equal fingerprints mean
    /// the same list.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }
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

/// Weighted random among the eligible candidates.
fn weighted_random(candidates: &Candidates<'_>) -> Option<usize> {
    let endpoints = candidates.endpoints();
    let weight = |i: usize| u64::from(endpoints[i].weight);
    let (count, total) = candidates
        .eligible()
        .fold((0u64, 0u64), |(n, t), i| (n + 1, t + weight(i)));
    if count == 0 {
        return None;
    }
    if total == 0 {
        return candidates.eligible().nth(random_below(count) as usize);
    }
    let mut point = random_below(total);
    for i in candidates.eligible() {
        if point < weight(i) {
            return Some(i);
        }
        point -= weight(i);
    }
    unreachable!("the point is below the total weight")
}

/// Random, in proportion to weight (Dubbo's default).
///
/// ```
/// use gyre_rpc::cluster::{Candidates, Endpoint, LoadBalancer, WeightedRandom};
/// use std::sync::Arc;
///
/// let endpoints: Vec<Arc<Endpoint>> = [("10.0.0.1:20880", 300), ("10.0.0.2:20880", 100)]
///     .iter()
///     .map(|(a, w)| Arc::new(Endpoint::new(a.parse().unwrap(), *w)))
///     .collect();
/// let candidates = Candidates::all(&endpoints);
/// let to_first = (0..4000).filter(|_| WeightedRandom.select(&candidates, 0) == Some(0)).count();
/// // About three in four.
/// assert!((2700..3300).contains(&to_first), "{to_first}");
/// ```
#[derive(Debug, Default)]
pub struct WeightedRandom;

impl LoadBalancer for WeightedRandom {
    fn select(&self, candidates: &Candidates<'_>, _key: u64) -> Option<usize> {
        weighted_random(candidates)
    }
}

/// Smooth weighted round robin: over any window of the total weight's
/// length each provider gets exactly its weight's share, interleaved
/// (weights 5, 1, 1 give a a b a c a a) rather than in bursts.
///
/// ```
/// use gyre_rpc::cluster::{Candidates, Endpoint, LoadBalancer, SmoothRoundRobin};
/// use std::sync::Arc;
///
/// let endpoints: Vec<Arc<Endpoint>> = [("10.0.0.1:20880", 5), ("10.0.0.2:20880", 1), ("10.0.0.3:20880", 1)]
///     .iter()
///     .map(|(a, w)| Arc::new(Endpoint::new(a.parse().unwrap(), *w)))
///     .collect();
/// let candidates = Candidates::all(&endpoints);
/// let picks: Vec<usize> = (0..7).map(|_| SmoothRoundRobin.select(&candidates, 0).unwrap()).collect();
/// assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
/// ```
#[derive(Debug, Default)]
pub struct SmoothRoundRobin;

impl LoadBalancer for SmoothRoundRobin {
    fn select(&self, candidates: &Candidates<'_>, _key: u64) -> Option<usize> {
        let endpoints = candidates.endpoints();
        // Weight 0 takes no calls, unless every weight is 0: then all are 1.
        let weighted = candidates.eligible().any(|i| endpoints[i].weight > 0);
        let mut total = 0i64;
        let mut best: Option<(usize, i64)> = None;
        for i in candidates.eligible() {
            let e = &endpoints[i];
            let w = if weighted { i64::from(e.weight) } else { 1 };
            if w == 0 {
                continue;
            }
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
///
/// ```
/// use gyre_rpc::cluster::{Cluster, LeastActive};
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::ServiceKey;
///
/// // Calls go where fewest are waiting: the balancer for providers of
/// // uneven speed.
/// let cluster = Cluster::builder(ServiceKey::new("demo.Search"))
///     .balancer(LeastActive)
///     .build(Consumer::builder().build()?);
/// cluster.set_providers([("10.0.0.1:20880".parse()?, 100), ("10.0.0.2:20880".parse()?, 100)]);
/// # drop(cluster);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct LeastActive;

impl LoadBalancer for LeastActive {
    fn select(&self, candidates: &Candidates<'_>, _key: u64) -> Option<usize> {
        least_by(candidates, |e| e.active() as u128)
    }
}

/// The eligible provider with the least `cost`, weighted random among
/// ties. One pass, reading each cost once (other threads move them
/// meanwhile): a weighted reservoir sample over the providers tied at the
/// least cost seen so far, restarted whenever a lower one shows up, so
/// each tie ends up chosen in proportion to its weight. As with the other
/// balancers a weight of 0 takes no calls unless every tie has weight 0;
/// then the ties are uniform.
fn least_by(candidates: &Candidates<'_>, cost: impl Fn(&Endpoint) -> u128) -> Option<usize> {
    let endpoints = candidates.endpoints();
    let mut least = u128::MAX;
    let mut chosen = None;
    let (mut tied, mut tied_weight) = (0u64, 0u64);
    for i in candidates.eligible() {
        let c = cost(&endpoints[i]);
        let w = u64::from(endpoints[i].weight);
        if c < least {
            least = c;
            (tied, tied_weight) = (0, 0);
        } else if c > least {
            continue;
        }
        tied += 1;
        tied_weight += w;
        let take = if tied_weight == 0 {
            random_below(tied) == 0
        } else {
            w > 0 && random_below(tied_weight) < w
        };
        if take {
            chosen = Some(i);
        }
    }
    chosen
}

/// The shortest expected wait (Dubbo's `ShortestResponseLoadBalance`): a
/// provider's recent response time (a moving average of its calls,
/// [`Endpoint::response_time`], a failed call counting as its whole
/// timeout) times one more than its calls in flight, the least chosen,
/// weighted random among ties. A provider not yet measured counts as
/// instant, so each is tried early. Dubbo averages successful calls over
/// a 30-second window, where a provider that fails every call at once is
/// never measured and so always chosen; the moving average here counts
/// its failures as slow, and sees a provider slow down within a few calls. Calls a cluster makes through it are
/// timed (an `Instant` read before and after each); forking and broadcast
/// calls, which go to several providers at once, are not.
///
/// ```
/// use gyre_rpc::cluster::{Candidates, Endpoint, LoadBalancer, ShortestResponse};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let endpoints: Vec<Arc<Endpoint>> = ["10.0.0.1:20880", "10.0.0.2:20880"]
///     .iter()
///     .map(|a| Arc::new(Endpoint::new(a.parse().unwrap(), 100)))
///     .collect();
/// endpoints[0].record_response(Duration::from_millis(2));
/// endpoints[1].record_response(Duration::from_millis(5));
/// let all = Candidates::all(&endpoints);
/// assert_eq!(ShortestResponse.select(&all, 0), Some(0));
/// // Three calls waiting on the faster one: 2 ms x 4 > 5 ms x 1.
/// let _queued: Vec<_> = (0..3).map(|_| endpoints[0].begin_call()).collect();
/// assert_eq!(ShortestResponse.select(&all, 0), Some(1));
/// ```
#[derive(Debug, Default)]
pub struct ShortestResponse;

impl LoadBalancer for ShortestResponse {
    fn select(&self, candidates: &Candidates<'_>, _key: u64) -> Option<usize> {
        least_by(candidates, |e| {
            let ns = e.response_ns.load(Ordering::Relaxed);
            u128::from(ns) * (e.active() as u128 + 1)
        })
    }

    fn uses_response_times(&self) -> bool {
        true
    }
}

/// Virtual nodes per provider on the ring (Dubbo's default).
pub const VIRTUAL_NODES: usize = 160;

#[derive(Debug)]
struct Ring {
    /// Which provider list it was built for.
    fingerprint: u64,
    /// (point, index in the list), sorted by point.
    points: Vec<(u64, usize)>,
}

/// Consistent hashing: each provider owns [`VIRTUAL_NODES`] points on a
/// ring and a call goes to the first point at or after its key's hash whose
/// provider is eligible, so a key stays on one provider, and when one of N
/// providers leaves (or is down) only its keys (about 1/N) move.
///
/// The ring is built once per provider list and shared lock-free by every
/// calling thread.
///
/// ```
/// use gyre_rpc::cluster::{hash_key, Candidates, ConsistentHash, Endpoint, LoadBalancer};
/// use std::sync::Arc;
///
/// let endpoints: Vec<Arc<Endpoint>> = ["10.0.0.1:20880", "10.0.0.2:20880", "10.0.0.3:20880"]
///     .iter()
///     .map(|a| Arc::new(Endpoint::new(a.parse().unwrap(), 100)))
///     .collect();
/// let balancer = ConsistentHash::default();
/// let all = Candidates::all(&endpoints);
/// let home = |c: &Candidates<'_>, user: u32| balancer.select(c, hash_key(&user)).unwrap();
/// // A user's calls stay on one provider.
/// let before: Vec<usize> = (0..1000).map(|u| home(&all, u)).collect();
/// assert!((0..1000).all(|u| home(&all, u) == before[u as usize]));
/// // Provider 2 goes down: only its users move.
/// let mut two_left = all.clone();
/// two_left.exclude(2);
/// for u in 0..1000 {
///     if before[u as usize] != 2 {
///         assert_eq!(home(&two_left, u), before[u as usize]);
///     }
/// }
/// ```
#[derive(Debug, Default)]
pub struct ConsistentHash {
    ring: arc_swap::ArcSwapOption<Ring>,
}

/// See [`Candidates::fingerprint`].
pub(crate) fn fingerprint(endpoints: &[Arc<Endpoint>]) -> u64 {
    let mut h = DefaultHasher::new();
    for e in endpoints {
        e.addr.hash(&mut h);
    }
    h.finish()
}

impl ConsistentHash {
    /// The ring for `candidates`' list, built and cached when the list
    /// differs from the cached ring's.
    fn build(&self, candidates: &Candidates<'_>) -> Arc<Ring> {
        let endpoints = candidates.endpoints();
        let mut points = Vec::with_capacity(endpoints.len() * VIRTUAL_NODES);
        for (i, e) in endpoints.iter().enumerate() {
            for node in 0..VIRTUAL_NODES {
                points.push((hash_key(&(e.addr, node)), i));
            }
        }
        points.sort_unstable();
        let ring = Arc::new(Ring {
            fingerprint: candidates.fingerprint(),
            points,
        });
        self.ring.store(Some(ring.clone()));
        ring
    }
}

impl LoadBalancer for ConsistentHash {
    fn select(&self, candidates: &Candidates<'_>, key: u64) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        // The cached ring is borrowed, not cloned: no reference count
        // moves on a call while the list stays the same.
        let cached = self.ring.load();
        let built;
        let ring: &Ring = match cached.as_deref() {
            Some(r) if r.fingerprint == candidates.fingerprint() => r,
            _ => {
                built = self.build(candidates);
                &built
            }
        };
        // Mix the key so nearby keys (small integers) spread over the ring.
        let point = hash_key(&key);
        let at = ring.points.partition_point(|(p, _)| *p < point);
        // The first eligible owner clockwise: exactly where the key would
        // land on a ring built without the ineligible providers.
        (0..ring.points.len())
            .map(|step| ring.points[(at + step) % ring.points.len()].1)
            .find(|&i| candidates.is_eligible(i))
    }

    fn uses_key(&self) -> bool {
        true
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
                    SocketAddr::from(([10, 0, (i / 256) as u8, i as u8], 20880)),
                    w,
                ))
            })
            .collect()
    }

    fn shares(lb: &dyn LoadBalancer, eps: &[Arc<Endpoint>], calls: usize) -> Vec<f64> {
        let mut counts = vec![0usize; eps.len()];
        for k in 0..calls {
            counts[lb.select(&Candidates::all(eps), k as u64).unwrap()] += 1;
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
        assert_eq!(WeightedRandom.select(&Candidates::all(&[]), 0), None);
        // All weights zero: uniform.
        let zero = endpoints(&[0, 0]);
        let got = shares(&WeightedRandom, &zero, 20_000);
        assert!((got[0] - 0.5).abs() < 0.02, "{got:?}");
    }

    #[test]
    fn smooth_round_robin_interleaves_exactly() {
        let eps = endpoints(&[5, 1, 1]);
        let order: String = (0..14)
            .map(|_| {
                [b'a', b'b', b'c'][SmoothRoundRobin.select(&Candidates::all(&eps), 0).unwrap()]
                    as char
            })
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
    fn shortest_response_weighs_time_by_queue_and_tries_the_unmeasured() {
        let eps = endpoints(&[1, 1, 3]);
        // None measured: all tie at zero, chosen by weight.
        let got = shares(&ShortestResponse, &eps, 40_000);
        assert!((got[2] - 0.6).abs() < 0.02, "{got:?}");
        eps[0].record_response(Duration::from_micros(100));
        eps[2].record_response(Duration::from_micros(300));
        // The unmeasured one goes first.
        assert_eq!(shares(&ShortestResponse, &eps, 1_000)[1], 1.0);
        eps[1].record_response(Duration::from_micros(1_000));
        assert_eq!(shares(&ShortestResponse, &eps, 1_000)[0], 1.0);
        // Three queued on the fastest: 100 x 4 > 300 x 1.
        let mut queued: Vec<_> = (0..3).map(|_| eps[0].begin_call()).collect();
        assert_eq!(shares(&ShortestResponse, &eps, 1_000)[2], 1.0);
        // Equal estimates: weighted random between them (0: 100 x 3 = 300
        // after one call ends).
        queued.pop();
        let got = shares(&ShortestResponse, &eps, 40_000);
        assert!(
            (got[0] - 0.25).abs() < 0.02 && (got[2] - 0.75).abs() < 0.02,
            "{got:?}"
        );
    }

    #[test]
    fn the_moving_average_follows_a_provider_that_slows() {
        let e = Endpoint::new("10.0.0.1:1".parse().unwrap(), 1);
        e.record_response(Duration::from_micros(100));
        for _ in 0..20 {
            e.record_response(Duration::from_micros(10_000));
        }
        let now = e.response_time().unwrap();
        assert!(now > Duration::from_micros(9_000), "{now:?}");
        e.record_response(Duration::ZERO);
        assert!(e.response_time().is_some(), "a zero time is still a time");
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
            .map(|&k| eps[lb.select(&Candidates::all(&eps), k).unwrap()].addr)
            .collect();
        // Stable: the same key, the same provider.
        for (&k, &addr) in keys.iter().zip(&before).take(1000) {
            assert_eq!(
                eps[lb.select(&Candidates::all(&eps), k).unwrap()].addr,
                addr
            );
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
            let now = rest[lb.select(&Candidates::all(&rest), k).unwrap()].addr;
            if now != was {
                assert_eq!(was, gone, "a key of a provider that stayed moved");
                moved += 1;
            }
        }
        let fraction = moved as f64 / keys.len() as f64;
        assert!((0.12..0.28).contains(&fraction), "moved {fraction}");
    }

    #[test]
    fn an_ineligible_provider_loses_its_keys_as_if_it_had_left() {
        let eps = endpoints(&[1, 1, 1, 1, 1]);
        let rest: Vec<_> = eps
            .iter()
            .filter(|e| e.addr != eps[2].addr)
            .cloned()
            .collect();
        let lb = ConsistentHash::default();
        let mut down = Candidates::all(&eps);
        down.exclude(2);
        for k in 0..5_000u64 {
            let key = hash_key(&k);
            let with_exclusion = eps[lb.select(&down, key).unwrap()].addr;
            let without_it = rest[lb.select(&Candidates::all(&rest), key).unwrap()].addr;
            assert_eq!(with_exclusion, without_it, "key {k}");
        }
        let mut none = Candidates::all(&eps);
        (0..eps.len()).for_each(|i| none.exclude(i));
        assert_eq!(lb.select(&none, 1), None);
    }

    #[test]
    fn every_balancer_keeps_to_the_eligible_providers() {
        let eps = endpoints(&[3, 1, 2, 0, 5]);
        eps[1].record_response(Duration::from_micros(5));
        let balancers: [&dyn LoadBalancer; 5] = [
            &WeightedRandom,
            &SmoothRoundRobin,
            &LeastActive,
            &ShortestResponse,
            &ConsistentHash::default(),
        ];
        for lb in balancers {
            let mut c = Candidates::all(&eps);
            c.exclude(0);
            c.exclude(4);
            for k in 0..2_000u64 {
                let i = lb.select(&c, hash_key(&k)).unwrap();
                assert!(c.is_eligible(i), "{lb:?} chose excluded {i}");
                // Weight 0 takes no calls while others are eligible
                // (consistent hashing does not weigh).
                if !lb.uses_key() {
                    assert_ne!(i, 3, "{lb:?} chose the weight-0 provider");
                }
            }
        }
    }

    #[test]
    fn long_lists_mark_eligibility_past_the_inline_bits() {
        let weights = vec![1; 300];
        let eps = endpoints(&weights);
        let mut c = Candidates::all(&eps);
        assert!(c.is_eligible(299));
        for i in 0..299 {
            c.exclude(i);
        }
        assert_eq!(c.eligible().collect::<Vec<_>>(), [299]);
        assert_eq!(WeightedRandom.select(&c, 0), Some(299));
        assert_eq!(LeastActive.select(&c, 0), Some(299));
    }
}
