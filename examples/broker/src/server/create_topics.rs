//! CreateTopics: what each topic of a request asks, checked on the loop
//! before the writer sees it, and the answer written from those checks and
//! the writer's results.
//!
//! A validate-only request never reaches the writer: each topic is checked
//! here against the catalog and the broker's defaults with the same
//! planner creation uses (`topic_config::planned`), and answered with what
//! creation would make. From v5 (KIP-525) a topic created or validated is
//! answered with its partition count, replication factor and configs,
//! unless the principal may not describe its configs (then
//! `topic_config_error_code` says so and those stay unset, as in Kafka).
//! Plain functions over `kafka-protocol`'s messages, the catalog's types
//! and the config planner; no I/O.

use crate::log::LogConfig;
use crate::protocol::error_code as ec;
use crate::topics::{Topic, TopicError};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashSet;
use std::sync::Arc;

/// What became of one topic of a request before the writer saw it.
#[derive(Debug)]
pub enum Asked {
    /// Refused: Kafka's error code and a message.
    Refused(i16, String),
    /// Sent to the writer, whose result comes back in request order.
    Create,
    /// Validate-only, and creation would succeed with this.
    Valid {
        /// The partition count the topic would get.
        partitions: i32,
        /// Its config, the broker's defaults under its overrides.
        config: Box<LogConfig>,
    },
}

/// One topic of a request, as the answer needs it.
#[derive(Debug)]
pub struct AskedTopic {
    /// The name asked for.
    pub name: StrBytes,
    /// What became of it.
    pub asked: Asked,
    /// Whether the principal may describe its configs (DESCRIBE_CONFIGS).
    pub describable: bool,
}

/// The names a request gives more than once: Kafka refuses each of their
/// entries (INVALID_REQUEST) rather than create the first.
pub fn duplicated(topics: &[CreatableTopic]) -> HashSet<StrBytes> {
    let mut seen = HashSet::with_capacity(topics.len());
    topics
        .iter()
        .filter(|t| !seen.insert(&t.name.0))
        .map(|t| t.name.0.clone())
        .collect()
}

/// Checks a validate-only topic the writer's way: its partitions and
/// configs planned over `defaults`, then whether it `exists`.
pub fn validated(
    name: &str,
    partitions: i32,
    configs: &[(String, String)],
    defaults: &LogConfig,
    default_partitions: i32,
    exists: bool,
) -> Asked {
    let planned = crate::topic_config::planned(partitions, configs, defaults, default_partitions);
    match planned {
        Err(e) => Asked::Refused(e.code(), e.to_string()),
        Ok(_) if exists => {
            let e = TopicError::Exists(name.to_owned());
            Asked::Refused(e.code(), e.to_string())
        }
        Ok((partitions, config)) => Asked::Valid {
            partitions,
            config: Box::new(config),
        },
    }
}

