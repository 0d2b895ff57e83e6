//! DescribeConfigs: the topic configs the broker honours, with where each
//! value comes from, the broker's defaults for them, and (read-only) the
//! configs it runs at one setting; and share groups' configs. CreateTopics
//! reports a new topic's configs from the same list. Reads the
//! catalog and the share groups' published configs;
//! answers on the loop (a read of shared data, no I/O).

use super::shared::Shared;
use crate::log::LogConfig;
use crate::protocol::config_resource::{BROKER, GROUP, TOPIC};
use crate::protocol::error_code as ec;
use crate::share::group_config;
use crate::topic_config::{timestamp_type, FIXED};
use kafka_protocol::messages::create_topics_response::CreatableTopicConfigs;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

/// Kafka's config sources.
const TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;
const GROUP_CONFIG: i8 = 8;

/// Kafka's config types.
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;

/// Kafka's type of a config the broker runs at one setting.
fn fixed_kind(key: &str) -> i8 {
    match key {
        "min.insync.replicas" => TYPE_INT,
        "unclean.leader.election.enable" => TYPE_BOOLEAN,
        _ => TYPE_STRING,
    }
}

/// One config the broker honours: its topic key, its broker key, its type,
/// a line of documentation and its value in a log config.
struct Key {
    topic: &'static str,
    broker: &'static str,
    kind: i8,
    doc: &'static str,
    value: fn(&LogConfig) -> String,
}

fn millis(d: Option<std::time::Duration>) -> i64 {
    d.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn bytes(b: Option<u64>) -> i64 {
    b.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX))
}

const KEYS: &[Key] = &[
    Key {
        topic: "segment.bytes",
        broker: "log.segment.bytes",
        kind: TYPE_INT,
        doc: "Roll to a new segment file past this many bytes.",
        value: |c| c.segment_bytes.to_string(),
    },
    Key {
        topic: "segment.ms",
        broker: "log.roll.ms",
        kind: TYPE_LONG,
        doc: "Roll a segment older than this (the largest long: never by age).",
        value: |c| c.segment_age.map_or(i64::MAX, |d| millis(Some(d))).to_string(),
    },
    Key {
        topic: "retention.bytes",
        broker: "log.retention.bytes",
        kind: TYPE_LONG,
        doc: "Delete the oldest segments while a partition is bigger than this (-1: no limit).",
        value: |c| bytes(c.retention_bytes).to_string(),
    },
    Key {
        topic: "retention.ms",
        broker: "log.retention.ms",
        kind: TYPE_LONG,
        doc: "Delete segments whose newest record is older than this (-1: no limit).",
        value: |c| millis(c.retention_age).to_string(),
    },
    Key {
        topic: "max.message.bytes",
        broker: "message.max.bytes",
        kind: TYPE_INT,
        doc:
            "The largest record batch a producer may append, in bytes with its 12-byte log header.",
        value: |c| c.max_message_bytes.to_string(),
    },
    Key {
        topic: "message.timestamp.type",
        broker: "log.message.timestamp.type",
        kind: TYPE_STRING,
        doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock as it is appended.",
        value: |c| timestamp_type(c).to_owned(),
    },
    Key {
        topic: "cleanup.policy",
        broker: "log.cleanup.policy",
        kind: TYPE_LIST,
        doc: "delete: whole old segments are deleted past retention; compact: the log cleaner keeps each key's last record; or both.",
        value: |c| c.cleanup.to_string(),
    },
    Key {
        topic: "delete.retention.ms",
        broker: "log.cleaner.delete.retention.ms",
        kind: TYPE_LONG,
        doc: "How long a tombstone stays in a compacted log after its segment was last written.",
        value: |c| millis(Some(c.delete_retention)).to_string(),
    },
    Key {
        topic: "min.cleanable.dirty.ratio",
        broker: "log.cleaner.min.cleanable.ratio",
        kind: TYPE_DOUBLE,
        doc: "Compact a log once this share of it is not compacted yet.",
        value: |c| c.min_cleanable_dirty_ratio.to_string(),
    },
    Key {
        topic: "min.compaction.lag.ms",
        broker: "log.cleaner.min.compaction.lag.ms",
        kind: TYPE_LONG,
        doc: "Leave records younger than this uncompacted.",
        value: |c| millis(Some(c.min_compaction_lag)).to_string(),
    },
    Key {
        topic: "max.compaction.lag.ms",
        broker: "log.cleaner.max.compaction.lag.ms",
        kind: TYPE_LONG,
        doc: "Compact a log whatever its dirty ratio once its oldest uncompacted segment was last written this long ago (the largest long: never).",
        value: |c| c.max_compaction_lag.map_or(i64::MAX, |d| millis(Some(d))).to_string(),
    },
];

/// Where the broker's default for `key` comes from: its command line, or
/// the built-in value.
fn broker_source(shared: &Shared, key: &Key) -> i8 {
    if (key.value)(&shared.default_log) == (key.value)(&LogConfig::default()) {
        DEFAULT_CONFIG
    } else {
        STATIC_BROKER_CONFIG
    }
}

