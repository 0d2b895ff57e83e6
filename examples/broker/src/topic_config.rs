//! Kafka's topic configs as this broker reads them: the ones it honours
//! (stored in each topic's properties file and applied to its logs), and
//! the ones it accepts only at the value it always runs with.
//!
//! Tools and applications create topics with configs such as
//! `compression.type=producer` or `min.insync.replicas=1` spelled out. On
//! one broker those are what happens anyway, so they are accepted (and
//! not stored: there is nothing to change); any other value is refused
//! with `INVALID_CONFIG` saying what the broker does instead, never
//! silently ignored. Uses the log's settings and the catalog's error
//! type.

use crate::log::{Cleanup, LogConfig};
use crate::topics::TopicError;
use std::time::Duration;

/// The topic configs [`apply_config`] honours.
pub const CONFIG_KEYS: [&str; 11] = [
    "segment.bytes",
    "segment.ms",
    "retention.bytes",
    "retention.ms",
    "max.message.bytes",
    "message.timestamp.type",
    "cleanup.policy",
    "delete.retention.ms",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "max.compaction.lag.ms",
];

/// `message.timestamp.type`'s two values.
const TIMESTAMP_TYPES: [&str; 2] = ["CreateTime", "LogAppendTime"];

/// A topic config the broker runs at one setting.
#[derive(Debug)]
pub struct Fixed {
    /// Kafka's name for it.
    pub key: &'static str,
    /// The values accepted, the first the one described.
    pub values: &'static [&'static str],
    /// What the broker does, said to a client that asks for otherwise.
    pub doc: &'static str,
}

/// The configs accepted only at the broker's own setting.
pub const FIXED: &[Fixed] = &[
    Fixed {
        key: "compression.type",
        values: &["producer"],
        doc: "batches are kept as the producer compressed them",
    },
    Fixed {
        key: "min.insync.replicas",
        values: &["1"],
        doc: "one broker holds the only replica",
    },
    Fixed {
        key: "unclean.leader.election.enable",
        values: &["false", "true"],
        doc: "one broker holds the only replica: there is no election",
    },
];

fn invalid(key: &str, value: &str, reason: String) -> TopicError {
    TopicError::InvalidConfig {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    }
}

/// Why `key` is not a config the broker knows.
fn unknown(key: &str, value: &str) -> TopicError {
    let fixed: Vec<String> = FIXED
        .iter()
        .map(|f| format!("{}={}", f.key, f.values.join("|")))
        .collect();
    invalid(
        key,
        value,
        format!(
            "this broker honours {} and accepts {}",
            CONFIG_KEYS.join(", "),
            fixed.join(", ")
        ),
    )
}

/// Applies one Kafka topic config to `config`: a config in
/// [`CONFIG_KEYS`] (-1 meaning unlimited where Kafka allows it), or one of
/// [`FIXED`] at a value it accepts (which changes nothing).
pub fn apply_config(config: &mut LogConfig, key: &str, value: &str) -> Result<(), TopicError> {
    if let Some(fixed) = FIXED.iter().find(|f| f.key == key) {
        if fixed.values.contains(&value.trim()) {
            return Ok(());
        }
        return Err(invalid(
            key,
            value,
            format!("{}, so {key} is {}", fixed.doc, fixed.values.join(" or ")),
        ));
    }
    if !CONFIG_KEYS.contains(&key) {
        return Err(unknown(key, value));
    }
    match key {
        "cleanup.policy" => {
            config.cleanup = parse_cleanup(value)
                .ok_or_else(|| invalid(key, value, "a list of delete and compact".into()))?;
            return Ok(());
        }
        "min.cleanable.dirty.ratio" => {
            config.min_cleanable_dirty_ratio = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| invalid(key, value, "a number from 0 to 1".into()))?;
            return Ok(());
        }
        _ => {}
    }
    if key == "message.timestamp.type" {
        config.log_append_time = match value.trim() {
            "CreateTime" => false,
            "LogAppendTime" => true,
            _ => {
                let one_of = format!("one of {}", TIMESTAMP_TYPES.join(", "));
                return Err(invalid(key, value, one_of));
            }
        };
        return Ok(());
    }
    let number: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid(key, value, "not a whole number".into()))?;
    // The least value Kafka allows for each; -1 means unlimited.
    let least = match key {
        "segment.bytes" => 1024,
        "segment.ms" | "max.compaction.lag.ms" => 1,
        "retention.bytes" | "retention.ms" => -1,
        _ => 0,
    };
    if number < least {
        let reason = format!("the least it may be is {least}");
        return Err(invalid(key, value, reason));
    }
    let limit = (number >= 0).then_some(number as u64);
    match key {
        "segment.bytes" => config.segment_bytes = number as u64,
        "segment.ms" => config.segment_age = Some(Duration::from_millis(number as u64)),
        "retention.bytes" => config.retention_bytes = limit,
        "retention.ms" => config.retention_age = limit.map(Duration::from_millis),
        "delete.retention.ms" => config.delete_retention = Duration::from_millis(number as u64),
        "min.compaction.lag.ms" => config.min_compaction_lag = Duration::from_millis(number as u64),
        // Kafka's default, the largest long, means never.
        "max.compaction.lag.ms" => {
            config.max_compaction_lag =
                (number < i64::MAX).then(|| Duration::from_millis(number as u64))
        }
        _ => config.max_message_bytes = number as u64,
    }
    Ok(())
}

