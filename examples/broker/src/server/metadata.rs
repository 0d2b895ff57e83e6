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

/// The response to `request`, from the catalog as it is now; topics
/// `visible` refuses are left out of a listing of all, and answered
/// `TOPIC_AUTHORIZATION_FAILED` when asked for by name or id.
pub fn response(
    shared: &Shared,
    advertised: &(String, u16),
    request: &MetadataRequest,
    version: i16,
    visible: impl Fn(&str) -> bool,
) -> MetadataResponse {
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
    r
}
