//! One broker per data folder: an exclusive `flock` on `<data>/.lock`,
//! held for as long as the broker has the folder open. Uses `std` and
//! `libc` (`flock`).
//!
//! A second broker started on a folder already in use (a second copy of
//! the command, a supervisor that restarted it too early) must not touch
//! it: its start would take the clean-shutdown marker, run recovery over
//! segments the first broker is appending to and cut their tails, and on
//! the way out (its port taken) mark the folder clean while the first is
//! still writing, so that the first broker's crash would later be
//! trusted as a clean stop. Kafka refuses the same way, with a `.lock`
//! file in each log directory. The kernel drops an `flock` when its
//! holder exits, even by `SIGKILL`, so no stale lock outlives a crash.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name in the data folder.
pub(crate) const LOCK_FILE: &str = ".lock";

/// The held lock on a data folder; dropping it (or exiting) releases it.
#[derive(Debug)]
pub(crate) struct DataLock {
    _file: File,
}

impl DataLock {
    /// Takes the lock on `root` (which must exist) without waiting; an
    /// error of kind `ResourceBusy` names the folder when another process
    /// (or another `Storage` in this one) holds it.
    pub(crate) fn acquire(root: &Path) -> io::Result<DataLock> {
        let path: PathBuf = root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        loop {
            // SAFETY: `flock` on a descriptor we own and keep open for the
            // call; it touches no memory of ours.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(DataLock { _file: file });
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) => {
                    return Err(io::Error::new(
                        io::ErrorKind::ResourceBusy,
                        format!(
                            "data folder {} is in use by another broker (it holds the lock on {}); \
                             stop that one first, or give this one another --data",
                            root.display(),
                            path.display()
                        ),
                    ))
                }
                _ => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-data-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let first = DataLock::acquire(&dir).unwrap();
        let e = DataLock::acquire(&dir).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ResourceBusy);
        assert!(e.to_string().contains(&dir.display().to_string()), "{e}");
        drop(first);
        let again = DataLock::acquire(&dir).unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
