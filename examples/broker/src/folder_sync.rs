//! The fsync of a folder, which makes the entries made in it durable (a
//! new file, a rename, a removal), and the whole-file replace built on
//! it. Uses `std` and the failpoints only.
//!
//! An fsync of a new file makes its bytes durable, not its name: until
//! its folder is synced, a power loss may leave the folder without it
//! (POSIX promises nothing more, and XFS, btrfs and ext4 without its
//! journal's ordering lose such names). Kafka found the same for its new
//! segments (KAFKA-3968) and syncs a log's folder when a flush first
//! covers one; so does the broker, through [`sync_folder`], wherever it
//! makes or renames a file that must survive.
//!
//! [`replace`] is the one way the broker rewrites a small file whole (a
//! checkpoint, a snapshot, a properties or security file): a crash leaves
//! the old file or the new one, never a mix of the two.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// Syncs the folder `dir`: every entry made or removed in it so far is
/// durable once this returns.
pub(crate) fn sync_folder(dir: &Path) -> io::Result<()> {
    crate::failpoint::io_error("foldersync", dir)?;
    File::open(dir)?.sync_all()?;
    #[cfg(test)]
    record::SYNCED.with(|s| s.borrow_mut().push(dir.to_owned()));
    Ok(())
}

/// How much of a [`replace`] a power loss cannot undo once it returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Nothing: renamed only. After a power loss the file may be the old
    /// one, or the new one with any of its bytes missing; for files that
    /// carry a CRC and that a start can rebuild without.
    Renamed,
    /// The new bytes are synced before the rename, so the name holds the
    /// old file or the whole new one; the rename itself may be lost.
    /// For files a start reads on from (a snapshot names its offset).
    Contents,
    /// The bytes and the rename: the folder is synced after it.
    Durable,
}

/// Replaces the file at `path` with `bytes`, through `<path>.tmp` and a
/// rename, as far as `durability` says.
/// A failed replace leaves the old file, and removes the temporary one
/// (on a full disk it would hold what space the write took).
pub(crate) fn replace(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    let tmp = temporary(path);
    let written = std::fs::write(&tmp, bytes).and_then(|()| match durability {
        Durability::Renamed => Ok(()),
        _ => File::open(&tmp)?.sync_all(),
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    match (durability, path.parent()) {
        (Durability::Durable, Some(dir)) => sync_folder(parent_or_here(dir)),
        _ => Ok(()),
    }
}

/// The temporary file [`replace`] writes `path` through.
pub(crate) fn temporary(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".tmp");
    PathBuf::from(name)
}

/// A relative path's parent is "" when it is a bare name: the current
/// folder.
fn parent_or_here(dir: &Path) -> &Path {
    match dir.as_os_str().is_empty() {
        true => Path::new("."),
        false => dir,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_durable_replace_syncs_the_folder_and_leaves_no_temporary_file() {
        let dir = gyre_testkit::scratch_dir("replace-durable");
        let path = dir.join("state");
        std::fs::write(&path, "old").unwrap();
        record::take();
        replace(&path, b"new", Durability::Durable).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!temporary(&path).exists());
        assert_eq!(record::take(), [dir]);
    }

    #[test]
    fn a_replace_short_of_durable_leaves_the_folder_alone() {
        let dir = gyre_testkit::scratch_dir("replace-undurable");
        let path = dir.join("state.snapshot");
        record::take();
        for durability in [Durability::Renamed, Durability::Contents] {
            replace(&path, b"text", durability).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"text");
        }
        assert_eq!(record::take(), [] as [PathBuf; 0]);
        assert_eq!(temporary(&path), dir.join("state.snapshot.tmp"));
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = gyre_testkit::scratch_dir("replace-failed");
        let path = dir.join("state");
        std::fs::write(&path, "old").unwrap();
        // A folder where the temporary file must go: the write fails.
        std::fs::create_dir(temporary(&path)).unwrap();
        assert!(replace(&path, b"new", Durability::Durable).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn a_failed_rename_leaves_the_old_file_and_no_temporary_one() {
        let dir = gyre_testkit::scratch_dir("replace-unrenamed");
        let path = dir.join("state");
        // A non-empty folder where the file is: the rename fails.
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), "old").unwrap();
        assert!(replace(&path, b"new", Durability::Durable).is_err());
        assert!(!temporary(&path).exists());
        assert_eq!(std::fs::read(path.join("inside")).unwrap(), b"old");
    }
}
