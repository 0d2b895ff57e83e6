//! Append-only files of checksummed records, for the coordinators' small
//! durable state (group offsets, transactions): each record is `[len u32]
//! [crc32c u32][payload]`, written whole and synced by the caller; at
//! start the file is read back record by record and a torn or corrupt
//! tail (a crash mid-write) is cut off and logged, while a whole record
//! its reader does not understand (one a newer binary wrote) is skipped
//! and kept, as Kafka's coordinators skip record types they do not know
//! (KIP-915), so a downgrade loses none of the records after it, and
//! carried over by every rewrite, as Kafka's log cleaner keeps a record
//! no later one of its key replaces, so the newer binary finds it again
//! after an upgrade; a file whose
//! fdatasync failed takes nothing more until it is rewritten whole
//! ([`RecordFile`]). Also the string field the payloads use. Uses only
//! the standard library, `bytes` and `crc32c`.

use crate::folder_sync::{self, Durability};
use bytes::{Buf, BufMut};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Starts a record in `buf`: returns where it starts, for [`finish`].
pub fn begin(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.put_u64(0); // length and CRC, patched by `finish`
    start
}

/// Ends the record begun at `start`: its length and CRC.
pub fn finish(buf: &mut [u8], start: usize) {
    let payload = &buf[start + 8..];
    let (len, crc) = (payload.len() as u32, crc32c::crc32c(payload));
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// The payload of the record at the front of `data` and the bytes it
/// takes; `None` if it is torn or its CRC does not match, or it is
/// empty: no store writes an empty payload, and zeros (what a file
/// extended but not written reads as) would otherwise pass as records,
/// the CRC of nothing being 0.
pub fn next(data: &[u8]) -> Option<(&[u8], usize)> {
    let mut b = data;
    if b.len() < 8 {
        return None;
    }
    let len = b.get_u32() as usize;
    let crc = b.get_u32();
    if len == 0 || b.len() < len || crc32c::crc32c(&b[..len]) != crc {
        return None;
    }
    Some((&b[..len], 8 + len))
}

/// Walks a record file's contents `data` as a start reads them: each
/// whole record's payload to `record`, in order; a damaged record in the
/// middle (its CRC fails, but the record after it, where its length
/// says, is whole: a bit flipped in its payload) to `damaged` as its
/// position and length, and passed over; and returns where the whole
/// records end, past which is a torn or corrupt tail.
///
/// A damaged record whose length was flipped too, or one with no whole
/// record after it, is taken as the start of the tail: it cannot be
/// told from a write a crash cut short.
///
/// `record` gets each payload's record's position too.
pub fn walk(
    data: &[u8],
    mut record: impl FnMut(usize, &[u8]),
    mut damaged: impl FnMut(usize, usize),
) -> usize {
    let mut at = 0;
    loop {
        if let Some((payload, len)) = next(&data[at..]) {
            record(at, payload);
            at += len;
            continue;
        }
        let rest = &data[at..];
        if rest.len() < 8 {
            return at;
        }
        let skip = 8 + u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if skip >= rest.len() || next(&rest[skip..]).is_none() {
            return at;
        }
        damaged(at, skip);
        at += skip;
    }
}

/// Opens (or creates) the file at `path` for appending, passing each
/// whole record's payload to `each` in order; what follows the last
/// whole record (torn, or failing its CRC) is cut off and logged, and a
/// damaged record with whole ones after it is passed over and logged
/// (see [`walk`]). Returns the file and the records in it.
///
/// A payload `each` refuses (it cannot read it: a newer binary's record,
/// say) is skipped, logged, and left in the file: a whole record is
/// never cut, and the records after it are read. Every
/// [rewrite](RecordFile::rewrite) carries it over, ahead of the owner's
/// records (which are newer: they hold all this binary knows), and it is
/// not counted among the records returned, which count what a rewrite
/// can take away (the records read, and damaged ones passed over).
pub fn open(path: &Path, mut each: impl FnMut(&[u8]) -> bool) -> io::Result<(RecordFile, usize)> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let (data, created) = match fs::read(path) {
        Ok(d) => (d, false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), true),
        Err(e) => return Err(e),
    };
    let (mut records, mut unread, mut damaged) = (0, Vec::new(), 0);
    let good = walk(
        &data,
        |at, payload| {
            if each(payload) {
                records += 1;
            } else {
                unread.push((at as u64, 8 + payload.len() as u32));
            }
        },
        |at, len| {
            tracing::warn!(file = %path.display(), at, len, "passed over a damaged record in the middle of a coordinator file (the records after it are whole)");
            damaged += 1;
        },
    );
    // Left in place (the file is appended to, not rewritten): counted so
    // the owner's compaction, which rewrites it without them, comes.
    records += damaged;
    if !unread.is_empty() {
        tracing::warn!(
            file = %path.display(),
            records = unread.len(),
            "skipped records this binary cannot read (a newer one wrote them?); they stay in the file, rewrites included"
        );
    }
    // Readable too: a rewrite copies the unread records out of it.
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    if let (true, Some(dir)) = (created, path.parent()) {
        // Its records are synced as they are appended; its name, here.
        folder_sync::sync_folder(dir)?;
    }
    if good < data.len() {
        tracing::warn!(
            file = %path.display(),
            kept = good,
            dropped = data.len() - good,
            "cut a torn or corrupt tail off a coordinator file"
        );
        file.set_len(good as u64)?;
        file.sync_all()?;
    }
    let file = RecordFile {
        path: path.to_owned(),
        file,
        len: good as u64,
        broken: false,
        unread,
    };
    Ok((file, records))
}

