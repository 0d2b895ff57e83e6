//! What Gyre's tests and benchmarks measure the process with, written once:
//! a counting global allocator ([`CountingAllocator`]) for the
//! allocations-per-message tests and benches, and the highest open file
//! descriptor ([`highest_fd`]) for the descriptor-limit tests; threads
//! by name, CPU time, sleeps and storage reads ([`threads_named`], [`cpu_ticks`], [`sleeps`],
//! [`storage_read_bytes_of_threads`]) for the busy-poll and cold-file
//! tests and the benches; files dropped from the page cache
//! ([`evict_from_page_cache`], on `libc`); the TLS certificates they use
//! ([`certs`], on `rcgen`); and the kernel's count of kernel-TLS sessions
//! ([`kernel_tls_sessions`]); and scratch directories that go when the
//! test process exits ([`scratch_dir`], [`scratch_root`], on `libc`); and
//! mutations of recorded protocol frames for tests that send a server
//! what a real client sent, changed ([`mutate`]). The rest uses only
//! `std`.

pub mod certs;
mod kernel_tls;
mod mutate;
mod page_cache;
mod scratch;
mod threads;

pub use kernel_tls::{check_kernel_tls_took, kernel_tls_expected, kernel_tls_sessions};
pub use mutate::{count_panics, fuzz_run, mutate, spray_mutations, Rng, SizeField, Sprayer};
pub use page_cache::evict_from_page_cache;
pub use scratch::{scratch_dir, scratch_root};
pub use threads::{
    cpu_ticks, sleeps, storage_read_bytes, storage_read_bytes_of_threads, threads_named,
};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// The system allocator, counting every allocation (and reallocation) of
/// the process. Install it in a test or bench binary and read
/// [`allocations`](Self::allocations) around what you measure:
///
/// ```
/// use gyre_testkit::CountingAllocator;
///
/// #[global_allocator]
/// static ALLOCATOR: CountingAllocator = CountingAllocator::new();
///
/// let before = ALLOCATOR.allocations();
/// let v = vec![1u8; 100];
/// assert!(ALLOCATOR.allocations() > before);
/// # drop(v);
/// ```
#[derive(Debug, Default)]
pub struct CountingAllocator {
    allocations: AtomicU64,
}

impl CountingAllocator {
    /// A counter at zero.
    pub const fn new() -> Self {
        CountingAllocator {
            allocations: AtomicU64::new(0),
        }
    }

    /// Allocations and reallocations so far, by every thread.
    pub fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    /// Allocations per call of `f` in steady state: `f` runs `warm_up`
    /// times uncounted, then `counted` times counted.
    pub fn per_call(&self, warm_up: usize, counted: usize, mut f: impl FnMut()) -> f64 {
        for _ in 0..warm_up {
            f();
        }
        let before = self.allocations();
        for _ in 0..counted {
            f();
        }
        (self.allocations() - before) as f64 / counted.max(1) as f64
    }

    /// The counter itself, for code that reads it at moments of its own
    /// (a load generator's measured window).
    pub fn counter(&'static self) -> &'static AtomicU64 {
        &self.allocations
    }
}

// SAFETY: forwards every call to the system allocator unchanged; counting
// is a relaxed atomic increment, which neither fails nor allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `GlobalAlloc::alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.allocations.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `GlobalAlloc::realloc`'s.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The highest file descriptor this process has open (from
/// `/proc/self/fd`), to set a descriptor limit just above what is in use.
///
/// # Panics
/// If `/proc/self/fd` cannot be read.
pub fn highest_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .expect("at least stdin is open")
}