/// Kafka's `cleanup.policy` list: `delete`, `compact`, or both (either
/// order, spaces allowed); `None` for anything else.
fn parse_cleanup(value: &str) -> Option<Cleanup> {
    let mut policy = Cleanup {
        delete: false,
        compact: false,
    };
    for word in value.split(',').map(str::trim) {
        match word {
            "delete" => policy.delete = true,
            "compact" => policy.compact = true,
            _ => return None,
        }
    }
    Some(policy)
}

/// The partition count and config a new topic asks for, checked: `-1`
/// partitions takes `default_partitions` (KIP-464; any other count below
/// one is refused, as Kafka refuses it), and each config in turn applies
/// over the broker's `defaults`. Creating a topic and a validate-only
/// CreateTopics both ask this, so the two refuse alike.
pub fn planned(
    partitions: i32,
    configs: &[(String, String)],
    defaults: &LogConfig,
    default_partitions: i32,
) -> Result<(i32, LogConfig), TopicError> {
    let partitions = if partitions == -1 {
        default_partitions
    } else {
        partitions
    };
    if !(1..=crate::topics::MAX_PARTITIONS).contains(&partitions) {
        return Err(TopicError::InvalidPartitions(partitions));
    }
    let mut config = defaults.clone();
    for (key, value) in configs {
        apply_config(&mut config, key, value)?;
    }
    Ok((partitions, config))
}

/// Puts `key` back to its value in `defaults` (an altered config's
/// DELETE; for a [`FIXED`] config, nothing to do).
pub fn reset_config(
    config: &mut LogConfig,
    key: &str,
    defaults: &LogConfig,
) -> Result<(), TopicError> {
    match key {
        "segment.bytes" => config.segment_bytes = defaults.segment_bytes,
        "segment.ms" => config.segment_age = defaults.segment_age,
        "retention.bytes" => config.retention_bytes = defaults.retention_bytes,
        "retention.ms" => config.retention_age = defaults.retention_age,
        "max.message.bytes" => config.max_message_bytes = defaults.max_message_bytes,
        "message.timestamp.type" => config.log_append_time = defaults.log_append_time,
        "cleanup.policy" => config.cleanup = defaults.cleanup,
        "delete.retention.ms" => config.delete_retention = defaults.delete_retention,
        "min.cleanable.dirty.ratio" => {
            config.min_cleanable_dirty_ratio = defaults.min_cleanable_dirty_ratio
        }
        "min.compaction.lag.ms" => config.min_compaction_lag = defaults.min_compaction_lag,
        "max.compaction.lag.ms" => config.max_compaction_lag = defaults.max_compaction_lag,
        _ if FIXED.iter().any(|f| f.key == key) => {}
        _ => return Err(unknown(key, "")),
    }
    Ok(())
}

/// `config`'s `message.timestamp.type`.
pub fn timestamp_type(config: &LogConfig) -> &'static str {
    TIMESTAMP_TYPES[usize::from(config.log_append_time)]
}

/// One change of an AlterConfigs or IncrementalAlterConfigs request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    /// Set the key to this value.
    Set(String, String),
    /// Put the key back to the broker's default.
    Delete(String),
}

