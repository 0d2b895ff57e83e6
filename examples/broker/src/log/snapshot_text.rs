//! The text form of the snapshots a partition writes at a clean stop
//! (its producers', its transactions'): a first line naming the format
//! and the log end the snapshot was taken at, a line per entry, and a last
//! line `crc <hex>` with the CRC-32C of everything before it, so a torn or
//! damaged file is refused whole. Uses only `crc32c`.

use std::fmt::Write as _;

/// Starts a snapshot of format `format` taken at log end `end_offset`.
pub fn begin(format: &str, end_offset: i64) -> String {
    format!("{format} {end_offset}\n")
}

/// Ends the snapshot `out`: its CRC line.
pub fn seal(mut out: String) -> String {
    let crc = crc32c::crc32c(out.as_bytes());
    let _ = writeln!(out, "crc {crc:08x}");
    out
}

/// The log end a snapshot of `format` was taken at and its entry lines;
/// `None` if the CRC does not match or the first line is not `format`'s.
pub fn open<'a>(text: &'a str, format: &str) -> Option<(i64, std::str::Lines<'a>)> {
    let body_end = text.trim_end().rfind('\n')? + 1;
    let (body, tail) = text.split_at(body_end);
    let crc = u32::from_str_radix(tail.trim().strip_prefix("crc ")?, 16).ok()?;
    if crc32c::crc32c(body.as_bytes()) != crc {
        return None;
    }
    let mut lines = body.lines();
    let end = lines
        .next()?
        .strip_prefix(format)?
        .strip_prefix(' ')?
        .parse()
        .ok()?;
    Some((end, lines))
}
