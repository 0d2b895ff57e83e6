//! The topic catalog: which topics exist, their partitions' broker-wide
//! ids, and their log settings.
//!
//! The log writer is the only thread that changes it (it creates and
//! deletes the logs too); the reactor loops read it to route requests. A
//! topic's entry appears only once its logs are open on the writer, so a
//! produce routed through the catalog always finds its partition, and it
//! disappears before its logs are removed, so a produce racing a delete
//! gets `UNKNOWN_TOPIC_OR_PARTITION`.

use crate::log::LogConfig;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, RwLock};
pub use uuid::Uuid;

/// The broker's number for a topic partition, unique for the broker's
/// lifetime (never reused after a topic is deleted).
pub type PartitionId = u32;

/// One topic.
#[derive(Debug)]
pub struct Topic {
    /// Its name.
    pub name: String,
    /// Its id (random, kept for the topic's life, never the nil id that
    /// means "none" on the wire): newer clients name topics by id
    /// (Metadata v10+, Fetch v13+), so a topic deleted and created again
    /// under the same name is told apart.
    pub id: Uuid,
    /// Broker-wide ids of its partitions, by partition index.
    pub partitions: Vec<PartitionId>,
    /// Its log settings.
    pub config: LogConfig,
}

impl Topic {
    /// The id of partition `index`, if it exists.
    pub fn partition(&self, index: i32) -> Option<PartitionId> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i).copied())
    }
}

/// A new topic id: random, never nil.
pub fn new_topic_id() -> Uuid {
    loop {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        if !id.is_nil() {
            return id;
        }
    }
}

/// The catalog's two indexes of the same topics.
#[derive(Debug, Default)]
struct Maps {
    by_name: HashMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, Arc<Topic>>,
    /// Bumped at every change, so a reader can tell its copy is current.
    version: u64,
}

/// Every topic, by name and by id.
#[derive(Debug, Default)]
pub struct Catalog {
    topics: RwLock<Maps>,
    /// Every partition's leader epoch (one per start of the broker).
    leader_epoch: AtomicI32,
}

impl Catalog {
    /// The leader epoch of every partition: Metadata answers it, and
    /// requests naming an older one are fenced.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Relaxed)
    }

    pub(crate) fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Relaxed);
    }

    /// The topic called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.read().by_name.get(name).cloned()
    }

    /// Whether topic `name` exists and has a partition `partition`.
    pub fn has_partition(&self, name: &str, partition: i32) -> bool {
        self.read()
            .by_name
            .get(name)
            .is_some_and(|t| t.partition(partition).is_some())
    }

    /// The topic whose id is `id`.
    pub fn by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read().by_id.get(id).cloned()
    }

    /// A number that changes whenever a topic is created, deleted or
    /// changed (grown): a copy of [`all`](Self::all) taken at the same
    /// version is current.
    pub fn version(&self) -> u64 {
        self.read().version
    }

    /// Every topic, sorted by name.
    pub fn all(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self.read().by_name.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    pub(crate) fn insert(&self, topic: Arc<Topic>) {
        let mut maps = self.write();
        maps.version += 1;
        if let Some(old) = maps.by_name.insert(topic.name.clone(), topic.clone()) {
            maps.by_id.remove(&old.id);
        }
        maps.by_id.insert(topic.id, topic);
    }

    pub(crate) fn remove(&self, name: &str) -> Option<Arc<Topic>> {
        let mut maps = self.write();
        let topic = maps.by_name.remove(name)?;
        maps.version += 1;
        maps.by_id.remove(&topic.id);
        Some(topic)
    }

    // A panic while holding the lock cannot leave the maps disagreeing
    // (no step between their updates can panic), so a poisoned lock is
    // used.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.topics.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps> {
        self.topics.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a topic name or setting was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Not 1..=249 characters of `[a-zA-Z0-9._-]`, or `.` / `..`.
    #[error("illegal topic name {0:?}: use 1 to 249 of a-z A-Z 0-9 . _ -")]
    InvalidName(String),
    /// The topic exists already.
    #[error("topic {0:?} already exists")]
    Exists(String),
    /// No such topic.
    #[error("topic {0:?} does not exist")]
    Unknown(String),
    /// A partition count below one (or absurdly high).
    #[error("invalid partition count {0}")]
    InvalidPartitions(i32),
    /// A config key the broker does not know, or a value it cannot parse
    /// or does not honour.
    #[error("invalid topic config {key}={value}: {reason}")]
    InvalidConfig {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Why, naming what the broker accepts.
        reason: String,
    },
    /// A partition count that would not grow the topic.
    #[error("topic {topic:?} has {current} partitions: it can only grow, not to {requested}")]
    NotGrown {
        /// The topic.
        topic: String,
        /// Its partitions now.
        current: usize,
        /// The count asked for.
        requested: i32,
    },
    /// The file system failed.
    #[error("storage error: {0}")]
    Storage(String),
}

impl TopicError {
    /// Kafka's error code for this failure.
    pub fn code(&self) -> i16 {
        use crate::protocol::error_code as ec;
        match self {
            TopicError::InvalidName(_) => ec::INVALID_TOPIC_EXCEPTION,
            TopicError::Exists(_) => ec::TOPIC_ALREADY_EXISTS,
            TopicError::Unknown(_) => ec::UNKNOWN_TOPIC_OR_PARTITION,
            TopicError::InvalidPartitions(_) | TopicError::NotGrown { .. } => {
                ec::INVALID_PARTITIONS
            }
            TopicError::InvalidConfig { .. } => ec::INVALID_CONFIG,
            TopicError::Storage(_) => ec::KAFKA_STORAGE_ERROR,
        }
    }
}

/// Checks a topic name as Kafka does.
pub fn validate_name(name: &str) -> Result<(), TopicError> {
    if !is_valid_name(name) {
        return Err(TopicError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// Whether `name` may name a topic: 1 to 249 of `a-z A-Z 0-9 . _ -`, and
/// not `.` or `..` (Kafka's rule).
pub fn is_valid_name(name: &str) -> bool {
    let legal = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-');
    !name.is_empty() && name.len() <= 249 && name != "." && name != ".." && name.bytes().all(legal)
}

/// The most partitions one topic may have.
pub const MAX_PARTITIONS: i32 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_moves_the_version_on() {
        let catalog = Catalog::default();
        let v0 = catalog.version();
        let topic = |partitions| {
            Arc::new(Topic {
                name: "t".into(),
                id: new_topic_id(),
                partitions,
                config: LogConfig::default(),
            })
        };
        catalog.insert(topic(vec![0]));
        let v1 = catalog.version();
        catalog.insert(topic(vec![0, 1]));
        let v2 = catalog.version();
        assert!(catalog.remove("nope").is_none());
        assert_eq!(catalog.version(), v2, "nothing removed, nothing changed");
        catalog.remove("t");
        assert!(v0 < v1 && v1 < v2 && v2 < catalog.version());
    }

    #[test]
    fn names_follow_kafkas_rules() {
        for ok in ["a", "orders.v2", "A_b-c", &"x".repeat(249)] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(250)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
