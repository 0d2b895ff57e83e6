//! The answers Kafka gives a request refused whole, each in the
//! request's shape (one result per topic, partition, group, user or ACL
//! asked about), so clients report the error where they look for it,
//! and each carrying the throttle the request's quota earned:
//! - to a principal the ACLs refuse: a group request without the group's
//!   permission (`GROUP_AUTHORIZATION_FAILED`), a cluster request without
//!   the cluster's (`CLUSTER_AUTHORIZATION_FAILED`), a transaction
//!   request without WRITE on its transactional id
//!   (`TRANSACTIONAL_ID_AUTHORIZATION_FAILED`);
//! - to a request whose handling failed on a bug of the broker's own (a
//!   panic on the group coordinator or the admin thread):
//!   `UNKNOWN_SERVER_ERROR`, as Kafka's `getErrorResponse` answers an
//!   unexpected exception, and the connection stays open.
//!
//! Plain functions over `kafka-protocol`'s messages.

use super::sequencer::{encoded, Frame};
use super::transactions::{add_partitions_answer, txn_offsets_answer};
use crate::protocol::throttle::ThrottleTime;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};

/// Where a refusal goes: the request's correlation id and version, and
/// the throttle (ms) its request quota earned on the loop.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refusal {
    pub correlation_id: i32,
    pub version: i16,
    pub throttle_ms: i32,
}

impl Refusal {
    fn frame<M: Encodable + HeaderVersion + ThrottleTime>(self, mut body: M) -> Frame {
        body.throttle_at_least(self.throttle_ms);
        encoded(self.correlation_id, self.version, &body)
    }
}

/// The group a group request names (the groups, for those naming
/// several), with the ACL operation it needs; `None` for requests that
/// are not group requests or are checked elsewhere.
pub(crate) fn groups_of(request: &RequestKind) -> Option<(Vec<&str>, i8)> {
    use crate::security::acl::op;
    fn one(g: &GroupId) -> Vec<&str> {
        vec![g.0.as_str()]
    }
    Some(match request {
        RequestKind::JoinGroup(r) => (one(&r.group_id), op::READ),
        RequestKind::SyncGroup(r) => (one(&r.group_id), op::READ),
        RequestKind::Heartbeat(r) => (one(&r.group_id), op::READ),
        RequestKind::LeaveGroup(r) => (one(&r.group_id), op::READ),
        RequestKind::OffsetCommit(r) => (one(&r.group_id), op::READ),
        RequestKind::OffsetFetch(r) if r.groups.is_empty() => (one(&r.group_id), op::DESCRIBE),
        RequestKind::OffsetFetch(r) => (
            r.groups.iter().map(|g| g.group_id.0.as_str()).collect(),
            op::DESCRIBE,
        ),
        RequestKind::DescribeGroups(r) => (
            r.groups.iter().map(|g| g.0.as_str()).collect(),
            op::DESCRIBE,
        ),
        RequestKind::ConsumerGroupHeartbeat(r) => (one(&r.group_id), op::READ),
        RequestKind::ConsumerGroupDescribe(r) => (
            r.group_ids.iter().map(|g| g.0.as_str()).collect(),
            op::DESCRIBE,
        ),
        RequestKind::DeleteGroups(r) => (
            r.groups_names.iter().map(|g| g.0.as_str()).collect(),
            op::DELETE,
        ),
        RequestKind::OffsetDelete(r) => (one(&r.group_id), op::DELETE),
        RequestKind::ShareGroupHeartbeat(r) => (one(&r.group_id), op::READ),
        RequestKind::ShareGroupDescribe(r) => (
            r.group_ids.iter().map(|g| g.0.as_str()).collect(),
            op::DESCRIBE,
        ),
        RequestKind::ShareFetch(r) => (r.group_id.iter().map(|g| g.0.as_str()).collect(), op::READ),
        RequestKind::ShareAcknowledge(r) => {
            (r.group_id.iter().map(|g| g.0.as_str()).collect(), op::READ)
        }
        RequestKind::DescribeShareGroupOffsets(r) => (
            r.groups.iter().map(|g| g.group_id.0.as_str()).collect(),
            op::DESCRIBE,
        ),
        RequestKind::AlterShareGroupOffsets(r) => (one(&r.group_id), op::READ),
        RequestKind::DeleteShareGroupOffsets(r) => (one(&r.group_id), op::DELETE),
        RequestKind::AddOffsetsToTxn(r) => (one(&r.group_id), op::READ),
        RequestKind::TxnOffsetCommit(r) => (one(&r.group_id), op::READ),
        _ => return None,
    })
}

