//! A share group's own configs, as Kafka sets them with
//! IncrementalAlterConfigs on a group resource (`kafka-configs
//! --entity-type groups`, confluent-kafka's `ResourceType.GROUP`): where
//! the group starts a partition it never read, how long its members hold
//! the records they are given, and whether it delivers the records of
//! aborted transactions. A key not set takes the broker's setting.
//!
//! Plain data and functions; uses only the config change type.

use crate::topic_config::ConfigChange;

/// Where a share-partition's delivery starts when the group first reads
/// it (`share.auto.offset.reset`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// At the log's end: only records written from then on (Kafka's
    /// default).
    #[default]
    Latest,
    /// At the log's start.
    Earliest,
}

/// `share.auto.offset.reset`.
pub const AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
/// `share.record.lock.duration.ms`.
pub const RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
/// `share.isolation.level`.
pub const ISOLATION_LEVEL: &str = "share.isolation.level";

/// The keys served, each with Kafka's type name and a line of
/// documentation.
pub const KEYS: [(&str, &str); 3] = [
    (
        AUTO_OFFSET_RESET,
        "Where the group starts a partition it never read: latest (records written from then on) or earliest.",
    ),
    (
        RECORD_LOCK_DURATION_MS,
        "How long a member holds the records it was given before they go to another (ms).",
    ),
    (
        ISOLATION_LEVEL,
        "read_uncommitted delivers every record; read_committed only those of committed transactions, and none past an open one.",
    ),
];

/// The lock durations accepted (ms), as for the broker's setting.
const LOCK_RANGE: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;

/// Why a change was refused: the key, the value and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Why, naming what is accepted.
    pub reason: String,
}

/// A share group's configs; `None`: the broker's setting.
///
/// ```
/// use gyre_broker::share::group_config::GroupConfig;
/// use gyre_broker::share::StartAt;
/// use gyre_broker::topic_config::ConfigChange;
///
/// let mut c = GroupConfig::default();
/// c.apply(&[ConfigChange::Set("share.auto.offset.reset".into(), "earliest".into())])
///     .unwrap();
/// assert_eq!(c.start_at, Some(StartAt::Earliest));
/// assert!(c.apply(&[ConfigChange::Set("share.isolation.level".into(), "none".into())]).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupConfig {
    /// `share.auto.offset.reset`.
    pub start_at: Option<StartAt>,
    /// `share.record.lock.duration.ms`.
    pub lock_ms: Option<u64>,
    /// `share.isolation.level`: `true` for read_committed.
    pub read_committed: Option<bool>,
}

impl GroupConfig {
    /// Applies `changes` in order; on a refusal nothing is changed.
    pub fn apply(&mut self, changes: &[ConfigChange]) -> Result<(), Refused> {
        let mut next = *self;
        for change in changes {
            let (key, value) = match change {
                ConfigChange::Set(k, v) => (k.as_str(), Some(v.as_str())),
                ConfigChange::Delete(k) => (k.as_str(), None),
            };
            let refused = |reason: &str| Refused {
                key: key.to_owned(),
                value: value.unwrap_or_default().to_owned(),
                reason: reason.to_owned(),
            };
            match key {
                AUTO_OFFSET_RESET => {
                    next.start_at = match value {
                        None => None,
                        Some("latest") => Some(StartAt::Latest),
                        Some("earliest") => Some(StartAt::Earliest),
                        Some(_) => return Err(refused("one of latest, earliest")),
                    }
                }
                RECORD_LOCK_DURATION_MS => {
                    next.lock_ms = match value {
                        None => None,
                        Some(v) => match v.parse::<u64>() {
                            Ok(ms) if LOCK_RANGE.contains(&ms) => Some(ms),
                            _ => return Err(refused("a number of ms from 1000 to 3600000")),
                        },
                    }
                }
                ISOLATION_LEVEL => {
                    next.read_committed = match value {
                        None => None,
                        Some("read_uncommitted") => Some(false),
                        Some("read_committed") => Some(true),
                        Some(_) => return Err(refused("read_uncommitted or read_committed")),
                    }
                }
                _ => {
                    return Err(refused(&format!(
                        "not a share group config the broker serves ({})",
                        KEYS.map(|k| k.0).join(", ")
                    )))
                }
            }
        }
        *self = next;
        Ok(())
    }

    /// Each key's value, given the broker's start rule and lock (ms), and
    /// whether the group set it.
    pub fn values(&self, start_at: StartAt, lock_ms: u64) -> [(&'static str, String, bool); 3] {
        let start = |s: StartAt| match s {
            StartAt::Latest => "latest",
            StartAt::Earliest => "earliest",
        };
        let isolation = |c: bool| {
            if c {
                "read_committed"
            } else {
                "read_uncommitted"
            }
        };
        [
            (
                AUTO_OFFSET_RESET,
                start(self.start_at.unwrap_or(start_at)).to_owned(),
                self.start_at.is_some(),
            ),
            (
                RECORD_LOCK_DURATION_MS,
                self.lock_ms.unwrap_or(lock_ms).to_string(),
                self.lock_ms.is_some(),
            ),
            (
                ISOLATION_LEVEL,
                isolation(self.read_committed.unwrap_or(false)).to_owned(),
                self.read_committed.is_some(),
            ),
        ]
    }

    /// Whether every key takes the broker's setting.
    pub fn is_default(&self) -> bool {
        *self == GroupConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: &str, v: &str) -> ConfigChange {
        ConfigChange::Set(k.into(), v.into())
    }

    #[test]
    fn a_refused_change_leaves_every_key_as_it_was() {
        let mut c = GroupConfig::default();
        c.apply(&[set(RECORD_LOCK_DURATION_MS, "5000")]).unwrap();
        let before = c;
        let r = c.apply(&[
            set(AUTO_OFFSET_RESET, "earliest"),
            set(RECORD_LOCK_DURATION_MS, "10"),
        ]);
        assert_eq!(r.unwrap_err().key, RECORD_LOCK_DURATION_MS);
        assert_eq!(c, before);
        assert!(c.apply(&[set("consumer.session.timeout.ms", "1")]).is_err());
        c.apply(&[ConfigChange::Delete(RECORD_LOCK_DURATION_MS.into())])
            .unwrap();
        assert!(c.is_default());
    }

    #[test]
    fn values_fall_back_to_the_brokers() {
        let c = GroupConfig {
            read_committed: Some(true),
            ..GroupConfig::default()
        };
        let v = c.values(StartAt::Earliest, 30_000);
        assert_eq!(v[0], (AUTO_OFFSET_RESET, "earliest".into(), false));
        assert_eq!(v[1], (RECORD_LOCK_DURATION_MS, "30000".into(), false));
        assert_eq!(v[2], (ISOLATION_LEVEL, "read_committed".into(), true));
    }
}
