//! Committed consumer-group offsets, kept in one append-only file so they
//! survive restarts.
//!
//! Each commit appends one record per partition, `[len u32][crc32c u32]
//! [group, topic, partition, offset, metadata]`, in one write followed by
//! an fdatasync before the commit is acknowledged; a deletion (DeleteGroups,
//! OffsetDelete) appends the same record with offset `i64::MIN`, a
//! tombstone. At start the file is read back, the newest record per
//! (group, topic, partition) wins (a tombstone removes the key), and a
//! torn or corrupt tail (a crash mid-write) is cut off and logged. Whenever
//! the file holds many more records than live offsets (at start, or after
//! a commit or deletion) it is rewritten compactly through a temporary file
//! and a rename, so a group committing every few seconds for months keeps
//! a file the size of its offsets, as Kafka's compacted offsets topic does.
//!
//! Each record also carries its commit's wall-clock time (ms since the
//! Unix epoch, after the metadata, where older binaries read nothing),
//! and the activity file (`activity_file`) keeps when each group last had
//! members, so the ages offsets expire by survive a restart (a record
//! from before times were kept counts from the start that reads it).
//! After the time comes the leader epoch the client committed with the
//! offset (KIP-320; -1 in records from before it was kept), which
//! OffsetFetch gives back so a consumer starting there can check it.

use super::activity_file::ActivityFile;
use super::wall_clock::WallClock;
use crate::record_file::{self, get_str, put_str, RecordFile};
use bytes::{Buf, BufMut};
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::time::Instant;

/// What a group committed for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The next offset the group will consume.
    pub offset: i64,
    /// The leader epoch the record before it was read in (KIP-320), so a
    /// consumer starting from the offset can check that it still follows
    /// on; -1 when the client sent none.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: Option<String>,
}

/// (group, topic, partition).
pub type OffsetKey = (String, String, i32);

/// The offset of a record that deletes its key.
const TOMBSTONE: i64 = i64::MIN;

/// The offsets file and its contents.
#[derive(Debug)]
pub struct OffsetStore {
    file: RecordFile,
    /// Each offset and when it was committed (read back from the file).
    offsets: HashMap<OffsetKey, (Committed, Instant)>,
    records: usize,
    buf: Vec<u8>,
    /// Each group with offsets: when it was last seen with members, and
    /// how many offsets of each topic it has, for their expiry
    /// ([`expire`](Self::expire)). The time is read back at start from
    /// the activity file.
    active: HashMap<String, Activity>,
    activity: ActivityFile,
}

#[derive(Debug, Default)]
struct Activity {
    /// When the group last had members (`None`: not since the broker
    /// started, nor in the activity file).
    seen: Option<Instant>,
    /// Per topic, how many offsets of it the group has (a group with none
    /// is dropped).
    topics: HashMap<String, usize>,
}