/// `config`'s value of `key` and where it comes from: the topic's own, or
/// the broker's default.
fn topic_value(shared: &Shared, key: &Key, config: &LogConfig) -> (String, i8) {
    let value = (key.value)(config);
    let source = if value == (key.value)(&shared.default_log) {
        broker_source(shared, key)
    } else {
        TOPIC_CONFIG
    };
    (value, source)
}

/// A new topic's configs as CreateTopics (v5 and later) reports them
/// (KIP-525): every config the broker honours with its value and source,
/// then the read-only ones, as DescribeConfigs lists them.
pub fn created(shared: &Shared, config: &LogConfig) -> Vec<CreatableTopicConfigs> {
    let entry = |name: &str, value: String, source: i8, read_only: bool| {
        let mut e = CreatableTopicConfigs::default();
        e.name = StrBytes::from_string(name.to_owned());
        e.value = Some(StrBytes::from_string(value));
        e.read_only = read_only;
        e.config_source = source;
        e
    };
    let honoured = KEYS.iter().map(|key| {
        let (value, source) = topic_value(shared, key, config);
        entry(key.topic, value, source, false)
    });
    let fixed = FIXED
        .iter()
        .map(|f| entry(f.key, f.values[0].into(), DEFAULT_CONFIG, true));
    honoured.chain(fixed).collect()
}

/// The answer to `r`.
pub fn describe(
    shared: &Shared,
    r: &DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let broker_source = |key: &Key| broker_source(shared, key);
    let mut resp = DescribeConfigsResponse::default();
    for res in &r.resources {
        let wanted = |name: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
        };
        let mut result = DescribeConfigsResult::default();
        result.resource_type = res.resource_type;
        result.resource_name = res.resource_name.clone();
        let entry =
            |name: &str, value: String, source: i8, read_only: bool, kind: i8, doc: &str| {
                let mut e = DescribeConfigsResourceResult::default();
                e.name = StrBytes::from_string(name.to_owned());
                e.value = Some(StrBytes::from_string(value));
                e.read_only = read_only;
                e.config_source = source;
                e.config_type = kind;
                if version >= 3 && r.include_documentation {
                    e.documentation = Some(StrBytes::from_string(doc.to_owned()));
                }
                e
            };
        match res.resource_type {
            TOPIC => match shared.catalog.get(res.resource_name.as_str()) {
                None => {
                    result.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION;
                    result.error_message = Some(StrBytes::from_string(format!(
                        "topic {:?} does not exist",
                        res.resource_name.as_str()
                    )));
                }
                Some(topic) => {
                    for key in KEYS.iter().filter(|k| wanted(k.topic)) {
                        let (value, source) = topic_value(shared, key, &topic.config);
                        let mut e =
                            entry(key.topic, value.clone(), source, false, key.kind, key.doc);
                        if r.include_synonyms {
                            if source == TOPIC_CONFIG {
                                e.synonyms.push(synonym(key.topic, value, TOPIC_CONFIG));
                            }
                            let default = (key.value)(&shared.default_log);
                            e.synonyms
                                .push(synonym(key.broker, default, broker_source(key)));
                        }
                        result.configs.push(e);
                    }
                    // Read-only: another value is refused (`topic_config`).
                    for fixed in FIXED.iter().filter(|f| wanted(f.key)) {
                        result.configs.push(entry(
                            fixed.key,
                            fixed.values[0].into(),
                            DEFAULT_CONFIG,
                            true,
                            fixed_kind(fixed.key),
                            fixed.doc,
                        ));
                    }
                }
            },
            BROKER => {
                for key in KEYS.iter().filter(|k| wanted(k.broker)) {
                    let value = (key.value)(&shared.default_log);
                    result.configs.push(entry(
                        key.broker,
                        value,
                        broker_source(key),
                        true,
                        key.kind,
                        key.doc,
                    ));
                }
            }
            GROUP => {
                let name = res.resource_name.as_str();
                let own = shared
                    .share_configs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(name)
                    .copied()
                    .unwrap_or_default();
                let docs = group_config::KEYS;
                for ((key, value, set), (_, doc)) in
                    own.values(&shared.share_defaults).into_iter().zip(docs)
                {
                    if wanted(key) {
                        let source = if set { GROUP_CONFIG } else { DEFAULT_CONFIG };
                        let kind = if group_config::is_int(key) {
                            TYPE_INT
                        } else {
                            TYPE_STRING
                        };
                        result
                            .configs
                            .push(entry(key, value, source, false, kind, doc));
                    }
                }
            }
            other => {
                result.error_code = ec::INVALID_REQUEST;
                result.error_message = Some(StrBytes::from_string(format!(
                    "resource type {other} has no configs here (topics: 2, the broker: 4, groups: 32)"
                )));
            }
        }
        resp.results.push(result);
    }
    resp
}

fn synonym(name: &str, value: String, source: i8) -> DescribeConfigsSynonym {
    let mut s = DescribeConfigsSynonym::default();
    s.name = StrBytes::from_string(name.to_owned());
    s.value = Some(StrBytes::from_string(value));
    s.source = source;
    s
}
