//! A provided-buffer ring for io_uring's multishot receives: one pool of
//! buffers per loop, which the kernel fills as data arrives on any of the
//! loop's channels, so memory for reads grows with the loop, not with the
//! number of idle connections.
//!
//! The loop owns every buffer that is not in the ring. A receive completion
//! names the buffer it filled; the channel copies the bytes into its own
//! `BytesMut` (the pipeline reads a `BytesMut` it may keep and grow, which a
//! shared pool buffer cannot be) and the buffer goes straight back.

use io_uring::types::BufRingEntry;
use io_uring::Submitter;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// The buffer group every channel of a loop receives into.
pub(crate) const GROUP: u16 = 0;

/// The ring of buffer descriptors and the buffers it hands out.
pub(crate) struct BufRing {
    /// `entries` descriptors in page-aligned anonymous memory, shared with
    /// the kernel.
    ring: *mut BufRingEntry,
    ring_bytes: usize,
    entries: u16,
    buf_size: usize,
    /// `entries * buf_size` bytes; the kernel writes into the buffers it
    /// holds, we read the ones it has handed back.
    bufs: *mut u8,
    /// Our copy of the ring's tail (the kernel reads the published one).
    tail: u16,
}

// SAFETY: a `BufRing` owns its mapping and buffers outright (the raw
// pointers alias nothing else in the program); moving it to another thread
// moves that ownership, and it is only ever used by one thread at a time
// (the loop that owns the ring it is registered with).
unsafe impl Send for BufRing {}

impl BufRing {
    /// Makes `entries` (a power of two) buffers of `buf_size` bytes and
    /// registers them with the ring behind `submitter`.
    pub(crate) fn new(
        submitter: &Submitter<'_>,
        entries: u16,
        buf_size: usize,
    ) -> io::Result<Self> {
        assert!(
            entries.is_power_of_two(),
            "buffer ring size must be a power of two"
        );
        let ring_bytes = usize::from(entries) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping; no memory of ours involved.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let bufs = Box::into_raw(vec![0u8; usize::from(entries) * buf_size].into_boxed_slice());
        let mut this = BufRing {
            ring: ring.cast(),
            ring_bytes,
            entries,
            buf_size,
            bufs: bufs.cast(),
            tail: 0,
        };
        // SAFETY: the descriptor ring is page-aligned (fresh mapping), of
        // `entries` entries, and lives until `Drop`, which the driver runs
        // only after unregistering it (`unregister` below, called by
        // `UringDriver::drop` once nothing is in flight).
        unsafe { submitter.register_buf_ring_with_flags(ring as u64, entries, GROUP, 0)? };
        for bid in 0..entries {
            this.put(bid);
        }
        this.publish();
        Ok(this)
    }

    /// Writes buffer `bid`'s descriptor at the tail (not yet published).
    fn put(&mut self, bid: u16) {
        let index = usize::from(self.tail & (self.entries - 1));
        // SAFETY: `index < entries`, inside the mapping; the kernel does not
        // read descriptors past the published tail, so this one is ours.
        let entry = unsafe { &mut *self.ring.add(index) };
        // SAFETY: `bid < entries`, so the offset is inside `bufs`.
        let addr = unsafe { self.bufs.add(usize::from(bid) * self.buf_size) };
        entry.set_addr(addr as u64);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every descriptor written so far visible to the kernel.
    fn publish(&self) {
        // SAFETY: the tail lives in the first descriptor's reserved field,
        // which the kernel reads atomically; `ring` is the mapping's base.
        let tail = unsafe { BufRingEntry::tail(self.ring) } as *const AtomicU16;
        // SAFETY: aligned u16 inside the mapping; Release orders the
        // descriptor writes before the kernel can see the new tail.
        unsafe { (*tail).store(self.tail, Ordering::Release) };
    }

    /// The first `len` bytes of buffer `bid`, which a completion has just
    /// handed back to us.
    pub(crate) fn filled(&self, bid: u16, len: usize) -> &[u8] {
        assert!(
            bid < self.entries && len <= self.buf_size,
            "bad buffer {bid}/{len}"
        );
        // SAFETY: in bounds (checked); the kernel wrote these bytes and gave
        // the buffer back, and will not touch it until it is recycled.
        unsafe { std::slice::from_raw_parts(self.bufs.add(usize::from(bid) * self.buf_size), len) }
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn recycle(&mut self, bid: u16) {
        self.put(bid);
        self.publish();
    }
}

impl BufRing {
    /// Takes the ring back from the kernel: after this it neither reads
    /// the descriptors nor writes into the buffers, so they may be freed.
    /// Call it only when no receive is in flight.
    pub(crate) fn unregister(&self, submitter: &Submitter<'_>) -> io::Result<()> {
        submitter.unregister_buf_ring(GROUP)
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping and the buffers are ours, and the only owner
        // that lets a `BufRing` drop (`UringDriver::drop`) has unregistered
        // it first with nothing in flight, so the kernel holds no reference
        // to either. (A driver that cannot quiesce leaks the pool instead.)
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_bytes);
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.bufs,
                usize::from(self.entries) * self.buf_size,
            )));
        }
    }
}
