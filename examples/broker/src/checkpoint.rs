//! The two files that tell a starting broker how much of its logs to check:
//! the clean-shutdown marker and the recovery-point checkpoint, both at the
//! top of the data folder. Uses `std` and the folder sync; knows nothing
//! of logs.
//!
//! A broker that stops cleanly syncs every log, writes the checkpoint with
//! every partition's end offset, then creates the marker. A starting broker
//! that finds the marker removes it (so a later crash is not taken for a
//! clean stop) and checks only segment tails. Without it, every partition
//! is checked batch by batch from the segment holding its recovery point:
//! the offset below which everything had been synced when the checkpoint
//! was written.
//!
//! The checkpoint is replaced by a rename and is not itself synced, on
//! purpose: each value in it was durable before the file was written, so an
//! old file is only conservative, and a file a power cut left short or
//! garbled reads as "no recovery point" (check everything) or holds
//! numbers cut short, which are smaller, so again only conservative.
//! Format, as Kafka's `recovery-point-offset-checkpoint`: a version line
//! (`0`), a count line, then one `topic partition offset` line each. The
//! last of those lines is `#crc32c 0 <crc>`, the CRC-32C of the text
//! before it, so a flipped bit reads as a damaged file (which reads as
//! empty) rather than as another offset: one bit turns a `1` into a `9`,
//! and a log start moved up by it would hide records, which retention
//! then deletes. It is shaped and counted as an entry, so an older
//! binary reads the file as before (an entry for a topic that cannot
//! exist, `#` being no topic name's); a file without it (an older
//! binary's) is read as before too.

use crate::folder_sync::{self, Durability};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

/// The clean-shutdown marker's file name.
pub const CLEAN_MARKER: &str = ".clean-shutdown";
/// The recovery-point checkpoint's file name.
pub const CHECKPOINT: &str = "recovery-point-offset-checkpoint";

/// The log-start checkpoint's file name: where DeleteRecords moved each
/// partition's start (written and synced at each DeleteRecords, as a
/// stale one would bring deleted records back).
pub const LOG_START: &str = "log-start-offset-checkpoint";

/// Recovery points by (topic, partition index).
pub type RecoveryPoints = HashMap<(String, usize), i64>;

/// Reads the checkpoint in `root`; a missing or malformed one reads as
/// empty (malformed is logged), which means "check everything".
pub fn read(root: &Path) -> RecoveryPoints {
    read_named(root, CHECKPOINT)
}

/// Reads the offsets file `name` in `root` (the checkpoint format); a
/// missing or malformed one reads as empty (malformed is logged).
pub fn read_named(root: &Path, name: &str) -> RecoveryPoints {
    let path = root.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return RecoveryPoints::new(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read an offsets checkpoint; taking it as empty");
            return RecoveryPoints::new();
        }
    };
    parse(&text).unwrap_or_else(|| {
        tracing::warn!(file = %path.display(), "malformed offsets checkpoint; taking it as empty");
        RecoveryPoints::new()
    })
}

/// The CRC line's "topic": no topic name holds a `#`.
const CRC_ENTRY: &str = "#crc32c";