/// `config` as the lines of a topic's properties file (the keys
/// [`apply_config`] reads).
pub fn config_lines(partitions: usize, config: &LogConfig) -> String {
    let or_unlimited = |v: Option<u64>| v.map_or(-1, |v| v as i64);
    let mut s = format!(
        "partitions={partitions}\nsegment.bytes={}\nretention.bytes={}\nretention.ms={}\nmax.message.bytes={}\nmessage.timestamp.type={}\ncleanup.policy={}\ndelete.retention.ms={}\nmin.cleanable.dirty.ratio={}\nmin.compaction.lag.ms={}\n",
        config.segment_bytes,
        or_unlimited(config.retention_bytes),
        or_unlimited(config.retention_age.map(|d| d.as_millis() as u64)),
        config.max_message_bytes,
        timestamp_type(config),
        config.cleanup,
        config.delete_retention.as_millis(),
        config.min_cleanable_dirty_ratio,
        config.min_compaction_lag.as_millis(),
    );
    if let Some(age) = config.segment_age {
        s.push_str(&format!("segment.ms={}\n", age.as_millis()));
    }
    if let Some(lag) = config.max_compaction_lag {
        s.push_str(&format!("max.compaction.lag.ms={}\n", lag.as_millis()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_round_trip_through_the_properties_lines() {
        let mut c = LogConfig::default();
        apply_config(&mut c, "retention.ms", "-1").unwrap();
        apply_config(&mut c, "retention.bytes", "5000").unwrap();
        apply_config(&mut c, "segment.bytes", "4096").unwrap();
        apply_config(&mut c, "segment.ms", "60000").unwrap();
        apply_config(&mut c, "max.message.bytes", "5242880").unwrap();
        apply_config(&mut c, "message.timestamp.type", "LogAppendTime").unwrap();
        apply_config(&mut c, "cleanup.policy", "delete, compact").unwrap();
        apply_config(&mut c, "delete.retention.ms", "0").unwrap();
        apply_config(&mut c, "min.cleanable.dirty.ratio", "0.01").unwrap();
        apply_config(&mut c, "min.compaction.lag.ms", "2500").unwrap();
        apply_config(&mut c, "max.compaction.lag.ms", "86400000").unwrap();
        assert!(apply_config(&mut c, "max.compaction.lag.ms", "0").is_err());
        assert!(apply_config(&mut c, "message.timestamp.type", "Now").is_err());
        assert!(apply_config(&mut c, "cleanup.policy", "compact,shred").is_err());
        assert!(apply_config(&mut c, "cleanup.policy", "").is_err());
        assert!(apply_config(&mut c, "min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(apply_config(&mut c, "delete.retention.ms", "-1").is_err());
        assert!(apply_config(&mut c, "segment.bytes", "12").is_err());
        assert!(apply_config(&mut c, "retention.ms", "soon").is_err());
        assert!(apply_config(&mut c, "max.message.bytes", "-1").is_err());
        let lines = config_lines(3, &c);
        let mut back = LogConfig::default();
        for line in lines.lines().filter(|l| !l.starts_with("partitions=")) {
            let (k, v) = line.split_once('=').unwrap();
            apply_config(&mut back, k, v).unwrap();
        }
        assert_eq!(back.retention_age, None);
        assert_eq!(back.retention_bytes, Some(5000));
        assert_eq!(back.segment_bytes, 4096);
        assert_eq!(back.segment_age, Some(Duration::from_secs(60)));
        assert_eq!(back.max_message_bytes, 5242880);
        assert!(back.log_append_time);
        assert_eq!(
            back.cleanup,
            Cleanup {
                delete: true,
                compact: true
            }
        );
        assert_eq!(back.delete_retention, Duration::ZERO);
        assert_eq!(back.min_cleanable_dirty_ratio, 0.01);
        assert_eq!(back.min_compaction_lag, Duration::from_millis(2500));
        assert_eq!(back.max_compaction_lag, Some(Duration::from_secs(86400)));
        assert!(lines.starts_with("partitions=3\n"));
    }

    #[test]
    fn a_fixed_config_is_accepted_at_the_brokers_setting_and_refused_saying_why_otherwise() {
        let mut c = LogConfig::default();
        for (key, value) in [
            ("compression.type", "producer"),
            ("min.insync.replicas", "1"),
            ("unclean.leader.election.enable", "true"),
        ] {
            apply_config(&mut c, key, value).unwrap_or_else(|e| panic!("{key}: {e}"));
            reset_config(&mut c, key, &LogConfig::default()).unwrap();
        }
        assert_eq!(format!("{c:?}"), format!("{:?}", LogConfig::default()));
        let e = apply_config(&mut c, "min.insync.replicas", "2").unwrap_err();
        assert!(e.to_string().contains("only replica"), "{e}");
        let e = apply_config(&mut c, "flush.ms", "10").unwrap_err();
        let said = e.to_string();
        assert!(
            said.contains("honours segment.bytes") && said.contains("compression.type=producer"),
            "{said}"
        );
        assert!(reset_config(&mut c, "flush.ms", &LogConfig::default()).is_err());
    }
}
