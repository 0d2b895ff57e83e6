//! A group's own configs, as Kafka sets them with
//! IncrementalAlterConfigs on a group resource (`kafka-configs
//! --entity-type groups`, confluent-kafka's `ResourceType.GROUP`): for a
//! share group, where it starts a partition it never read, how long its
//! members hold the records they are given, whether it delivers the
//! records of aborted transactions, and its members' session and
//! heartbeat; for a consumer group (KIP-848), its members' session and
//! heartbeat. A key not set takes the broker's setting.
//!
//! Plain data and functions; uses only the config change type.

use crate::topic_config::ConfigChange;
use std::time::Duration;

/// Where a share-partition's delivery starts when the group first reads
/// it (`share.auto.offset.reset`).
///
/// ```
/// use gyre_broker::share::StartAt;
/// use std::time::Duration;
///
/// let day = StartAt::parse("by_duration:P1DT30M").unwrap();
/// assert_eq!(day, StartAt::ByDuration(Duration::from_secs(24 * 3600 + 1800)));
/// assert_eq!(day.to_string(), "by_duration:PT24H30M");
/// assert_eq!(StartAt::parse("earliest"), Some(StartAt::Earliest));
/// assert_eq!(StartAt::parse("by_duration:-PT1H"), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// At the log's end: only records written from then on (Kafka's
    /// default).
    #[default]
    Latest,
    /// At the log's start.
    Earliest,
    /// At the first record written no longer ago than this (its
    /// timestamp at or after now less the duration), or at the end if
    /// none is (Kafka 4.1's `by_duration:<ISO-8601 duration>`).
    ByDuration(Duration),
}

/// What `share.auto.offset.reset` accepts, for a refusal to say.
pub const START_AT_VALUES: &str =
    "latest, earliest, or by_duration: and an ISO-8601 duration (by_duration:PT1H, by_duration:P7D)";

impl StartAt {
    /// `latest`, `earliest` or `by_duration:` and a non-negative ISO-8601
    /// duration of days, hours, minutes and seconds (`P1DT2H`,
    /// `PT0.5S`), as Java's `Duration.parse` reads it.
    pub fn parse(s: &str) -> Option<StartAt> {
        match s {
            "latest" => Some(StartAt::Latest),
            "earliest" => Some(StartAt::Earliest),
            _ => iso_duration(s.strip_prefix("by_duration:")?).map(StartAt::ByDuration),
        }
    }
}

impl std::fmt::Display for StartAt {
    /// As `share.auto.offset.reset` is written; a duration as Java's
    /// `Duration.toString` writes it (hours, minutes, seconds).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = match self {
            StartAt::Latest => return f.write_str("latest"),
            StartAt::Earliest => return f.write_str("earliest"),
            StartAt::ByDuration(d) => d,
        };
        f.write_str("by_duration:PT")?;
        let secs = d.as_secs();
        let (h, m, s, nanos) = (secs / 3600, secs % 3600 / 60, secs % 60, d.subsec_nanos());
        if h > 0 {
            write!(f, "{h}H")?;
        }
        if m > 0 {
            write!(f, "{m}M")?;
        }
        if s > 0 || nanos > 0 || (h == 0 && m == 0) {
            write!(f, "{s}")?;
            if nanos > 0 {
                let frac = format!("{nanos:09}");
                write!(f, ".{}", frac.trim_end_matches('0'))?;
            }
            f.write_str("S")?;
        }
        Ok(())
    }
}

