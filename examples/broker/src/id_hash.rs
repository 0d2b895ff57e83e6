//! Maps and sets keyed by partition id with a cheap hash: the log writer
//! looks a partition up by id for every batch it appends and twice for
//! every partition of every fetch, and SipHash, std's default, cost it
//! about 125 instructions a lookup (a fifth of a fetch of 1,000 quiet
//! partitions, `benches/src/bin/fetch_sessions.rs`). Ids are small
//! integers the broker hands out, never keys a client chooses, so
//! SipHash's resistance to chosen collisions buys nothing here.
//!
//! May use: std only.

use crate::topics::PartitionId;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hash (Fibonacci hashing): an id times an odd constant
/// near 2^64 / φ, which spreads consecutive ids over the high bits the
/// table's control bytes use, and keeps them apart in the low bits its
/// buckets use.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only ids are hashed with it; anything else is still hashed
        // whole, byte by byte.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(SPREAD);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(SPREAD);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A map keyed by partition id.
pub type IdMap<V> = HashMap<PartitionId, V, BuildHasherDefault<IdHasher>>;

/// A set of partition ids.
pub type IdSet = HashSet<PartitionId, BuildHasherDefault<IdHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_hash_apart_and_the_map_holds_them_all() {
        let mut map = IdMap::default();
        for id in 0..100_000u32 {
            map.insert(id, id * 2);
        }
        assert!((0..100_000u32).all(|id| map.get(&id) == Some(&(id * 2))));
        let hash = |id: u32| {
            let mut h = IdHasher::default();
            h.write_u32(id);
            h.finish()
        };
        // The top seven bits (hashbrown's control bytes) differ between
        // neighbours, and the low bits follow the id's.
        assert_ne!(hash(1) >> 57, hash(2) >> 57);
        let low: std::collections::BTreeSet<u64> = (0..1024).map(|id| hash(id) & 1023).collect();
        assert_eq!(low.len(), 1024);
    }
}
