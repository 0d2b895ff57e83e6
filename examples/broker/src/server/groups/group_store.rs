//! Groups kept across restarts, as Kafka keeps them in
//! `__consumer_offsets`: `<data>/groups.log` holds one record per group,
//! written whole (a group is small) and fdatasync'd whenever it changes,
//! before the answer that changed it. A consumer group's record (KIP-848)
//! holds its epochs, assignor, members (epochs, what they own and must
//! give up, subscriptions, a classic member's protocols) and targets; a
//! classic group's, written each time a rebalance completes or a static
//! member rejoins, its generation, protocol, leader and members
//! (protocols, timeouts, assignments, instance ids); a share group's
//! (KIP-932), whenever its membership or assignment changes, its epoch,
//! members and target. A group that converts between the protocols keeps
//! its key, so its new record replaces the old in one write; a deleted
//! group, or a classic or consumer group left empty, gets a tombstone
//! (an empty share group is kept, as Kafka keeps it). At start the newest record per group
//! wins, so members go on heartbeating in their generation or at their
//! epochs with their partitions, and a torn tail is cut (the records
//! before it stand). Uses the record file, the three kinds of group and
//! the topic copy a consumer group needs to be restored.

use super::assignor::{self, Partitions};
use super::consumer_group::{
    compile_regex, ClassicPart, ConsumerGroup, ConsumerMember, Progress, Subscription, TopicsNow,
};
use super::group::{Client, Group, Member, State};
use super::share_group::{Partitions as SharePartitions, ShareGroup, ShareMember};
use crate::record_file::{self, get_str, put_str, RecordFile};
use bytes::{Buf, BufMut, Bytes};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The record layout's version.
const VERSION: u8 = 1;

/// What follows a record's group id.
const TOMBSTONE: u8 = 0;
const CONSUMER: u8 = 1;
/// A classic group's record before static membership: no instance ids.
const CLASSIC: u8 = 2;
/// A classic group's record with each member's instance id.
const CLASSIC_STATIC: u8 = 3;
/// A share group's record (KIP-932).
const SHARE: u8 = 4;

/// The groups a file held at start.
#[derive(Debug, Default)]
pub struct Restored {
    /// Consumer groups.
    pub consumer: Vec<ConsumerGroup>,
    /// Classic groups, stable.
    pub classic: Vec<Group>,
    /// Share groups, by id, their members' sessions starting at the
    /// time the file was opened (see [`ShareGroup::restored`]).
    pub share: Vec<(String, ShareGroup)>,
}

/// The groups file: the last record written per group.
#[derive(Debug)]
pub struct GroupStore {
    file: RecordFile,
    /// Each group's last record (its payload), to tell whether it changed.
    last: HashMap<String, Vec<u8>>,
    records: usize,
    buf: Vec<u8>,
}

impl GroupStore {
    /// Opens (or creates) `<dir>/groups.log`; returns it and the groups it
    /// holds, consumer groups' topics matched against `topics`, and every
    /// member's session starting `now`.
    pub fn open(dir: &Path, topics: &TopicsNow, now: Instant) -> io::Result<(Self, Restored)> {
        let path = dir.join("groups.log");
        let (file, records, last) = record_file::open_keyed(&path, |payload| {
            let mut p = payload;
            if p.first() != Some(&VERSION) {
                return None;
            }
            p.advance(1);
            let id = get_str(&mut p)??;
            let value = (p.first() != Some(&TOMBSTONE)).then(|| payload.to_vec());
            Some((id, value))
        })?;
        let mut groups = Restored::default();
        for (id, payload) in &last {
            let restored = match payload_kind(payload) {
                Some(CONSUMER) => decode(payload, topics, now).map(|g| groups.consumer.push(g)),
                Some(CLASSIC | CLASSIC_STATIC) => {
                    decode_classic(payload, now).map(|g| groups.classic.push(g))
                }
                Some(SHARE) => decode_share(payload, now).map(|g| groups.share.push(g)),
                _ => None,
            };
            if restored.is_none() {
                tracing::warn!(
                    group = id,
                    "a group's record does not parse; the group is dropped"
                );
            }
        }
        let mut store = GroupStore {
            file,
            last,
            records,
            buf: Vec::new(),
        };
        if record_file::worth_compacting(store.records, store.last.len()) {
            store.compact()?;
        }
        Ok((store, groups))
    }

