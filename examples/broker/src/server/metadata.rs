//! The Metadata response: this broker as the one node, leader of every
//! partition, and the topics asked for (or all).

use super::shared::Shared;
use crate::protocol::error_code as ec;
use crate::topics;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

/// The topic names a Metadata request asks for (topics asked for by id
/// have none); `None` for all. In v0 an empty list means all; later, a
/// null list does.
pub fn requested(request: &MetadataRequest, version: i16) -> Option<Vec<StrBytes>> {
    match &request.topics {
        None => None,
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(
            list.iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.clone()))
                .collect(),
        ),
    }
}

/// Topics `request` asks for that do not exist and could be created.
pub fn missing(shared: &Shared, request: &MetadataRequest, version: i16) -> Vec<String> {
    requested(request, version)
        .unwrap_or_default()
        .iter()
        .filter(|n| topics::validate_name(n).is_ok() && shared.catalog.get(n).is_none())
        .map(|n| n.as_str().to_owned())
        .collect()
}

/// What the asker may see and do, as a Metadata response tells it.
pub struct Seen<'a> {
    /// Whether it may see (describe) a topic.
    pub visible: &'a dyn Fn(&str) -> bool,
    /// What it may do to a topic, as Kafka's bit set of operation codes
    /// (asked for from v8).
    pub topic_operations: &'a dyn Fn(&str) -> i32,
    /// What it may do to the cluster (asked for in v8 to v10).
    pub cluster_operations: i32,
}

/// What a Metadata request's answer needs of its asker's ACLs, worked out
/// on the loop for an answer built after the writer created topics.
#[derive(Debug)]
pub struct Asker {
    /// Topics asked for that the principal may not see.
    pub hidden: Vec<String>,
    /// What it may do to each topic asked for, if the request asks.
    pub topic_operations: Vec<(String, i32)>,
    /// What it may do to the cluster.
    pub cluster_operations: i32,
}

impl Asker {
    /// Whether the asker may see topic `name`.
    pub fn sees(&self, name: &str) -> bool {
        !self.hidden.iter().any(|h| h == name)
    }

    /// What the asker may do to topic `name` (none known: `i32::MIN`).
    pub fn operations(&self, name: &str) -> i32 {
        let found = self.topic_operations.iter().find(|(n, _)| n == name);
        found.map_or(i32::MIN, |(_, ops)| *ops)
    }
}

/// The response to `request`, from the catalog as it is now; topics the
/// asker may not see are left out of a listing of all, and answered
/// `TOPIC_AUTHORIZATION_FAILED` when asked for by name or id; what the
/// asker may do to each topic and to the cluster, when asked.
pub fn response(
    shared: &Shared,
    advertised: &(String, u16),
    request: &MetadataRequest,
    version: i16,
    seen: Seen<'_>,
) -> MetadataResponse {
    let visible = seen.visible;
    let mut r = MetadataResponse::default();
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(0);
    broker.host = StrBytes::from_string(advertised.0.clone());
    broker.port = i32::from(advertised.1);
    r.brokers.push(broker);
    r.cluster_id = Some(StrBytes::from_static_str(super::node::CLUSTER_ID));
    r.controller_id = BrokerId(0);
    // Each topic asked for, by name or (v10+, a null name) by id; or all.
    let asked: Vec<(Option<StrBytes>, Uuid)> = match (&request.topics, requested(request, version))
    {
        (_, None) => shared
            .catalog
            .all()
            .iter()
            .filter(|t| visible(&t.name))
            .map(|t| (Some(StrBytes::from_string(t.name.clone())), t.id))
            .collect(),
        (Some(list), Some(_)) => list
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.clone()), t.topic_id))
            .collect(),
        (None, Some(_)) => Vec::new(),
    };
    for (name, id) in asked {
        let mut t = MetadataResponseTopic::default();
        let found = match &name {
            Some(name) => shared.catalog.get(name),
            None => shared.catalog.by_id(&id),
        };
        match found {
            Some(topic) if !visible(&topic.name) => {
                t.error_code = ec::TOPIC_AUTHORIZATION_FAILED;
                t.topic_id = id;
                t.name = name.map(TopicName);
            }
            Some(topic) => {
                t.topic_id = topic.id;
                for index in 0..topic.partitions.len() as i32 {
                    let mut p = MetadataResponsePartition::default();
                    p.partition_index = index;
                    p.leader_id = BrokerId(0);
                    // v7+: clients fence their fetches with it and check
                    // their positions when it moves (KIP-320).
                    p.leader_epoch = shared.catalog.leader_epoch();
                    p.replica_nodes = vec![BrokerId(0)];
                    p.isr_nodes = vec![BrokerId(0)];
                    t.partitions.push(p);
                }
                if version >= 8 && request.include_topic_authorized_operations {
                    t.topic_authorized_operations = (seen.topic_operations)(&topic.name);
                }
                t.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
            }
            None => {
                t.error_code = match &name {
                    None => ec::UNKNOWN_TOPIC_ID,
                    Some(n) if topics::validate_name(n).is_err() => ec::INVALID_TOPIC_EXCEPTION,
                    Some(_) => ec::UNKNOWN_TOPIC_OR_PARTITION,
                };
                t.topic_id = id;
                t.name = name.map(TopicName);
            }
        }
        r.topics.push(t);
    }
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        r.cluster_authorized_operations = seen.cluster_operations;
    }
    r
}
