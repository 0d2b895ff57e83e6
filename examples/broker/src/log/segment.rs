//! One segment of a partition's log: a file of record batches named by its
//! base offset, a sparse offset index and a time index beside it.
//!
//! Files: `<base offset, 20 digits>.log`, `.index` (entries of relative
//! offset u32 and file position u32, one per `index_interval` bytes of log)
//! and `.timeindex` (entries of timestamp i64 and relative offset u32: the
//! largest timestamp of every batch before that offset). All big-endian.
//! Opening a segment checks its batches (length, magic, counts, offsets
//! following on, CRC) from the last index entry ([`Scan::Tail`], after a
//! clean stop) or from its first byte ([`Scan::Full`], after an unclean
//! one), and cuts the log at the first bad batch. Walks from batch to
//! batch read their headers through `headers`, a window at a time.

use super::batch::{self, BatchHeader, RecordLookup, HEADER_LEN};
use super::headers;
use super::open_files::OpenFiles;
use super::scan;
use gyre_zerocopy::{FileRegion, SharedFile};
use std::cell::{Cell, Ref, RefCell};
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const INDEX_ENTRY: usize = 8;
const TIME_ENTRY: usize = 12;

/// What recovery cut off a segment's tail, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// The segment's log file.
    pub file: PathBuf,
    /// Bytes kept.
    pub kept: u64,
    /// Bytes cut off.
    pub dropped: u64,
    /// What was wrong at the cut.
    pub reason: String,
}

/// How much of a segment [`Segment::open`] checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// From the last index entry on: enough after a clean stop, when every
    /// byte before it was written whole and synced.
    Tail,
    /// Every batch from the start, rebuilding both indexes: after an
    /// unclean stop, for every segment past the recovery point, because a
    /// write the page cache had not yet made durable may be missing or
    /// damaged anywhere in it, not only at the end.
    Full,
}

/// A segment's open descriptors: the log (one descriptor, opened to read
/// and append, for writes, reads and `sendfile` alike), the offset index
/// and the time index.
#[derive(Debug)]
struct Files {
    log: SharedFile,
    index: File,
    time_index: File,
}

impl Files {
    fn open(dir: &Path, base_offset: i64) -> io::Result<Files> {
        let log_path = file_name(dir, base_offset, "log");
        let log = OpenOptions::new().append(true).read(true).open(&log_path)?;
        let open_index = |ext| {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(file_name(dir, base_offset, ext))
        };
        Ok(Files {
            log: SharedFile::from_file(log, log_path),
            index: open_index("index")?,
            time_index: open_index("timeindex")?,
        })
    }
}

/// One segment. Its files are opened when first needed and may be closed
/// at any time by its storage's [`OpenFiles`] cap (least recently used
/// first), to be opened again on the next use: everything the segment
/// knows (size, offsets, both indexes) is kept in memory, and file regions
/// already handed out keep their own descriptor.
#[derive(Debug)]
pub struct Segment {
    base_offset: i64,
    dir: PathBuf,
    log_path: PathBuf,
    files: RefCell<Option<Files>>,
    open_files: Arc<OpenFiles>,
    last_used: Cell<u64>,
    entries: Vec<(u32, u32)>,
    time_entries: Vec<(i64, u32)>,
    size: u64,
    next_offset: i64,
    max_timestamp: i64,
    since_index: u64,
    index_interval: u64,
    created_ms: i64,
    /// A failed write's tail may still be in the log file past `size`
    /// (cutting it failed too): cut before the next append.
    torn_tail: Cell<bool>,
    /// A damaged index entry was found and reported.
    index_damage_told: Cell<bool>,
}

