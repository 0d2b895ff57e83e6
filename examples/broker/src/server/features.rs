//! The cluster's feature levels (KIP-584, KIP-1022): which of Kafka's
//! versioned features this broker implements and the levels it supports
//! ([`SUPPORTED`]), the level each is finalized at, as ApiVersions v3 and
//! later report them (kafka-python's `describe_features`, Kafka's
//! `kafka-features.sh describe`), and UpdateFeatures, which changes them
//! (`update_features`, `kafka-features.sh upgrade`, `downgrade`,
//! `disable`).
//!
//! A feature at level 0 is off: `group.version` 0 turns the consumer
//! group protocol (KIP-848) off and `share.version` 0 share groups
//! (KIP-932); their requests are then answered `UNSUPPORTED_VERSION`, as
//! Kafka answers them ([`needed_by`]), and come back with the level.
//! `transaction.version` is at 0 and can go no higher: transactions v2
//! (KIP-890 part 2) is not built, and a client reads the finalized level
//! to choose it. `metadata.version` and `kraft.version` are not listed:
//! they version a KRaft metadata log, which this broker does not keep.
//!
//! The levels live in `<data>/features.log`, a [`RecordFile`]: each
//! change is one record holding every level and the epoch after it,
//! fdatasynced before the answer, so a change of several features is
//! whole or absent after a crash. The event loops read the levels (every
//! ApiVersions answer, the gate of every group and share request) from
//! one atomic word, stored after the record is synced; only the admin
//! thread changes them, under the store's lock. A single word read whole
//! carries no ordering between threads beyond itself, so there is no
//! protocol here for a loom model to check.
//!
//! Uses `record_file`, the broker's error codes and `kafka-protocol`'s
//! messages.

use crate::protocol::error_code as ec;
use crate::record_file::{self, get_str, put_str, RecordFile};
use bytes::{Buf, BufMut};
use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{
    ApiVersionsResponse, RequestKind, UpdateFeaturesRequest, UpdateFeaturesResponse,
};
use kafka_protocol::protocol::StrBytes;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A versioned feature this broker implements: levels 0 (off) to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feature {
    /// Its name, as Kafka spells it.
    pub name: &'static str,
    /// The highest level this broker supports.
    pub max: i16,
    /// Its level in a data folder no UpdateFeatures changed.
    pub default: i16,
}

/// [`SUPPORTED`]'s index of `group.version`.
pub const GROUP: usize = 0;
/// [`SUPPORTED`]'s index of `share.version`.
pub const SHARE: usize = 1;

/// The features this broker implements, in the order [`Levels`] holds
/// them.
pub const SUPPORTED: [Feature; 3] = [
    // 1: the consumer group protocol (ConsumerGroupHeartbeat, KIP-848).
    Feature {
        name: "group.version",
        max: 1,
        default: 1,
    },
    // 1: share groups (KIP-932), production-ready from Kafka 4.2.
    Feature {
        name: "share.version",
        max: 1,
        default: 1,
    },
    // 2 would be transactions v2 (KIP-890 part 2), not built.
    Feature {
        name: "transaction.version",
        max: 0,
        default: 0,
    },
];

/// The upgrade types of UpdateFeatures v1 (v0's `allow_downgrade` is a
/// safe downgrade).
const UPGRADE: i8 = 1;
const SAFE_DOWNGRADE: i8 = 2;
const UNSAFE_DOWNGRADE: i8 = 3;

/// The feature that must be on (above level 0) for `request` to be
/// served, if any: Kafka answers these `UNSUPPORTED_VERSION` while it is
/// off.
pub(crate) fn needed_by(request: &RequestKind) -> Option<usize> {
    match request {
        RequestKind::ConsumerGroupHeartbeat(_) | RequestKind::ConsumerGroupDescribe(_) => {
            Some(GROUP)
        }
        RequestKind::ShareGroupHeartbeat(_)
        | RequestKind::ShareGroupDescribe(_)
        | RequestKind::ShareFetch(_)
        | RequestKind::ShareAcknowledge(_)
        | RequestKind::DescribeShareGroupOffsets(_)
        | RequestKind::AlterShareGroupOffsets(_)
        | RequestKind::DeleteShareGroupOffsets(_) => Some(SHARE),
        _ => None,
    }
}

