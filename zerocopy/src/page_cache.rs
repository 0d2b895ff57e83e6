//! Whether a [`FileRegion`]'s bytes are in the page cache, and bringing
//! them there. `sendfile(2)` of bytes that are only on disk waits for the
//! disk (1.8 ms a cold MiB at the median, 8 ms at worst, on the project's
//! Intel Xeon VM), and a thread that serves other sockets, an event loop,
//! must not wait: it asks [`FileRegion::is_cached`] (Linux 6.5's
//! `cachestat(2)`, one system call that reads nothing) and has a region
//! that is not loaded by another thread first
//! ([`FileRegion::load_into_cache`]), after which the send takes the bytes
//! from memory. Uses the region and the crate's error.

use crate::error::Error;
use crate::file_region::{FileRegion, MAX_SENDFILE};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// `cachestat(2)`'s number: new system calls share one table across
/// architectures since Linux 5.1, and `libc` does not name it for every
/// target yet.
const SYS_CACHESTAT: libc::c_long = 451;

/// Set once `cachestat(2)` was found missing (`ENOSYS`).
static CACHESTAT_MISSING: AtomicBool = AtomicBool::new(false);

/// What `cachestat(2)` reads (`struct cachestat_range`).
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// What `cachestat(2)` answers (`struct cachestat`), in pages.
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// Bytes read at a time while loading a region by reading it.
const LOAD_CHUNK: usize = 256 * 1024;

