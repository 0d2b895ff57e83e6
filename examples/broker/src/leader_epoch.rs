//! The broker's leader epoch: one number for every partition, raised at
//! each start and kept in `<data>/leader-epoch`. Uses `std` and the
//! folder sync; knows nothing of logs.
//!
//! In Kafka a partition's leader epoch rises whenever its leadership
//! changes, and a broker that restarts loses and regains leadership of
//! every partition it leads: its epochs rise with each start. This broker
//! leads every partition, so one number serves them all. It must never
//! be used twice: batches appended in an epoch carry it, and a consumer
//! that read records a crash then cut away learns so only because the
//! records written in their place carry a newer epoch. So the file is
//! synced (and its folder) before the first append of the new epoch,
//! and a start takes the larger of it and every epoch its partitions
//! recorded, plus one.

use crate::folder_sync::{self, Durability};
use std::fs;
use std::io;
use std::path::Path;

/// The file's name, at the top of the data folder.
pub const FILE: &str = "leader-epoch";

/// The epoch the last start took, if the file is there and readable (a
/// damaged one is logged and read as absent).
pub fn read(root: &Path) -> Option<i32> {
    let path = root.join(FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the leader epoch; taking the partitions' newest");
            return None;
        }
    };
    let epoch = text.trim().parse::<i32>().ok().filter(|&e| e >= 0);
    if epoch.is_none() {
        tracing::warn!(file = %path.display(), "damaged leader epoch file; taking the partitions' newest");
    }
    epoch
}

/// The epoch a start takes: one past both the last start's and the newest
/// any partition recorded (`partitions`), and at least 1, so that records
/// appended before epochs were kept (some clients stamp their batches 0)
/// are older than any epoch of this broker's.
pub fn next(last: Option<i32>, partitions: impl Iterator<Item = i32>) -> i32 {
    let newest = partitions.chain(last).max().unwrap_or(0).max(0);
    // Saturates after two billion starts, where it would repeat.
    newest.saturating_add(1)
}

/// Writes `epoch` durably: a temporary file, synced, renamed over the
/// file, and the folder synced.
pub fn write(root: &Path, epoch: i32) -> io::Result<()> {
    let text = format!("{epoch}\n");
    let path = root.join(FILE);
    // Named: a start refused for want of this file (a full disk) says
    // which file it could not write.
    folder_sync::replace(&path, text.as_bytes(), Durability::Durable)
        .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_start_takes_an_epoch_above_every_one_recorded() {
        assert_eq!(next(None, std::iter::empty()), 1);
        assert_eq!(next(Some(4), [2, 3].into_iter()), 5);
        // A partition that recorded a newer epoch than the file (the
        // file's write was lost) still gets a new one.
        assert_eq!(next(Some(4), [7, 3].into_iter()), 8);
        assert_eq!(next(None, [0].into_iter()), 1);
        assert_eq!(next(Some(i32::MAX), std::iter::empty()), i32::MAX);
    }

    #[test]
    fn the_epoch_is_written_and_read_back_and_damage_reads_as_absent() {
        let dir = std::env::temp_dir().join(format!("gyre-leader-epoch-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir), None);
        write(&dir, 12).unwrap();
        assert_eq!(read(&dir), Some(12));
        assert!(!folder_sync::temporary(&dir.join(FILE)).exists());
        fs::write(dir.join(FILE), "1x\n").unwrap();
        assert_eq!(read(&dir), None);
        fs::write(dir.join(FILE), "-3\n").unwrap();
        assert_eq!(read(&dir), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
