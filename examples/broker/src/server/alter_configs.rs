//! AlterConfigs and IncrementalAlterConfigs: both requests read into one
//! list of changes per resource, and both answers written from one list
//! of outcomes, so the connection checks, submits and answers them alike.
//!
//! The two differ in what a request means. IncrementalAlterConfigs changes
//! the configs it names (SET, DELETE). AlterConfigs, Kafka's older API and
//! the one aiokafka, kafka-python and confluent-kafka's `alter_configs`
//! send, replaces a topic's configs: every config it does not name (or
//! names with a null value, as Kafka reads it) goes back to the broker's
//! default, so it reads as a DELETE of every config the broker honours
//! followed by a SET of each one named. Plain functions over
//! `kafka-protocol`'s messages and the topics' config keys; no I/O.

use crate::protocol::error_code as ec;
use crate::topic_config::{ConfigChange, CONFIG_KEYS};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

/// Which of the two APIs a request came in by, so its answer goes back in
/// the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlterApi {
    /// AlterConfigs: the named configs replace the topic's.
    Replacing,
    /// IncrementalAlterConfigs: only the named configs change.
    Incremental,
}

/// One resource of either request.
#[derive(Debug)]
pub struct Alteration {
    /// Kafka's resource type (2 topic, 4 broker).
    pub resource_type: i8,
    /// The topic's (or broker's) name.
    pub resource_name: StrBytes,
    /// The changes in order, or why the request itself is refused
    /// (error code and message) before the writer sees it.
    pub changes: Result<Vec<ConfigChange>, (i16, String)>,
}

/// An IncrementalAlterConfigs request's resources and its validate-only flag.
pub fn incremental(r: IncrementalAlterConfigsRequest) -> (Vec<Alteration>, bool) {
    let resources = r
        .resources
        .into_iter()
        .map(|res| {
            let changes = res
                .configs
                .iter()
                .map(|c| {
                    let key = c.name.as_str().to_owned();
                    match c.config_operation {
                        0 => Ok(ConfigChange::Set(
                            key,
                            c.value.as_ref().map_or(String::new(), |v| v.to_string()),
                        )),
                        1 => Ok(ConfigChange::Delete(key)),
                        op => Err((
                            ec::INVALID_CONFIG,
                            format!("{key}: operation {op} (APPEND or SUBTRACT) applies to list configs; none of this broker's is a list"),
                        )),
                    }
                })
                .collect();
            Alteration {
                resource_type: res.resource_type,
                resource_name: res.resource_name,
                changes,
            }
        })
        .collect();
    (resources, r.validate_only)
}

/// An AlterConfigs request's resources (each a reset of every config the
/// broker honours, then the named values) and its validate-only flag.
pub fn replacing(r: AlterConfigsRequest) -> (Vec<Alteration>, bool) {
    let resources = r
        .resources
        .into_iter()
        .map(|res| {
            let resets = CONFIG_KEYS
                .iter()
                .map(|key| ConfigChange::Delete((*key).to_owned()));
            let sets = res.configs.iter().filter_map(|c| {
                let value = c.value.as_ref()?;
                Some(ConfigChange::Set(c.name.to_string(), value.to_string()))
            });
            Alteration {
                resource_type: res.resource_type,
                resource_name: res.resource_name,
                changes: Ok(resets.chain(sets).collect()),
            }
        })
        .collect();
    (resources, r.validate_only)
}

/// One resource as the connection keeps it for the answer: its type,
/// name, and the refusal (error code, message) it got before the writer
/// saw it, if any.
pub type Asked = (i8, StrBytes, Option<(i16, String)>);

/// One resource's answer: its type, name, error code and message.
pub type Outcome = (i8, StrBytes, i16, Option<String>);

/// Either API's answer from the outcomes: the two are the same fields in
/// two types.
macro_rules! response {
    ($response:ty, $resource:ty, $outcomes:expr) => {{
        let mut r = <$response>::default();
        for (resource_type, resource_name, code, message) in $outcomes {
            let mut res = <$resource>::default();
            res.resource_type = resource_type;
            res.resource_name = resource_name;
            res.error_code = code;
            res.error_message = message.map(StrBytes::from_string);
            r.responses.push(res);
        }
        r
    }};
}

/// The answer to an IncrementalAlterConfigs request.
pub fn incremental_response(outcomes: Vec<Outcome>) -> IncrementalAlterConfigsResponse {
    response!(
        IncrementalAlterConfigsResponse,
        incremental_alter_configs_response::AlterConfigsResourceResponse,
        outcomes
    )
}