/// Whether the offsets file `name` in `root` is there but damaged (what
/// a start reads as empty); `None` if it is not there.
pub fn damaged(root: &Path, name: &str) -> io::Result<Option<bool>> {
    match fs::read_to_string(root.join(name)) {
        Ok(text) => Ok(Some(parse(&text).is_none())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(Some(true)),
        Err(e) => Err(e),
    }
}

fn parse(text: &str) -> Option<RecoveryPoints> {
    if let Some(at) = text.find(&format!("{CRC_ENTRY} 0 ")) {
        let (body, line) = text.split_at(at);
        let written: u32 = line
            .strip_prefix(&format!("{CRC_ENTRY} 0 "))?
            .trim_end_matches('\n')
            .parse()
            .ok()?;
        if crc32c::crc32c(body.as_bytes()) != written {
            return None;
        }
    }
    let mut lines = text.lines();
    if lines.next()? != "0" {
        return None;
    }
    let count: usize = lines.next()?.parse().ok()?;
    let mut points = RecoveryPoints::with_capacity(count.min(1 << 16));
    for line in lines {
        let mut fields = line.split(' ');
        let (Some(topic), Some(index), Some(offset), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return None;
        };
        let offset: i64 = offset.parse().ok().filter(|&o| o >= 0)?;
        points.insert((topic.to_owned(), index.parse().ok()?), offset);
    }
    (points.len() == count).then(|| {
        points.remove(&(CRC_ENTRY.to_owned(), 0));
        points
    })
}

/// Replaces the checkpoint in `root` with `points` (through a temporary
/// file and a rename, not synced: see the module doc).
pub fn write<'a>(
    root: &Path,
    points: impl ExactSizeIterator<Item = (&'a str, usize, i64)>,
) -> io::Result<()> {
    write_named(root, CHECKPOINT, points, false)
}

/// Replaces the offsets file `name` in `root` with `points` (through a
/// temporary file and a rename; with `sync`, durably).
pub fn write_named<'a>(
    root: &Path,
    name: &str,
    points: impl ExactSizeIterator<Item = (&'a str, usize, i64)>,
    sync: bool,
) -> io::Result<()> {
    // The CRC line counts as an entry.
    let mut text = format!("0\n{}\n", points.len() + 1);
    for (topic, index, offset) in points {
        text.push_str(&format!("{topic} {index} {offset}\n"));
    }
    let crc = crc32c::crc32c(text.as_bytes());
    text.push_str(&format!("{CRC_ENTRY} 0 {crc}\n"));
    let durability = match sync {
        true => Durability::Durable,
        false => Durability::Renamed,
    };
    folder_sync::replace(&root.join(name), text.as_bytes(), durability)
}

/// Removes the clean-shutdown marker from `root` if it is there (synced, so
/// that a crash from now on is never taken for a clean stop); says whether
/// it was.
pub fn take_clean_marker(root: &Path) -> io::Result<bool> {
    match fs::remove_file(root.join(CLEAN_MARKER)) {
        Ok(()) => {
            folder_sync::sync_folder(root)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Creates the clean-shutdown marker in `root`, synced. Call it last, once
/// every log is synced and the checkpoint written.
pub fn mark_clean(root: &Path) -> io::Result<()> {
    fs::File::create(root.join(CLEAN_MARKER))?.sync_all()?;
    folder_sync::sync_folder(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_survive_a_write_and_a_read() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-checkpoint-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let points = [("orders", 0, 42), ("orders", 1, 7), ("audit", 0, 0)];
        write(&dir, points.iter().copied()).unwrap();
        let read = read(&dir);
        assert_eq!(read.len(), 3);
        assert_eq!(read[&("orders".to_owned(), 1)], 7);
        assert!(!take_clean_marker(&dir).unwrap());
        mark_clean(&dir).unwrap();
        assert!(take_clean_marker(&dir).unwrap());
        assert!(!take_clean_marker(&dir).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_flipped_bit_reads_as_a_damaged_file_and_an_older_file_still_reads() {
        let dir = gyre_testkit::scratch_dir("checkpoint-flipped");
        write_named(&dir, LOG_START, [("orders", 0, 1000)].into_iter(), false).unwrap();
        let path = dir.join(LOG_START);
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("0\n2\norders 0 1000\n#crc32c 0 "),
            "{text}"
        );
        assert_eq!(read_named(&dir, LOG_START)[&("orders".to_owned(), 0)], 1000);
        // A `1` becomes a `9` with one bit.
        fs::write(&path, text.replacen("1000", "9000", 1)).unwrap();
        assert!(read_named(&dir, LOG_START).is_empty());
        // An older binary's file, with no CRC line.
        fs::write(&path, "0\n1\norders 0 1000\n").unwrap();
        assert_eq!(read_named(&dir, LOG_START).len(), 1);
    }

    #[test]
    fn an_older_reader_takes_the_crc_line_for_an_entry() {
        // An older binary's parser knows no CRC line: it wants the count
        // to match the entries, and each entry to be a name, an index and
        // a non-negative offset. The CRC line is one more such entry.
        let dir = gyre_testkit::scratch_dir("checkpoint-older-reader");
        write(&dir, [("orders", 0, 42), ("audit", 3, 7)].into_iter()).unwrap();
        let text = fs::read_to_string(dir.join(CHECKPOINT)).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("0"));
        let count: usize = lines.next().unwrap().parse().unwrap();
        let entries: Vec<&str> = lines.collect();
        assert_eq!(entries.len(), count);
        for entry in entries {
            let fields: Vec<&str> = entry.split(' ').collect();
            assert_eq!(fields.len(), 3, "{entry}");
            assert!(fields[1].parse::<usize>().is_ok(), "{entry}");
            assert!(fields[2].parse::<i64>().is_ok_and(|o| o >= 0), "{entry}");
        }
    }

    #[test]
    fn a_damaged_checkpoint_reads_as_none() {
        assert!(parse("0\n2\na 0 5\n").is_none(), "a short file");
        assert!(parse("1\n1\na 0 5\n").is_none(), "an unknown version");
        assert!(parse("0\n1\na 0 -5\n").is_none(), "a negative offset");
        assert!(parse("0\n1\na 0 5 x\n").is_none(), "an extra field");
        assert_eq!(parse("0\n1\na 0 5\n").unwrap()[&("a".to_owned(), 0)], 5);
    }
}