    /// Writes consumer group `group` if it changed since it was last
    /// written.
    pub fn save(&mut self, group: &ConsumerGroup) -> io::Result<()> {
        self.put(&group.id, encode(group))
    }

    /// Writes classic group `group` (stable, with members) if it changed
    /// since it was last written.
    pub fn save_classic(&mut self, group: &Group) -> io::Result<()> {
        self.put(&group.id, encode_classic(group))
    }

    /// Writes share group `group` (with members or empty: Kafka keeps
    /// an empty share group until it is deleted) if it changed since it
    /// was last written.
    pub fn save_share(&mut self, id: &str, group: &ShareGroup) -> io::Result<()> {
        self.put(id, encode_share(id, group))
    }

    fn put(&mut self, id: &str, payload: Vec<u8>) -> io::Result<()> {
        if self.last.get(id) == Some(&payload) {
            return Ok(());
        }
        self.append(&payload)?;
        self.last.insert(id.to_owned(), payload);
        Ok(())
    }

    /// Whether the file's record of group `id` is a consumer group's.
    pub fn is_consumer(&self, id: &str) -> bool {
        self.last.get(id).and_then(|p| payload_kind(p)) == Some(CONSUMER)
    }

    /// Writes a tombstone for group `id`, if the file holds it.
    pub fn delete(&mut self, id: &str) -> io::Result<()> {
        if !self.last.contains_key(id) {
            return Ok(());
        }
        let mut payload = vec![VERSION];
        put_str(&mut payload, Some(id));
        payload.push(TOMBSTONE);
        self.append(&payload)?;
        self.last.remove(id);
        Ok(())
    }

    /// The groups the file holds.
    #[cfg(test)]
    fn ids(&self) -> impl Iterator<Item = &str> {
        self.last.keys().map(String::as_str)
    }

    fn append(&mut self, payload: &[u8]) -> io::Result<()> {
        self.buf.clear();
        let at = record_file::begin(&mut self.buf);
        self.buf.extend_from_slice(payload);
        record_file::finish(&mut self.buf, at);
        if self.file.broken() {
            // Written whole again from the groups' last records (which
            // the failed write did not change) before anything follows.
            self.compact()?;
        }
        self.file.append_synced(&self.buf)?;
        self.records += 1;
        if record_file::worth_compacting(self.records, self.last.len()) {
            self.compact()?;
        }
        Ok(())
    }

    fn compact(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        for payload in self.last.values() {
            let at = record_file::begin(&mut buf);
            buf.extend_from_slice(payload);
            record_file::finish(&mut buf, at);
        }
        self.file.rewrite(&buf)?;
        self.records = self.last.len();
        Ok(())
    }
}

fn put_partitions(b: &mut Vec<u8>, parts: &Partitions) {
    b.put_u32(parts.len() as u32);
    for (topic, p) in parts {
        b.put_slice(topic.as_bytes());
        b.put_i32(*p);
    }
}

fn put_bytes(b: &mut Vec<u8>, bytes: &[u8]) {
    b.put_u32(bytes.len() as u32);
    b.put_slice(bytes);
}

/// The kind of group a record holds (after its version and id).
fn payload_kind(payload: &[u8]) -> Option<u8> {
    let mut p = payload.get(1..)?;
    get_str(&mut p)??;
    p.first().copied()
}

/// A classic group's record: version, id, its kind, then generation,
/// protocol type and name, leader and members.
fn encode_classic(g: &Group) -> Vec<u8> {
    encode_classic_as(g, CLASSIC_STATIC)
}

