//! Offline verification of a data folder: every batch of every segment of
//! every partition checked (as recovery after an unclean stop checks
//! them), and every record of the coordinators' files (groups, committed
//! offsets, group activity, transactions, client quotas) checked for its
//! length and CRC as their start reads them, and the other files a start
//! reads (the recovery-point and log-start checkpoints, the leader epoch,
//! each topic's properties) parsed as it parses them; read-only, with a
//! report of what is damaged and what a start would do about it. Run it
//! on a stopped broker's folder with `gyre-broker verify --data
//! <folder>`. Uses [`log::scan`](crate::log::scan), the record files'
//! framing ([`record_file::walk`]), the readers of those other files, and
//! nothing that writes.

use crate::log::{scan, LogConfig};
use crate::storage::{parse_properties, PROPERTIES};
use crate::{checkpoint, leader_epoch, record_file};
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

/// What one coordinator file's check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// What it holds.
    pub holds: &'static str,
    /// Whole records whose CRC matches.
    pub records: usize,
    /// Damaged records with whole ones after them, which a start passes
    /// over (losing only them): each one's position and length.
    pub passed_over: Vec<(u64, u64)>,
    /// Where the torn or corrupt tail starts, and the bytes from there to
    /// the end, which the broker's next start cuts off.
    pub damaged_at: Option<(u64, u64)>,
}

impl FileReport {
    /// Whether every record of the file passed.
    pub fn is_clean(&self) -> bool {
        self.passed_over.is_empty() && self.damaged_at.is_none()
    }
}

/// The coordinators' record files a data folder may hold, and what each
/// holds; a file not there yet is not checked.
pub const COORDINATOR_FILES: &[(&str, &str)] = &[
    ("groups.log", "groups and their members"),
    ("group-offsets.log", "committed offsets"),
    ("group-activity.log", "when groups last had members"),
    ("transactions.log", "transactions"),
    ("client-quotas.log", "client quotas"),
    ("features.log", "feature levels"),
    (
        "share-state.log",
        "share groups' delivery state and configs",
    ),
];

/// What the check of one of the other files a start reads found: the
/// checkpoints, the leader epoch, each topic's properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaReport {
    /// The file.
    pub path: PathBuf,
    /// What it holds.
    pub holds: &'static str,
    /// What is wrong with it and what a start does about it; `None` if
    /// it reads whole.
    pub damage: Option<String>,
}

/// What a whole folder's check found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One entry per partition, in topic and index order.
    pub partitions: Vec<PartitionReport>,
    /// One entry per coordinator file present, in [`COORDINATOR_FILES`]
    /// order.
    pub files: Vec<FileReport>,
    /// One entry per other file a start reads, present: the
    /// checkpoints, the leader epoch, then each topic's properties.
    pub others: Vec<MetaReport>,
}

impl Report {
    /// Whether every batch of every partition and every record of every
    /// coordinator file passed.
    pub fn is_clean(&self) -> bool {
        self.partitions.iter().all(|p| p.problems.is_empty())
            && self.files.iter().all(FileReport::is_clean)
            && self.others.iter().all(|o| o.damage.is_none())
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
        for file in &self.files {
            write!(
                f,
                "{} ({}): {} records: ",
                file.path.display(),
                file.holds,
                file.records
            )?;
            if file.is_clean() {
                writeln!(f, "ok")?;
                continue;
            }
            write!(f, "DAMAGED:")?;
            for (at, len) in &file.passed_over {
                write!(
                    f,
                    " a damaged record at byte {at} ({len} bytes), which a start passes over;"
                )?;
            }
            match file.damaged_at {
                None => writeln!(f, " the records after it are whole")?,
                Some((at, cut)) => writeln!(
                    f,
                    " a torn or corrupt record at byte {at}; a start cuts the {cut} bytes from there"
                )?,
            }
        }
        for other in &self.others {
            match &other.damage {
                None => writeln!(f, "{} ({}): ok", other.path.display(), other.holds)?,
                Some(damage) => writeln!(
                    f,
                    "{} ({}): DAMAGED: {damage}",
                    other.path.display(),
                    other.holds
                )?,
            }
        }
        let bad = self.partitions.iter().filter(|p| !p.problems.is_empty());
        let bad_files = self.files.iter().filter(|f| !f.is_clean());
        let bad_others = self.others.iter().filter(|o| o.damage.is_some());
        writeln!(
            f,
            "{} partitions checked, {} damaged; {} coordinator files checked, {} damaged; {} other files checked, {} damaged",
            self.partitions.len(),
            bad.count(),
            self.files.len(),
            bad_files.count(),
            self.others.len(),
            bad_others.count()
        )
    }
}

