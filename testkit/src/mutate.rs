//! Mutations of recorded protocol frames, for tests that send a server
//! what a real client sent, changed: bits flipped, fields set to extreme
//! values, sizes that lie, frames cut short, stretched or spliced. A
//! seeded xorshift picks them, so a run is the same every time and a
//! failure is found again by its seed. Also what such a test sends them
//! with ([`Sprayer`]), its seed and length from the environment
//! ([`fuzz_run`]), and a count of the process's panics
//! ([`count_panics`]). Uses only `std`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A seeded xorshift64* generator: enough to pick mutations.
///
/// ```
/// let mut a = gyre_testkit::Rng::new(7);
/// let mut b = gyre_testkit::Rng::new(7);
/// assert_eq!(a.below(100), b.below(100), "the same seed, the same picks");
/// ```
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is taken as 1: xorshift needs a bit).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// Where a protocol's frames carry their size: a big-endian 32-bit field
/// at byte `at`, counting the bytes from byte `counts_from` on (Kafka's:
/// at 0, from 4; a Dubbo-style header's: at 12, from 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SizeField {
    /// Where the field starts.
    pub at: usize,
    /// The first byte it counts.
    pub counts_from: usize,
}

impl SizeField {
    fn set(&self, frame: &mut [u8], size: u32) {
        frame[self.at..self.at + 4].copy_from_slice(&size.to_be_bytes());
    }

    /// Makes the field say the truth again.
    fn fix(&self, frame: &mut [u8]) {
        self.set(frame, (frame.len() - self.counts_from) as u32);
    }
}

/// A place in `frame` for a field `width` bytes wide, never over the size
/// field (whose lies are a mutation of their own).
fn place(rng: &mut Rng, size: SizeField, len: usize, width: usize) -> Option<usize> {
    let i = rng.below(len.checked_sub(width)? + 1);
    let overlaps = i < size.at + 4 && size.at < i + width;
    if !overlaps {
        return Some(i);
    }
    let after = size.at + 4;
    (after + width <= len).then_some(after)
}

