//! When each group was last known to have members, kept across restarts
//! in `<data>/group-activity.log`, so that a restart never resets the
//! clock an empty group's offsets expire by (Kafka keeps the same time in
//! its group metadata, `current_state_timestamp`).
//!
//! At every expiry check the coordinator writes, for each group with
//! members and offsets, one record `[len u32][crc32c u32][group,
//! kept_until i64]`: the wall-clock time (ms since the Unix epoch) until
//! which the group counts as in use, two check intervals from the check;
//! and between checks, at once, one for a group with members that has no
//! such record (newly in use, or with its first offsets). A broker stopped
//! at any moment has written a record whose time is no earlier than the
//! last moment it saw the group with members, so the group's offsets
//! never expire sooner for a restart, and at most two intervals later.
//! One write and one fdatasync per check, whatever the number of groups,
//! and one when a group starts to need a record; the newest record per
//! group wins, and
//! the file is rewritten compactly, as the offsets file is, once it holds
//! many more records than groups. A file older binaries do not know; they
//! leave it alone.
//!
//! May use: the record file.

use crate::record_file::{self, get_str, put_str, RecordFile};
use bytes::{Buf, BufMut};
use std::collections::HashMap;
use std::io;
use std::path::Path;

/// The activity file and the newest time of each group in it.
#[derive(Debug)]
pub struct ActivityFile {
    file: RecordFile,
    kept_until: HashMap<String, i64>,
    records: usize,
    buf: Vec<u8>,
}

impl ActivityFile {
    /// Opens (or creates) `<dir>/group-activity.log` and reads it; a torn
    /// or corrupt tail is cut, the records before it stand.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let (file, records, kept_until) =
            record_file::open_keyed(&dir.join("group-activity.log"), |mut p| {
                let group = get_str(&mut p)??;
                if p.len() < 8 {
                    return None;
                }
                Some((group, Some(p.get_i64())))
            })?;
        Ok(ActivityFile {
            file,
            kept_until,
            records,
            buf: Vec::new(),
        })
    }

    /// Each group's time, as read at start and marked since.
    pub fn kept_until(&self) -> &HashMap<String, i64> {
        &self.kept_until
    }

    /// Durably records that `groups` count as in use until `until_ms`:
    /// one write and one fdatasync. Kept in memory even when the write
    /// fails, so a failing disk is not written again for these groups at
    /// every turn of the coordinator (each check tries again), and written
    /// with the rewrite that follows the failure.
    pub fn mark<'a>(
        &mut self,
        groups: impl IntoIterator<Item = &'a str>,
        until_ms: i64,
    ) -> io::Result<()> {
        self.buf.clear();
        let mut marked = Vec::new();
        for g in groups {
            encode(&mut self.buf, g, until_ms);
            marked.push(g);
        }
        if marked.is_empty() {
            return Ok(());
        }
        let written = self
            .heal()
            .and_then(|()| self.file.append_synced(&self.buf));
        for &g in &marked {
            self.kept_until.insert(g.to_owned(), until_ms);
        }
        written?;
        self.records += marked.len();
        if record_file::worth_compacting(self.records, self.kept_until.len()) {
            if let Err(e) = self.compact() {
                tracing::warn!(file = %self.file.path().display(), error = %e, "cannot rewrite the group activity file compactly; it keeps growing until a rewrite succeeds");
            }
        }
        Ok(())
    }

    /// Forgets `group` (it has no offsets left to keep); its records go
    /// at the next rewrite, and one read back meanwhile is ignored while
    /// the group has no offsets.
    pub fn forget(&mut self, group: &str) {
        self.kept_until.remove(group);
    }

    /// A file whose fdatasync failed is written whole again before
    /// anything follows it (as the offsets file is).
    fn heal(&mut self) -> io::Result<()> {
        match self.file.broken() {
            true => self.compact(),
            false => Ok(()),
        }
    }

    fn compact(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        for (g, &until) in &self.kept_until {
            encode(&mut buf, g, until);
        }
        self.file.rewrite(&buf)?;
        self.records = self.kept_until.len();
        Ok(())
    }
}

fn encode(buf: &mut Vec<u8>, group: &str, until_ms: i64) {
    let start = record_file::begin(buf);
    put_str(buf, Some(group));
    buf.put_i64(until_ms);
    record_file::finish(buf, start);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[cfg(feature = "failpoints")]
    #[test]
    fn after_a_failed_fdatasync_the_next_mark_rewrites_the_file_whole_with_every_mark() {
        let (root, d) = crate::failpoint::armed_scratch("activity-fsync", "fsync");
        let mut f = ActivityFile::open(&d).unwrap();
        f.mark(["a"], 10).unwrap_err();
        // Kept in memory, so the coordinator does not ask again at once.
        assert_eq!(f.kept_until().get("a"), Some(&10));
        let file = d.join("group-activity.log");
        fs::write(&file, b"whatever the failed write left").unwrap();
        f.mark(["b"], 20).unwrap();
        drop(f);
        let f = ActivityFile::open(&d).unwrap();
        assert_eq!(
            f.kept_until().get("a"),
            Some(&10),
            "written with the rewrite"
        );
        assert_eq!(f.kept_until().get("b"), Some(&20));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn marks_survive_a_reopen_the_newest_wins_and_the_file_stays_small() {
        let d = gyre_testkit::scratch_root().join(format!("gyre-activity-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let mut f = ActivityFile::open(&d).unwrap();
        f.mark(["a", "b"], 10).unwrap();
        f.mark(["a"], 20).unwrap();
        f.forget("b");
        f.mark(["c"], 5).unwrap();
        drop(f);
        let mut f = ActivityFile::open(&d).unwrap();
        assert_eq!(f.kept_until().get("a"), Some(&20));
        // Forgotten in memory only: read back, and left to the reader.
        assert_eq!(f.kept_until().get("b"), Some(&10));
        assert_eq!(f.kept_until().get("c"), Some(&5));
        for i in 0..3_000 {
            f.mark(["a", "c"], i).unwrap();
        }
        let size = fs::metadata(d.join("group-activity.log")).unwrap().len();
        assert!(size < 32 * 1024, "the file reached {size} bytes");
        drop(f);
        assert_eq!(
            ActivityFile::open(&d).unwrap().kept_until().get("a"),
            Some(&2_999)
        );
        fs::remove_dir_all(&d).unwrap();
    }
}
