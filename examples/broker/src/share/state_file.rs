//! The share groups' delivery state across restarts (Kafka keeps it in
//! `__share_group_state`): `share-state.log`, a [record
//! file](crate::record_file) of one record per share-partition change,
//! the newest per (group, topic id, partition) winning, and a tombstone
//! per deleted group. Rewritten with only the live records when most of
//! it is history. Uses the record file and the share-partition's
//! snapshot.

use super::group_config::{GroupConfig, StartAt};
use super::partition::{RecordState, Snapshot, StateRun};
use crate::record_file::{self, RecordFile};
use bytes::{Buf, BufMut};
use std::collections::HashMap;
use std::io;
use std::path::Path;
use uuid::Uuid;

/// A share-partition's name: group, topic id, partition index.
pub type ShareKey = (String, Uuid, i32);

/// The file's name in the data folder.
pub const FILE: &str = "share-state.log";

const SNAPSHOT: u8 = 1;
const GROUP_DELETED: u8 = 2;
const GROUP_CONFIG: u8 = 3;
const PARTITION_FORGOTTEN: u8 = 4;

/// The file and how much of it is history.
///
/// ```
/// use gyre_broker::share::partition::{RecordState, Snapshot, StateRun};
/// use gyre_broker::share::state_file::StateFile;
///
/// # let dir = std::env::temp_dir().join(format!("gyre-doc-share-state-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let (mut file, _) = StateFile::open(&dir)?;
/// let key = ("g".to_owned(), uuid::Uuid::from_u128(1), 0);
/// let run = StateRun { first: 5, last: 6, state: RecordState::Acknowledged, deliveries: 1 };
/// file.write([(&key, Snapshot { start: 4, runs: vec![run] })])?;
/// file.sync()?;
/// let (_, (kept, _)) = StateFile::open(&dir)?;
/// assert_eq!(kept[&key].start, 4);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct StateFile {
    file: RecordFile,
    records: usize,
    /// The records being appended, kept between writes (a write comes
    /// with each acknowledgement).
    buf: Vec<u8>,
}

fn state_code(s: RecordState) -> u8 {
    match s {
        RecordState::Available | RecordState::Acquired => 0,
        RecordState::Acknowledged => 1,
        RecordState::Archived => 2,
    }
}

fn state_of(code: u8) -> Option<RecordState> {
    match code {
        0 => Some(RecordState::Available),
        1 => Some(RecordState::Acknowledged),
        2 => Some(RecordState::Archived),
        _ => None,
    }
}

fn put_snapshot(buf: &mut Vec<u8>, key: &ShareKey, s: &Snapshot) {
    let at = record_file::begin(buf);
    buf.put_u8(SNAPSHOT);
    record_file::put_str(buf, Some(&key.0));
    buf.put_slice(key.1.as_bytes());
    buf.put_i32(key.2);
    buf.put_i64(s.start);
    buf.put_u32(s.runs.len() as u32);
    for r in &s.runs {
        buf.put_i64(r.first);
        buf.put_i64(r.last);
        buf.put_u8(state_code(r.state));
        buf.put_u16(r.deliveries);
    }
    record_file::finish(buf, at);
}

enum Decoded {
    Snapshot(ShareKey, Snapshot),
    GroupDeleted(String),
    GroupConfig(String, GroupConfig),
    Forgotten(ShareKey),
}

/// What a share group's configs and delivery state were when last
/// written.
pub type Kept = (HashMap<ShareKey, Snapshot>, HashMap<String, GroupConfig>);

fn put_config(buf: &mut Vec<u8>, group: &str, c: &GroupConfig) {
    let at = record_file::begin(buf);
    buf.put_u8(GROUP_CONFIG);
    record_file::put_str(buf, Some(group));
    buf.put_u8(match c.start_at {
        None => 0,
        Some(StartAt::Latest) => 1,
        Some(StartAt::Earliest) => 2,
        Some(StartAt::ByDuration(_)) => 3,
    });
    buf.put_i64(c.lock_ms.map_or(-1, |ms| ms as i64));
    buf.put_u8(match c.read_committed {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    });
    let by_duration = match c.start_at {
        Some(StartAt::ByDuration(d)) => Some(d.as_nanos() as u64),
        _ => None,
    };
    for n in [
        by_duration,
        c.share_session_ms,
        c.share_heartbeat_ms,
        c.consumer_session_ms,
        c.consumer_heartbeat_ms,
    ] {
        buf.put_i64(n.map_or(-1, |n| n as i64));
    }
    record_file::finish(buf, at);
}