/// Whether a file of `records` records holding `live` live keys is worth
/// rewriting with only those: when most of it is history.
pub fn worth_compacting(records: usize, live: usize) -> bool {
    records > 2 * live + 1000
}

/// [`open`] for a file of keyed records where the newest per key wins:
/// `decode` reads a payload into its key and value, `None` for a
/// tombstone that removes the key (and answers `None` for a payload it
/// cannot read, which is skipped as [`open`] says). Returns the file, the
/// records read and the live keys.
pub fn open_keyed<K: std::hash::Hash + Eq, V>(
    path: &Path,
    decode: impl Fn(&[u8]) -> Option<(K, Option<V>)>,
) -> io::Result<(RecordFile, usize, std::collections::HashMap<K, V>)> {
    let mut live = std::collections::HashMap::new();
    let (file, records) = open(path, |payload| {
        let Some((key, value)) = decode(payload) else {
            return false;
        };
        match value {
            Some(value) => live.insert(key, value),
            None => live.remove(&key),
        };
        true
    })?;
    Ok((file, records, live))
}

/// An open record file, appended to at its end.
///
/// A failed fdatasync breaks it: Linux reports a failed writeback to one
/// fsync and may drop the pages it could not write, so a later fdatasync
/// can succeed over a hole that the next start would read as a corrupt
/// record, cutting every record after it, acknowledged ones included.
/// A broken file takes no more appends (they fail, naming the file)
/// until it is [rewritten](Self::rewrite) whole from its owner's state.
/// A failed or short write is cut back off instead, so the next append
/// does not follow half a record.
///
/// ```
/// use gyre_broker::record_file::{self, begin, finish};
///
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-recfile-{}", std::process::id()));
/// let path = dir.join("state.log");
/// let (mut file, _) = record_file::open(&path, |_| true)?;
/// let mut buf = Vec::new();
/// let at = begin(&mut buf);
/// buf.extend_from_slice(b"offset=42");
/// finish(&mut buf, at);
/// file.append_synced(&buf)?;
/// let mut read = Vec::new();
/// record_file::open(&path, |payload| {
///     read.push(payload.to_vec());
///     true
/// })?;
/// assert_eq!(read, [b"offset=42".to_vec()]);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RecordFile {
    path: PathBuf,
    file: File,
    /// Bytes of whole records.
    len: u64,
    broken: bool,
    /// Where the records this binary could not read sit in the file
    /// (position, framed length), in file order: carried over by every
    /// rewrite.
    unread: Vec<(u64, u32)>,
}