/// Checks every partition under `root/topics` and every coordinator file
/// in `root`.
pub fn verify_data_dir(root: &Path) -> io::Result<Report> {
    let mut report = Report::default();
    for &(name, holds) in COORDINATOR_FILES {
        let path = root.join(name);
        match fs::read(&path) {
            Ok(data) => report.files.push(verify_records(path, holds, &data)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    verify_others(root, &mut report.others)?;
    let mut topics: Vec<PathBuf> = fs::read_dir(root.join("topics"))?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_dir())
        .collect();
    topics.sort();
    for topic in topics {
        let path = topic.join(PROPERTIES);
        let holds = "the topic's partitions, config and id";
        match fs::read_to_string(&path) {
            Ok(text) => {
                let damage = parse_properties(&LogConfig::default(), &text)
                    .err()
                    .map(|e| format!("{e}; a start refuses the data folder"));
                report.others.push(MetaReport {
                    path,
                    holds,
                    damage,
                });
            }
            // A creation that did not finish: a start removes the folder.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let damage = Some("not text; a start refuses the data folder".to_owned());
                report.others.push(MetaReport {
                    path,
                    holds,
                    damage,
                });
            }
            Err(e) => return Err(e),
        }
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

/// Checks the checkpoints and the leader epoch file in `root`, those
/// present, as a start reads them.
fn verify_others(root: &Path, others: &mut Vec<MetaReport>) -> io::Result<()> {
    let checkpoints = [
        (
            checkpoint::CHECKPOINT,
            "how far each partition was synced",
            "a start after an unclean stop checks every batch",
        ),
        (
            checkpoint::LOG_START,
            "where DeleteRecords moved each log start",
            "a start takes no log start from it, and deleted records not yet removed are read again",
        ),
    ];
    for (name, holds, then) in checkpoints {
        if let Some(damaged) = checkpoint::damaged(root, name)? {
            let damage = damaged.then(|| format!("malformed or its CRC does not match; {then}"));
            let path = root.join(name);
            others.push(MetaReport {
                path,
                holds,
                damage,
            });
        }
    }
    let path = root.join(leader_epoch::FILE);
    if path.exists() {
        let damage = leader_epoch::read(root).is_none().then(|| {
            "not an epoch; a start takes one past the newest its partitions recorded".to_owned()
        });
        let holds = "the last start's leader epoch";
        others.push(MetaReport {
            path,
            holds,
            damage,
        });
    }
    Ok(())
}

/// Checks the records of a coordinator file's contents `data`, as its
/// start reads them ([`record_file::walk`]): lengths and CRCs.
fn verify_records(path: PathBuf, holds: &'static str, data: &[u8]) -> FileReport {
    let mut records = 0;
    let mut passed_over = Vec::new();
    let good = record_file::walk(
        data,
        |_, _| records += 1,
        |at, len| passed_over.push((at as u64, len as u64)),
    );
    let left = (data.len() - good) as u64;
    FileReport {
        path,
        holds,
        records,
        passed_over,
        damaged_at: (left > 0).then_some((good as u64, left)),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn records(payloads: &[&[u8]]) -> Vec<u8> {
        let mut buf = Vec::new();
        for p in payloads {
            let start = record_file::begin(&mut buf);
            buf.extend_from_slice(p);
            record_file::finish(&mut buf, start);
        }
        buf
    }

    #[test]
    fn coordinator_files_are_checked_and_a_damaged_one_says_what_a_start_passes_over_or_cuts() {
        let root = gyre_testkit::scratch_root().join(format!("gyre-verify-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("topics")).unwrap();
        fs::write(root.join("group-offsets.log"), records(&[b"one", b"two"])).unwrap();
        let report = verify_data_dir(&root).unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.files.len(), 1, "files not there are not checked");
        assert_eq!(report.files[0].records, 2);

        // A flipped byte in the second of three records, and a torn one.
        let mut groups = records(&[b"first", b"second", b"third"]);
        let second = 8 + 5;
        groups[second + 9] ^= 0x10;
        fs::write(root.join("groups.log"), &groups).unwrap();
        // A flipped length, which cannot be told from a torn tail.
        let mut quotas = records(&[b"first", b"second", b"third"]);
        quotas[second + 3] ^= 0x01;
        fs::write(root.join("client-quotas.log"), &quotas).unwrap();
        let mut torn = records(&[b"whole"]);
        torn.extend_from_slice(&records(&[b"half a record"])[..10]);
        fs::write(root.join("transactions.log"), &torn).unwrap();
        let report = verify_data_dir(&root).unwrap();
        assert!(!report.is_clean());
        let text = report.to_string();
        assert!(
            text.contains("groups.log (groups and their members): 2 records: DAMAGED: a damaged record at byte 13 (14 bytes), which a start passes over; the records after it are whole"),
            "{text}"
        );
        assert!(
            text.contains("4 coordinator files checked, 3 damaged"),
            "{text}"
        );
        let groups_report = &report.files[0];
        assert_eq!(groups_report.passed_over, [(second as u64, 14)]);
        assert_eq!(groups_report.damaged_at, None);
        assert_eq!(report.files[2].damaged_at, Some((13, 10)));
        let quotas_report = &report.files[3];
        assert_eq!(
            quotas_report.damaged_at,
            Some((second as u64, (quotas.len() - second) as u64))
        );

        // What a start keeps is what verify called good.
        let mut kept = Vec::new();
        record_file::open(&root.join("groups.log"), |p| {
            kept.push(p.to_vec());
            true
        })
        .unwrap();
        assert_eq!(kept, [b"first".to_vec(), b"third".to_vec()]);
        assert_eq!(
            fs::metadata(root.join("groups.log")).unwrap().len(),
            groups.len() as u64,
            "nothing cut"
        );
        let (_, kept) = record_file::open(&root.join("client-quotas.log"), |_| true).unwrap();
        assert_eq!(kept, 1);
        assert_eq!(
            fs::metadata(root.join("client-quotas.log")).unwrap().len(),
            second as u64
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_other_files_a_start_reads_are_checked_as_it_reads_them() {
        let root = gyre_testkit::scratch_dir("verify-others");
        fs::create_dir_all(root.join("topics/good/0")).unwrap();
        fs::create_dir_all(root.join("topics/bad/0")).unwrap();
        fs::write(
            root.join("topics/good").join(PROPERTIES),
            "partitions=1\nretention.ms=1000\n",
        )
        .unwrap();
        fs::write(
            root.join("topics/bad").join(PROPERTIES),
            "partitions=1\nretention.ms=soon\n",
        )
        .unwrap();
        // Parses, but a digit flipped since its checksum was written.
        fs::create_dir_all(root.join("topics/flipped/0")).unwrap();
        let body = "partitions=1\nretention.ms=1000\n";
        let sum = crc32c::crc32c(body.as_bytes());
        let flipped = body.replace("1000", "9000");
        fs::write(
            root.join("topics/flipped").join(PROPERTIES),
            format!("crc32c={sum:08x}\n{flipped}"),
        )
        .unwrap();
        let points = [("good", 0, 3)];
        checkpoint::write(&root, points.into_iter()).unwrap();
        checkpoint::write_named(&root, checkpoint::LOG_START, points.into_iter(), false).unwrap();
        leader_epoch::write(&root, 4).unwrap();
        let report = verify_data_dir(&root).unwrap();
        let damaged: Vec<&str> = report
            .others
            .iter()
            .filter(|o| o.damage.is_some())
            .map(|o| o.holds)
            .collect();
        assert_eq!(report.others.len(), 6, "{report}");
        assert_eq!(
            damaged,
            [
                "the topic's partitions, config and id",
                "the topic's partitions, config and id"
            ],
            "{report}"
        );
        assert!(report.to_string().contains("damaged: its settings sum to"));
        assert!(!report.is_clean());

        // One bit of the log start's offset, and of the epoch.
        let log_start = root.join(checkpoint::LOG_START);
        let text = fs::read_to_string(&log_start).unwrap();
        fs::write(&log_start, text.replacen("good 0 3", "good 0 7", 1)).unwrap();
        fs::write(root.join(leader_epoch::FILE), "4x\n").unwrap();
        let text = verify_data_dir(&root).unwrap().to_string();
        assert!(
            text.contains("(where DeleteRecords moved each log start): DAMAGED: malformed or its CRC does not match"),
            "{text}"
        );
        assert!(
            text.contains("(the last start's leader epoch): DAMAGED"),
            "{text}"
        );
        assert!(text.contains("6 other files checked, 4 damaged"), "{text}");
    }
}