/// Every feature's finalized level, and the epoch of the last change
/// (0 for a data folder none changed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Levels {
    /// Counts the changes made, each one at a time.
    pub epoch: i64,
    levels: [i16; SUPPORTED.len()],
}

impl Levels {
    /// Every feature at its default, epoch 0.
    pub fn defaults() -> Self {
        Levels {
            epoch: 0,
            levels: SUPPORTED.map(|f| f.default),
        }
    }

    /// `feature`'s level ([`SUPPORTED`]'s index).
    pub fn level(&self, feature: usize) -> i16 {
        self.levels[feature]
    }

    /// Whether `feature` is on (above level 0).
    pub fn is_on(&self, feature: usize) -> bool {
        self.levels[feature] > 0
    }

    // A level fits a byte (each is at most its feature's `max`), the
    // epoch the 40 bits above them.
    fn pack(self) -> u64 {
        let mut word = (self.epoch as u64) << 24;
        for (i, level) in self.levels.iter().enumerate() {
            word |= (*level as u8 as u64) << (8 * i);
        }
        word
    }

    fn unpack(word: u64) -> Self {
        let mut levels = [0; SUPPORTED.len()];
        for (i, level) in levels.iter_mut().enumerate() {
            *level = i16::from((word >> (8 * i)) as u8);
        }
        Levels {
            epoch: (word >> 24) as i64,
            levels,
        }
    }
}

/// The levels, the file that keeps them, and the changes to them.
#[derive(Debug)]
pub struct Features {
    /// [`Levels`], packed: what the event loops read.
    now: AtomicU64,
    store: Mutex<Store>,
}

#[derive(Debug)]
struct Store {
    file: RecordFile,
    records: usize,
    /// Levels of features this binary does not know (a newer one
    /// finalized them), kept in every record it writes.
    others: Vec<(String, i16)>,
}

impl Features {
    /// Opens (or creates) `<dir>/features.log` and reads the newest
    /// levels in it. A level above what this binary supports (a newer one
    /// wrote it) is served at this binary's highest, and logged.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let path = dir.join("features.log");
        let mut newest = None;
        let (file, records) = record_file::open(&path, |payload| match decode(payload) {
            Some(read) => {
                newest = Some(read);
                true
            }
            None => false,
        })?;
        let (mut levels, others) = match newest {
            Some((epoch, named)) => from_named(epoch, named),
            None => (Levels::defaults(), Vec::new()),
        };
        for (i, f) in SUPPORTED.iter().enumerate() {
            if levels.levels[i] > f.max {
                tracing::warn!(
                    file = %path.display(),
                    feature = f.name,
                    finalized = levels.levels[i],
                    served = f.max,
                    "a feature is finalized above the highest level this binary supports (a newer one set it); serving it at this binary's highest"
                );
                levels.levels[i] = f.max;
            }
        }
        for (name, level) in &others {
            tracing::warn!(file = %path.display(), feature = %name, level, "a feature this binary does not know is finalized (a newer one set it); kept, not served");
        }
        let mut store = Store {
            file,
            records,
            others,
        };
        if record_file::worth_compacting(store.records, 1) {
            store.write(&levels, true)?;
        }
        Ok(Features {
            now: AtomicU64::new(levels.pack()),
            store: Mutex::new(store),
        })
    }

    /// The levels as last changed.
    pub fn levels(&self) -> Levels {
        // Acquire pairs with the Release in `update`: nothing else is
        // published with the word, so this is for the reader of the code.
        Levels::unpack(self.now.load(Ordering::Acquire))
    }

    /// Fills ApiVersions' feature fields (v3 and later) for a request of
    /// `version`: the features supported and those finalized above level
    /// 0, at the epoch of the last change. Below v4 Kafka leaves out every
    /// supported feature whose lowest level is 0 (clients before it
    /// refused such a range), which is all of these.
    pub fn report(&self, version: i16, r: &mut ApiVersionsResponse) {
        if version < 3 {
            return;
        }
        let now = self.levels();
        if version >= 4 {
            for f in &SUPPORTED {
                let mut s = SupportedFeatureKey::default();
                s.name = StrBytes::from_static_str(f.name);
                s.min_version = 0;
                s.max_version = f.max;
                r.supported_features.push(s);
            }
        }
        for (i, f) in SUPPORTED.iter().enumerate() {
            if now.is_on(i) {
                let mut k = FinalizedFeatureKey::default();
                k.name = StrBytes::from_static_str(f.name);
                k.min_version_level = now.level(i);
                k.max_version_level = now.level(i);
                r.finalized_features.push(k);
            }
        }
        r.finalized_features_epoch = now.epoch;
    }

    /// Serves UpdateFeatures (v`version`) from a principal `allowed` to
    /// ALTER the cluster: every update is checked first, and the first
    /// that fails is the answer's error, with nothing changed (as Kafka's
    /// controller does); otherwise, unless the request only validates,
    /// the new levels are written and synced, then served.
    pub fn update(
        &self,
        req: &UpdateFeaturesRequest,
        version: i16,
        allowed: bool,
    ) -> UpdateFeaturesResponse {
        if !allowed {
            let why = "the principal may not ALTER the cluster".to_owned();
            return answer(req, version, ec::CLUSTER_AUTHORIZATION_FAILED, Some(why));
        }
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.levels();
        let mut named = std::collections::HashSet::with_capacity(req.feature_updates.len());
        for u in &req.feature_updates {
            let name = u.feature.as_str();
            if !named.insert(name) {
                let why = format!("feature {name} is named twice");
                return answer(req, version, ec::INVALID_REQUEST, Some(why));
            }
            match checked(u, version, &next) {
                Ok((feature, level)) => next.levels[feature] = level,
                Err(why) => {
                    let why = format!(
                        "invalid update version {} for feature {name}: {why}",
                        u.max_version_level
                    );
                    return answer(req, version, ec::INVALID_UPDATE_VERSION, Some(why));
                }
            }
        }
        if req.validate_only || req.feature_updates.is_empty() {
            return answer(req, version, ec::NONE, None);
        }
        next.epoch += 1;
        if let Err(e) = store.write(&next, false) {
            tracing::error!(error = %e, "could not record the feature levels; unchanged");
            let why = format!("the feature levels could not be recorded: {e}");
            return answer(req, version, ec::KAFKA_STORAGE_ERROR, Some(why));
        }
        self.now.store(next.pack(), Ordering::Release);
        for u in &req.feature_updates {
            tracing::info!(feature = %u.feature.as_str(), level = u.max_version_level, epoch = next.epoch, "feature level finalized");
        }
        answer(req, version, ec::NONE, None)
    }
}