/// `frame` changed in one of ten ways; `others` are frames of the same
/// protocol to splice from. Every result keeps at least the bytes before
/// the size field's count starts, so the server reads a header.
///
/// ```
/// use gyre_testkit::{mutate, Rng, SizeField};
///
/// let kafka = SizeField { at: 0, counts_from: 4 };
/// let frame: &[u8] = &[0, 0, 0, 6, 0, 18, 0, 3, 0, 1];
/// let mut rng = Rng::new(42);
/// for _ in 0..100 {
///     let changed = mutate(&mut rng, kafka, &[frame], frame);
///     assert!(changed.len() >= 4);
/// }
/// ```
pub fn mutate(rng: &mut Rng, size: SizeField, others: &[&[u8]], frame: &[u8]) -> Vec<u8> {
    let mut b = frame.to_vec();
    let keep = size.counts_from;
    match rng.below(10) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                if let Some(i) = place(rng, size, b.len(), 1) {
                    b[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            for _ in 0..1 + rng.below(4) {
                if let Some(i) = place(rng, size, b.len(), 1) {
                    b[i] = [0, 0xff, 0x7f, 0x80, 0xfe, 1][rng.below(6)];
                }
            }
        }
        2 => {
            b.truncate(keep + rng.below(b.len() - keep + 1));
            size.fix(&mut b);
        }
        // Cut short with the size left as it was: the server waits for
        // the rest, which never comes.
        3 => b.truncate(keep + rng.below(b.len() - keep + 1)),
        4 => {
            for _ in 0..1 + rng.below(64) {
                b.push(rng.next_u64() as u8);
            }
            size.fix(&mut b);
        }
        5 => {
            let truth = (b.len() - keep) as i64;
            let lie = match rng.below(5) {
                0 => u32::MAX,
                1 => 0,
                2 => i32::MAX as u32,
                3 => (truth + rng.below(17) as i64 - 8).max(0) as u32,
                _ => rng.next_u64() as u32,
            };
            size.set(&mut b, lie);
        }
        6 => {
            if let Some(i) = place(rng, size, b.len(), 4) {
                let v = [-1i32, i32::MAX, i32::MIN, 0x10000, 65_535][rng.below(5)];
                b[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
        }
        7 => {
            if let Some(i) = place(rng, size, b.len(), 2) {
                let v = [-1i16, i16::MAX, i16::MIN, 0, 1000][rng.below(5)];
                b[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
        }
        8 => {
            // A stretch of the body repeated in place.
            let from = keep + rng.below(b.len() - keep + 1);
            let to = from + rng.below(b.len() - from + 1).min(64);
            let copy = b[from..to].to_vec();
            let at = keep + rng.below(b.len() - keep + 1);
            b.splice(at..at, copy);
            size.fix(&mut b);
        }
        _ => {
            let other = rng.pick(others);
            let cut = keep + rng.below(b.len() - keep + 1);
            let from = keep.min(other.len()) + rng.below(other.len().saturating_sub(keep) + 1);
            b.truncate(cut);
            b.extend_from_slice(&other[from.min(other.len())..]);
            size.fix(&mut b);
        }
    }
    b
}

/// A mutation test's generator and length: `GYRE_FUZZ_SEED` and
/// `GYRE_FUZZ_ITERATIONS` when set (to explore further), else `seed` and
/// `iterations`.
///
/// ```
/// let (mut rng, iterations) = gyre_testkit::fuzz_run(7, 1_000);
/// # let _ = (rng.below(2), iterations);
/// ```
pub fn fuzz_run(seed: u64, iterations: usize) -> (Rng, usize) {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let seed = env("GYRE_FUZZ_SEED").unwrap_or(seed);
    let iterations = env("GYRE_FUZZ_ITERATIONS").map_or(iterations, |n| n as usize);
    (Rng::new(seed), iterations)
}

/// Sends byte strings to a server, each on a connection of its own,
/// without waiting for answers; every forty connections it reads what
/// came back and closes them.
///
/// ```no_run
/// let mut spray = gyre_testkit::Sprayer::default();
/// spray.send("127.0.0.1:9092".parse().unwrap(), &[b"\0\0\0\x02ab"]);
/// ```
#[derive(Debug, Default)]
pub struct Sprayer {
    open: Vec<TcpStream>,
}

impl Sprayer {
    /// `parts`, one after the other, on a new connection to `addr` (a
    /// refused connection is skipped).
    pub fn send(&mut self, addr: SocketAddr, parts: &[&[u8]]) {
        let Ok(mut s) = TcpStream::connect(addr) else {
            return;
        };
        let _ = s.set_nonblocking(true);
        for part in parts {
            let _ = s.write(part);
        }
        self.open.push(s);
        if self.open.len() >= 40 {
            let mut sink = [0u8; 4096];
            for mut s in self.open.drain(..) {
                let _ = s.read(&mut sink);
            }
        }
    }
}

/// Sends `iterations` mutations of `frames` to `addr`, each on its own
/// connection (three in ten after a whole frame), and calls `check` with
/// the count so far every hundred and once at the end, with every
/// connection closed.
pub fn spray_mutations(
    addr: SocketAddr,
    size: SizeField,
    frames: &[&[u8]],
    rng: &mut Rng,
    iterations: usize,
    mut check: impl FnMut(usize),
) {
    let mut spray = Sprayer::default();
    for i in 1..=iterations {
        let frame = rng.pick(frames);
        let mutated = mutate(rng, size, frames, frame);
        let whole: &[u8] = if rng.below(10) < 3 {
            rng.pick(frames)
        } else {
            &[]
        };
        spray.send(addr, &[whole, &mutated]);
        if i % 100 == 0 {
            check(i);
        }
    }
    drop(spray);
    check(iterations);
}

/// Counts the panics of every thread of this process from now on, each
/// still printed by the hook it replaces: a server whose loops outlive a
/// handler's panic (closing only that connection) shows its panics only
/// here.
pub fn count_panics() -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        print(info);
    }));
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mutation_keeps_the_header_and_tells_the_truth_when_it_fixes_the_size() {
        let kafka = SizeField {
            at: 0,
            counts_from: 4,
        };
        let rpc = SizeField {
            at: 12,
            counts_from: 16,
        };
        let a: Vec<u8> = (0..40).collect();
        let mut rng = Rng::new(9);
        for (size, frame) in [(kafka, &a[..]), (rpc, &a[..])] {
            let mut changed = 0;
            for _ in 0..2_000 {
                let m = mutate(&mut rng, size, &[frame], frame);
                assert!(m.len() >= size.counts_from);
                changed += usize::from(m != frame);
            }
            assert!(changed > 1_500, "most change something: {changed}");
        }
    }
}