/// The answer: each topic in request order, those sent to the writer
/// paired with its `results` in turn. `configs` lists a topic's configs
/// as v5 reports them.
pub fn response(
    topics: &[AskedTopic],
    results: Vec<Result<Arc<Topic>, TopicError>>,
    throttle_ms: i32,
    version: i16,
    configs: impl Fn(&LogConfig) -> Vec<CreatableTopicConfigs>,
) -> CreateTopicsResponse {
    let mut results = results.into_iter();
    let mut r = CreateTopicsResponse::default();
    r.throttle_time_ms = throttle_ms;
    for topic in topics {
        let mut t = CreatableTopicResult::default();
        t.name = TopicName(topic.name.clone());
        let made = |t: &mut CreatableTopicResult, partitions: i32, config: &LogConfig| {
            if !topic.describable {
                t.topic_config_error_code = ec::TOPIC_AUTHORIZATION_FAILED;
                return;
            }
            t.num_partitions = partitions;
            t.replication_factor = 1;
            if version >= 5 {
                t.configs = Some(configs(config));
            }
        };
        let refused = match &topic.asked {
            Asked::Refused(code, message) => Some((*code, message.clone())),
            Asked::Create => match results.next() {
                Some(Ok(created)) => {
                    t.topic_id = created.id;
                    made(&mut t, created.partitions.len() as i32, &created.config);
                    None
                }
                Some(Err(e)) => Some((e.code(), e.to_string())),
                // The writer answers every topic it is sent; a short list
                // is a broker fault, said as such rather than as success.
                None => Some((ec::UNKNOWN_SERVER_ERROR, "the writer gave no answer".into())),
            },
            Asked::Valid { partitions, config } => {
                made(&mut t, *partitions, config);
                None
            }
        };
        if let Some((code, message)) = refused {
            t.error_code = code;
            t.error_message = Some(StrBytes::from_string(message));
        }
        r.topics.push(t);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;

    fn topic(name: &'static str) -> CreatableTopic {
        let mut t = CreatableTopic::default();
        t.name = TopicName(StrBytes::from_static_str(name));
        t
    }

    #[test]
    fn a_name_given_twice_is_found_once() {
        let found = duplicated(&[topic("a"), topic("b"), topic("a"), topic("a")]);
        assert_eq!(found.len(), 1);
        assert!(found.contains(&StrBytes::from_static_str("a")));
        assert!(duplicated(&[topic("a"), topic("b")]).is_empty());
    }

    #[test]
    fn validation_plans_as_creation_does() {
        let defaults = LogConfig::default();
        let asked = |partitions, configs: &[(&str, &str)], exists| {
            let configs: Vec<(String, String)> = configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            validated("t", partitions, &configs, &defaults, 3, exists)
        };
        assert!(matches!(
            asked(-1, &[], false),
            Asked::Valid { partitions: 3, .. }
        ));
        match asked(2, &[("retention.ms", "1000")], false) {
            Asked::Valid { partitions, config } => {
                assert_eq!(partitions, 2);
                assert_eq!(
                    config.retention_age,
                    Some(std::time::Duration::from_secs(1))
                );
            }
            other => panic!("{other:?}"),
        }
        let refused = |a: Asked| match a {
            Asked::Refused(code, _) => code,
            other => panic!("{other:?}"),
        };
        assert_eq!(refused(asked(0, &[], false)), ec::INVALID_PARTITIONS);
        assert_eq!(refused(asked(-2, &[], false)), ec::INVALID_PARTITIONS);
        assert_eq!(
            refused(asked(1, &[("no.such", "1")], false)),
            ec::INVALID_CONFIG
        );
        assert_eq!(refused(asked(1, &[], true)), ec::TOPIC_ALREADY_EXISTS);
    }

    #[test]
    fn the_answer_pairs_the_writers_results_and_keeps_configs_from_the_undescribable() {
        let defaults = LogConfig::default();
        let valid = || Asked::Valid {
            partitions: 4,
            config: Box::new(defaults.clone()),
        };
        let asked = |name: &'static str, asked, describable| AskedTopic {
            name: StrBytes::from_static_str(name),
            asked,
            describable,
        };
        let topics = [
            asked(
                "refused",
                Asked::Refused(ec::INVALID_REQUEST, "twice".into()),
                true,
            ),
            asked("failed", Asked::Create, true),
            asked("valid", valid(), true),
            asked("hidden", valid(), false),
            asked("unanswered", Asked::Create, true),
        ];
        let results = vec![Err(TopicError::Storage("disk".into()))];
        let one_config = |_: &LogConfig| vec![CreatableTopicConfigs::default()];
        let r = response(&topics, results, 7, 5, one_config);
        assert_eq!(r.throttle_time_ms, 7);
        let codes: Vec<i16> = r.topics.iter().map(|t| t.error_code).collect();
        assert_eq!(
            codes,
            [
                ec::INVALID_REQUEST,
                ec::KAFKA_STORAGE_ERROR,
                0,
                0,
                ec::UNKNOWN_SERVER_ERROR
            ]
        );
        let valid = &r.topics[2];
        assert_eq!((valid.num_partitions, valid.replication_factor), (4, 1));
        assert_eq!(valid.configs.as_ref().map(Vec::len), Some(1));
        let hidden = &r.topics[3];
        assert_eq!(
            hidden.topic_config_error_code,
            ec::TOPIC_AUTHORIZATION_FAILED
        );
        assert_eq!(hidden.num_partitions, -1);
        assert!(hidden.configs.as_ref().is_none_or(Vec::is_empty));
        // Below v5 no configs.
        let r = response(&topics[2..3], Vec::new(), 0, 4, one_config);
        assert!(r.topics[0].configs.as_ref().is_none_or(Vec::is_empty));
    }
}