impl Store {
    /// Appends `levels` as one synced record, or rewrites the file with
    /// it alone (`whole`, or the file broken, or mostly history).
    fn write(&mut self, levels: &Levels, whole: bool) -> io::Result<()> {
        let mut buf = Vec::new();
        encode(&mut buf, levels, &self.others);
        if whole || self.file.broken() || record_file::worth_compacting(self.records + 1, 1) {
            self.file.rewrite(&buf)?;
            self.records = 1;
        } else {
            self.file.append_synced(&buf)?;
            self.records += 1;
        }
        Ok(())
    }
}

/// What `update` makes `level` of the feature, in `current`'s state:
/// its index and the level, or why not (Kafka's rules).
fn checked(u: &FeatureUpdateKey, version: i16, current: &Levels) -> Result<(usize, i16), String> {
    let kind = if version == 0 {
        if u.allow_downgrade {
            SAFE_DOWNGRADE
        } else {
            UPGRADE
        }
    } else {
        u.upgrade_type
    };
    if !matches!(kind, UPGRADE | SAFE_DOWNGRADE | UNSAFE_DOWNGRADE) {
        return Err(format!("upgrade type {kind} is none of 1 (upgrade), 2 (safe downgrade) and 3 (unsafe downgrade)"));
    }
    let level = u.max_version_level;
    if level < 0 {
        return Err("a feature level cannot be below 0".to_owned());
    }
    let Some(feature) = SUPPORTED.iter().position(|f| f.name == u.feature.as_str()) else {
        return Err("this broker does not support this feature".to_owned());
    };
    let max = SUPPORTED[feature].max;
    if level > max {
        return Err(format!("this broker supports levels 0 to {max}"));
    }
    let now = current.level(feature);
    if level < now && kind == UPGRADE {
        return Err(format!(
            "it is at {now}: a downgrade needs the upgrade type safe or unsafe downgrade"
        ));
    }
    if level > now && kind != UPGRADE {
        return Err(format!("it is at {now}: a downgrade cannot raise it"));
    }
    Ok((feature, level))
}