/// A non-negative ISO-8601 duration `PnDTnHnMn.nS` (each part optional,
/// at least one present; letters in either case).
fn iso_duration(text: &str) -> Option<Duration> {
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((days, time)) => (days, Some(time)),
        None => (rest, None),
    };
    let number = |digits: &str| -> Option<u64> {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse().ok())?
    };
    let mut total = Duration::ZERO;
    let mut parts = 0;
    if !days.is_empty() {
        let n = number(days.strip_suffix('D')?)?;
        total += Duration::from_secs(n.checked_mul(86_400)?);
        parts += 1;
    }
    if let Some(mut time) = time {
        if time.is_empty() {
            return None;
        }
        for (unit, secs) in [('H', 3_600), ('M', 60)] {
            if let Some((n, after)) = time.split_once(unit) {
                total += Duration::from_secs(number(n)?.checked_mul(secs)?);
                time = after;
                parts += 1;
            }
        }
        if !time.is_empty() {
            let s = time.strip_suffix('S')?;
            let (whole, frac) = match s.split_once(['.', ',']) {
                Some((w, f)) if f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => (w, f),
                Some(_) => return None,
                None => (s, ""),
            };
            let nanos = format!("{frac:0<9}").parse::<u32>().ok()?;
            total += Duration::new(number(whole)?, nanos);
            parts += 1;
        }
    }
    (parts > 0).then_some(total)
}

/// `share.auto.offset.reset`.
pub const AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
/// `share.record.lock.duration.ms`.
pub const RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
/// `share.isolation.level`.
pub const ISOLATION_LEVEL: &str = "share.isolation.level";
/// `share.session.timeout.ms`.
pub const SHARE_SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
/// `share.heartbeat.interval.ms`.
pub const SHARE_HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";
/// `consumer.session.timeout.ms`.
pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
/// `consumer.heartbeat.interval.ms`.
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// The keys served, each with a line of documentation, in the order
/// [`GroupConfig::values`] gives them.
pub const KEYS: [(&str, &str); 7] = [
    (
        AUTO_OFFSET_RESET,
        "Where the group starts a partition it never read: latest (records written from then on), earliest, or by_duration:<ISO-8601 duration> (the first record written within it).",
    ),
    (
        RECORD_LOCK_DURATION_MS,
        "How long a member holds the records it was given before they go to another (ms).",
    ),
    (
        ISOLATION_LEVEL,
        "read_uncommitted delivers every record; read_committed only those of committed transactions, and none past an open one.",
    ),
    (
        SHARE_SESSION_TIMEOUT_MS,
        "How long a share group's member may go unheard before it is dropped and its records go back (ms).",
    ),
    (
        SHARE_HEARTBEAT_INTERVAL_MS,
        "How often a share group's members heartbeat (ms); below the session timeout.",
    ),
    (
        CONSUMER_SESSION_TIMEOUT_MS,
        "How long a consumer group's member may go unheard before it is dropped and its partitions go to the others (ms).",
    ),
    (
        CONSUMER_HEARTBEAT_INTERVAL_MS,
        "How often a consumer group's members heartbeat (ms); below the session timeout.",
    ),
];

/// Whether `key` is a number of milliseconds (Kafka's type INT).
pub fn is_int(key: &str) -> bool {
    key.ends_with(".ms")
}

/// The lock durations accepted (ms), as for the broker's setting.
const LOCK_RANGE: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;
/// The session timeouts accepted (ms), as for a classic member's.
const SESSION_RANGE: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;
/// The heartbeat intervals accepted (ms); each also below its session
/// timeout.
const HEARTBEAT_RANGE: std::ops::RangeInclusive<u64> = 100..=3_600_000;

/// The broker's settings a group's configs fall back to.
///
/// ```
/// use gyre_broker::share::group_config::GroupDefaults;
///
/// let d = GroupDefaults::default();
/// assert_eq!((d.share_session_ms, d.share_heartbeat_ms), (45_000, 5_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupDefaults {
    /// `--share-auto-offset-reset`.
    pub start_at: StartAt,
    /// `--group-share-record-lock-duration-ms`.
    pub lock_ms: u64,
    /// `--group-share-session-timeout-ms`.
    pub share_session_ms: u64,
    /// `--group-share-heartbeat-interval-ms`.
    pub share_heartbeat_ms: u64,
    /// `--group-consumer-session-timeout-ms`.
    pub consumer_session_ms: u64,
    /// `--group-consumer-heartbeat-interval-ms`.
    pub consumer_heartbeat_ms: u64,
}