/// A classic group's record of `kind`: [`CLASSIC`] records (written before
/// static membership) hold no instance ids.
fn encode_classic_as(g: &Group, kind: u8) -> Vec<u8> {
    let mut b = vec![VERSION];
    put_str(&mut b, Some(&g.id));
    b.put_u8(kind);
    b.put_i32(g.generation);
    put_str(&mut b, Some(&g.protocol_type));
    put_str(&mut b, g.protocol.as_deref());
    put_str(&mut b, g.leader.as_deref());
    b.put_u32(g.members.len() as u32);
    for (id, m) in &g.members {
        put_str(&mut b, Some(id));
        b.put_u32(m.protocols.len() as u32);
        for (name, md) in &m.protocols {
            put_str(&mut b, Some(name));
            put_bytes(&mut b, md);
        }
        b.put_u64(m.session_timeout.as_millis() as u64);
        b.put_u64(m.rebalance_timeout.as_millis() as u64);
        put_bytes(&mut b, &m.assignment);
        put_str(&mut b, Some(&m.client.id));
        put_str(&mut b, Some(&m.client.host));
        if kind == CLASSIC_STATIC {
            put_str(&mut b, m.instance_id.as_deref());
        }
    }
    b
}

/// A classic group from its record, stable, every session starting `now`.
fn decode_classic(payload: &[u8], now: Instant) -> Option<Group> {
    let mut r = Reader(payload);
    (r.u8()? == VERSION).then_some(())?;
    let mut g = Group::new(r.string()?);
    let kind = r.u8()?;
    matches!(kind, CLASSIC | CLASSIC_STATIC).then_some(())?;
    g.generation = r.i32()?;
    g.protocol_type = r.string()?;
    g.protocol = r.str()?;
    g.leader = r.str()?;
    for _ in 0..r.count(2)? {
        let id = r.string()?;
        let mut protocols = Vec::new();
        for _ in 0..r.count(6)? {
            protocols.push((r.string()?, r.bytes()?));
        }
        let member = Member {
            protocols,
            session_timeout: Duration::from_millis(r.u64()?),
            rebalance_timeout: Duration::from_millis(r.u64()?),
            last_seen: now,
            join: None,
            sync: None,
            assignment: r.bytes()?,
            client: Client {
                id: r.string()?,
                host: r.string()?,
            },
            instance_id: if kind == CLASSIC_STATIC {
                r.str()?
            } else {
                None
            },
        };
        g.members.insert(id, member);
    }
    r.0.is_empty().then_some(())?;
    g.state = State::Stable;
    Some(g)
}

/// A consumer group's record: version, id, its kind, then its state.
fn encode(g: &ConsumerGroup) -> Vec<u8> {
    let mut b = vec![VERSION];
    put_str(&mut b, Some(&g.id));
    b.put_u8(CONSUMER);
    b.put_i32(g.epoch);
    b.put_i32(g.assignment_epoch);
    put_str(&mut b, Some(g.assignor));
    b.put_u32(g.members.len() as u32);
    for (id, m) in &g.members {
        put_str(&mut b, Some(id));
        b.put_i32(m.epoch);
        b.put_i32(m.previous_epoch);
        b.put_u8(match m.progress {
            Progress::Stable => 0,
            Progress::Revoking => 1,
            Progress::Unreleased => 2,
        });
        put_partitions(&mut b, &m.assigned);
        put_partitions(&mut b, &m.revoking);
        put_str(&mut b, m.instance_id.as_deref());
        put_str(&mut b, m.rack_id.as_deref());
        b.put_u64(m.rebalance_timeout.as_millis() as u64);
        b.put_u32(m.subscription.names.len() as u32);
        for n in &m.subscription.names {
            put_str(&mut b, Some(n));
        }
        put_str(
            &mut b,
            m.subscription.regex.as_ref().map(|(p, _)| p.as_str()),
        );
        put_str(&mut b, m.server_assignor.as_deref());
        put_str(&mut b, Some(&m.client.id));
        put_str(&mut b, Some(&m.client.host));
        b.put_u8(u8::from(m.static_away));
        match &m.classic {
            None => b.put_u8(0),
            Some(c) => {
                b.put_u8(1);
                b.put_u64(c.session_timeout.as_millis() as u64);
                b.put_u32(c.protocols.len() as u32);
                for (name, md) in &c.protocols {
                    put_str(&mut b, Some(name));
                    put_bytes(&mut b, md);
                }
            }
        }
    }
    b.put_u32(g.target.len() as u32);
    for (id, parts) in &g.target {
        put_str(&mut b, Some(id));
        put_partitions(&mut b, parts);
    }
    b
}

