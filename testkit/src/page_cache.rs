//! Files as a long-unread file looks to the kernel: out of the page cache.
//! Uses `libc`; Linux only.

use std::os::fd::AsRawFd;
use std::path::Path;

/// Writes out `path`'s dirty pages and drops all its pages from the page
/// cache (`fsync`, then `POSIX_FADV_DONTNEED`), so that the next read of
/// it goes to the disk. On tmpfs, whose pages live only in memory, nothing
/// is dropped: callers check (with `cachestat`, say) before counting on it.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("testkit-evict-{}", std::process::id()));
/// std::fs::write(&path, vec![1u8; 8192])?;
/// gyre_testkit::evict_from_page_cache(&path)?;
/// assert_eq!(std::fs::read(&path)?.len(), 8192, "still there, on disk");
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn evict_from_page_cache(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    f.sync_all()?;
    // SAFETY: posix_fadvise on an open descriptor; it only advises, and no
    // memory is passed.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    match rc {
        0 => Ok(()),
        errno => Err(std::io::Error::from_raw_os_error(errno)),
    }
}