/// The answer to `req` with `code` (and `why`) at the top; below v2 each
/// feature's result carries it too, as Kafka answers them.
pub(crate) fn answer(
    req: &UpdateFeaturesRequest,
    version: i16,
    code: i16,
    why: Option<String>,
) -> UpdateFeaturesResponse {
    let mut r = UpdateFeaturesResponse::default();
    r.error_code = code;
    r.error_message = why.map(StrBytes::from_string);
    if version < 2 {
        for u in &req.feature_updates {
            let mut one = UpdatableFeatureResult::default();
            one.feature = u.feature.clone();
            one.error_code = code;
            one.error_message = r.error_message.clone();
            r.results.push(one);
        }
    }
    r
}

/// The record's layout version.
const RECORD_V0: u8 = 0;

fn encode(buf: &mut Vec<u8>, levels: &Levels, others: &[(String, i16)]) {
    let start = record_file::begin(buf);
    buf.put_u8(RECORD_V0);
    buf.put_i64(levels.epoch);
    buf.put_u16((SUPPORTED.len() + others.len()) as u16);
    let known = SUPPORTED
        .iter()
        .zip(levels.levels)
        .map(|(f, l)| (f.name, l));
    for (name, level) in known.chain(others.iter().map(|(n, l)| (n.as_str(), *l))) {
        put_str(buf, Some(name));
        buf.put_i16(level);
    }
    record_file::finish(buf, start);
}

/// A record's epoch and every level in it, by name; `None` if this
/// binary cannot read it.
fn decode(mut p: &[u8]) -> Option<(i64, Vec<(String, i16)>)> {
    if p.remaining() < 1 + 8 + 2 || p.get_u8() != RECORD_V0 {
        return None;
    }
    let epoch = p.get_i64();
    let count = p.get_u16();
    let mut named = Vec::with_capacity(usize::from(count).min(64));
    for _ in 0..count {
        let name = get_str(&mut p)??;
        if p.remaining() < 2 {
            return None;
        }
        named.push((name, p.get_i16()));
    }
    // The epoch fits the 40 bits `Levels::pack` gives it.
    (0..1 << 40).contains(&epoch).then_some((epoch, named))
}