fn put_share_partitions(b: &mut Vec<u8>, parts: &SharePartitions) {
    b.put_u32(parts.len() as u32);
    for (topic, indexes) in parts {
        b.put_slice(topic.as_bytes());
        b.put_u32(indexes.len() as u32);
        for i in indexes {
            b.put_i32(*i);
        }
    }
}

/// A share group's record: version, id, its kind, then its epoch, its
/// members (epoch, subscription, rack, client, what was last sent to
/// it) and its target. Sessions are not kept: each starts again at the
/// next start.
fn encode_share(id: &str, g: &ShareGroup) -> Vec<u8> {
    let mut b = vec![VERSION];
    put_str(&mut b, Some(id));
    b.put_u8(SHARE);
    b.put_i32(g.epoch);
    b.put_u32(g.members.len() as u32);
    for (member_id, m) in &g.members {
        put_str(&mut b, Some(member_id));
        b.put_i32(m.epoch);
        b.put_u32(m.topics.len() as u32);
        for t in &m.topics {
            put_str(&mut b, Some(t));
        }
        put_str(&mut b, m.rack.as_deref());
        put_str(&mut b, Some(&m.client.id));
        put_str(&mut b, Some(&m.client.host));
        put_share_partitions(&mut b, &m.assignment);
    }
    // Sorted, so that an unchanged target writes the same bytes.
    let target: BTreeMap<_, _> = g.target.iter().collect();
    b.put_u32(target.len() as u32);
    for (member_id, parts) in target {
        put_str(&mut b, Some(member_id));
        put_share_partitions(&mut b, parts);
    }
    b
}

/// A share group from its record, every session starting `now`.
fn decode_share(payload: &[u8], now: Instant) -> Option<(String, ShareGroup)> {
    let mut r = Reader(payload);
    (r.u8()? == VERSION).then_some(())?;
    let id = r.string()?;
    (r.u8()? == SHARE).then_some(())?;
    let mut g = ShareGroup {
        epoch: r.i32()?,
        ..ShareGroup::default()
    };
    for _ in 0..r.count(2)? {
        let member_id = r.string()?;
        let epoch = r.i32()?;
        let mut topics = Vec::new();
        for _ in 0..r.count(2)? {
            topics.push(r.string()?);
        }
        let member = ShareMember {
            epoch,
            topics,
            rack: r.str()?,
            client: Client {
                id: r.string()?,
                host: r.string()?,
            },
            deadline: now,
            assignment: r.share_partitions()?,
        };
        g.members.insert(member_id, member);
    }
    for _ in 0..r.count(2)? {
        let member_id = r.string()?;
        g.target.insert(member_id, r.share_partitions()?);
    }
    r.0.is_empty().then_some(())?;
    Some((id, g))
}

/// A cursor whose reads fail rather than run past the end.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        (!self.0.is_empty()).then(|| self.0.get_u8())
    }
    fn i32(&mut self) -> Option<i32> {
        (self.0.len() >= 4).then(|| self.0.get_i32())
    }
    fn u32(&mut self) -> Option<usize> {
        (self.0.len() >= 4).then(|| self.0.get_u32() as usize)
    }
    fn u64(&mut self) -> Option<u64> {
        (self.0.len() >= 8).then(|| self.0.get_u64())
    }
    fn str(&mut self) -> Option<Option<String>> {
        get_str(&mut self.0)
    }
    fn string(&mut self) -> Option<String> {
        self.str()?
    }
    /// A count of elements of at least `each` bytes.
    fn count(&mut self, each: usize) -> Option<usize> {
        let n = self.u32()?;
        (n.checked_mul(each)? <= self.0.len()).then_some(n)
    }
    fn partitions(&mut self) -> Option<Partitions> {
        let n = self.count(20)?;
        let mut parts = Partitions::new();
        for _ in 0..n {
            let topic = Uuid::from_slice(&self.0[..16]).ok()?;
            self.0.advance(16);
            parts.insert((topic, self.0.get_i32()));
        }
        Some(parts)
    }
    fn share_partitions(&mut self) -> Option<SharePartitions> {
        let mut parts = SharePartitions::new();
        for _ in 0..self.count(20)? {
            let topic = Uuid::from_slice(&self.0[..16]).ok()?;
            self.0.advance(16);
            let mut indexes = Vec::new();
            for _ in 0..self.count(4)? {
                indexes.push(self.i32()?);
            }
            parts.push((topic, indexes));
        }
        Some(parts)
    }
    fn bytes(&mut self) -> Option<Bytes> {
        let n = self.u32()?;
        if self.0.len() < n {
            return None;
        }
        let b = Bytes::copy_from_slice(&self.0[..n]);
        self.0.advance(n);
        Some(b)
    }
}