impl OffsetStore {
    /// Opens (or creates) `<dir>/group-offsets.log` and
    /// `<dir>/group-activity.log` and loads them.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join("group-offsets.log");
        let (file, records, loaded) = record_file::open_keyed(&path, |payload| {
            let (key, value, at) = parse_record(payload)?;
            Some((key, (value.offset != TOMBSTONE).then_some((value, at))))
        })?;
        let clock = WallClock::now();
        let mut active: HashMap<String, Activity> = HashMap::new();
        let mut offsets = HashMap::with_capacity(loaded.len());
        for (key, (value, at)) in loaded {
            // A record from before times were kept counts from now.
            let at = at.map_or(clock.instant(), |ms| clock.instant_of(ms));
            *active
                .entry(key.0.clone())
                .or_default()
                .topics
                .entry(key.1.clone())
                .or_default() += 1;
            offsets.insert(key, (value, at));
        }
        let activity = ActivityFile::open(dir)?;
        for (g, &until) in activity.kept_until() {
            if let Some(a) = active.get_mut(g) {
                a.seen = Some(clock.instant_of(until));
            }
        }
        let mut store = OffsetStore {
            file,
            offsets,
            records,
            buf: Vec::new(),
            active,
            activity,
        };
        if record_file::worth_compacting(store.records, store.offsets.len()) {
            store.compact()?;
        }
        Ok(store)
    }

    /// What `group` committed for `topic`/`partition`.
    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&Committed> {
        // The key is owned; a lookup by parts would need a borrowed key
        // type, and offset fetches are rare.
        self.offsets
            .get(&(group.to_owned(), topic.to_owned(), partition))
            .map(|(c, _)| c)
    }

    /// Every (topic, partition, committed) of `group`.
    pub fn of_group(&self, group: &str) -> Vec<(&str, i32, &Committed)> {
        let mut all: Vec<_> = self
            .offsets
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|((_, t, p), (c, _))| (t.as_str(), *p, c))
            .collect();
        all.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        all
    }

    /// Every group with a committed offset, sorted.
    pub fn groups(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.active.keys().map(String::as_str).collect();
        all.sort_unstable();
        all
    }

    /// Whether `group` has any committed offset.
    pub fn has_group(&self, group: &str) -> bool {
        self.active.contains_key(group)
    }

    /// Durably records `commits`: one write and one fdatasync.
    pub fn commit(&mut self, commits: Vec<(OffsetKey, Committed)>) -> io::Result<()> {
        self.heal()?;
        self.buf.clear();
        let clock = WallClock::now();
        let now = clock.instant();
        for (key, value) in &commits {
            encode_record(&mut self.buf, key, value, clock.wall(now));
        }
        self.file.append_synced(&self.buf)?;
        self.records += commits.len();
        // A commit of the tombstone's offset deletes, as it will on reload.
        for (key, value) in commits {
            if value.offset == TOMBSTONE {
                self.remove(&key);
                continue;
            }
            if !self.offsets.contains_key(&key) {
                *self
                    .active
                    .entry(key.0.clone())
                    .or_default()
                    .topics
                    .entry(key.1.clone())
                    .or_default() += 1;
            }
            self.offsets.insert(key, (value, now));
        }
        self.compact_if_due();
        Ok(())
    }

    /// Rewrites the file compactly once it holds many more records than
    /// live offsets. The commits are durable already: a rewrite that fails
    /// (a full disk) is logged and tried again after the next commit.
    fn compact_if_due(&mut self) {
        if record_file::worth_compacting(self.records, self.offsets.len()) {
            if let Err(e) = self.compact() {
                tracing::warn!(file = %self.file.path().display(), error = %e, "cannot rewrite the offsets file compactly; it keeps growing until a rewrite succeeds");
            }
        }
    }

    /// Records written to the file since it was last rewritten (or read).
    #[cfg(test)]
    fn records(&self) -> usize {
        self.records
    }

    /// Durably deletes `keys` (those with no offset are skipped): one
    /// write of tombstones and one fdatasync. Returns how many went.
    pub fn delete(&mut self, keys: &[OffsetKey]) -> io::Result<usize> {
        let live: Vec<&OffsetKey> = keys
            .iter()
            .filter(|k| self.offsets.contains_key(*k))
            .collect();
        if live.is_empty() {
            return Ok(0);
        }
        let gone = Committed {
            offset: TOMBSTONE,
            leader_epoch: -1,
            metadata: None,
        };
        self.heal()?;
        self.buf.clear();
        let clock = WallClock::now();
        for key in &live {
            encode_record(&mut self.buf, key, &gone, clock.wall(clock.instant()));
        }
        self.file.append_synced(&self.buf)?;
        self.records += live.len();
        let gone = live.len();
        let live: Vec<OffsetKey> = live.into_iter().cloned().collect();
        for key in &live {
            self.remove(key);
        }
        self.compact_if_due();
        Ok(gone)
    }

    /// `group` has members now: its offsets do not expire meanwhile.
    pub fn touch(&mut self, group: &str, now: Instant) {
        if let Some(a) = self.active.get_mut(group) {
            a.seen = Some(now);
        }
    }

    /// Those of `groups` with offsets that no record keeps in use past
    /// `now`: ones to [`keep_in_use`](Self::keep_in_use) at once.
    pub fn unmarked<'a>(&self, groups: Vec<&'a str>, now: Instant) -> Vec<&'a str> {
        let clock = WallClock::now();
        let now_ms = clock.wall(now);
        let kept = self.activity.kept_until();
        let mut groups = groups;
        groups.retain(|g| {
            self.active.contains_key(*g) && kept.get(*g).is_none_or(|&until| until <= now_ms)
        });
        groups
    }

    /// Durably records that `groups` (those with offsets) count as in use
    /// until `until`, so a restart before then does not age them from
    /// their last commit: one write and one fdatasync.
    pub fn keep_in_use<'a>(
        &mut self,
        groups: impl IntoIterator<Item = &'a str>,
        until: Instant,
    ) -> io::Result<()> {
        let clock = WallClock::now();
        let active = &self.active;
        self.activity.mark(
            groups.into_iter().filter(|g| active.contains_key(*g)),
            clock.wall(until),
        )
    }

    /// Removes `key`'s offset from memory, and its group's count.
    fn remove(&mut self, key: &OffsetKey) {
        if self.offsets.remove(key).is_none() {
            return;
        }
        if let Some(a) = self.active.get_mut(&key.0) {
            if let Some(count) = a.topics.get_mut(&key.1) {
                *count -= 1;
                if *count == 0 {
                    a.topics.remove(&key.1);
                }
            }
            if a.topics.is_empty() {
                self.active.remove(&key.0);
                self.activity.forget(&key.0);
            }
        }
    }

    /// Deletes the offsets Kafka's `offsets.retention.minutes` expires
    /// (KIP-211), each `retention` after what last kept it:
    ///
    /// - in a group without members (`in_use`, asked now), every offset
    ///   `retention` after its commit or the group's last member,
    ///   whichever is later: an emptied group's go together, `retention`
    ///   after it emptied, and a standalone committer's each alone, after
    ///   its own commit;
    /// - in a group with members, each offset of a topic its members do
    ///   not subscribe to (`unsubscribed`, asked now), `retention` after
    ///   its commit: a consumer group that changed its subscription does
    ///   not keep its old topics' offsets for good.
    ///
    /// Returns the groups that lost offsets.
    pub fn expire(
        &mut self,
        now: Instant,
        retention: std::time::Duration,
        in_use: impl Fn(&str) -> bool,
        unsubscribed: impl Fn(&str, &str) -> bool,
    ) -> io::Result<Vec<String>> {
        let past = |at: Instant| now.saturating_duration_since(at) > retention;
        // Per group: whether it is in use and, if so, the topics it does
        // not subscribe to; asked once per group, not per offset.
        let mut judged: HashMap<&str, Option<HashSet<&str>>> = HashMap::new();
        for (g, a) in &self.active {
            let unused = in_use(g).then(|| {
                a.topics
                    .keys()
                    .map(String::as_str)
                    .filter(|t| unsubscribed(g, t))
                    .collect()
            });
            judged.insert(g.as_str(), unused);
        }
        let keys: Vec<OffsetKey> = self
            .offsets
            .iter()
            .filter(|((g, t, _), (_, at))| match &judged[g.as_str()] {
                None => past(self.active[g].seen.map_or(*at, |seen| seen.max(*at))),
                Some(unused) => unused.contains(t.as_str()) && past(*at),
            })
            .map(|(key, _)| key.clone())
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut groups: Vec<String> = keys.iter().map(|(g, _, _)| g.clone()).collect();
        groups.sort_unstable();
        groups.dedup();
        self.delete(&keys)?;
        Ok(groups)
    }

    /// Every key of a topic that `topic` picks, in any group.
    pub fn keys_of_topics(&self, topic: impl Fn(&str) -> bool) -> Vec<OffsetKey> {
        self.offsets
            .keys()
            .filter(|(_, t, _)| topic(t))
            .cloned()
            .collect()
    }

    /// Every key `group` has an offset for.
    pub fn keys_of(&self, group: &str) -> Vec<OffsetKey> {
        self.offsets
            .keys()
            .filter(|(g, _, _)| g == group)
            .cloned()
            .collect()
    }

    /// A file whose fdatasync failed is written whole again from the
    /// offsets held (which the failed write did not change) before
    /// anything follows it.
    fn heal(&mut self) -> io::Result<()> {
        match self.file.broken() {
            true => self.compact(),
            false => Ok(()),
        }
    }

    fn compact(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        let clock = WallClock::now();
        for (key, (value, at)) in &self.offsets {
            encode_record(&mut buf, key, value, clock.wall(*at));
        }
        self.file.rewrite(&buf)?;
        self.records = self.offsets.len();
        Ok(())
    }
}

