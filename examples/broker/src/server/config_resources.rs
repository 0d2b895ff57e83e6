//! ListConfigResources (Kafka 4.1, KIP-1142; its v0 was
//! ListClientMetricsResources, KIP-714): which config resources exist, so
//! a tool can describe each (`kafka-configs.sh --describe --entity-type
//! groups` without a name, kafka-python's `list_config_resources`). Reads
//! the catalog and the share groups' published configs; answers on the
//! loop (a read of shared data, no I/O).
//!
//! As Kafka answers it: v0 lists client-metrics resources only; v1 lists
//! the types asked for, every type it knows when none is asked, and
//! refuses the whole request with `UNSUPPORTED_VERSION` if one type is
//! not a config resource type (`UNKNOWN`, say). Topics are every topic,
//! the broker is node `0`, groups are those with a config of their own
//! (a group whose configs all went back to the defaults is no resource,
//! as Kafka drops it from its configuration image). This broker has no
//! client-metrics subscriptions (KIP-714) and no loggers configurable over
//! the wire, so those two types list nothing, where Kafka would list its
//! subscriptions and every broker's loggers: every name listed can be
//! described. The caller checks the one ACL Kafka 4.1 asks for, the
//! cluster's `DESCRIBE_CONFIGS`. Uses the protocol's codes and the share
//! groups' config type.

use crate::protocol::config_resource::{BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP, TOPIC};
use crate::protocol::error_code as ec;
use crate::share::group_config::GroupConfig;
use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::HashMap;

/// The types v1 lists when none is asked for, and the only ones it may
/// be asked for.
const KNOWN: [i8; 5] = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

/// The answer to `request` at `version`: `allowed` is whether the asker
/// may describe the cluster's configs, `topics` every topic's name, in
/// order, and `groups` each group's configs as the log writer publishes
/// them.
pub fn list<'a>(
    request: &ListConfigResourcesRequest,
    version: i16,
    allowed: bool,
    topics: impl IntoIterator<Item = &'a str>,
    groups: &HashMap<String, GroupConfig>,
) -> ListConfigResourcesResponse {
    let mut r = ListConfigResourcesResponse::default();
    if !allowed {
        r.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        return r;
    }
    let asked: &[i8] = match version {
        0 => &[CLIENT_METRICS],
        _ if request.resource_types.is_empty() => &KNOWN,
        _ => &request.resource_types,
    };
    if asked.iter().any(|t| !KNOWN.contains(t)) {
        r.error_code = ec::UNSUPPORTED_VERSION;
        return r;
    }
    let wants = |t: i8| asked.contains(&t);
    let mut push = |name: String, resource_type: i8| {
        let mut c = ConfigResource::default();
        c.resource_name = StrBytes::from_string(name);
        c.resource_type = resource_type;
        r.config_resources.push(c);
    };
    if wants(TOPIC) {
        for name in topics {
            push(name.to_owned(), TOPIC);
        }
    }
    if wants(BROKER) {
        push("0".to_owned(), BROKER); // node 0, as every answer names it
    }
    if wants(GROUP) {
        let mut groups: Vec<&String> = groups
            .iter()
            .filter(|(_, config)| !config.is_default())
            .map(|(group, _)| group)
            .collect();
        groups.sort_unstable();
        for group in groups {
            push(group.clone(), GROUP);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &ListConfigResourcesResponse) -> Vec<(i8, &str)> {
        r.config_resources
            .iter()
            .map(|c| (c.resource_type, c.resource_name.as_str()))
            .collect()
    }

    fn ask(types: &[i8], version: i16, allowed: bool) -> ListConfigResourcesResponse {
        let mut groups = HashMap::new();
        let own = GroupConfig {
            lock_ms: Some(5_000),
            ..GroupConfig::default()
        };
        groups.insert("set".to_owned(), own);
        // Its configs all went back to the defaults: no resource.
        groups.insert("reset".to_owned(), GroupConfig::default());
        groups.insert("also-set".to_owned(), own);
        let mut request = ListConfigResourcesRequest::default();
        request.resource_types = types.to_vec();
        list(&request, version, allowed, ["a", "b"], &groups)
    }

    #[test]
    fn every_type_is_listed_when_none_is_asked_for() {
        let r = ask(&[], 1, true);
        assert_eq!(r.error_code, ec::NONE);
        assert_eq!(
            names(&r),
            [
                (TOPIC, "a"),
                (TOPIC, "b"),
                (BROKER, "0"),
                (GROUP, "also-set"),
                (GROUP, "set")
            ]
        );
    }

    #[test]
    fn the_types_asked_for_are_listed_and_v0_lists_client_metrics_only() {
        assert_eq!(
            names(&ask(&[GROUP], 1, true)),
            [(GROUP, "also-set"), (GROUP, "set")]
        );
        assert_eq!(names(&ask(&[BROKER, TOPIC], 1, true)).len(), 3);
        // No client-metrics subscriptions and no loggers here.
        let r = ask(&[CLIENT_METRICS, BROKER_LOGGER], 1, true);
        assert_eq!((r.error_code, r.config_resources.len()), (ec::NONE, 0));
        // v0 has no types field: whatever the request holds, only
        // client metrics, of which there are none.
        let r = ask(&[TOPIC], 0, true);
        assert_eq!((r.error_code, r.config_resources.len()), (ec::NONE, 0));
    }

    #[test]
    fn a_type_that_is_no_config_resource_refuses_the_request() {
        for unknown in [0, 1, 3, 64, -1] {
            let r = ask(&[TOPIC, unknown], 1, true);
            assert_eq!(r.error_code, ec::UNSUPPORTED_VERSION, "{unknown}");
            assert!(r.config_resources.is_empty());
        }
    }

    #[test]
    fn an_asker_who_may_not_describe_the_cluster_configs_is_refused() {
        let r = ask(&[], 1, false);
        assert_eq!(r.error_code, ec::CLUSTER_AUTHORIZATION_FAILED);
        assert!(r.config_resources.is_empty());
    }
}