/// A group from its record; `None` if it does not parse.
fn decode(payload: &[u8], topics: &TopicsNow, now: Instant) -> Option<ConsumerGroup> {
    let mut r = Reader(payload);
    (r.u8()? == VERSION).then_some(())?;
    let id = r.string()?;
    (r.u8()? == CONSUMER).then_some(())?;
    let epoch = r.i32()?;
    let assignment_epoch = r.i32()?;
    let assignor_name = r.string()?;
    let assignor = assignor::NAMES
        .iter()
        .copied()
        .find(|n| *n == assignor_name)?;
    let mut members = BTreeMap::new();
    for _ in 0..r.count(1)? {
        let member_id = r.string()?;
        let mut m = ConsumerMember::new(now);
        m.epoch = r.i32()?;
        m.previous_epoch = r.i32()?;
        m.progress = match r.u8()? {
            0 => Progress::Stable,
            1 => Progress::Revoking,
            2 => Progress::Unreleased,
            _ => return None,
        };
        m.assigned = r.partitions()?;
        m.revoking = r.partitions()?;
        m.instance_id = r.str()?;
        m.rack_id = r.str()?;
        m.rebalance_timeout = Duration::from_millis(r.u64()?);
        let mut names = Vec::new();
        for _ in 0..r.count(2)? {
            names.push(r.string()?);
        }
        let regex = match r.str()? {
            // Compiled when it was accepted, so it compiles again.
            Some(p) => Some((p.clone(), compile_regex(&p).ok()?)),
            None => None,
        };
        // Who may see what is not kept: the member's next heartbeat says.
        m.subscription = Subscription {
            names,
            regex,
            visible: None,
        };
        m.server_assignor = r.str()?;
        m.client = Client {
            id: r.string()?,
            host: r.string()?,
        };
        m.static_away = r.u8()? != 0;
        if r.u8()? == 1 {
            let session_timeout = Duration::from_millis(r.u64()?);
            let mut protocols = Vec::new();
            for _ in 0..r.count(6)? {
                protocols.push((r.string()?, r.bytes()?));
            }
            m.classic = Some(ClassicPart {
                protocols,
                session_timeout,
            });
        }
        if m.progress == Progress::Revoking {
            m.revoke_deadline = Some(now + m.rebalance_timeout);
        }
        members.insert(member_id, m);
    }
    let mut target = BTreeMap::new();
    for _ in 0..r.count(2)? {
        let member = r.string()?;
        target.insert(member, r.partitions()?);
    }
    r.0.is_empty().then_some(())?;
    Some(ConsumerGroup::restore(
        id,
        (epoch, assignment_epoch),
        assignor,
        members,
        target,
        topics,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    fn dir(tag: &str) -> PathBuf {
        let d =
            gyre_testkit::scratch_root().join(format!("gyre-cgstore-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn topics() -> TopicsNow {
        TopicsNow {
            version: 1,
            topics: vec![(Uuid::from_bytes([9; 16]), "t".into(), 4)],
        }
    }

    fn group(now: Instant) -> ConsumerGroup {
        let mut g = ConsumerGroup::new("g".into());
        for id in ["a", "b"] {
            let mut m = ConsumerMember::new(now);
            m.subscription.names = vec!["t".into()];
            m.client = Client {
                id: format!("client-{id}"),
                host: "/127.0.0.1".into(),
            };
            g.add(id.into(), m);
        }
        let mut r = ConsumerMember::new(now);
        r.subscription.regex = Some(("t.*".into(), compile_regex("t.*").unwrap()));
        r.classic = Some(ClassicPart {
            protocols: vec![("range".into(), Bytes::from_static(b"\x00\x01md"))],
            session_timeout: Duration::from_secs(10),
        });
        r.instance_id = Some("i".into());
        g.add("c".into(), r);
        g.refresh(&topics(), true);
        for id in ["a", "b", "c"] {
            g.reconcile(id, None, now);
        }
        g
    }

    #[test]
    fn groups_come_back_as_they_were_written_and_a_torn_tail_is_cut() {
        let d = dir("back");
        let now = Instant::now();
        let (mut store, loaded) = GroupStore::open(&d, &topics(), now).unwrap();
        assert!(loaded.consumer.is_empty() && loaded.classic.is_empty());
        let g = group(now);
        store.save(&g).unwrap();
        // Unchanged: nothing written.
        let len = std::fs::metadata(d.join("groups.log")).unwrap().len();
        store.save(&g).unwrap();
        assert_eq!(std::fs::metadata(d.join("groups.log")).unwrap().len(), len);
        let mut other = ConsumerGroup::new("gone".into());
        other.add("x".into(), ConsumerMember::new(now));
        store.save(&other).unwrap();
        store.delete("gone").unwrap();
        drop(store);
        // A torn record after them.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(d.join("groups.log"))
            .unwrap();
        f.write_all(&[0, 0, 0, 9, 1, 2]).unwrap();
        drop(f);

        let (store, loaded) = GroupStore::open(&d, &topics(), now).unwrap();
        assert_eq!(store.ids().collect::<Vec<_>>(), ["g"]);
        let back = &loaded.consumer[0];
        assert_eq!(encode(back), encode(&g), "every field read back");
        assert_eq!(
            (back.epoch, back.assignment_epoch, back.state()),
            (g.epoch, g.assignment_epoch, "Stable")
        );
        // Ownership is rebuilt: a partition of a's cannot go to b.
        let mut back = loaded.consumer.into_iter().next().unwrap();
        let a_had = back.members["a"].assigned.clone();
        back.target.insert("b".into(), a_had.clone());
        back.members.get_mut("b").unwrap().epoch = 0;
        back.reconcile("b", None, now);
        assert!(back.members["b"].assigned.is_disjoint(&a_had));
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// A group record of a layout a newer binary wrote (another version
    /// byte) is not restored here, and outlives this binary's compaction
    /// of the file, ahead of the groups it rewrites, for the newer
    /// binary to find after an upgrade.
    #[test]
    fn a_newer_binarys_group_record_outlives_the_compaction() {
        let d = dir("newer");
        let now = Instant::now();
        let (mut store, _) = GroupStore::open(&d, &topics(), now).unwrap();
        store.save(&group(now)).unwrap();
        drop(store);
        let mut newer = vec![VERSION + 1];
        put_str(&mut newer, Some("h"));
        newer.extend_from_slice(b"a layout this binary does not know");
        let mut buf = Vec::new();
        let at = record_file::begin(&mut buf);
        buf.extend_from_slice(&newer);
        record_file::finish(&mut buf, at);
        let (mut file, _) = record_file::open(&d.join("groups.log"), |_| true).unwrap();
        file.append_synced(&buf).unwrap();
        drop(file);
        let (mut store, loaded) = GroupStore::open(&d, &topics(), now).unwrap();
        assert_eq!(store.ids().collect::<Vec<_>>(), ["g"]);
        assert_eq!(loaded.consumer.len(), 1);
        store.compact().unwrap();
        store.save(&ConsumerGroup::new("later".into())).unwrap();
        drop(store);
        let mut payloads = Vec::new();
        record_file::open(&d.join("groups.log"), |p| {
            payloads.push(p.to_vec());
            true
        })
        .unwrap();
        assert_eq!(payloads.len(), 3, "the newer record, g, then later");
        assert_eq!(payloads[0], newer);
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn classic_group() -> Group {
        let mut g = Group::new("c".into());
        g.protocol_type = "consumer".into();
        g.protocol = Some("range".into());
        g.leader = Some("m1".into());
        g.generation = 7;
        g.state = State::Stable;
        g.members.insert(
            "m1".into(),
            Member {
                protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
                session_timeout: Duration::from_secs(10),
                rebalance_timeout: Duration::from_secs(30),
                last_seen: Instant::now(),
                join: None,
                sync: None,
                assignment: Bytes::from_static(b"assigned"),
                client: Client {
                    id: "rdkafka".into(),
                    host: "/127.0.0.1".into(),
                },
                instance_id: Some("pod-0".into()),
            },
        );
        g
    }

    #[test]
    fn a_classic_group_comes_back_stable_and_a_conversion_replaces_its_record() {
        let d = dir("classic");
        let now = Instant::now();
        let (mut store, _) = GroupStore::open(&d, &topics(), now).unwrap();
        store.save_classic(&classic_group()).unwrap();
        drop(store);
        let (mut store, loaded) = GroupStore::open(&d, &topics(), now).unwrap();
        let back = &loaded.classic[0];
        assert_eq!(encode_classic(back), encode_classic(&classic_group()));
        assert_eq!((back.state, back.generation), (State::Stable, 7));
        assert!(back.members["m1"].join.is_none());
        // The same id as a consumer group: one record replaces the other.
        let mut converted = ConsumerGroup::new("c".into());
        converted.add("m1".into(), ConsumerMember::new(now));
        store.save(&converted).unwrap();
        drop(store);
        let (_, loaded) = GroupStore::open(&d, &topics(), now).unwrap();
        assert!(loaded.classic.is_empty());
        assert_eq!(loaded.consumer[0].id, "c");
        for cut in 0..encode_classic(&classic_group()).len() {
            let payload = encode_classic(&classic_group());
            assert!(decode_classic(&payload[..cut], now).is_none(), "{cut}");
        }
        // A record written before static membership reads back with none.
        let old = decode_classic(&encode_classic_as(&classic_group(), CLASSIC), now).unwrap();
        assert_eq!(old.members["m1"].instance_id, None);
        assert_eq!(back.members["m1"].instance_id.as_deref(), Some("pod-0"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn share_group(now: Instant) -> ShareGroup {
        let t = Uuid::from_bytes([9; 16]);
        let mut g = ShareGroup {
            epoch: 3,
            ..ShareGroup::default()
        };
        for (id, parts, epoch) in [("a", vec![0, 2], 3), ("b", vec![1], 2)] {
            let member = ShareMember {
                epoch,
                topics: vec!["t".into(), "u".into()],
                rack: (id == "a").then(|| "rack-1".into()),
                client: Client {
                    id: format!("client-{id}"),
                    host: "/127.0.0.1".into(),
                },
                deadline: now,
                assignment: vec![(
                    t,
                    if epoch == 3 {
                        parts.clone()
                    } else {
                        vec![1, 3]
                    },
                )],
            };
            g.members.insert(id.into(), member);
            g.target.insert(id.into(), vec![(t, parts)]);
        }
        g
    }

    #[test]
    fn a_share_group_comes_back_as_written_and_an_empty_one_is_kept() {
        let d = dir("share");
        let now = Instant::now();
        let (mut store, _) = GroupStore::open(&d, &topics(), now).unwrap();
        store.save_share("s", &share_group(now)).unwrap();
        store.save_share("idle", &ShareGroup::default()).unwrap();
        store.save_share("gone", &ShareGroup::default()).unwrap();
        store.delete("gone").unwrap();
        drop(store);
        let (_, loaded) = GroupStore::open(&d, &topics(), now).unwrap();
        let mut back = loaded.share;
        back.sort_by(|a, b| a.0.cmp(&b.0));
        let ids: Vec<&str> = back.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["idle", "s"]);
        assert_eq!(
            encode_share("s", &back[1].1),
            encode_share("s", &share_group(now)),
            "every field read back"
        );
        let payload = encode_share("s", &share_group(now));
        for cut in 0..payload.len() {
            assert!(decode_share(&payload[..cut], now).is_none(), "{cut}");
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn damaged_records_are_refused_not_misread() {
        let payload = encode(&group(Instant::now()));
        for cut in 0..payload.len() {
            assert!(
                decode(&payload[..cut], &topics(), Instant::now()).is_none(),
                "{cut}"
            );
        }
        let mut extra = payload.clone();
        extra.push(0);
        assert!(decode(&extra, &topics(), Instant::now()).is_none());
    }
}