/// Levels from a record's names: a known feature the record does not name
/// (an older binary wrote it) is at its default; the names this binary
/// does not know come back apart.
fn from_named(epoch: i64, named: Vec<(String, i16)>) -> (Levels, Vec<(String, i16)>) {
    let mut levels = Levels::defaults();
    levels.epoch = epoch;
    let mut others = Vec::new();
    for (name, level) in named {
        match SUPPORTED.iter().position(|f| f.name == name) {
            Some(i) => levels.levels[i] = level.max(0),
            None => others.push((name, level)),
        }
    }
    (levels, others)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(feature: &str, level: i16, kind: i8) -> FeatureUpdateKey {
        let mut u = FeatureUpdateKey::default();
        u.feature = StrBytes::from_string(feature.to_owned());
        u.max_version_level = level;
        u.upgrade_type = kind;
        u
    }

    fn request(updates: Vec<FeatureUpdateKey>) -> UpdateFeaturesRequest {
        let mut r = UpdateFeaturesRequest::default();
        r.feature_updates = updates;
        r
    }

    fn finalized(f: &Features, version: i16) -> (Vec<(String, i16, i16)>, Vec<String>, i64) {
        let mut r = ApiVersionsResponse::default();
        f.report(version, &mut r);
        let supported = r
            .supported_features
            .iter()
            .map(|s| (s.name.to_string(), s.min_version, s.max_version))
            .collect();
        let finalized = r
            .finalized_features
            .iter()
            .map(|k| {
                assert_eq!(k.min_version_level, k.max_version_level);
                format!("{}={}", k.name.as_str(), k.max_version_level)
            })
            .collect();
        (supported, finalized, r.finalized_features_epoch)
    }

    #[test]
    fn api_versions_lists_the_supported_features_from_v4_and_the_finalized_ones_from_v3() {
        let dir = gyre_testkit::scratch_dir("features-report");
        let f = Features::open(&dir).unwrap();
        let (supported, on, epoch) = finalized(&f, 4);
        assert_eq!(
            supported,
            [
                ("group.version".to_owned(), 0, 1),
                ("share.version".to_owned(), 0, 1),
                ("transaction.version".to_owned(), 0, 0),
            ]
        );
        assert_eq!(on, ["group.version=1", "share.version=1"]);
        assert_eq!(epoch, 0);
        // Below v4 a range starting at 0 is left out, as Kafka does.
        let (supported, on, _) = finalized(&f, 3);
        assert!(supported.is_empty());
        assert_eq!(on, ["group.version=1", "share.version=1"]);
        let mut v2 = ApiVersionsResponse::default();
        f.report(2, &mut v2);
        assert_eq!(v2, ApiVersionsResponse::default());
    }

    #[test]
    fn a_downgrade_is_kept_across_a_restart_and_turns_its_requests_away() {
        let dir = gyre_testkit::scratch_dir("features-downgrade");
        let f = Features::open(&dir).unwrap();
        let off = request(vec![update("share.version", 0, SAFE_DOWNGRADE)]);
        let r = f.update(&off, 1, true);
        assert_eq!((r.error_code, r.results.len()), (ec::NONE, 1));
        assert_eq!(r.results[0].error_code, ec::NONE);
        assert!(!f.levels().is_on(SHARE));
        assert!(f.levels().is_on(GROUP));
        assert_eq!(f.levels().epoch, 1);
        let share_fetch = RequestKind::ShareFetch(Default::default());
        assert_eq!(needed_by(&share_fetch), Some(SHARE));
        assert_eq!(needed_by(&RequestKind::Fetch(Default::default())), None);
        drop(f);

        let f = Features::open(&dir).unwrap();
        assert_eq!(finalized(&f, 4).1, ["group.version=1"]);
        assert_eq!(f.levels().epoch, 1);
        let on = request(vec![update("share.version", 1, UPGRADE)]);
        assert_eq!(f.update(&on, 2, true).error_code, ec::NONE);
        drop(f);
        let f = Features::open(&dir).unwrap();
        assert!(f.levels().is_on(SHARE));
        assert_eq!(f.levels().epoch, 2);
    }

    #[test]
    fn every_update_is_checked_before_any_is_made_and_the_first_refusal_names_its_feature() {
        let dir = gyre_testkit::scratch_dir("features-refused");
        let f = Features::open(&dir).unwrap();
        let cases = [
            (
                update("transaction.version", 2, UPGRADE),
                "supports levels 0 to 0",
            ),
            (
                update("kraft.version", 1, UPGRADE),
                "does not support this feature",
            ),
            (update("group.version", 0, UPGRADE), "a downgrade needs"),
            (update("group.version", -1, UNSAFE_DOWNGRADE), "below 0"),
            (update("group.version", 1, 7), "upgrade type 7"),
        ];
        for (bad, why) in cases {
            // A good change beside it is not made either.
            let name = bad.feature.to_string();
            let r = f.update(
                &request(vec![update("share.version", 0, SAFE_DOWNGRADE), bad]),
                1,
                true,
            );
            assert_eq!(r.error_code, ec::INVALID_UPDATE_VERSION, "{name}");
            let message = r.error_message.as_deref().unwrap();
            assert!(
                message.contains(why) && message.contains(&name),
                "{message}"
            );
            // Below v2 every feature's result carries the error.
            assert_eq!(r.results.len(), 2);
            assert!(r
                .results
                .iter()
                .all(|o| o.error_code == ec::INVALID_UPDATE_VERSION));
            assert_eq!(f.levels(), Levels::defaults(), "{name}");
        }
        // Raising a feature with a downgrade type, naming one twice.
        let up = request(vec![update("share.version", 0, SAFE_DOWNGRADE)]);
        assert_eq!(f.update(&up, 1, true).error_code, ec::NONE);
        let r = f.update(
            &request(vec![update("share.version", 1, SAFE_DOWNGRADE)]),
            1,
            true,
        );
        assert!(
            r.error_message.as_deref().unwrap().contains("cannot raise"),
            "{r:?}"
        );
        let twice = request(vec![
            update("share.version", 1, UPGRADE),
            update("share.version", 1, UPGRADE),
        ]);
        assert_eq!(f.update(&twice, 1, true).error_code, ec::INVALID_REQUEST);
        // v2 answers at the top alone.
        let r = f.update(&request(vec![update("kraft.version", 1, UPGRADE)]), 2, true);
        assert_eq!(
            (r.error_code, r.results.len()),
            (ec::INVALID_UPDATE_VERSION, 0)
        );
    }

    #[test]
    fn validate_only_and_unauthorized_updates_change_nothing_and_v0_downgrades_by_its_flag() {
        let dir = gyre_testkit::scratch_dir("features-validate");
        let f = Features::open(&dir).unwrap();
        let mut off = request(vec![update("group.version", 0, SAFE_DOWNGRADE)]);
        off.validate_only = true;
        assert_eq!(f.update(&off, 1, true).error_code, ec::NONE);
        assert_eq!(f.levels(), Levels::defaults());
        off.validate_only = false;
        let r = f.update(&off, 1, false);
        assert_eq!(r.error_code, ec::CLUSTER_AUTHORIZATION_FAILED);
        assert_eq!(f.levels(), Levels::defaults());
        // v0 has no upgrade type: `allow_downgrade` is a safe downgrade.
        let mut v0 = update("group.version", 0, UPGRADE);
        assert_eq!(
            f.update(&request(vec![v0.clone()]), 0, true).error_code,
            ec::INVALID_UPDATE_VERSION
        );
        v0.allow_downgrade = true;
        assert_eq!(f.update(&request(vec![v0]), 0, true).error_code, ec::NONE);
        assert!(!f.levels().is_on(GROUP));
        assert_eq!(
            needed_by(&RequestKind::ConsumerGroupHeartbeat(Default::default())),
            Some(GROUP)
        );
    }

    #[test]
    fn a_newer_binarys_levels_are_served_at_ours_and_its_features_kept_through_our_writes() {
        let dir = gyre_testkit::scratch_dir("features-newer");
        std::fs::create_dir_all(&dir).unwrap();
        let mut levels = Levels::defaults();
        levels.epoch = 9;
        let mut buf = Vec::new();
        let others = [
            ("share.version".to_owned(), 2),
            ("streams.version".to_owned(), 1),
        ];
        // share.version 2 stands in for a level above ours: the record
        // names it after the defaults, so it wins.
        encode(&mut buf, &levels, &others);
        std::fs::write(dir.join("features.log"), &buf).unwrap();
        let f = Features::open(&dir).unwrap();
        assert_eq!(f.levels().level(SHARE), 1);
        assert_eq!(f.levels().epoch, 9);
        let off = request(vec![update("group.version", 0, UNSAFE_DOWNGRADE)]);
        assert_eq!(f.update(&off, 1, true).error_code, ec::NONE);
        drop(f);
        let mut read = Vec::new();
        record_file::open(&dir.join("features.log"), |p| {
            read.push(decode(p).unwrap());
            true
        })
        .unwrap();
        let (epoch, named) = read.pop().unwrap();
        assert_eq!(epoch, 10);
        assert!(
            named.contains(&("streams.version".to_owned(), 1)),
            "{named:?}"
        );
        assert!(
            named.contains(&("group.version".to_owned(), 0)),
            "{named:?}"
        );
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_change_the_disk_refuses_is_not_made_and_the_next_one_writes_the_file_whole() {
        // A folder so named fails each file's first fdatasync (EIO).
        let dir = gyre_testkit::scratch_dir("features-eio").join("gyre-failpoint-fsync");
        let f = Features::open(&dir).unwrap();
        let off = request(vec![update("share.version", 0, SAFE_DOWNGRADE)]);
        let r = f.update(&off, 1, true);
        assert_eq!(r.error_code, ec::KAFKA_STORAGE_ERROR, "{r:?}");
        assert!(
            r.error_message.as_deref().unwrap().contains("features.log"),
            "{r:?}"
        );
        assert_eq!(f.levels(), Levels::defaults(), "not served");
        // The file broke; the next change writes it whole.
        assert_eq!(f.update(&off, 1, true).error_code, ec::NONE);
        drop(f);
        let f = Features::open(&dir).unwrap();
        assert!(!f.levels().is_on(SHARE));
        assert_eq!(
            f.levels().epoch,
            1,
            "the refused change counted for nothing"
        );
    }

    #[test]
    fn the_levels_and_epoch_survive_packing() {
        let mut l = Levels::defaults();
        l.levels = [1, 0, 0];
        l.epoch = (1 << 39) + 5;
        assert_eq!(Levels::unpack(l.pack()), l);
    }
}