impl Default for GroupDefaults {
    /// Kafka's.
    fn default() -> Self {
        GroupDefaults {
            start_at: StartAt::Latest,
            lock_ms: 30_000,
            share_session_ms: 45_000,
            share_heartbeat_ms: 5_000,
            consumer_session_ms: 45_000,
            consumer_heartbeat_ms: 5_000,
        }
    }
}

/// Why a group's configs were not altered.
#[derive(Debug, thiserror::Error)]
pub enum AlterError {
    /// A key or value the broker does not take (Kafka's
    /// `INVALID_CONFIG`).
    #[error("invalid group config {}={}: {}", .0.key, .0.value, .0.reason)]
    Refused(Refused),
    /// The configs could not be written and synced (Kafka's
    /// `KAFKA_STORAGE_ERROR`); they are as they were.
    #[error("cannot write the group's configs: {0}")]
    NotWritten(std::io::Error),
}

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

/// A group's configs; `None`: the broker's setting.
///
/// ```
/// use gyre_broker::share::group_config::{GroupConfig, GroupDefaults};
/// use gyre_broker::share::StartAt;
/// use gyre_broker::topic_config::ConfigChange;
///
/// let broker = GroupDefaults::default();
/// let mut c = GroupConfig::default();
/// c.apply(&[ConfigChange::Set("share.auto.offset.reset".into(), "earliest".into())], &broker)
///     .unwrap();
/// assert_eq!(c.start_at, Some(StartAt::Earliest));
/// assert!(c.apply(&[ConfigChange::Set("share.isolation.level".into(), "none".into())], &broker).is_err());
/// // A heartbeat no shorter than the session it keeps is refused.
/// let slow = ConfigChange::Set("consumer.heartbeat.interval.ms".into(), "45000".into());
/// assert!(c.apply(&[slow], &broker).is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupConfig {
    /// `share.auto.offset.reset`.
    pub start_at: Option<StartAt>,
    /// `share.record.lock.duration.ms`.
    pub lock_ms: Option<u64>,
    /// `share.isolation.level`: `true` for read_committed.
    pub read_committed: Option<bool>,
    /// `share.session.timeout.ms`.
    pub share_session_ms: Option<u64>,
    /// `share.heartbeat.interval.ms`.
    pub share_heartbeat_ms: Option<u64>,
    /// `consumer.session.timeout.ms`.
    pub consumer_session_ms: Option<u64>,
    /// `consumer.heartbeat.interval.ms`.
    pub consumer_heartbeat_ms: Option<u64>,
}

/// A number of ms within `range`, or `None` for a deleted key.
fn ms_in(
    value: Option<&str>,
    range: &std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, String> {
    match value {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if range.contains(&ms) => Ok(Some(ms)),
            _ => Err(format!(
                "a number of ms from {} to {}",
                range.start(),
                range.end()
            )),
        },
    }
}

impl GroupConfig {
    /// A share group's members' session timeout and heartbeat interval.
    pub fn share_timing(&self, broker: &GroupDefaults) -> (Duration, Duration) {
        (
            Duration::from_millis(self.share_session_ms.unwrap_or(broker.share_session_ms)),
            Duration::from_millis(self.share_heartbeat_ms.unwrap_or(broker.share_heartbeat_ms)),
        )
    }

    /// A consumer group's members' session timeout and heartbeat
    /// interval.
    pub fn consumer_timing(&self, broker: &GroupDefaults) -> (Duration, Duration) {
        (
            Duration::from_millis(
                self.consumer_session_ms
                    .unwrap_or(broker.consumer_session_ms),
            ),
            Duration::from_millis(
                self.consumer_heartbeat_ms
                    .unwrap_or(broker.consumer_heartbeat_ms),
            ),
        )
    }