/// The transactional id a transaction request names (WRITE on it is
/// needed); `None` for other requests.
pub(crate) fn transactional_id_of(request: &RequestKind) -> Option<&str> {
    Some(match request {
        RequestKind::InitProducerId(r) => r.transactional_id.as_ref()?.0.as_str(),
        RequestKind::AddPartitionsToTxn(r) => r.v3_and_below_transactional_id.0.as_str(),
        RequestKind::AddOffsetsToTxn(r) => r.transactional_id.0.as_str(),
        RequestKind::TxnOffsetCommit(r) => r.transactional_id.0.as_str(),
        RequestKind::EndTxn(r) => r.transactional_id.0.as_str(),
        _ => return None,
    })
}

/// The answer to a transaction request refused whole (`error`: the
/// transactional id's refusal, or the group's for the two naming one).
pub(crate) fn txn_request(request: &RequestKind, to: Refusal, e: i16) -> Option<Frame> {
    Some(match request {
        RequestKind::InitProducerId(_) => {
            let mut r = InitProducerIdResponse::default();
            r.error_code = e;
            r.producer_id = ProducerId(-1);
            r.producer_epoch = -1;
            to.frame(r)
        }
        RequestKind::AddPartitionsToTxn(req) => {
            let topics = req.v3_and_below_topics.iter().map(|t| {
                (
                    t.name.clone(),
                    t.partitions.iter().map(|&i| (i, e)).collect(),
                )
            });
            to.frame(add_partitions_answer(topics))
        }
        RequestKind::AddOffsetsToTxn(_) => {
            let mut r = AddOffsetsToTxnResponse::default();
            r.error_code = e;
            to.frame(r)
        }
        RequestKind::EndTxn(_) => {
            let mut r = EndTxnResponse::default();
            r.error_code = e;
            to.frame(r)
        }
        RequestKind::TxnOffsetCommit(req) => to.frame(txn_offsets_answer(req, |_, _| e)),
        _ => return None,
    })
}