fn get_config(mut b: &[u8]) -> Option<(String, GroupConfig)> {
    let group = record_file::get_str(&mut b)??;
    // 10 bytes: a record from before the start by duration and the
    // session and heartbeat keys.
    if b.len() != 10 && b.len() != 10 + 5 * 8 {
        return None;
    }
    let start_code = b.get_u8();
    let lock = b.get_i64();
    let read_committed = match b.get_u8() {
        0 => None,
        1 => Some(false),
        2 => Some(true),
        _ => return None,
    };
    let mut more = [None; 5];
    if b.len() == 5 * 8 {
        more = [(); 5].map(|()| u64::try_from(b.get_i64()).ok());
    }
    let [by_duration, share_session_ms, share_heartbeat_ms, consumer_session_ms, consumer_heartbeat_ms] =
        more;
    let start_at = match (start_code, by_duration) {
        (0, _) => None,
        (1, _) => Some(StartAt::Latest),
        (2, _) => Some(StartAt::Earliest),
        (3, Some(nanos)) => Some(StartAt::ByDuration(std::time::Duration::from_nanos(nanos))),
        _ => return None,
    };
    let config = GroupConfig {
        start_at,
        lock_ms: u64::try_from(lock).ok(),
        read_committed,
        share_session_ms,
        share_heartbeat_ms,
        consumer_session_ms,
        consumer_heartbeat_ms,
    };
    Some((group, config))
}

fn decode(mut b: &[u8]) -> Option<Decoded> {
    if b.is_empty() {
        return None;
    }
    match b.get_u8() {
        SNAPSHOT => {
            let group = record_file::get_str(&mut b)??;
            if b.len() < 16 + 4 + 8 + 4 {
                return None;
            }
            let mut id = [0u8; 16];
            b.copy_to_slice(&mut id);
            let index = b.get_i32();
            let start = b.get_i64();
            let n = b.get_u32() as usize;
            if b.len() != n * 19 {
                return None;
            }
            let mut runs = Vec::with_capacity(n);
            for _ in 0..n {
                let (first, last) = (b.get_i64(), b.get_i64());
                let state = state_of(b.get_u8())?;
                runs.push(StateRun {
                    first,
                    last,
                    state,
                    deliveries: b.get_u16(),
                });
            }
            Some(Decoded::Snapshot(
                (group, Uuid::from_bytes(id), index),
                Snapshot { start, runs },
            ))
        }
        GROUP_DELETED => Some(Decoded::GroupDeleted(record_file::get_str(&mut b)??)),
        GROUP_CONFIG => get_config(b).map(|(g, c)| Decoded::GroupConfig(g, c)),
        PARTITION_FORGOTTEN => {
            let group = record_file::get_str(&mut b)??;
            if b.len() != 20 {
                return None;
            }
            let mut id = [0u8; 16];
            b.copy_to_slice(&mut id);
            Some(Decoded::Forgotten((
                group,
                Uuid::from_bytes(id),
                b.get_i32(),
            )))
        }
        _ => None,
    }
}

impl StateFile {
    /// Opens (or makes) `dir/share-state.log`; returns it, the newest
    /// snapshot of each share-partition and each group's configs, of the
    /// groups not deleted since.
    pub fn open(dir: &Path) -> io::Result<(Self, Kept)> {
        let mut live: HashMap<ShareKey, Snapshot> = HashMap::new();
        let mut configs: HashMap<String, GroupConfig> = HashMap::new();
        let (file, records) =
            record_file::open(&dir.join(FILE), |payload| match decode(payload) {
                Some(Decoded::Snapshot(key, s)) => {
                    live.insert(key, s);
                    true
                }
                Some(Decoded::GroupDeleted(group)) => {
                    live.retain(|k, _| k.0 != group);
                    configs.remove(&group);
                    true
                }
                Some(Decoded::GroupConfig(group, c)) => {
                    configs.insert(group, c);
                    true
                }
                Some(Decoded::Forgotten(key)) => {
                    live.remove(&key);
                    true
                }
                None => false,
            })?;
        configs.retain(|_, c| !c.is_default());
        let file = StateFile {
            file,
            records,
            buf: Vec::new(),
        };
        Ok((file, (live, configs)))
    }

    /// Appends each of `changed` (not synced; see [`sync`](Self::sync)).
    pub fn write<'a>(
        &mut self,
        changed: impl IntoIterator<Item = (&'a ShareKey, Snapshot)>,
    ) -> io::Result<()> {
        self.buf.clear();
        let mut n = 0;
        for (key, s) in changed {
            put_snapshot(&mut self.buf, key, &s);
            n += 1;
        }
        if n == 0 {
            return Ok(());
        }
        self.file.append(&self.buf)?;
        self.records += n;
        Ok(())
    }

    /// Appends that `group`'s state is gone.
    pub fn group_deleted(&mut self, group: &str) -> io::Result<()> {
        let mut buf = Vec::new();
        let at = record_file::begin(&mut buf);
        buf.put_u8(GROUP_DELETED);
        record_file::put_str(&mut buf, Some(group));
        record_file::finish(&mut buf, at);
        self.file.append(&buf)?;
        self.records += 1;
        Ok(())
    }