    /// Applies `changes` in order, on top of the `broker`'s settings; on
    /// a refusal nothing is changed. A heartbeat interval must stay below
    /// its session timeout, as Kafka requires.
    pub fn apply(
        &mut self,
        changes: &[ConfigChange],
        broker: &GroupDefaults,
    ) -> Result<(), Refused> {
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
                        Some(v) => match StartAt::parse(v) {
                            Some(at) => Some(at),
                            None => return Err(refused(START_AT_VALUES)),
                        },
                    }
                }
                RECORD_LOCK_DURATION_MS => {
                    next.lock_ms = ms_in(value, &LOCK_RANGE).map_err(|r| refused(&r))?
                }
                SHARE_SESSION_TIMEOUT_MS => {
                    next.share_session_ms = ms_in(value, &SESSION_RANGE).map_err(|r| refused(&r))?
                }
                SHARE_HEARTBEAT_INTERVAL_MS => {
                    next.share_heartbeat_ms =
                        ms_in(value, &HEARTBEAT_RANGE).map_err(|r| refused(&r))?
                }
                CONSUMER_SESSION_TIMEOUT_MS => {
                    next.consumer_session_ms =
                        ms_in(value, &SESSION_RANGE).map_err(|r| refused(&r))?
                }
                CONSUMER_HEARTBEAT_INTERVAL_MS => {
                    next.consumer_heartbeat_ms =
                        ms_in(value, &HEARTBEAT_RANGE).map_err(|r| refused(&r))?
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
                        "not a group config the broker serves ({})",
                        KEYS.map(|k| k.0).join(", ")
                    )))
                }
            }
        }
        let timings = [
            (
                next.share_timing(broker),
                SHARE_SESSION_TIMEOUT_MS,
                SHARE_HEARTBEAT_INTERVAL_MS,
                next.share_session_ms,
            ),
            (
                next.consumer_timing(broker),
                CONSUMER_SESSION_TIMEOUT_MS,
                CONSUMER_HEARTBEAT_INTERVAL_MS,
                next.consumer_session_ms,
            ),
        ];
        for ((session, heartbeat), session_key, heartbeat_key, set) in timings {
            if session <= heartbeat {
                return Err(Refused {
                    key: session_key.to_owned(),
                    value: set.map_or_else(String::new, |ms| ms.to_string()),
                    reason: format!("{session_key} must be greater than {heartbeat_key}"),
                });
            }
        }
        *self = next;
        Ok(())
    }

    /// Each key's value in [`KEYS`] order, given the `broker`'s
    /// settings, and whether the group set it.
    pub fn values(&self, broker: &GroupDefaults) -> [(&'static str, String, bool); 7] {
        let ms = |key: &'static str, own: Option<u64>, broker: u64| {
            (key, own.unwrap_or(broker).to_string(), own.is_some())
        };
        let (start_at, lock_ms) = (broker.start_at, broker.lock_ms);
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
                self.start_at.unwrap_or(start_at).to_string(),
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
            ms(
                SHARE_SESSION_TIMEOUT_MS,
                self.share_session_ms,
                broker.share_session_ms,
            ),
            ms(
                SHARE_HEARTBEAT_INTERVAL_MS,
                self.share_heartbeat_ms,
                broker.share_heartbeat_ms,
            ),
            ms(
                CONSUMER_SESSION_TIMEOUT_MS,
                self.consumer_session_ms,
                broker.consumer_session_ms,
            ),
            ms(
                CONSUMER_HEARTBEAT_INTERVAL_MS,
                self.consumer_heartbeat_ms,
                broker.consumer_heartbeat_ms,
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
        let broker = GroupDefaults::default();
        let mut c = GroupConfig::default();
        c.apply(&[set(RECORD_LOCK_DURATION_MS, "5000")], &broker)
            .unwrap();
        let before = c;
        let r = c.apply(
            &[
                set(AUTO_OFFSET_RESET, "earliest"),
                set(RECORD_LOCK_DURATION_MS, "10"),
            ],
            &broker,
        );
        assert_eq!(r.unwrap_err().key, RECORD_LOCK_DURATION_MS);
        assert_eq!(c, before);
        assert!(c
            .apply(&[set(CONSUMER_SESSION_TIMEOUT_MS, "1")], &broker)
            .is_err());
        assert!(c
            .apply(&[set("consumer.assignor", "range")], &broker)
            .is_err());
        c.apply(
            &[ConfigChange::Delete(RECORD_LOCK_DURATION_MS.into())],
            &broker,
        )
        .unwrap();
        assert!(c.is_default());
    }

    #[test]
    fn a_heartbeat_must_stay_below_its_session_whoever_set_either() {
        let broker = GroupDefaults::default();
        let mut c = GroupConfig::default();
        // Below the broker's 45 s session: taken.
        c.apply(&[set(SHARE_HEARTBEAT_INTERVAL_MS, "2000")], &broker)
            .unwrap();
        // A session at or below the group's own heartbeat: refused.
        let r = c.apply(&[set(SHARE_SESSION_TIMEOUT_MS, "2000")], &broker);
        let refused = r.unwrap_err();
        assert_eq!(refused.key, SHARE_SESSION_TIMEOUT_MS);
        assert!(refused.reason.contains("must be greater than"));
        // Both in one request, in either order: taken.
        c.apply(
            &[
                set(CONSUMER_HEARTBEAT_INTERVAL_MS, "1000"),
                set(CONSUMER_SESSION_TIMEOUT_MS, "3000"),
            ],
            &broker,
        )
        .unwrap();
        assert_eq!(
            c.consumer_timing(&broker),
            (Duration::from_secs(3), Duration::from_secs(1))
        );
        assert_eq!(
            c.share_timing(&broker),
            (Duration::from_secs(45), Duration::from_secs(2))
        );
        // Deleting the session falls back to the broker's 45 s: still above.
        c.apply(
            &[ConfigChange::Delete(CONSUMER_SESSION_TIMEOUT_MS.into())],
            &broker,
        )
        .unwrap();
        // A broker whose own session is short: the group's heartbeat must
        // stay below it.
        let short = GroupDefaults {
            consumer_session_ms: 1_000,
            ..broker
        };
        assert!(c.apply(&[], &short).is_err());
    }

    #[test]
    fn durations_read_as_java_reads_them() {
        let at = |s: &str| StartAt::parse(&format!("by_duration:{s}"));
        let secs = |n: u64| Some(StartAt::ByDuration(Duration::from_secs(n)));
        assert_eq!(at("PT1H"), secs(3_600));
        assert_eq!(at("pt15m"), secs(900));
        assert_eq!(at("P2D"), secs(2 * 86_400));
        assert_eq!(at("P1DT1H1M1S"), secs(90_061));
        assert_eq!(
            at("PT0.25S"),
            Some(StartAt::ByDuration(Duration::from_millis(250)))
        );
        assert_eq!(at("PT0S"), secs(0));
        for bad in [
            "",
            "P",
            "PT",
            "1H",
            "PT1",
            "PT-1H",
            "-PT1H",
            "P1H",
            "PT1H2D",
            "PT1.1234567891S",
            "PTxS",
        ] {
            assert_eq!(at(bad), None, "{bad}");
        }
        assert_eq!(StartAt::parse("by_duration"), None);
        assert_eq!(StartAt::parse("Latest"), None);
        for text in ["PT1H", "PT1H0.5S", "PT0S", "PT24H30M", "PT2M3S"] {
            let parsed = at(text).unwrap();
            assert_eq!(parsed.to_string(), format!("by_duration:{text}"));
        }
    }

    #[test]
    fn values_fall_back_to_the_brokers() {
        let c = GroupConfig {
            read_committed: Some(true),
            consumer_session_ms: Some(10_000),
            ..GroupConfig::default()
        };
        let broker = GroupDefaults {
            start_at: StartAt::Earliest,
            ..GroupDefaults::default()
        };
        let v = c.values(&broker);
        assert_eq!(v[0], (AUTO_OFFSET_RESET, "earliest".into(), false));
        assert_eq!(v[1], (RECORD_LOCK_DURATION_MS, "30000".into(), false));
        assert_eq!(v[2], (ISOLATION_LEVEL, "read_committed".into(), true));
        assert_eq!(v[3], (SHARE_SESSION_TIMEOUT_MS, "45000".into(), false));
        assert_eq!(v[5], (CONSUMER_SESSION_TIMEOUT_MS, "10000".into(), true));
        for (value, key) in v.iter().zip(KEYS) {
            assert_eq!(value.0, key.0, "in the order of KEYS");
        }
    }
}