/// The answer to a group request refused whole with error `e`.
pub(crate) fn group_request(request: &RequestKind, to: Refusal, e: i16) -> Option<Frame> {
    let frame = |body: &dyn Fn() -> Frame| Some(body());
    match request {
        RequestKind::JoinGroup(_) => frame(&|| {
            let mut r = JoinGroupResponse::default();
            r.error_code = e;
            r.generation_id = -1;
            to.frame(r)
        }),
        RequestKind::SyncGroup(_) => frame(&|| {
            let mut r = SyncGroupResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::Heartbeat(_) => frame(&|| {
            let mut r = HeartbeatResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::LeaveGroup(_) => frame(&|| {
            let mut r = LeaveGroupResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::OffsetCommit(req) => frame(&|| {
            let mut r = OffsetCommitResponse::default();
            for t in &req.topics {
                let mut rt = offset_commit_response::OffsetCommitResponseTopic::default();
                rt.name = t.name.clone();
                for p in &t.partitions {
                    let mut rp = offset_commit_response::OffsetCommitResponsePartition::default();
                    rp.partition_index = p.partition_index;
                    rp.error_code = e;
                    rt.partitions.push(rp);
                }
                r.topics.push(rt);
            }
            to.frame(r)
        }),
        RequestKind::OffsetFetch(req) => frame(&|| {
            let mut r = OffsetFetchResponse::default();
            r.error_code = e;
            for g in &req.groups {
                let mut rg = offset_fetch_response::OffsetFetchResponseGroup::default();
                rg.group_id = g.group_id.clone();
                rg.error_code = e;
                r.groups.push(rg);
            }
            to.frame(r)
        }),
        RequestKind::DescribeGroups(req) => frame(&|| {
            let mut r = DescribeGroupsResponse::default();
            for g in &req.groups {
                let mut d = describe_groups_response::DescribedGroup::default();
                d.group_id = g.clone();
                d.error_code = e;
                r.groups.push(d);
            }
            to.frame(r)
        }),
        RequestKind::ConsumerGroupHeartbeat(_) => frame(&|| {
            let mut r = ConsumerGroupHeartbeatResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::ShareGroupHeartbeat(_) => frame(&|| {
            let mut r = ShareGroupHeartbeatResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::ShareGroupDescribe(req) => frame(&|| {
            let mut r = ShareGroupDescribeResponse::default();
            for g in &req.group_ids {
                let mut d = share_group_describe_response::DescribedGroup::default();
                d.group_id = g.clone();
                d.error_code = e;
                r.groups.push(d);
            }
            to.frame(r)
        }),
        RequestKind::ShareFetch(_) => frame(&|| {
            let mut r = ShareFetchResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::ShareAcknowledge(_) => frame(&|| {
            let mut r = ShareAcknowledgeResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::DescribeShareGroupOffsets(req) => frame(&|| {
            let mut r = DescribeShareGroupOffsetsResponse::default();
            for g in &req.groups {
                let mut d =
                    describe_share_group_offsets_response::DescribeShareGroupOffsetsResponseGroup::default();
                d.group_id = g.group_id.clone();
                d.error_code = e;
                r.groups.push(d);
            }
            to.frame(r)
        }),
        RequestKind::AlterShareGroupOffsets(_) => frame(&|| {
            let mut r = AlterShareGroupOffsetsResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::DeleteShareGroupOffsets(_) => frame(&|| {
            let mut r = DeleteShareGroupOffsetsResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::ConsumerGroupDescribe(req) => frame(&|| {
            let mut r = ConsumerGroupDescribeResponse::default();
            for g in &req.group_ids {
                let mut d = consumer_group_describe_response::DescribedGroup::default();
                d.group_id = g.clone();
                d.error_code = e;
                r.groups.push(d);
            }
            to.frame(r)
        }),
        RequestKind::DeleteGroups(req) => frame(&|| {
            let mut r = DeleteGroupsResponse::default();
            for g in &req.groups_names {
                let mut d = delete_groups_response::DeletableGroupResult::default();
                d.group_id = g.clone();
                d.error_code = e;
                r.results.push(d);
            }
            to.frame(r)
        }),
        RequestKind::OffsetDelete(_) => frame(&|| {
            let mut r = OffsetDeleteResponse::default();
            r.error_code = e;
            to.frame(r)
        }),
        RequestKind::AddOffsetsToTxn(_) | RequestKind::TxnOffsetCommit(_) => {
            txn_request(request, to, e)
        }
        _ => None,
    }
}

/// The answer to any request the group coordinator handles (groups,
/// offsets, transactions), refused whole with error `e`.
pub(crate) fn coordinator_request(request: &RequestKind, to: Refusal, e: i16) -> Option<Frame> {
    let frame = match request {
        RequestKind::ListGroups(_) => {
            let mut r = ListGroupsResponse::default();
            r.error_code = e;
            to.frame(r)
        }
        RequestKind::ListTransactions(_) => {
            let mut r = ListTransactionsResponse::default();
            r.error_code = e;
            to.frame(r)
        }
        RequestKind::DescribeTransactions(req) => {
            let mut r = DescribeTransactionsResponse::default();
            for id in &req.transactional_ids {
                let mut state = describe_transactions_response::TransactionState::default();
                state.transactional_id = id.clone();
                state.error_code = e;
                state.producer_id = ProducerId(-1);
                state.producer_epoch = -1;
                r.transaction_states.push(state);
            }
            to.frame(r)
        }
        _ => return group_request(request, to, e).or_else(|| txn_request(request, to, e)),
    };
    Some(frame)
}

/// Why a cluster request the ACLs refuse is refused.
pub(crate) const NOT_THE_CLUSTERS: &str = "the principal may not do this to the cluster";

/// Why a request whose handling panicked is answered
/// `UNKNOWN_SERVER_ERROR` (Kafka's words for it).
pub(crate) const UNEXPECTED: &str =
    "The server experienced an unexpected error when processing the request.";

/// The answer to a cluster request (ACLs, SCRAM users) refused whole
/// with error `e`, saying `why`.
pub(crate) fn cluster_request(
    request: &RequestKind,
    to: Refusal,
    e: i16,
    why: &'static str,
) -> Option<Frame> {
    Some(match request {
        RequestKind::DescribeAcls(_) => {
            let mut r = DescribeAclsResponse::default();
            r.error_code = e;
            r.error_message = Some(StrBytes::from_static_str(why));
            to.frame(r)
        }
        RequestKind::CreateAcls(req) => create_acls(req, to, e, why),
        RequestKind::DeleteAcls(req) => delete_acls(req, to, e, why),
        RequestKind::DescribeUserScramCredentials(_) => {
            let mut r = DescribeUserScramCredentialsResponse::default();
            r.error_code = e;
            r.error_message = Some(StrBytes::from_static_str(why));
            to.frame(r)
        }
        RequestKind::AlterUserScramCredentials(req) => alter_scram_users(req, to, e, why),
        _ => return None,
    })
}

/// CreateAcls refused whole: each creation answered `e`, saying `why`.
pub(crate) fn create_acls(
    req: &CreateAclsRequest,
    to: Refusal,
    e: i16,
    why: &'static str,
) -> Frame {
    let mut r = CreateAclsResponse::default();
    for _ in &req.creations {
        let mut c = create_acls_response::AclCreationResult::default();
        c.error_code = e;
        c.error_message = Some(StrBytes::from_static_str(why));
        r.results.push(c);
    }
    to.frame(r)
}

/// DeleteAcls refused whole: each filter answered `e`, saying `why`.
pub(crate) fn delete_acls(
    req: &DeleteAclsRequest,
    to: Refusal,
    e: i16,
    why: &'static str,
) -> Frame {
    let mut r = DeleteAclsResponse::default();
    for _ in &req.filters {
        let mut f = delete_acls_response::DeleteAclsFilterResult::default();
        f.error_code = e;
        f.error_message = Some(StrBytes::from_static_str(why));
        r.filter_results.push(f);
    }
    to.frame(r)
}

/// AlterUserScramCredentials refused whole: each user named answered
/// `e`, saying `why`.
pub(crate) fn alter_scram_users(
    req: &AlterUserScramCredentialsRequest,
    to: Refusal,
    e: i16,
    why: &'static str,
) -> Frame {
    let mut r = AlterUserScramCredentialsResponse::default();
    let users = req
        .deletions
        .iter()
        .map(|d| d.name.clone())
        .chain(req.upsertions.iter().map(|u| u.name.clone()));
    for user in users {
        let mut u =
            alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default();
        u.user = user;
        u.error_code = e;
        u.error_message = Some(StrBytes::from_static_str(why));
        r.results.push(u);
    }
    to.frame(r)
}

/// AlterClientQuotas refused whole: each entry answered `e`, saying
/// `why`, under its entity.
pub(crate) fn alter_client_quotas(
    req: &AlterClientQuotasRequest,
    to: Refusal,
    e: i16,
    why: &'static str,
) -> Frame {
    let mut r = AlterClientQuotasResponse::default();
    for entry in &req.entries {
        let mut out = alter_client_quotas_response::EntryData::default();
        for entity in &entry.entity {
            let mut d = alter_client_quotas_response::EntityData::default();
            d.entity_type = entity.entity_type.clone();
            d.entity_name = entity.entity_name.clone();
            out.entity.push(d);
        }
        out.error_code = e;
        out.error_message = Some(StrBytes::from_static_str(why));
        r.entries.push(out);
    }
    to.frame(r)
}

/// UpdateFeatures refused whole with `e`.
pub(crate) fn update_features(
    req: &UpdateFeaturesRequest,
    to: Refusal,
    e: i16,
    why: &'static str,
) -> Frame {
    to.frame(super::features::answer(
        req,
        to.version,
        e,
        Some(why.to_owned()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::error_code as ec;
    use bytes::Buf;
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn a_refusal_carries_the_throttle_its_request_quota_earned() {
        let to = Refusal {
            correlation_id: 9,
            version: 4,
            throttle_ms: 7,
        };
        let request = RequestKind::Heartbeat(HeartbeatRequest::default());
        let Some(Frame::Bytes(mut b)) = group_request(&request, to, ec::GROUP_AUTHORIZATION_FAILED)
        else {
            panic!("no frame");
        };
        // Size, correlation id, the flexible header's tags.
        b.advance(4);
        assert_eq!(b.get_i32(), 9);
        b.advance(1);
        let r = HeartbeatResponse::decode(&mut b, 4).unwrap();
        assert_eq!(
            (r.error_code, r.throttle_time_ms),
            (ec::GROUP_AUTHORIZATION_FAILED, 7)
        );
    }

    /// Every request the connection hands the group coordinator has an
    /// answer for a panic at every version the broker takes: none falls
    /// back to closing the connection.
    #[test]
    fn every_coordinator_request_has_an_error_answer_at_every_version() {
        let mut txn_init = InitProducerIdRequest::default();
        txn_init.transactional_id = Some(TransactionalId(StrBytes::from_static_str("t")));
        let kinds = [
            (
                ApiKey::JoinGroup,
                RequestKind::JoinGroup(Default::default()),
            ),
            (
                ApiKey::SyncGroup,
                RequestKind::SyncGroup(Default::default()),
            ),
            (
                ApiKey::Heartbeat,
                RequestKind::Heartbeat(Default::default()),
            ),
            (
                ApiKey::LeaveGroup,
                RequestKind::LeaveGroup(Default::default()),
            ),
            (
                ApiKey::OffsetCommit,
                RequestKind::OffsetCommit(Default::default()),
            ),
            (
                ApiKey::OffsetFetch,
                RequestKind::OffsetFetch(Default::default()),
            ),
            (
                ApiKey::DescribeGroups,
                RequestKind::DescribeGroups(Default::default()),
            ),
            (
                ApiKey::ConsumerGroupHeartbeat,
                RequestKind::ConsumerGroupHeartbeat(Default::default()),
            ),
            (
                ApiKey::ConsumerGroupDescribe,
                RequestKind::ConsumerGroupDescribe(Default::default()),
            ),
            (
                ApiKey::ListGroups,
                RequestKind::ListGroups(Default::default()),
            ),
            (
                ApiKey::ShareGroupHeartbeat,
                RequestKind::ShareGroupHeartbeat(Default::default()),
            ),
            (
                ApiKey::ShareGroupDescribe,
                RequestKind::ShareGroupDescribe(Default::default()),
            ),
            (
                ApiKey::DeleteGroups,
                RequestKind::DeleteGroups(Default::default()),
            ),
            (
                ApiKey::OffsetDelete,
                RequestKind::OffsetDelete(Default::default()),
            ),
            (
                ApiKey::InitProducerId,
                RequestKind::InitProducerId(txn_init),
            ),
            (
                ApiKey::AddPartitionsToTxn,
                RequestKind::AddPartitionsToTxn(Default::default()),
            ),
            (
                ApiKey::AddOffsetsToTxn,
                RequestKind::AddOffsetsToTxn(Default::default()),
            ),
            (
                ApiKey::TxnOffsetCommit,
                RequestKind::TxnOffsetCommit(Default::default()),
            ),
            (ApiKey::EndTxn, RequestKind::EndTxn(Default::default())),
            (
                ApiKey::DescribeTransactions,
                RequestKind::DescribeTransactions(Default::default()),
            ),
            (
                ApiKey::ListTransactions,
                RequestKind::ListTransactions(Default::default()),
            ),
        ];
        for (key, request) in &kinds {
            let range = crate::protocol::versions::range_of(*key).expect("supported");
            for version in range.min..=range.max {
                let to = Refusal {
                    correlation_id: 1,
                    version,
                    throttle_ms: 0,
                };
                let frame = coordinator_request(request, to, ec::UNKNOWN_SERVER_ERROR);
                assert!(matches!(frame, Some(Frame::Bytes(_))), "{key:?} v{version}");
            }
        }
    }

    #[test]
    fn a_describe_transactions_error_names_each_id_asked_about() {
        let to = Refusal {
            correlation_id: 3,
            version: 0,
            throttle_ms: 0,
        };
        let mut req = DescribeTransactionsRequest::default();
        for id in ["a", "b"] {
            req.transactional_ids
                .push(TransactionalId(StrBytes::from_static_str(id)));
        }
        let request = RequestKind::DescribeTransactions(req);
        let Some(Frame::Bytes(mut b)) = coordinator_request(&request, to, -1) else {
            panic!("no frame");
        };
        // Size, correlation id, the flexible header's tags.
        b.advance(4 + 4 + 1);
        let r = DescribeTransactionsResponse::decode(&mut b, 0).unwrap();
        let states: Vec<(&str, i16, i64)> = r
            .transaction_states
            .iter()
            .map(|t| (t.transactional_id.as_str(), t.error_code, t.producer_id.0))
            .collect();
        assert_eq!(states, [("a", -1, -1), ("b", -1, -1)]);
    }
}
