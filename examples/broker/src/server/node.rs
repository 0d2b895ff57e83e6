//! Answers about this broker as a node, which need nothing but the
//! request and the broker's address: FindCoordinator (every group's
//! coordinator is this broker), DescribeCluster (a cluster of one), and
//! InitProducerId for idempotent producers (a transactional id's goes to
//! the transaction coordinator). Plain functions from request to
//! response; uses the shared state's producer-id counter only.

use super::shared::Shared;
use crate::protocol::error_code as ec;
use crate::security::acl::op;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, DescribeClusterRequest, DescribeClusterResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;

/// The cluster id the broker reports (Metadata, DescribeCluster).
pub const CLUSTER_ID: &str = "gyre";

/// The coordinator key types: a group, a transactional id and (v6,
/// KIP-932) a share partition, `group:topic-id:partition`, whose
/// coordinator keeps the share group's delivery state.
pub mod key_type {
    /// A group id.
    pub const GROUP: i8 = 0;
    /// A transactional id.
    pub const TRANSACTION: i8 = 1;
    /// A share partition (v6).
    pub const SHARE: i8 = 2;
}

/// FindCoordinator: this broker, for every key. From v4 (KIP-699) the
/// request batches keys and the response answers each. `refused` says
/// what error a key of a type gets (an ACL's), `ec::NONE` for none; a
/// key type Kafka does not know at `version` is `INVALID_REQUEST`. A
/// refused key is answered with node -1, as Kafka answers it.
pub fn find_coordinator(
    request: FindCoordinatorRequest,
    version: i16,
    advertised: (String, u16),
    refused: impl Fn(i8, &str) -> i16,
) -> FindCoordinatorResponse {
    let mut r = FindCoordinatorResponse::default();
    let (host, port) = advertised;
    let kind = request.key_type;
    let known = match kind {
        key_type::GROUP | key_type::TRANSACTION => true,
        key_type::SHARE => version >= 6,
        _ => false,
    };
    let error = |key: &str| {
        if known {
            refused(kind, key)
        } else {
            ec::INVALID_REQUEST
        }
    };
    if version >= 4 {
        for key in request.coordinator_keys {
            let mut c = Coordinator::default();
            c.error_code = error(key.as_str());
            c.key = key;
            if c.error_code == ec::NONE {
                c.node_id = BrokerId(0);
                c.host = StrBytes::from_string(host.clone());
                c.port = i32::from(port);
            } else {
                c.node_id = BrokerId(-1);
                c.port = -1;
            }
            r.coordinators.push(c);
        }
    } else {
        r.error_code = error(request.key.as_str());
        if r.error_code == ec::NONE {
            r.node_id = BrokerId(0);
            r.host = StrBytes::from_string(host);
            r.port = i32::from(port);
        } else {
            r.node_id = BrokerId(-1);
            r.port = -1;
        }
    }
    r
}

/// DescribeCluster: this broker, alone, as node 0 and controller. Only
/// the broker endpoint type (1) exists here; asking for controllers (2)
/// gets Kafka's answer for a broker that is not one.
pub fn describe_cluster(
    request: &DescribeClusterRequest,
    version: i16,
    advertised: (String, u16),
    cluster_operations: i32,
) -> DescribeClusterResponse {
    let mut r = DescribeClusterResponse::default();
    if version >= 1 && request.endpoint_type != 1 {
        r.error_code = ec::UNSUPPORTED_ENDPOINT_TYPE;
        r.error_message = Some(StrBytes::from_static_str(
            "this broker only answers for broker endpoints (type 1)",
        ));
        return r;
    }
    r.endpoint_type = 1;
    r.cluster_id = StrBytes::from_static_str(CLUSTER_ID);
    r.controller_id = BrokerId(0);
    let mut b = DescribeClusterBroker::default();
    b.broker_id = BrokerId(0);
    b.host = StrBytes::from_string(advertised.0);
    b.port = i32::from(advertised.1);
    r.brokers.push(b);
    r.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        cluster_operations
    } else {
        i32::MIN // not asked for
    };
    r
}

/// What the cluster's ACLs let a principal do, as Kafka's bit set of
/// operation codes (`cluster_authorized_operations`): the cluster
/// operations `may` allows.
pub fn cluster_operations(may: impl Fn(i8) -> bool) -> i32 {
    op::bits(&op::ON_CLUSTER, may)
}

/// InitProducerId without a transactional id: an idempotent producer
/// gets a new id at epoch 0; from v3 one that names its id and epoch
/// (KIP-360, after a sequence error or a timeout) gets the same id at the
/// next epoch, so its batches start again at sequence 0 and older ones
/// are fenced.
pub fn init_producer_id(
    shared: &Shared,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    debug_assert!(request.transactional_id.is_none());
    let mut r = InitProducerIdResponse::default();
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        r.producer_id = ProducerId(id);
        r.producer_epoch = epoch + 1;
    } else if let Some(id) = shared.producer_ids.next() {
        r.producer_id = ProducerId(id);
        r.producer_epoch = 0;
    } else {
        // The next block of ids is being recorded (Kafka's answer when
        // its controller has no block ready): the client asks again.
        r.producer_id = ProducerId(-1);
        r.producer_epoch = -1;
        r.error_code = ec::COORDINATOR_LOAD_IN_PROGRESS;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(version: i16, kind: i8, refused: i16) -> Vec<(i16, i32, i32)> {
        let mut r = FindCoordinatorRequest::default();
        r.key_type = kind;
        if version >= 4 {
            r.coordinator_keys = vec![StrBytes::from_static_str("k")];
        } else {
            r.key = StrBytes::from_static_str("k");
        }
        let answer = find_coordinator(r, version, ("h".to_owned(), 9092), |_, _| refused);
        if version >= 4 {
            let one = answer.coordinators.iter();
            one.map(|c| (c.error_code, c.node_id.0, c.port)).collect()
        } else {
            vec![(answer.error_code, answer.node_id.0, answer.port)]
        }
    }

    #[test]
    fn a_key_is_found_here_unless_refused_or_of_a_type_kafka_does_not_know_at_the_version() {
        for version in [0, 3, 4, 6] {
            assert_eq!(find(version, key_type::GROUP, ec::NONE), [(0, 0, 9092)]);
        }
        assert_eq!(find(6, key_type::SHARE, ec::NONE), [(0, 0, 9092)]);
        // Refused (an ACL's error), or unknown: no node.
        let refused = ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        assert_eq!(find(1, key_type::TRANSACTION, refused), [(refused, -1, -1)]);
        assert_eq!(find(4, key_type::TRANSACTION, refused), [(refused, -1, -1)]);
        assert_eq!(
            find(5, key_type::SHARE, ec::NONE),
            [(ec::INVALID_REQUEST, -1, -1)]
        );
        assert_eq!(find(6, 3, ec::NONE), [(ec::INVALID_REQUEST, -1, -1)]);
        assert_eq!(find(2, -1, ec::NONE), [(ec::INVALID_REQUEST, -1, -1)]);
    }
}