impl FileRegion {
    /// The next `len` bytes of what is left to send after the first
    /// `skip` (fewer where the region ends first), as a region of their
    /// own over the same open file: what a sender asks
    /// [`is_cached`](Self::is_cached) of, or has loaded, one window at a
    /// time instead of a whole large file at once. Makes no system call;
    /// the new region has sent nothing yet.
    ///
    /// ```
    /// use gyre_zerocopy::FileRegion;
    /// # let path = std::env::temp_dir().join(format!("gyre-doc-window-{}", std::process::id()));
    /// std::fs::write(&path, vec![3u8; 10_000])?;
    /// let mut region = FileRegion::open_range(&path, 1000, 9000)?;
    /// region.advance(500);
    /// let next = region.window(0, 4096);
    /// assert_eq!((next.position(), next.remaining()), (1500, 4096));
    /// let after = region.window(4096, 1 << 20);
    /// assert_eq!((after.position(), after.remaining()), (5596, 4404));
    /// assert!(region.window(9000, 1).is_done());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn window(&self, skip: u64, len: u64) -> FileRegion {
        let skip = skip.min(self.remaining());
        let len = len.min(self.remaining() - skip);
        // Within this region, which was checked against its file when it
        // was made: no new check (it would be a system call).
        FileRegion::unchecked(self.file().clone(), self.position() + skip, len)
    }

    /// Whether every page of the bytes still to send is in the page
    /// cache, so that sending them will not wait on the disk: `Some`, or
    /// `None` where the kernel cannot say (before Linux 6.5, or a file
    /// system without a page cache). Reads nothing and never waits on the
    /// disk, so an event loop may ask it before it sends.
    ///
    /// ```
    /// use gyre_zerocopy::FileRegion;
    /// # let path = std::env::temp_dir().join(format!("gyre-doc-cached-{}", std::process::id()));
    /// std::fs::write(&path, vec![1u8; 64 * 1024])?;
    /// let region = FileRegion::open(&path)?;
    /// // Just written: in the page cache, where the kernel can tell.
    /// assert_ne!(region.is_cached(), Some(false));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_cached(&self) -> Option<bool> {
        let len = self.remaining();
        if len == 0 {
            return Some(true);
        }
        let page = page_size();
        let start = self.position();
        let pages = (start + len).div_ceil(page) - start / page;
        if CACHESTAT_MISSING.load(Ordering::Relaxed) {
            return None;
        }
        let range = CachestatRange { off: start, len };
        let mut stat = Cachestat::default();
        let fd = self.file().as_fd().as_raw_fd();
        // SAFETY: `cachestat(fd, range, stat, flags)` reads the 16-byte
        // range and writes the 40-byte answer: both are `repr(C)` structs
        // laid out as the kernel's (five and two `u64`s), owned by this
        // frame and alive for the call; `fd` is open for as long as
        // `self` holds the file; flags must be 0.
        let rc = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                fd,
                &range as *const CachestatRange,
                &mut stat as *mut Cachestat,
                0u32,
            )
        };
        if rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
            // A kernel before 6.5: it will not learn the call later, so
            // later questions make no system call.
            CACHESTAT_MISSING.store(true, Ordering::Relaxed);
        }
        (rc == 0).then_some(stat.nr_cache >= pages)
    }

    /// Reads the bytes still to send into the page cache, waiting for the
    /// disk: call it on a thread that may wait (never an event loop's),
    /// then send the region from the loop. Cheap when they are there
    /// already (no disk, and nothing is copied to user space). Errors
    /// name the file; a file that ends before the region does is
    /// [`Error::Truncated`].
    ///
    /// ```
    /// use gyre_zerocopy::FileRegion;
    /// # let path = std::env::temp_dir().join(format!("gyre-doc-load-{}", std::process::id()));
    /// std::fs::write(&path, vec![2u8; 300 * 1024])?;
    /// let region = FileRegion::open(&path)?;
    /// region.load_into_cache()?;
    /// assert_ne!(region.is_cached(), Some(false));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_into_cache(&self) -> Result<(), Error> {
        let file = self.file();
        // The whole range asked of the disk at once, and only it: reading
        // it page by page instead would have the kernel read ahead past
        // its end, and a sender meeting those pages while they are still
        // in flight would wait for them, the wait this is here to spare
        // it. The wait below then only waits for the pages to land.
        let fd = file.as_fd().as_raw_fd();
        let (start, len) = (
            self.position() as libc::off_t,
            self.remaining() as libc::off_t,
        );
        // SAFETY: posix_fadvise only advises the kernel about a range of
        // an open descriptor; no memory is passed.
        let _ = unsafe { libc::posix_fadvise(fd, start, len, libc::POSIX_FADV_WILLNEED) };
        match self.wait_without_copying(self.file().as_fd()) {
            Some(done) => done,
            None => self.wait_by_reading(),
        }
    }

    /// As [`load_into_cache`](Self::load_into_cache), but as a reader
    /// going through the file in order: through a file description of
    /// its own (so the kernel's readahead state is this reader's, not the
    /// sender's), and without asking for the range first, so that the
    /// kernel's sequential readahead runs ahead of it. For a long file
    /// loaded a window at a time that is faster: 4 MiB windows of a cold
    /// 256 MiB file loaded at 2.0-2.2 GiB/s against 1.5 GiB/s on the
    /// Intel Xeon VM. But the readahead runs past the region's end too,
    /// and a sender meeting those pages while they are in flight waits
    /// for them ([`is_cached`](Self::is_cached) counts them as cached):
    /// use it where the sender goes by the loader's word for what lies
    /// past the region. Where the file cannot be opened again (no
    /// `/proc`, descriptors exhausted) it loads as `load_into_cache`.
    ///
    /// ```
    /// use gyre_zerocopy::FileRegion;
    /// # let path = std::env::temp_dir().join(format!("gyre-doc-in-order-{}", std::process::id()));
    /// std::fs::write(&path, vec![4u8; 300 * 1024])?;
    /// let region = FileRegion::open(&path)?;
    /// region.window(0, 128 * 1024).load_into_cache_in_order()?;
    /// region.window(128 * 1024, 1 << 20).load_into_cache_in_order()?;
    /// assert_ne!(region.is_cached(), Some(false));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_into_cache_in_order(&self) -> Result<(), Error> {
        let fd = self.file().as_fd().as_raw_fd();
        let Ok(own) = std::fs::File::open(format!("/proc/self/fd/{fd}")) else {
            return self.load_into_cache();
        };
        match self.wait_without_copying(own.as_fd()) {
            Some(done) => done,
            None => self.load_into_cache(),
        }
    }

    /// Waits for the region's pages by `sendfile`-ing them into
    /// `/dev/null`: the kernel waits for each page to be read and copies
    /// nothing (for 64 MiB on the Intel Xeon VM, the copy into a buffer
    /// was 11 ms of CPU). `None` where that cannot be done (no
    /// `/dev/null`, a file system that cannot splice): read instead.
    fn wait_without_copying(&self, from: BorrowedFd<'_>) -> Option<Result<(), Error>> {
        static DEV_NULL: OnceLock<Option<std::fs::File>> = OnceLock::new();
        let null = DEV_NULL
            .get_or_init(|| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/null")
                    .ok()
            })
            .as_ref()?;
        let file = self.file();
        let end = self.position() + self.remaining();
        let mut at = self.position() as libc::off_t;
        while (at as u64) < end {
            let want = (end - at as u64).min(MAX_SENDFILE) as usize;
            // SAFETY: sendfile between two open descriptors, both alive
            // for the call (`from` is borrowed for it, the static holds
            // the null device); `at` is a local offset the kernel
            // advances.
            let n = unsafe { libc::sendfile(null.as_raw_fd(), from.as_raw_fd(), &mut at, want) };
            match n {
                0 => return Some(Err(self.truncated_error())),
                n if n > 0 => {}
                _ => {
                    let e = std::io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EINTR) => {}
                        Some(libc::EINVAL | libc::ENOSYS) => return None,
                        _ => return Some(Err(Error::io("sendfile", file.path(), e))),
                    }
                }
            }
        }
        Some(Ok(()))
    }

    /// Waits for the region's pages by reading them into a scratch buffer.
    fn wait_by_reading(&self) -> Result<(), Error> {
        let file = self.file();
        let mut scratch = vec![0u8; LOAD_CHUNK.min(self.remaining() as usize)];
        let (mut at, end) = (self.position(), self.position() + self.remaining());
        while at < end {
            let want = ((end - at) as usize).min(scratch.len());
            match file.file().read_at(&mut scratch[..want], at) {
                Ok(0) => return Err(self.truncated_error()),
                Ok(n) => at += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("pread", file.path(), e)),
            }
        }
        Ok(())
    }
}