impl RecordFile {
    /// Appends `records` (already framed); not synced.
    pub fn append(&mut self, records: &[u8]) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(format!(
                "{}: an earlier fdatasync of it failed, and what it held may be lost; nothing more is written to it until it is rewritten",
                self.path.display()
            )));
        }
        if let Err(e) = self.file.write_all(records) {
            if self.file.set_len(self.len).is_err() {
                self.broken = true;
            }
            return Err(self.named(e));
        }
        self.len += records.len() as u64;
        Ok(())
    }

    /// fdatasyncs what was appended; a failure breaks the file.
    pub fn sync(&mut self) -> io::Result<()> {
        let synced =
            crate::failpoint::io_error("fsync", &self.path).and_then(|()| self.file.sync_data());
        synced.map_err(|e| {
            self.broken = true;
            self.named(e)
        })
    }

    /// [`append`](Self::append) then [`sync`](Self::sync).
    pub fn append_synced(&mut self, records: &[u8]) -> io::Result<()> {
        self.append(records)?;
        self.sync()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an fdatasync failed since the file was last written whole.
    pub fn broken(&self) -> bool {
        self.broken
    }

    /// Replaces the file with `records` (already framed) through a synced
    /// temporary file, a rename and a synced folder; whole again after.
    /// The records this binary could not read at open go first, copied
    /// out of the file as it is (each checked against its CRC again; one
    /// that fails is dropped and logged).
    pub fn rewrite(&mut self, records: &[u8]) -> io::Result<()> {
        let mut whole = self.unread_records().map_err(|e| self.named(e))?;
        let kept = whole.len();
        let bytes = if kept == 0 {
            records
        } else {
            whole.extend_from_slice(records);
            &whole
        };
        let written = folder_sync::replace(&self.path, bytes, Durability::Durable)
            .and_then(|()| OpenOptions::new().read(true).append(true).open(&self.path));
        self.file = written.map_err(|e| self.named(e))?;
        self.len = bytes.len() as u64;
        self.broken = false;
        let mut at = 0;
        for (pos, len) in &mut self.unread {
            *pos = at;
            at += u64::from(*len);
        }
        Ok(())
    }

    /// The unread records, framed, read back from the file; their
    /// positions are left to `rewrite` to move. A read that fails fails
    /// the rewrite (the file stays as it is); a record that reads back
    /// other than whole is dropped and logged.
    fn unread_records(&mut self) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut out = Vec::new();
        let mut kept = Vec::with_capacity(self.unread.len());
        for &(pos, len) in &self.unread {
            let start = out.len();
            out.resize(start + len as usize, 0);
            self.file.read_exact_at(&mut out[start..], pos)?;
            if next(&out[start..]).is_some_and(|(_, n)| n == len as usize) {
                kept.push((pos, len));
            } else {
                tracing::error!(file = %self.path.display(), at = pos, "a record this binary cannot read no longer reads back whole; the rewrite leaves it out");
                out.truncate(start);
            }
        }
        self.unread = kept;
        Ok(out)
    }

    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }
}

/// Writes an optional string: its length (`u16::MAX` for none), then it.
pub fn put_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => {
            buf.put_u16(s.len() as u16);
            buf.put_slice(s.as_bytes());
        }
        None => buf.put_u16(u16::MAX),
    }
}