/// The answer to an AlterConfigs request.
pub fn replacing_response(outcomes: Vec<Outcome>) -> AlterConfigsResponse {
    response!(
        AlterConfigsResponse,
        alter_configs_response::AlterConfigsResourceResponse,
        outcomes
    )
}

/// Pairs each resource with its answer: its early refusal, else the
/// writer's next result.
pub fn outcomes<E>(
    resources: &[Asked],
    results: Vec<Result<(), E>>,
    code_of: impl Fn(&E) -> i16,
    message_of: impl Fn(&E) -> String,
) -> Vec<Outcome> {
    let mut results = results.into_iter();
    resources
        .iter()
        .map(|(kind, name, early)| {
            let (code, message) = match early {
                Some((code, message)) => (*code, Some(message.clone())),
                None => match results.next() {
                    Some(Ok(())) => (ec::NONE, None),
                    Some(Err(e)) => (code_of(&e), Some(message_of(&e))),
                    None => (ec::INVALID_REQUEST, Some("no answer".into())),
                },
            };
            (*kind, name.clone(), code, message)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{alter_configs_request, incremental_alter_configs_request};

    fn s(v: &str) -> StrBytes {
        StrBytes::from_string(v.to_owned())
    }

    #[test]
    fn a_replacing_request_resets_every_honoured_config_then_sets_the_named_ones() {
        let mut named = alter_configs_request::AlterableConfig::default();
        named.name = s("retention.ms");
        named.value = Some(s("60000"));
        let mut null = alter_configs_request::AlterableConfig::default();
        null.name = s("segment.ms");
        null.value = None;
        let mut res = alter_configs_request::AlterConfigsResource::default();
        res.resource_type = 2;
        res.resource_name = s("orders");
        res.configs = vec![named, null];
        let mut r = AlterConfigsRequest::default();
        r.resources = vec![res];
        r.validate_only = true;
        let (resources, validate_only) = replacing(r);
        assert!(validate_only);
        let changes = resources[0].changes.as_ref().unwrap();
        let mut expected: Vec<ConfigChange> = CONFIG_KEYS
            .iter()
            .map(|k| ConfigChange::Delete((*k).to_owned()))
            .collect();
        expected.push(ConfigChange::Set("retention.ms".into(), "60000".into()));
        assert_eq!(changes, &expected);
        assert_eq!(resources[0].resource_name.as_str(), "orders");
    }

    #[test]
    fn an_incremental_request_keeps_its_operations_and_refuses_list_ones() {
        let config = |name: &str, op: i8, value: Option<&str>| {
            let mut c = incremental_alter_configs_request::AlterableConfig::default();
            c.name = s(name);
            c.config_operation = op;
            c.value = value.map(s);
            c
        };
        let mut ok = incremental_alter_configs_request::AlterConfigsResource::default();
        ok.resource_type = 2;
        ok.configs = vec![
            config("retention.ms", 0, Some("5")),
            config("segment.ms", 1, None),
        ];
        let mut list = ok.clone();
        list.configs = vec![config("cleanup.policy", 2, Some("compact"))];
        let mut r = IncrementalAlterConfigsRequest::default();
        r.resources = vec![ok, list];
        let (resources, validate_only) = incremental(r);
        assert!(!validate_only);
        assert_eq!(
            resources[0].changes.as_ref().unwrap(),
            &vec![
                ConfigChange::Set("retention.ms".into(), "5".into()),
                ConfigChange::Delete("segment.ms".into()),
            ]
        );
        let (code, message) = resources[1].changes.as_ref().unwrap_err();
        assert_eq!(*code, ec::INVALID_CONFIG);
        assert!(message.contains("operation 2"), "{message}");
    }

    #[test]
    fn early_refusals_keep_their_place_among_the_writers_results() {
        let resources = vec![
            (2, s("a"), None),
            (4, s("0"), Some((ec::INVALID_REQUEST, "broker".to_owned()))),
            (2, s("b"), None),
        ];
        let results: Vec<Result<(), &str>> = vec![Ok(()), Err("bad")];
        let out = outcomes(
            &resources,
            results,
            |_| ec::INVALID_CONFIG,
            |e| e.to_string(),
        );
        assert_eq!(out[0].2, ec::NONE);
        assert_eq!(out[1].2, ec::INVALID_REQUEST);
        assert_eq!(
            (out[2].2, out[2].3.as_deref()),
            (ec::INVALID_CONFIG, Some("bad"))
        );
    }
}
