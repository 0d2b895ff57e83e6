//! Offline verification of a data folder: every batch of every segment of
//! every partition checked (as recovery after an unclean stop checks
//! them), read-only, with a report of what is damaged. Run it on a stopped
//! broker's folder with `gyre-broker verify --data <folder>`. Uses
//! [`log::scan`](crate::log::scan) and nothing that writes.

use crate::log::scan;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// What one partition's check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionReport {
    /// The partition's folder.
    pub dir: PathBuf,
    /// Segments checked.
    pub segments: usize,
    /// Good batches.
    pub batches: u64,
    /// Bytes of good batches.
    pub bytes: u64,
    /// The first and one-past-the-last offsets of the good part.
    pub offsets: (i64, i64),
    /// Each damaged segment file and what is wrong with it.
    pub problems: Vec<(PathBuf, String)>,
}

/// What a whole folder's check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per partition, in topic and index order.
    pub partitions: Vec<PartitionReport>,
}

impl Report {
    /// Whether every batch of every partition passed.
    pub fn is_clean(&self) -> bool {
        self.partitions.iter().all(|p| p.problems.is_empty())
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.partitions {
            writeln!(
                f,
                "{}: {} segments, {} batches, {} bytes, offsets {}..{}: {}",
                p.dir.display(),
                p.segments,
                p.batches,
                p.bytes,
                p.offsets.0,
                p.offsets.1,
                if p.problems.is_empty() {
                    "ok"
                } else {
                    "DAMAGED"
                }
            )?;
            for (file, problem) in &p.problems {
                writeln!(f, "  {}: {problem}", file.display())?;
            }
        }
        let bad = self.partitions.iter().filter(|p| !p.problems.is_empty());
        writeln!(
            f,
            "{} partitions checked, {} damaged",
            self.partitions.len(),
            bad.count()
        )
    }
}

/// Checks every partition under `root/topics`.
pub fn verify_data_dir(root: &Path) -> io::Result<Report> {
    let mut report = Report::default();
    let mut topics: Vec<PathBuf> = fs::read_dir(root.join("topics"))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_dir())
        .collect();
    topics.sort();
    for topic in topics {
        let mut partitions: Vec<(usize, PathBuf)> = fs::read_dir(&topic)?
            .filter_map(|e| {
                let e = e.ok()?;
                Some((e.file_name().to_str()?.parse().ok()?, e.path()))
            })
            .collect();
        partitions.sort();
        for (_, dir) in partitions {
            report.partitions.push(verify_partition(&dir)?);
        }
    }
    Ok(report)
}

/// Checks every segment of the partition in `dir`, in offset order.
pub fn verify_partition(dir: &Path) -> io::Result<PartitionReport> {
    let mut bases: Vec<i64> = fs::read_dir(dir)?
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    bases.sort_unstable();
    let first = bases.first().copied().unwrap_or(0);
    // Compaction leaves gaps below where it reached.
    let clean_below = crate::log::cleaner::read_clean_below(dir);
    let mut report = PartitionReport {
        dir: dir.to_owned(),
        segments: bases.len(),
        batches: 0,
        bytes: 0,
        offsets: (first, first),
        problems: Vec::new(),
    };
    for base in bases {
        let path = dir.join(format!("{base:020}.log"));
        // After a damaged segment its end is unknown: no gap is reported.
        let after_damage = report.problems.last().is_some();
        let compacted_gap = base > report.offsets.1 && base <= clean_below;
        if base != report.offsets.1 && report.batches > 0 && !after_damage && !compacted_gap {
            report.problems.push((
                path.clone(),
                format!(
                    "starts at offset {base}, the previous segment ends at {}",
                    report.offsets.1
                ),
            ));
        }
        let file = File::open(&path)?;
        let size = file.metadata()?.len();
        let end = scan::check_batches(&file, 0, size, base, clean_below, |header, _| {
            report.batches += 1;
            report.bytes += header.size as u64;
        })?;
        report.offsets.1 = end.next_offset;
        if let Some(bad) = end.bad {
            report.problems.push((
                path,
                format!("{bad} ({} bytes after it unchecked)", size - end.pos),
            ));
        }
    }
    Ok(report)
}