fn file_name(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes every slice, resuming after short writes.
fn write_all_vectored(mut file: &File, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        let n = file.write_vectored(slices)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

impl Segment {
    /// A new, empty segment starting at `base_offset`.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_interval: u64,
        open_files: &Arc<OpenFiles>,
    ) -> io::Result<Self> {
        let log_path = file_name(dir, base_offset, "log");
        let made = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&log_path);
        match made {
            Ok(_) => {}
            // An empty file left by a creation that failed part way (below)
            // and could not be removed: the same segment, taken as it is,
            // so the roll is not refused until a restart.
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    && std::fs::metadata(&log_path)?.len() == 0 => {}
            Err(e) => return Err(e),
        }
        let opened = Self::open(
            dir,
            base_offset,
            index_interval,
            Scan::Tail,
            i64::MIN,
            open_files,
        );
        match opened {
            Ok((segment, _)) => Ok(segment),
            Err(e) => {
                // Its index files could not be opened (descriptors ran
                // out, say): the log file goes again, and the next roll
                // makes the segment afresh.
                let _ = std::fs::remove_file(&log_path);
                Err(e)
            }
        }
    }

    /// Opens the segment at `base_offset`, checking as much of it as `scan`
    /// says and cutting off whatever is torn or corrupt (reported); its
    /// batches may skip offsets below `gaps_below` (where the log was
    /// compacted). Its files count against `open_files` while they are
    /// open.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_interval: u64,
        scan: Scan,
        gaps_below: i64,
        open_files: &Arc<OpenFiles>,
    ) -> io::Result<(Self, Option<Truncation>)> {
        let files = Files::open(dir, base_offset)?;
        let meta = files.log.file().metadata()?;
        let size = meta.len();
        let created_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or_else(now_ms, |d| d.as_millis() as i64);
        let entries = read_entries(&files.index, INDEX_ENTRY, |b| {
            let e = (be_u32(&b[..4]), be_u32(&b[4..]));
            (e, u64::from(e.1))
        })?;
        let time_entries = read_entries(&files.time_index, TIME_ENTRY, |b| {
            let e = (
                i64::from_be_bytes(b[..8].try_into().expect("8")),
                be_u32(&b[8..]),
            );
            (e, 0)
        })?;
        open_files.opened();
        let mut segment = Segment {
            base_offset,
            dir: dir.to_owned(),
            log_path: files.log.path().to_owned(),
            files: RefCell::new(Some(files)),
            open_files: open_files.clone(),
            last_used: Cell::new(open_files.tick()),
            entries,
            time_entries,
            size,
            next_offset: base_offset,
            max_timestamp: -1,
            since_index: 0,
            torn_tail: Cell::new(false),
            index_damage_told: Cell::new(false),
            index_interval,
            created_ms,
        };
        // Index entries must point inside the log and increase.
        segment.entries.retain(|&(_, pos)| u64::from(pos) < size);
        // Time entries must rise in time and in offset: a flipped bit that
        // breaks the order would send a lookup by time past its record.
        // Those from the first pair out of order go (lookups start from an
        // earlier one); the tail scan writes the index again.
        if let Some(i) = segment
            .time_entries
            .windows(2)
            .position(|w| w[1].0 < w[0].0 || w[1].1 < w[0].1)
        {
            tracing::warn!(file = %segment.log_path.display(), kept = i, "the time index is out of order: cut and rebuilt from the log");
            segment.time_entries.truncate(i);
        }
        if scan == Scan::Tail && !segment.entry_names_its_batch(segment.entries.len()) {
            // The tail scan starts from the last entry: one that does not
            // point at its batch (a flipped bit) would have it read the
            // middle of a batch as a header and cut a whole log there.
            tracing::warn!(file = %segment.log_path.display(), "the offset index does not match its log: rebuilt from the log");
            segment.entries.clear();
            segment.time_entries.clear();
        }
        if scan == Scan::Full {
            segment.entries.clear();
            segment.time_entries.clear();
        }
        let truncation = segment.recover(gaps_below)?;
        Ok((segment, truncation))
    }

    /// The segment's files, opened again if they were closed.
    fn files(&self) -> io::Result<Ref<'_, Files>> {
        if self.files.borrow().is_none() {
            let files = Files::open(&self.dir, self.base_offset)?;
            *self.files.borrow_mut() = Some(files);
            self.open_files.opened();
        }
        self.last_used.set(self.open_files.tick());
        Ok(Ref::map(self.files.borrow(), |f| {
            f.as_ref().expect("opened above")
        }))
    }

    /// Closes the segment's files if they are open (they open again when
    /// next needed); says whether they were.
    pub fn close_files(&self) -> bool {
        let closed = self.files.borrow_mut().take().is_some();
        if closed {
            self.open_files.closed();
        }
        closed
    }

    /// When the segment's files were last used (by the storage's clock),
    /// or `None` if they are closed.
    pub fn files_last_used(&self) -> Option<u64> {
        self.files.borrow().as_ref().map(|_| self.last_used.get())
    }

    /// Scans from the last index entry kept (the start, if none) to the
    /// end, checking every batch; cuts the log at the first bad one and
    /// rewrites the indexes.
    fn recover(&mut self, gaps_below: i64) -> io::Result<Option<Truncation>> {
        let (start_rel, start) = self
            .entries
            .last()
            .map_or((0, 0), |&(rel, pos)| (rel, u64::from(pos)));
        // Time entries past the scan start are rebuilt by the scan.
        self.time_entries.retain(|&(_, rel)| rel <= start_rel);
        if let Some(&(ts, _)) = self.time_entries.last() {
            self.max_timestamp = ts;
        }
        let reader = self.files()?.log.clone();
        let end = scan::check_batches(
            reader.file(),
            start,
            self.size,
            self.base_offset + i64::from(start_rel),
            gaps_below,
            |header, pos| {
                if pos > start {
                    self.note_batch(header, pos);
                } else {
                    self.since_index += header.size as u64;
                }
                self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
            },
        )?;
        self.next_offset = end.next_offset;
        let (pos, reason) = (end.pos, end.bad);
        let truncation = match reason {
            None => None,
            Some(reason) => {
                let dropped = self.size - pos;
                reader.file().set_len(pos)?;
                reader.file().sync_all()?;
                self.size = pos;
                Some(Truncation {
                    file: self.log_path.clone(),
                    kept: pos,
                    dropped,
                    reason,
                })
            }
        };
        self.rewrite_indexes()?;
        Ok(truncation)
    }

    /// Adds index entries for a batch about to sit at `pos`, if due.
    fn note_batch(&mut self, header: &BatchHeader, pos: u64) {
        if self.since_index >= self.index_interval {
            let rel = (header.base_offset - self.base_offset) as u32;
            self.entries.push((rel, pos as u32));
            self.time_entries.push((self.max_timestamp, rel));
            self.since_index = 0;
        }
        self.since_index += header.size as u64;
    }

    fn rewrite_indexes(&mut self) -> io::Result<()> {
        {
            let files = self.files()?;
            files.index.set_len(0)?;
            files.time_index.set_len(0)?;
        }
        self.write_index_entries(0, 0)
    }

    /// Writes the index entries from `from` and time entries from
    /// `from_time` on, where they belong in their files.
    fn write_index_entries(&mut self, from: usize, from_time: usize) -> io::Result<()> {
        let bytes: Vec<u8> = self.entries[from..]
            .iter()
            .flat_map(|&(rel, pos)| [rel.to_be_bytes(), pos.to_be_bytes()])
            .flatten()
            .collect();
        let files = self.files()?;
        files
            .index
            .write_all_at(&bytes, (from * INDEX_ENTRY) as u64)?;
        let bytes: Vec<u8> = self.time_entries[from_time..]
            .iter()
            .flat_map(|&(ts, rel)| ts.to_be_bytes().into_iter().chain(rel.to_be_bytes()))
            .collect();
        files
            .time_index
            .write_all_at(&bytes, (from_time * TIME_ENTRY) as u64)
    }

    /// Appends batches (offsets already assigned, in order) with one
    /// gathered write, and the index entries they are due.
    ///
    /// A failed append leaves the segment as it was, in memory and (as
    /// far as the disk lets it be cut back) on disk: the caller answers
    /// the producer with an error, and its retry must not find the
    /// batches already there.
    pub fn append(&mut self, batches: &[(BatchHeader, &[u8])]) -> io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = batches.iter().map(|(_, b)| IoSlice::new(b)).collect();
        {
            let files = self.files()?;
            if self.torn_tail.get() {
                // The log file is opened to append: a tail a failed write
                // left must be gone before the next write lands after it.
                files.log.file().set_len(self.size)?;
                self.torn_tail.set(false);
            }
            if let Err(e) = write_all_vectored(files.log.file(), &mut slices) {
                // Whatever part went in is garbage after the last whole
                // batch: cut it, so the next append (or a restart) finds a
                // clean tail.
                self.torn_tail
                    .set(files.log.file().set_len(self.size).is_err());
                return Err(e);
            }
        }
        let before = (
            self.size,
            self.next_offset,
            self.max_timestamp,
            self.since_index,
        );
        let (old_entries, old_times) = (self.entries.len(), self.time_entries.len());
        let mut pos = self.size;
        for (header, _) in batches {
            self.note_batch(header, pos);
            self.next_offset = header.next_offset();
            self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
            pos += header.size as u64;
        }
        self.size = pos;
        let indexed = crate::failpoint::io_error("indexwrite", &self.log_path)
            .and_then(|()| self.write_index_entries(old_entries, old_times));
        if let Err(e) = indexed {
            // The batches are written but not indexed: taken out again.
            (
                self.size,
                self.next_offset,
                self.max_timestamp,
                self.since_index,
            ) = before;
            self.entries.truncate(old_entries);
            self.time_entries.truncate(old_times);
            let files = self.files()?;
            self.torn_tail
                .set(files.log.file().set_len(self.size).is_err());
            // Entries past the kept ones would point past the log's end.
            let _ = files.index.set_len((old_entries * INDEX_ENTRY) as u64);
            let _ = files.time_index.set_len((old_times * TIME_ENTRY) as u64);
            return Err(e);
        }
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&self) -> io::Result<()> {
        let files = self.files()?;
        files.log.file().sync_data()?;
        files.index.sync_data()?;
        files.time_index.sync_data()
    }

    /// Handles on the segment's files for a sync on another thread (the
    /// `interval` flush policy's flusher): an fdatasync through a duplicate
    /// descriptor makes the same file durable.
    pub fn sync_handles(&self) -> io::Result<[File; 3]> {
        let files = self.files()?;
        Ok([
            files.log.file().try_clone()?,
            files.index.try_clone()?,
            files.time_index.try_clone()?,
        ])
    }

    /// The segment's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The first offset the segment holds (or would hold).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// One past the last offset the segment holds.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Bytes of log.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The largest record timestamp in the segment (-1 when empty).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }

    /// When the segment was made (or last written, for one reopened), ms.
    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// Index entries (relative offset, position), for tests and tools.
    pub fn index_entries(&self) -> &[(u32, u32)] {
        &self.entries
    }

    /// The header of the batch at `pos`.
    pub fn header_at(&self, pos: u64) -> io::Result<BatchHeader> {
        read_header(self.files()?.log.file(), pos)
    }

    /// What the control batch at `pos` marks (see
    /// [`batch::read_marker`]).
    pub fn marker_at(&self, pos: u64) -> io::Result<Option<batch::Marker>> {
        // A marker's record is 13 bytes; leave room for longer varints.
        let mut head = [0u8; HEADER_LEN + 32];
        let file = self.files()?;
        let len = (self.size - pos).min(head.len() as u64) as usize;
        file.log.file().read_exact_at(&mut head[..len], pos)?;
        Ok(batch::read_marker(&head[..len]))
    }

    /// Where the batch holding `offset` starts (or the first batch after
    /// it); `None` if the segment ends before `offset`.
    ///
    /// The index entry the search starts from must point at the batch it
    /// names: one that does not (a bit flipped on disk) is passed over for
    /// the one before it, so a damaged index costs a longer search, never
    /// a read from the middle of a batch.
    pub fn position_of(&self, offset: i64) -> io::Result<Option<u64>> {
        if offset >= self.next_offset {
            return Ok(None);
        }
        let rel = (offset - self.base_offset).max(0) as u32;
        let i = self.entries.partition_point(|&(r, _)| r <= rel);
        let files = self.files()?;
        let log = files.log.file();
        let (mut pos, mut first) = self.search_start(log, i);
        // The batch sought lies within an index interval of the entry.
        headers::walk(log, self.size, self.index_interval, |headers| {
            if let Some(header) = &first {
                headers.seen(header);
            }
            while pos < self.size {
                let header = match first.take() {
                    Some(header) => header,
                    None => headers.at(pos)?,
                };
                if header.last_offset() >= offset {
                    return Ok(Some(pos));
                }
                pos += header.size as u64;
            }
            Ok(None)
        })
    }

    /// Where a search from the first `i` index entries' last one starts:
    /// its position and the header there (read to check it: the search's
    /// first), or the position of the last entry before it that points
    /// at its batch, or the segment's start.
    fn search_start(&self, log: &File, mut i: usize) -> (u64, Option<BatchHeader>) {
        while let Some(k) = i.checked_sub(1) {
            let (rel, pos) = self.entries[k];
            match read_header(log, u64::from(pos)) {
                Ok(h) if h.base_offset == self.base_offset + i64::from(rel) => {
                    return (u64::from(pos), Some(h));
                }
                _ => {
                    self.index_damaged();
                    i = k;
                }
            }
        }
        (0, None)
    }

    /// Whether the first `n` index entries end with one that points at
    /// the batch it names (true with none).
    fn entry_names_its_batch(&self, n: usize) -> bool {
        let Some(&(rel, pos)) = n.checked_sub(1).and_then(|k| self.entries.get(k)) else {
            return true;
        };
        let Ok(files) = self.files() else {
            return false;
        };
        read_header(files.log.file(), u64::from(pos))
            .is_ok_and(|h| h.base_offset == self.base_offset + i64::from(rel))
    }

    /// Says once per segment (per run) that its index has an entry that
    /// does not match its log; lookups pass over it.
    fn index_damaged(&self) {
        if !self.index_damage_told.replace(true) {
            tracing::warn!(file = %self.log_path.display(), "an offset index entry does not match its log; lookups pass over it until the index is rebuilt");
        }
    }

    /// Where the batch holding `offset` may start at the earliest, from
    /// the offset index alone (held in memory; reads nothing): a search
    /// for it reads batch headers from here on.
    pub fn indexed_position(&self, offset: i64) -> u64 {
        let rel = (offset - self.base_offset).max(0) as u32;
        let i = self.entries.partition_point(|&(r, _)| r <= rel);
        if i == 0 {
            0
        } else {
            u64::from(self.entries[i - 1].1)
        }
    }

    /// The first record at or after offset `from_offset` whose timestamp
    /// is at least `timestamp`: its offset and timestamp, as Kafka answers
    /// ListOffsets. The time index finds the first batch whose largest
    /// timestamp is that late; the batch's records are searched (a batch
    /// whose records do not decode answers with its base offset and base
    /// timestamp).
    pub fn offset_for_time(
        &self,
        timestamp: i64,
        from_offset: i64,
    ) -> io::Result<Option<(i64, i64)>> {
        if self.max_timestamp < timestamp || self.next_offset <= from_offset {
            return Ok(None);
        }
        // Every batch before a time entry with a smaller timestamp is
        // older, so the search could start at the last such entry. It
        // starts one entry earlier: a bit flipped in that entry's time
        // that left the index in order (a smaller time, which the start
        // cannot tell from a whole one) would otherwise start it past the
        // record it looks for. The price is the batch headers of one
        // index interval more, read in a lookup by time. (A later offset
        // in order is harmless: the offset index takes it back to the
        // batch its entry names.)
        let i = self.time_entries.partition_point(|&(ts, _)| ts < timestamp);
        let files = self.files()?;
        let mut pos = match i.checked_sub(2) {
            None => 0,
            Some(j) => {
                let rel = self.time_entries[j].1;
                let k = self.entries.partition_point(|&(r, _)| r <= rel);
                self.search_start(files.log.file(), k).0
            }
        };
        if from_offset > self.base_offset {
            pos = pos.max(self.position_of(from_offset)?.unwrap_or(self.size));
        }
        let log = files.log.file();
        headers::walk(log, self.size, u64::MAX, |headers| {
            while pos < self.size {
                let header = headers.at(pos)?;
                if header.max_timestamp >= timestamp && header.last_offset() >= from_offset {
                    let mut bytes = vec![0; header.size];
                    log.read_exact_at(&mut bytes, pos)?;
                    match batch::first_record_at_or_after(bytes.into(), timestamp, from_offset) {
                        RecordLookup::Found(offset, ts) => return Ok(Some((offset, ts))),
                        RecordLookup::Undecodable => {
                            let base = header.base_offset.max(from_offset);
                            return Ok(Some((base, header.base_timestamp)));
                        }
                        // Its late records lie below `from_offset`.
                        RecordLookup::None => {}
                    }
                }
                pos += header.size as u64;
            }
            Ok(None)
        })
    }

    /// How many bytes of whole batches from `pos` fit in `max_bytes` (at
    /// least one batch, however big, so a consumer always progresses),
    /// and the first batch's base offset; `None` at the segment's end.
    pub fn slice_len(&self, pos: u64, max_bytes: u64) -> io::Result<Option<(u64, i64)>> {
        let mut len = 0u64;
        let mut first = None;
        let files = self.files()?;
        headers::walk(files.log.file(), self.size, max_bytes, |headers| {
            while pos + len < self.size {
                let header = headers.at(pos + len)?;
                if len > 0 && len + header.size as u64 > max_bytes {
                    break;
                }
                first.get_or_insert(header.base_offset);
                len += header.size as u64;
            }
            Ok(first.map(|offset| (len, offset)))
        })
    }

    /// Calls `each` with the position and header of every batch from
    /// `pos` to the segment's end, in order.
    pub fn walk_from(
        &self,
        mut pos: u64,
        mut each: impl FnMut(u64, BatchHeader) -> io::Result<()>,
    ) -> io::Result<()> {
        let files = self.files()?;
        headers::walk(files.log.file(), self.size, u64::MAX, |headers| {
            while pos < self.size {
                let header = headers.at(pos)?;
                each(pos, header)?;
                pos += header.size as u64;
            }
            Ok(())
        })
    }

    /// The headers of the batches from `pos` to `end` (a slice's bounds,
    /// from [`slice_len`](Self::slice_len)), in order.
    pub fn headers(&self, mut pos: u64, end: u64) -> io::Result<Vec<BatchHeader>> {
        let files = self.files()?;
        let mut all = Vec::new();
        headers::walk(files.log.file(), self.size, end - pos, |headers| {
            while pos < end {
                let header = headers.at(pos)?;
                pos += header.size as u64;
                all.push(header);
            }
            Ok(all)
        })
    }

    /// `len` bytes of log from `pos`, to send with `sendfile`.
    pub fn region(&self, pos: u64, len: u64) -> io::Result<FileRegion> {
        let log = self.files()?.log.clone();
        FileRegion::new(log, pos, len).map_err(io::Error::from)
    }

    /// Deletes the segment's files.
    pub fn delete(self) -> io::Result<()> {
        self.close_files();
        for ext in ["log", "index", "timeindex"] {
            match std::fs::remove_file(file_name(&self.dir, self.base_offset, ext)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        self.close_files();
    }
}

/// The header of the batch at `pos` of `log`.
fn read_header(log: &File, pos: u64) -> io::Result<BatchHeader> {
    let mut head = [0u8; HEADER_LEN];
    log.read_exact_at(&mut head, pos)?;
    batch::parse_header(&head).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 bytes"))
}

/// Reads fixed-size entries, dropping a partial last one and stopping at
/// the first that does not increase (by `key`).
fn read_entries<T: Copy>(
    file: &File,
    size: usize,
    parse: impl Fn(&[u8]) -> (T, u64),
) -> io::Result<Vec<T>> {
    let len = file.metadata()?.len() as usize;
    let mut bytes = vec![0u8; len - len % size];
    file.read_exact_at(&mut bytes, 0)?;
    let mut out = Vec::with_capacity(bytes.len() / size);
    let mut last = None;
    for chunk in bytes.chunks_exact(size) {
        let (entry, key) = parse(chunk);
        if last.is_some_and(|l| key < l) {
            break;
        }
        last = Some(key);
        out.push(entry);
    }
    Ok(out)
}
