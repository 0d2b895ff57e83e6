//! Whether a [`FileRegion`]'s pages are not only in the page cache but
//! read in: [`FileRegion::is_read_in`]. `cachestat(2)`
//! ([`FileRegion::is_cached`]) counts a page from the moment the kernel
//! adds it to the cache to be read, so pages another reader (or the
//! kernel's readahead) has in flight count as cached, and a send that
//! meets them waits for the disk. On the Intel Xeon VM, with one thread
//! reading a cold 64 MiB file in order, `cachestat` ran 12-16 MiB ahead
//! of the pages actually read in. `mincore(2)` counts only pages whose
//! read has finished; it asks about a mapping, so one is made for the
//! question and never touched. Uses the region and `page_cache`'s
//! `cachestat` and page size.

use crate::file_region::FileRegion;
use crate::page_cache::page_size;
use std::os::fd::{AsFd, AsRawFd};

/// Pages `mincore(2)` reports on per call: its answer, a byte a page,
/// lives on the stack (4 MiB of pages at a time).
const PAGES_PER_ASK: usize = 1024;

impl FileRegion {
    /// Whether every page of the bytes still to send is in the page cache
    /// and read in, so that sending them will not wait on the disk, not
    /// even for a read another thread started: `Some`, or `None` where the
    /// kernel cannot say (before Linux 6.5, or a file system without a
    /// page cache). Reads nothing and never waits on the disk.
    ///
    /// It asks [`is_cached`](Self::is_cached) first, and only where that
    /// says all cached does it ask `mincore(2)`, over a mapping of the
    /// range made for the question (never read from, so a file cut short
    /// meanwhile raises no signal). Dearer than `is_cached`: on the Intel
    /// Xeon VM, 20 µs for 4 MiB against 2.7, and 1 µs more for the
    /// mapping. Where the mapping cannot be made it answers as
    /// `is_cached`.
    ///
    /// ```
    /// use gyre_zerocopy::FileRegion;
    /// # let path = std::env::temp_dir().join(format!("gyre-doc-read-in-{}", std::process::id()));
    /// std::fs::write(&path, vec![5u8; 256 * 1024])?;
    /// let region = FileRegion::open(&path)?;
    /// region.load_into_cache()?;
    /// // Loaded: read in, where the kernel can tell.
    /// assert_ne!(region.is_read_in(), Some(false));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_read_in(&self) -> Option<bool> {
        let cached = self.is_cached();
        if cached != Some(true) || self.remaining() == 0 {
            return cached;
        }
        let page = page_size();
        let start = self.position() / page * page;
        let end = self.position() + self.remaining();
        let Ok(span) = usize::try_from(end - start) else {
            return cached;
        };
        let Ok(offset) = libc::off_t::try_from(start) else {
            return cached;
        };
        let fd = self.file().as_fd().as_raw_fd();
        // SAFETY: a new read-only shared mapping of `span` (> 0) bytes of
        // an open descriptor at a page-aligned offset, placed where the
        // kernel chooses; it overlaps nothing of ours, and is unmapped
        // below before anything else could see it.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if at == libc::MAP_FAILED {
            return cached;
        }
        let read_in = all_pages_read_in(at.cast(), span, page as usize);
        // SAFETY: exactly the mapping made above, never read from and
        // not used after this.
        unsafe { libc::munmap(at, span) };
        read_in.or(cached)
    }
}

/// Whether `mincore(2)` reports every page of the `len` bytes mapped at
/// `at` (page-aligned) as read in; `None` if it fails.
fn all_pages_read_in(at: *mut u8, len: usize, page: usize) -> Option<bool> {
    let mut answer = [0u8; PAGES_PER_ASK];
    let mut done = 0;
    while done < len {
        let ask = (len - done).min(PAGES_PER_ASK * page);
        let pages = ask.div_ceil(page);
        // SAFETY: `at + done` is page-aligned and inside the mapping
        // `at..at + len` the caller made (`done` is a multiple of the page
        // size below `len`); `ask` bytes from it stay inside it; the
        // kernel writes one byte for each of their `pages` pages into
        // `answer`, which holds `PAGES_PER_ASK >= pages`.
        let rc = unsafe { libc::mincore(at.add(done).cast(), ask, answer.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        if answer[..pages].iter().any(|&p| p & 1 == 0) {
            return Some(false);
        }
        done += ask;
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use crate::page_cache::tests::evict;
    use crate::FileRegion;
    use std::os::fd::{AsFd, AsRawFd};

    /// Pages the kernel is reading in count as cached but not read in: a
    /// cold 4 MiB window is asked of the disk (`POSIX_FADV_WILLNEED`,
    /// which returns once the reads are queued) and asked about at once,
    /// while its reads are in flight (4 MiB takes about 2 ms on the
    /// project's VMs). A disk may be fast enough once; it is tried up to
    /// 20 times.
    #[test]
    fn pages_in_flight_are_cached_but_not_read_in() {
        const LEN: u64 = 8 << 20;
        // Beside the build, on a disk (the temporary folder may be tmpfs).
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("gyre-read-in-{}", std::process::id()));
        std::fs::write(&path, vec![7u8; LEN as usize]).unwrap();
        let region = FileRegion::open(&path).unwrap();
        let last = region.window(LEN - (4 << 20), 4 << 20);
        evict(&path);
        if region.is_cached() != Some(false) {
            // Before Linux 6.5, or a file system that keeps pages in
            // memory only: nothing to check here.
            return std::fs::remove_file(&path).unwrap();
        }
        assert_eq!(last.is_read_in(), Some(false), "evicted, yet read in");
        let fd = region.file().as_fd().as_raw_fd();
        let mut seen = false;
        for _ in 0..20 {
            evict(&path);
            // SAFETY: posix_fadvise on an open descriptor; it only
            // advises (here: start reading the last window in).
            unsafe {
                libc::posix_fadvise(
                    fd,
                    last.position() as libc::off_t,
                    last.remaining() as libc::off_t,
                    libc::POSIX_FADV_WILLNEED,
                )
            };
            if last.is_cached() == Some(true) && last.is_read_in() == Some(false) {
                seen = true;
                break;
            }
        }
        assert!(seen, "pages in flight never told apart from pages read in");
        region.load_into_cache().unwrap();
        assert_eq!(region.is_read_in(), Some(true));
        std::fs::remove_file(&path).unwrap();
    }
}