/// One record: key, value, and the commit's wall-clock time `at_ms`.
fn encode_record(buf: &mut Vec<u8>, key: &OffsetKey, value: &Committed, at_ms: i64) {
    let start = record_file::begin(buf);
    put_str(buf, Some(&key.0));
    put_str(buf, Some(&key.1));
    buf.put_i32(key.2);
    buf.put_i64(value.offset);
    put_str(buf, value.metadata.as_deref());
    buf.put_i64(at_ms);
    buf.put_i32(value.leader_epoch);
    record_file::finish(buf, start);
}

/// One record's payload: key, value, and the commit's time if the record
/// has one (older binaries wrote none, and no leader epoch).
fn parse_record(mut p: &[u8]) -> Option<(OffsetKey, Committed, Option<i64>)> {
    let group = get_str(&mut p)??;
    let topic = get_str(&mut p)??;
    if p.len() < 12 {
        return None;
    }
    let partition = p.get_i32();
    let offset = p.get_i64();
    let metadata = get_str(&mut p)?;
    let at = (p.len() >= 8).then(|| p.get_i64());
    let leader_epoch = if p.len() >= 4 { p.get_i32() } else { -1 };
    Some((
        (group, topic, partition),
        Committed {
            offset,
            leader_epoch,
            metadata,
        },
        at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::io::Write;
    use std::path::PathBuf;

    fn dir(tag: &str) -> PathBuf {
        let d =
            gyre_testkit::scratch_root().join(format!("gyre-offsets-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn key(g: &str, t: &str, p: i32) -> OffsetKey {
        (g.into(), t.into(), p)
    }

    /// An offset committed without metadata.
    fn plain(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: -1,
            metadata: None,
        }
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_commit_whose_fdatasync_failed_is_not_kept_and_the_next_rewrites_the_file_whole() {
        let (root, d) = crate::failpoint::armed_scratch("offsets-fsync", "fsync");
        let mut s = OffsetStore::open(&d).unwrap();
        let c = |o| Committed {
            offset: o,
            leader_epoch: -1,
            metadata: None,
        };
        s.commit(vec![(key("g", "t", 0), c(5))]).unwrap_err();
        assert_eq!(s.get("g", "t", 0), None, "not committed");
        // Its bytes may be in the page cache or lost on the disk: the
        // next commit writes the file whole first, without them.
        s.commit(vec![(key("g", "t", 1), c(7))]).unwrap();
        drop(s);
        let s = OffsetStore::open(&d).unwrap();
        assert_eq!(s.get("g", "t", 0), None);
        assert_eq!(s.get("g", "t", 1), Some(&c(7)));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn deletions_survive_a_reopen() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-offsets-del-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let key = |g: &str, p| (g.to_owned(), "t".to_owned(), p);
        {
            let mut s = OffsetStore::open(&dir).unwrap();
            s.commit(vec![
                (key("a", 0), plain(5)),
                (key("a", 1), plain(6)),
                (key("b", 0), plain(7)),
            ])
            .unwrap();
            assert_eq!(s.delete(&[key("a", 0), key("a", 9)]).unwrap(), 1);
            assert_eq!(s.delete(&s.keys_of("b")).unwrap(), 1);
        }
        let s = OffsetStore::open(&dir).unwrap();
        assert_eq!(s.get("a", "t", 0), None);
        assert_eq!(s.get("a", "t", 1), Some(&plain(6)));
        assert!(!s.has_group("b"));
        assert_eq!(s.groups(), vec!["a"]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn idle_groups_without_members_expire_whole_and_the_rest_stay() {
        use std::time::Duration;
        let dir = dir("expire");
        let mut s = OffsetStore::open(&dir).unwrap();
        s.commit(vec![
            (key("idle", "t", 0), plain(1)),
            (key("idle", "t", 1), plain(2)),
        ])
        .unwrap();
        s.commit(vec![
            (key("busy", "t", 0), plain(3)),
            (key("kept", "t", 0), plain(4)),
        ])
        .unwrap();
        let later = Instant::now() + Duration::from_secs(60);
        let retention = Duration::from_secs(30);
        // `busy` has members; `kept` had some 19 s before `later`.
        s.touch("kept", later - Duration::from_secs(19));
        let gone = s
            .expire(later, retention, |g| g == "busy", |_, _| false)
            .unwrap();
        assert_eq!(gone, ["idle"]);
        assert_eq!(s.groups(), ["busy", "kept"]);
        assert_eq!(s.get("idle", "t", 1), None);
        // A tombstone commit removes the last offset: nothing left to age.
        s.commit(vec![(key("busy", "t", 0), plain(TOMBSTONE))])
            .unwrap();
        assert!(!s.has_group("busy"));
        let later_still = later + Duration::from_secs(12);
        assert_eq!(
            s.expire(later_still, retention, |_| false, |_, _| false)
                .unwrap(),
            ["kept"]
        );
        assert!(s.groups().is_empty());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_group_with_members_loses_only_old_offsets_of_topics_it_left() {
        use std::time::Duration;
        let dir = dir("unsubscribed");
        let mut s = OffsetStore::open(&dir).unwrap();
        s.commit(vec![
            (key("g", "old", 0), plain(1)),
            (key("g", "old", 1), plain(2)),
        ])
        .unwrap();
        let retention = Duration::from_secs(30);
        let later = Instant::now() + Duration::from_secs(40);
        // Committed since, within the retention: kept whatever the
        // subscription. Past it and subscribed: kept.
        s.commit(vec![(key("g", "recent", 0), plain(3))]).unwrap();
        s.commit(vec![(key("g", "current", 0), plain(4))]).unwrap();
        // Each offset ages alone: old/1 was committed again since.
        for (t, p, ago) in [
            ("old", 0, 31),
            ("old", 1, 10),
            ("current", 0, 31),
            ("recent", 0, 10),
        ] {
            s.offsets.get_mut(&key("g", t, p)).unwrap().1 = later - Duration::from_secs(ago);
        }
        let subscribed = ["current"];
        let gone = s
            .expire(later, retention, |_| true, |_, t| !subscribed.contains(&t))
            .unwrap();
        assert_eq!(gone, ["g"]);
        assert_eq!(s.get("g", "old", 0), None);
        assert_eq!(s.get("g", "old", 1).map(|c| c.offset), Some(2));
        assert_eq!(s.get("g", "recent", 0).map(|c| c.offset), Some(3));
        assert_eq!(s.get("g", "current", 0).map(|c| c.offset), Some(4));
        assert_eq!(s.active["g"].topics["old"], 1);
        assert_eq!(s.active["g"].topics.values().sum::<usize>(), 3);
        // Gone from the file too.
        drop(s);
        let s = OffsetStore::open(&dir).unwrap();
        assert_eq!(s.get("g", "old", 0), None);
        assert_eq!(s.keys_of("g").len(), 3);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_standalone_committers_offsets_age_alone_and_an_emptied_groups_together() {
        use std::time::Duration;
        let d = dir("alone");
        let mut s = OffsetStore::open(&d).unwrap();
        s.commit(vec![
            (key("solo", "t", 0), plain(1)),
            (key("solo", "t", 1), plain(2)),
            (key("left", "t", 0), plain(3)),
            (key("left", "t", 1), plain(4)),
        ])
        .unwrap();
        let now = Instant::now();
        let ago = |secs| now - Duration::from_secs(secs);
        for (g, p, secs) in [
            ("solo", 0, 40),
            ("solo", 1, 10),
            ("left", 0, 40),
            ("left", 1, 35),
        ] {
            s.offsets.get_mut(&key(g, "t", p)).unwrap().1 = ago(secs);
        }
        // `left` had members until 20 s ago.
        s.touch("left", ago(20));
        let retention = Duration::from_secs(30);
        let gone = s.expire(now, retention, |_| false, |_, _| false).unwrap();
        assert_eq!(gone, ["solo"]);
        assert_eq!(s.get("solo", "t", 0), None);
        assert_eq!(s.get("solo", "t", 1), Some(&plain(2)));
        assert_eq!(s.keys_of("left").len(), 2);
        let gone = s
            .expire(
                now + Duration::from_secs(11),
                retention,
                |_| false,
                |_, _| false,
            )
            .unwrap();
        assert_eq!(gone, ["left"]);
        assert_eq!(s.groups(), ["solo"]);
        fs::remove_dir_all(&d).unwrap();
    }

    /// Writes `records` (group, topic, commit time ms ago or `None` for a
    /// record from before times were kept) to `dir`'s offsets file, and
    /// `marks` (group, in use until ms ago) to its activity file.
    /// A record of `offset` for `key` as older binaries wrote it: with no
    /// time and no epoch (`at_ms` `None`), or with the time and no epoch.
    fn older_record(buf: &mut Vec<u8>, key: &OffsetKey, offset: i64, at_ms: Option<i64>) {
        let start = record_file::begin(buf);
        put_str(buf, Some(&key.0));
        put_str(buf, Some(&key.1));
        buf.put_i32(key.2);
        buf.put_i64(offset);
        put_str(buf, None);
        if let Some(at_ms) = at_ms {
            buf.put_i64(at_ms);
        }
        record_file::finish(buf, start);
    }

    fn written(dir: &Path, records: &[(&str, &str, Option<i64>)], marks: &[(&str, i64)]) {
        let now_ms = WallClock::now().wall(Instant::now());
        let mut buf = Vec::new();
        for &(g, t, ago) in records {
            let value = plain(1);
            match ago {
                Some(ago) => encode_record(&mut buf, &key(g, t, 0), &value, now_ms - ago),
                // The layout before times: no time after the metadata.
                None => older_record(&mut buf, &key(g, t, 0), 1, None),
            }
        }
        let (mut file, _) = record_file::open(&dir.join("group-offsets.log"), |_| true).unwrap();
        file.append_synced(&buf).unwrap();
        let mut activity = ActivityFile::open(dir).unwrap();
        for &(g, ago) in marks {
            activity.mark([g], now_ms - ago).unwrap();
        }
    }

    #[test]
    fn a_committed_leader_epoch_survives_a_restart_and_older_records_have_none() {
        let d = dir("epochs");
        let mut s = OffsetStore::open(&d).unwrap();
        let with_epoch = Committed {
            offset: 10,
            leader_epoch: 7,
            metadata: Some("m".into()),
        };
        s.commit(vec![(key("g", "t", 0), with_epoch.clone())])
            .unwrap();
        drop(s);
        // The layout of the last binary before epochs: the time, no epoch.
        let mut buf = Vec::new();
        older_record(&mut buf, &key("g", "t", 1), 20, Some(1_000));
        let (mut file, _) = record_file::open(&d.join("group-offsets.log"), |_| true).unwrap();
        file.append_synced(&buf).unwrap();
        drop(file);
        let s = OffsetStore::open(&d).unwrap();
        assert_eq!(s.get("g", "t", 0), Some(&with_epoch));
        assert_eq!(
            s.get("g", "t", 1).map(|c| (c.offset, c.leader_epoch)),
            Some((20, -1))
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ages_survive_a_restart_from_the_commits_and_the_last_members_seen() {
        use std::time::Duration;
        let d = dir("ages");
        written(
            &d,
            &[
                ("dead", "t", Some(40_000)),
                ("fresh", "t", Some(10_000)),
                ("legacy", "t", None),
                ("kept", "t", Some(100_000)),
                ("gone", "t", Some(100_000)),
            ],
            // `kept` had members until 5 s ago, `gone` until 40 s ago.
            &[("kept", 5_000), ("gone", 40_000), ("no-offsets", 0)],
        );
        let mut s = OffsetStore::open(&d).unwrap();
        let gone = s
            .expire(
                Instant::now(),
                Duration::from_secs(30),
                |_| false,
                |_, _| false,
            )
            .unwrap();
        assert_eq!(gone, ["dead", "gone"]);
        assert_eq!(s.groups(), ["fresh", "kept", "legacy"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn groups_kept_in_use_before_a_restart_count_from_it() {
        use std::time::Duration;
        let d = dir("kept-in-use");
        written(
            &d,
            &[("g", "t", Some(100_000)), ("h", "t", Some(100_000))],
            &[],
        );
        let mut s = OffsetStore::open(&d).unwrap();
        s.keep_in_use(
            ["g", "no-offsets"],
            Instant::now() + Duration::from_secs(600),
        )
        .unwrap();
        drop(s);
        let mut s = OffsetStore::open(&d).unwrap();
        assert!(!s.activity.kept_until().contains_key("no-offsets"));
        let gone = s
            .expire(
                Instant::now(),
                Duration::from_secs(30),
                |_| false,
                |_, _| false,
            )
            .unwrap();
        assert_eq!(gone, ["h"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn groups_without_a_mark_past_now_are_the_ones_to_mark() {
        use std::time::Duration;
        let d = dir("unmarked");
        let mut s = OffsetStore::open(&d).unwrap();
        s.commit(vec![
            (key("g", "t", 0), plain(1)),
            (key("h", "t", 0), plain(1)),
        ])
        .unwrap();
        let now = Instant::now();
        s.keep_in_use(["g"], now + Duration::from_secs(60)).unwrap();
        // h has no mark, and no-offsets has nothing to keep.
        assert_eq!(s.unmarked(vec!["g", "h", "no-offsets"], now), ["h"]);
        assert_eq!(s.unmarked(vec!["g"], now + Duration::from_secs(61)), ["g"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_rewrite_keeps_each_topics_commit_time() {
        use std::time::Duration;
        let d = dir("rewrite-times");
        written(&d, &[("g", "old", Some(100_000))], &[]);
        let mut s = OffsetStore::open(&d).unwrap();
        s.commit(vec![(
            key("g", "new", 0),
            Committed {
                offset: 2,
                leader_epoch: -1,
                metadata: None,
            },
        )])
        .unwrap();
        s.compact().unwrap();
        drop(s);
        let mut s = OffsetStore::open(&d).unwrap();
        let gone = s
            .expire(
                Instant::now(),
                Duration::from_secs(30),
                |_| true,
                |_, _| true,
            )
            .unwrap();
        assert_eq!(gone, ["g"]);
        assert_eq!(s.get("g", "old", 0), None);
        assert_eq!(s.get("g", "new", 0).map(|c| c.offset), Some(2));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn commits_survive_a_reopen_and_the_newest_wins() {
        let d = dir("reopen");
        let mut s = OffsetStore::open(&d).unwrap();
        let c = |o| Committed {
            offset: o,
            leader_epoch: -1,
            metadata: Some("m".into()),
        };
        s.commit(vec![(key("g", "t", 0), c(5)), (key("g", "t", 1), c(7))])
            .unwrap();
        s.commit(vec![(key("g", "t", 0), c(9))]).unwrap();
        drop(s);
        let s = OffsetStore::open(&d).unwrap();
        assert_eq!(s.get("g", "t", 0).unwrap().offset, 9);
        assert_eq!(s.get("g", "t", 1).unwrap().offset, 7);
        assert_eq!(s.get("h", "t", 0), None);
        assert_eq!(s.of_group("g").len(), 2);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_torn_or_flipped_tail_is_cut_and_earlier_commits_kept() {
        let d = dir("torn");
        let mut s = OffsetStore::open(&d).unwrap();
        let c = Committed {
            offset: 3,
            leader_epoch: -1,
            metadata: None,
        };
        s.commit(vec![(key("g", "t", 0), c.clone())]).unwrap();
        s.commit(vec![(key("g", "t", 1), c.clone())]).unwrap();
        drop(s);
        let path = d.join("group-offsets.log");
        let mut data = fs::read(&path).unwrap();
        let whole = data.len();
        let last = data.len() - 3;
        data[last] ^= 0x40; // flip a bit in the second record
        fs::write(&path, &data).unwrap();
        let s = OffsetStore::open(&d).unwrap();
        assert_eq!(s.get("g", "t", 0), Some(&c));
        assert_eq!(s.get("g", "t", 1), None);
        assert!(fs::metadata(&path).unwrap().len() < whole as u64);
        drop(s);
        // A torn write: half a record.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 40, 1, 2]).unwrap();
        let mut s = OffsetStore::open(&d).unwrap();
        assert_eq!(s.get("g", "t", 0), Some(&c));
        s.commit(vec![(key("g", "t", 2), c.clone())]).unwrap();
        drop(s);
        assert_eq!(OffsetStore::open(&d).unwrap().of_group("g").len(), 2);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_group_committing_for_ever_keeps_a_file_the_size_of_its_offsets() {
        let d = dir("bounded");
        let mut s = OffsetStore::open(&d).unwrap();
        let c = |o| Committed {
            offset: o,
            leader_epoch: -1,
            metadata: None,
        };
        let mut largest = 0;
        for round in 0..1_500 {
            s.commit(vec![
                (key("g", "t", 0), c(round)),
                (key("g", "t", 1), c(round)),
            ])
            .unwrap();
            largest = largest.max(fs::metadata(d.join("group-offsets.log")).unwrap().len());
        }
        s.delete(&[key("g", "t", 1)]).unwrap();
        assert!(s.records() <= 2 * 2 + 1001 + 2, "{} records", s.records());
        // About 1,000 records of ~30 bytes at most between rewrites, where
        // 3,000 records were written.
        assert!(largest < 48 * 1024, "the file reached {largest} bytes");
        drop(s);
        let s = OffsetStore::open(&d).unwrap();
        assert_eq!(s.get("g", "t", 0), Some(&c(1_499)));
        assert_eq!(s.get("g", "t", 1), None);
        fs::remove_dir_all(&d).unwrap();
    }
}
