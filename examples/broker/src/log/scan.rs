//! Walking a log file's batches in order and checking each: header sanity,
//! offsets that follow on (or, below the offset compaction reached, only
//! increase), whole length, CRC-32C. Shared by recovery (which
//! cuts at the first bad batch) and the offline verifier (which reports
//! it). Uses only [`batch`].

use super::batch::{self, BatchHeader, HEADER_LEN};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

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
    let mut buf = Vec::new();
    let bad = loop {
        if pos >= size {
            break None;
        }
        let remaining = size - pos;
        if remaining < HEADER_LEN as u64 {
            break Some(format!("torn batch header ({remaining} bytes)"));
        }
        let mut head = [0u8; HEADER_LEN];
        file.read_exact_at(&mut head, pos)?;
        let header = match batch::parse_header(&head) {
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
        buf.resize(header.size, 0);
        file.read_exact_at(&mut buf, pos)?;
        if let Err(e) = batch::validate(&buf) {
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