/// Reads a [`put_str`] string; `None` if `b` is too short or not UTF-8.
pub fn get_str(b: &mut &[u8]) -> Option<Option<String>> {
    if b.len() < 2 {
        return None;
    }
    let len = b.get_u16();
    if len == u16::MAX {
        return Some(None);
    }
    let len = len as usize;
    if b.len() < len {
        return None;
    }
    let s = String::from_utf8(b[..len].to_vec()).ok()?;
    b.advance(len);
    Some(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records of `strings`, framed.
    fn framed(strings: &[&str]) -> Vec<u8> {
        let mut buf = Vec::new();
        for s in strings {
            let at = begin(&mut buf);
            put_str(&mut buf, Some(s));
            finish(&mut buf, at);
        }
        buf
    }

    #[test]
    fn records_read_back_and_a_torn_tail_is_cut() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-recfile-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("f.log");
        let buf = framed(&["one", "two"]);
        folder_sync::record::take();
        let (mut file, n) = open(&path, |_| true).unwrap();
        assert_eq!(n, 0);
        assert_eq!(
            folder_sync::record::take(),
            std::slice::from_ref(&dir),
            "a new file's name is made durable"
        );
        file.append(&buf).unwrap();
        file.append(&buf[..5]).unwrap(); // torn
        let mut seen = Vec::new();
        let (_, n) = open(&path, |mut p| {
            seen.push(get_str(&mut p).unwrap().unwrap());
            true
        })
        .unwrap();
        assert_eq!(folder_sync::record::take(), [] as [PathBuf; 0]);
        assert_eq!((n, seen), (2, vec!["one".to_owned(), "two".to_owned()]));
        assert_eq!(fs::metadata(&path).unwrap().len(), buf.len() as u64);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_whole_record_the_reader_cannot_read_is_skipped_and_kept() {
        let dir = gyre_testkit::scratch_dir("recfile-unread");
        let path = dir.join("f.log");
        let buf = framed(&["one", "newer", "two"]);
        fs::write(&path, &buf).unwrap();
        fn read_all_but_newer(seen: &mut Vec<String>) -> impl FnMut(&[u8]) -> bool + '_ {
            move |mut p: &[u8]| match get_str(&mut p).unwrap().unwrap() {
                s if s == "newer" => false,
                s => {
                    seen.push(s);
                    true
                }
            }
        }
        let mut seen = Vec::new();
        let (mut file, n) = open(&path, read_all_but_newer(&mut seen)).unwrap();
        assert_eq!(
            (n, &seen[..]),
            (2, &["one".to_owned(), "two".to_owned()][..]),
            "the unread record is not counted: no rewrite takes it away"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            buf.len() as u64,
            "nothing is cut"
        );
        file.append(&framed(&["three"])).unwrap();
        let mut seen = Vec::new();
        open(&path, read_all_but_newer(&mut seen)).unwrap();
        assert_eq!(seen, ["one", "two", "three"]);
    }

    /// What every store's compaction does: a rewrite from the owner's
    /// state. The records the binary could not read go first (the
    /// owner's are newer), whole, however many rewrites follow; a newer
    /// binary reading the file finds them, and the owner's after them.
    #[test]
    fn a_rewrite_carries_the_unread_records_over_ahead_of_the_owners() {
        let dir = gyre_testkit::scratch_dir("recfile-unread-rewrite");
        let path = dir.join("f.log");
        fs::write(&path, framed(&["one", "newer-a", "two", "newer-b"])).unwrap();
        let older = |p: &[u8]| !p.ends_with(b"newer-a") && !p.ends_with(b"newer-b");
        let (mut file, n) = open(&path, older).unwrap();
        assert_eq!(n, 2);
        file.rewrite(&framed(&["two'"])).unwrap();
        file.append(&framed(&["three"])).unwrap();
        file.rewrite(&framed(&["two'", "three"])).unwrap();
        let mut all = Vec::new();
        let (_, n) = open(&path, |mut p| {
            all.push(get_str(&mut p).unwrap().unwrap());
            true
        })
        .unwrap();
        assert_eq!(all, ["newer-a", "newer-b", "two'", "three"]);
        assert_eq!(n, 4);
        // The binary that cannot read them opens the rewritten file and
        // rewrites it again: still there, once each.
        let (mut file, n) = open(&path, older).unwrap();
        assert_eq!(n, 2);
        file.rewrite(&framed(&["four"])).unwrap();
        let mut all = Vec::new();
        open(&path, |mut p| {
            all.push(get_str(&mut p).unwrap().unwrap());
            true
        })
        .unwrap();
        assert_eq!(all, ["newer-a", "newer-b", "four"]);
    }

    #[test]
    fn a_flipped_record_in_the_middle_is_passed_over_and_the_records_after_it_kept() {
        let dir = gyre_testkit::scratch_dir("recfile-flipped");
        let path = dir.join("f.log");
        let mut buf = framed(&["one", "two", "three"]);
        // Zeros after it (a file extended but not written) are a tail.
        let whole = buf.len();
        buf.extend_from_slice(&[0; 64]);
        // A bit of "two" (past its length and CRC, and the string's).
        let two = 8 + 2 + 3;
        buf[two + 8 + 2] ^= 0x04;
        fs::write(&path, &buf).unwrap();
        let read = |path: &Path| {
            let mut seen = Vec::new();
            let (file, n) = open(path, |mut p| {
                seen.push(get_str(&mut p).unwrap().unwrap());
                true
            })
            .unwrap();
            (file, n, seen)
        };
        let (mut file, n, seen) = read(&path);
        assert_eq!(
            (n, &seen[..]),
            (3, &["one".to_owned(), "three".to_owned()][..])
        );
        assert_eq!(fs::metadata(&path).unwrap().len(), whole as u64);
        file.append(&framed(&["four"])).unwrap();
        let (_, _, seen) = read(&path);
        assert_eq!(seen, ["one", "three", "four"]);
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_failed_fdatasync_takes_no_more_appends_until_a_rewrite() {
        let (root, dir) = crate::failpoint::armed_scratch("recfile-broken", "fsync");
        let path = dir.join("f.log");
        let record = |s: &str| framed(&[s]);
        let (mut file, _) = open(&path, |_| true).unwrap();
        let e = file.append_synced(&record("lost?")).unwrap_err();
        assert!(e.to_string().contains("f.log"), "{e}");
        assert!(file.broken());
        // The next fdatasync would succeed (the failure was reported
        // once), but nothing is taken until the file is whole again.
        let e = file.append_synced(&record("after")).unwrap_err();
        assert!(e.to_string().contains("earlier fdatasync"), "{e}");
        file.rewrite(&record("kept")).unwrap();
        assert!(!file.broken());
        file.append_synced(&record("next")).unwrap();
        let mut seen = Vec::new();
        open(&path, |mut p| {
            seen.push(get_str(&mut p).unwrap().unwrap());
            true
        })
        .unwrap();
        assert_eq!(seen, ["kept", "next"]);
        fs::remove_dir_all(root).unwrap();
    }
}