/// The page size `cachestat(2)` counts in.
pub(crate) fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the running system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u64
    } else {
        4096
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::SharedFile;

    fn scratch_file(name: &str, len: usize) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("gyre-{name}-{}", std::process::id()));
        std::fs::write(&path, vec![9u8; len]).unwrap();
        path
    }

    /// Drops the file's pages from the cache (clean pages only, so sync
    /// first): what a file long unread looks like.
    pub(crate) fn evict(path: &std::path::Path) {
        let f = std::fs::File::open(path).unwrap();
        f.sync_all().unwrap();
        // SAFETY: posix_fadvise on an open descriptor; it only advises.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
    }

    fn on_tmpfs(path: &std::path::Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: `statfs` is plain integers, for which all zeroes is a
        // valid value.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: statfs reads a NUL-terminated path and writes one
        // `struct statfs`, both owned by this frame.
        let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
        rc == 0 && st.f_type == libc::TMPFS_MAGIC
    }

    #[test]
    fn an_evicted_region_is_not_cached_until_loaded() {
        let path = scratch_file("page-cache", 1 << 20);
        let file = SharedFile::open(&path).unwrap();
        let region = FileRegion::new(file, 4096, 512 * 1024).unwrap();
        evict(&path);
        let Some(cached) = region.is_cached() else {
            // A kernel before 6.5: nothing to check here.
            return std::fs::remove_file(&path).unwrap();
        };
        if cached && on_tmpfs(&path) {
            // tmpfs pages live in memory only: nothing to evict.
            return std::fs::remove_file(&path).unwrap();
        }
        assert!(!cached, "evicted, yet cached");
        region.load_into_cache().unwrap();
        assert_eq!(region.is_cached(), Some(true));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_evicted_region_loaded_in_order_is_cached_window_by_window() {
        let path = scratch_file("page-cache-in-order", 2 << 20);
        let region = FileRegion::open(&path).unwrap();
        evict(&path);
        if region.is_cached() != Some(false) {
            // Before Linux 6.5, or tmpfs: nothing to check here.
            return std::fs::remove_file(&path).unwrap();
        }
        let first = region.window(0, 1 << 20);
        first.load_into_cache_in_order().unwrap();
        assert_eq!(first.is_cached(), Some(true));
        let second = region.window(1 << 20, 1 << 20);
        second.load_into_cache_in_order().unwrap();
        assert_eq!(region.is_cached(), Some(true));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn loading_a_region_of_a_file_that_shrank_names_the_truncation() {
        let path = scratch_file("page-cache-cut", 64 * 1024);
        let region = FileRegion::open_range(&path, 0, 64 * 1024).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1000)
            .unwrap();
        assert!(matches!(
            region.load_into_cache(),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            region.load_into_cache_in_order(),
            Err(Error::Truncated { .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }
}
