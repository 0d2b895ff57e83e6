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

/// The topic names a Metadata request asks for; `None` for all. In v0 an
/// empty list means all; later, a null list does.
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

/// The response to `request`, from the catalog as it is now.
pub fn response(
    shared: &Shared,
    advertised: &(String, u16),
    request: &MetadataRequest,
    version: i16,
) -> MetadataResponse {
    let mut r = MetadataResponse::default();
    let mut broker = MetadataResponseBroker::default();
    broker.node_id = BrokerId(0);
    broker.host = StrBytes::from_string(advertised.0.clone());
    broker.port = i32::from(advertised.1);
    r.brokers.push(broker);
    r.cluster_id = Some(StrBytes::from_static_str(super::node::CLUSTER_ID));
    r.controller_id = BrokerId(0);
    let names: Vec<StrBytes> = match requested(request, version) {
        Some(names) => names,
        None => shared
            .catalog
            .all()
            .iter()
            .map(|t| StrBytes::from_string(t.name.clone()))
            .collect(),
    };
    for name in names {
        let mut t = MetadataResponseTopic::default();
        match shared.catalog.get(&name) {
            Some(topic) => {
                for index in 0..topic.partitions.len() as i32 {
                    let mut p = MetadataResponsePartition::default();
                    p.partition_index = index;
                    p.leader_id = BrokerId(0);
                    p.leader_epoch = 0;
                    p.replica_nodes = vec![BrokerId(0)];
                    p.isr_nodes = vec![BrokerId(0)];
                    t.partitions.push(p);
                }
            }
            None if topics::validate_name(&name).is_err() => {
                t.error_code = ec::INVALID_TOPIC_EXCEPTION
            }
            None => t.error_code = ec::UNKNOWN_TOPIC_OR_PARTITION,
        }
        t.name = Some(TopicName(name));
        r.topics.push(t);
    }
    r
}
