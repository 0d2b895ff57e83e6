//! Walking a log file's batches in order and checking each: header sanity,
//! offsets that follow on (or, below the offset compaction reached, only
//! increase), whole length, CRC-32C. Shared by recovery (which
//! cuts at the first bad batch) and the offline verifier (which reports
//! it). Reads the file a window of many batches at a time. Uses
//! [`batch`] and the log's window on a file.

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::window::Window;
use std::fs::File;
use std::io;

/// Where a walk stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanEnd {
    /// One past the last good batch's last byte.
    pub pos: u64,
    /// One past the last good batch's last offset.
    pub next_offset: i64,
    /// Why the walk stopped before the end of the file, if it did.
    pub bad: Option<String>,
}

/// Checks the batches of `file` from byte `pos` to `size`, the first of
/// which must start at offset `next_offset`; calls `good` with each good
/// batch and its position, and stops at the first bad one. A batch that
/// ends below `gaps_below` (the log was compacted there, and compaction
/// removes whole batches) may start past the offset expected. I/O errors
/// are returned as such, never taken for damage.
pub fn check_batches(
    file: &File,
    mut pos: u64,
    size: u64,
    mut next_offset: i64,
    gaps_below: i64,
    mut good: impl FnMut(&BatchHeader, u64),
) -> io::Result<ScanEnd> {
    let mut window = Window::default();
    let bad = loop {
        if pos >= size {
            break None;
        }
        let remaining = size - pos;
        if remaining < HEADER_LEN as u64 {
            break Some(format!("torn batch header ({remaining} bytes)"));
        }
        let header = match batch::parse_header(window.bytes(file, pos, HEADER_LEN, CHUNK, size)?) {
            Ok(h) => h,
            Err(e) => break Some(e.to_string()),
        };
        // The base offset is outside the CRC: a flipped bit there is
        // caught only by the offsets not following on.
        let gap = header.base_offset > next_offset && header.last_offset() < gaps_below;
        if header.base_offset != next_offset && !gap {
            break Some(format!(
                "batch claims offset {}, the log is at {next_offset}",
                header.base_offset
            ));
        }
        if header.size as u64 > remaining {
            break Some(format!(
                "torn batch: {} bytes declared, {remaining} present",
                header.size
            ));
        }
        if let Err(e) = batch::validate(window.bytes(file, pos, header.size, CHUNK, size)?) {
            break Some(e.to_string());
        }
        good(&header, pos);
        next_offset = header.next_offset();
        pos += header.size as u64;
    };
    Ok(ScanEnd {
        pos,
        next_offset,
        bad: bad.map(|reason| format!("at byte {pos}: {reason}")),
    })
}

/// Bytes read at once by a walk: many small batches to a read. Read a
/// batch at a time (two `pread`s each, its header and then the whole
/// batch), a walk over 130 MB of one-record batches spent 0.93-0.99 s in
/// the kernel (BENCHMARKS.md, fifty-second session).
const CHUNK: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    /// 300 batches of sizes around the window's (some larger than it),
    /// written back to back from offset 0.
    fn log() -> (Vec<u8>, Vec<u64>) {
        let (mut bytes, mut at) = (Vec::new(), Vec::new());
        let sizes = [1, 100, 5_000, CHUNK - 200, 30, CHUNK * 2, 3];
        for (i, len) in sizes.into_iter().cycle().take(300).enumerate() {
            at.push(bytes.len() as u64);
            let value = vec![b'v'; len];
            bytes.extend_from_slice(&batch::build(i as i64, 1_000, &[&value[..]]));
        }
        (bytes, at)
    }

    fn scan(bytes: &[u8], name: &str) -> (ScanEnd, Vec<(i64, u64)>) {
        let dir = gyre_testkit::scratch_dir(name);
        let path = dir.join("00000000000000000000.log");
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        let mut seen = Vec::new();
        let end = check_batches(&file, 0, bytes.len() as u64, 0, -1, |h, pos| {
            seen.push((h.base_offset, pos))
        })
        .unwrap();
        (end, seen)
    }

    #[test]
    fn every_batch_of_a_whole_log_is_checked_across_the_reads() {
        let (bytes, at) = log();
        let (end, seen) = scan(&bytes, "scan-whole");
        assert_eq!(end.bad, None);
        assert_eq!((end.pos, end.next_offset), (bytes.len() as u64, 300));
        let expected: Vec<(i64, u64)> =
            at.iter().enumerate().map(|(i, &p)| (i as i64, p)).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn the_walk_stops_at_a_flipped_byte_and_at_a_torn_tail() {
        let (bytes, at) = log();
        // A byte of batch 200's value (inside its CRC).
        let mut flipped = bytes.clone();
        flipped[at[200] as usize + HEADER_LEN + 5] ^= 0x10;
        let (end, seen) = scan(&flipped, "scan-flipped");
        assert_eq!((end.pos, end.next_offset, seen.len()), (at[200], 200, 200));
        assert!(end.bad.unwrap().contains("CRC"), "a CRC failure");
        // Cut inside batch 299 (the last, 3 bytes of value).
        let torn = &bytes[..bytes.len() - 2];
        let (end, seen) = scan(torn, "scan-torn");
        assert_eq!((end.pos, seen.len()), (at[299], 299));
        assert!(end.bad.unwrap().contains("torn batch"));
        // Cut inside a header.
        let (end, _) = scan(&bytes[..at[150] as usize + 20], "scan-torn-header");
        assert_eq!(end.pos, at[150]);
        assert!(end.bad.unwrap().contains("torn batch header"));
    }
}
