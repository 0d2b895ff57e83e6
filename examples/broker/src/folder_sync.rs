//! The fsync of a folder, which makes the entries made in it durable: a
//! new file, a rename, a removal. Uses `std` and the failpoints only.
//!
//! An fsync of a new file makes its bytes durable, not its name: until
//! its folder is synced, a power loss may leave the folder without it
//! (POSIX promises nothing more, and XFS, btrfs and ext4 without its
//! journal's ordering lose such names). Kafka found the same for its new
//! segments (KAFKA-3968) and syncs a log's folder when a flush first
//! covers one; so does the broker, through [`sync_folder`], wherever it
//! makes or renames a file that must survive.

use std::fs::File;
use std::io;
use std::path::Path;

/// Syncs the folder `dir`: every entry made or removed in it so far is
/// durable once this returns.
pub(crate) fn sync_folder(dir: &Path) -> io::Result<()> {
    crate::failpoint::io_error("foldersync", dir)?;
    File::open(dir)?.sync_all()?;
    #[cfg(test)]
    record::SYNCED.with(|s| s.borrow_mut().push(dir.to_owned()));
    Ok(())
}

/// For tests: the folders this thread has synced, in order.
#[cfg(test)]
pub(crate) mod record {
    use std::cell::RefCell;
    use std::path::PathBuf;

    thread_local! {
        pub(super) static SYNCED: RefCell<Vec<PathBuf>> = const { RefCell::new(Vec::new()) };
    }

    /// Takes the folders this thread synced since the last call.
    pub(crate) fn take() -> Vec<PathBuf> {
        SYNCED.with(|s| std::mem::take(&mut *s.borrow_mut()))
    }
}