    /// Appends that each of `keys` has no state any more (not synced).
    pub fn forget(&mut self, keys: &[ShareKey]) -> io::Result<()> {
        let mut buf = Vec::new();
        for key in keys {
            let at = record_file::begin(&mut buf);
            buf.put_u8(PARTITION_FORGOTTEN);
            record_file::put_str(&mut buf, Some(&key.0));
            buf.put_slice(key.1.as_bytes());
            buf.put_i32(key.2);
            record_file::finish(&mut buf, at);
        }
        self.file.append(&buf)?;
        self.records += keys.len();
        Ok(())
    }

    /// Appends `group`'s configs (not synced).
    pub fn write_config(&mut self, group: &str, config: &GroupConfig) -> io::Result<()> {
        let mut buf = Vec::new();
        put_config(&mut buf, group, config);
        self.file.append(&buf)?;
        self.records += 1;
        Ok(())
    }

    /// fdatasyncs what was appended.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync()
    }

    /// Whether a failed sync broke the file: it takes no appends until
    /// [`compact`](Self::compact) writes it whole again.
    pub fn broken(&self) -> bool {
        self.file.broken()
    }

    /// Rewrites the file with only `live` when most of it is history, or
    /// when a failed sync broke it.
    pub fn compact<'a>(
        &mut self,
        live: impl ExactSizeIterator<Item = (&'a ShareKey, Snapshot)>,
        configs: &HashMap<String, GroupConfig>,
    ) -> io::Result<()> {
        let n = live.len() + configs.len();
        if !self.file.broken() && !record_file::worth_compacting(self.records, n) {
            return Ok(());
        }
        let mut buf = Vec::new();
        for (key, s) in live {
            put_snapshot(&mut buf, key, &s);
        }
        for (group, c) in configs {
            put_config(&mut buf, group, c);
        }
        self.file.rewrite(&buf)?;
        self.records = n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("gyre-share-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn snap(start: i64) -> Snapshot {
        Snapshot {
            start,
            runs: vec![StateRun {
                first: start,
                last: start + 2,
                state: RecordState::Acknowledged,
                deliveries: 2,
            }],
        }
    }

    #[test]
    fn the_newest_snapshot_wins_and_a_deleted_group_goes() {
        let d = dir("newest");
        let t = Uuid::from_u128(7);
        let (mut f, (live, _)) = StateFile::open(&d).unwrap();
        assert!(live.is_empty());
        let a = ("a".to_owned(), t, 0);
        let b = ("b".to_owned(), t, 1);
        f.write([(&a, snap(1)), (&b, snap(5))]).unwrap();
        f.write([(&a, snap(3))]).unwrap();
        let lock = GroupConfig {
            lock_ms: Some(5000),
            start_at: Some(StartAt::Earliest),
            consumer_session_ms: Some(10_000),
            share_heartbeat_ms: Some(1_000),
            ..GroupConfig::default()
        };
        let hour = GroupConfig {
            start_at: StartAt::parse("by_duration:PT1H0.5S"),
            ..GroupConfig::default()
        };
        f.write_config("a", &lock).unwrap();
        f.write_config("b", &lock).unwrap();
        f.write_config("c", &hour).unwrap();
        f.group_deleted("b").unwrap();
        let forgotten = ("a".to_owned(), t, 9);
        f.write([(&forgotten, snap(1))]).unwrap();
        f.forget(&[forgotten]).unwrap();
        f.sync().unwrap();
        drop(f);
        let (mut f, (live, configs)) = StateFile::open(&d).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[&a], snap(3));
        assert_eq!(configs.len(), 2);
        assert_eq!(configs["a"], lock);
        assert_eq!(configs["c"], hour);
        // Compacting keeps what is live.
        f.records = 10_000;
        f.compact(live.iter().map(|(k, v)| (k, v.clone())), &configs)
            .unwrap();
        drop(f);
        let (_, again) = StateFile::open(&d).unwrap();
        assert_eq!(again, (live, configs));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_group_config_record_from_before_the_session_keys_reads_back() {
        let mut buf = Vec::new();
        put_config(&mut buf, "g", &GroupConfig::default());
        // Its payload as the last version wrote it: the three share keys.
        let mut old = buf[8..buf.len() - 40].to_vec();
        old[1 + 2 + 1 + 1..][..8].copy_from_slice(&5000i64.to_be_bytes());
        let (group, config) = get_config(&old[1..]).expect("an older record");
        assert_eq!((group.as_str(), config.lock_ms), ("g", Some(5000)));
        assert_eq!(config.consumer_session_ms, None);
        assert!(get_config(&old[1..old.len() - 1]).is_none());
    }
}
