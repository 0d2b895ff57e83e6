//! The answers Kafka gives a principal the ACLs refuse, for the requests
//! refused whole: a group request without the group's permission
//! (`GROUP_AUTHORIZATION_FAILED`), a cluster request without the
//! cluster's (`CLUSTER_AUTHORIZATION_FAILED`), a transaction request
//! without WRITE on its transactional id
//! (`TRANSACTIONAL_ID_AUTHORIZATION_FAILED`). Each keeps the request's
//! shape (one result per topic, partition, group or user asked about), so
//! clients report the error where they look for it, and carries the
//! throttle the request's quota earned. Plain functions over
//! `kafka-protocol`'s messages.

use super::sequencer::{encoded, Frame};
use super::transactions::{add_partitions_answer, txn_offsets_answer};
use crate::protocol::error_code as ec;
use crate::protocol::throttle::ThrottleTime;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, HeaderVersion};

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

/// The answer to a group request refused whole.
pub(crate) fn group_request(request: &RequestKind, to: Refusal) -> Option<Frame> {
    let e = ec::GROUP_AUTHORIZATION_FAILED;
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

/// The answer to a cluster request (ACLs, SCRAM users) refused whole.
pub(crate) fn cluster_request(request: &RequestKind, to: Refusal) -> Option<Frame> {
    let e = ec::CLUSTER_AUTHORIZATION_FAILED;
    let why = Some(kafka_protocol::protocol::StrBytes::from_static_str(
        "the principal may not do this to the cluster",
    ));
    Some(match request {
        RequestKind::DescribeAcls(_) => {
            let mut r = DescribeAclsResponse::default();
            r.error_code = e;
            r.error_message = why;
            to.frame(r)
        }
        RequestKind::CreateAcls(req) => {
            let mut r = CreateAclsResponse::default();
            for _ in &req.creations {
                let mut c = create_acls_response::AclCreationResult::default();
                c.error_code = e;
                c.error_message = why.clone();
                r.results.push(c);
            }
            to.frame(r)
        }
        RequestKind::DeleteAcls(req) => {
            let mut r = DeleteAclsResponse::default();
            for _ in &req.filters {
                let mut f = delete_acls_response::DeleteAclsFilterResult::default();
                f.error_code = e;
                f.error_message = why.clone();
                r.filter_results.push(f);
            }
            to.frame(r)
        }
        RequestKind::DescribeUserScramCredentials(_) => {
            let mut r = DescribeUserScramCredentialsResponse::default();
            r.error_code = e;
            r.error_message = why;
            to.frame(r)
        }
        RequestKind::AlterUserScramCredentials(req) => {
            let mut r = AlterUserScramCredentialsResponse::default();
            let users = req
                .deletions
                .iter()
                .map(|d| d.name.clone())
                .chain(req.upsertions.iter().map(|u| u.name.clone()));
            for user in users {
                let mut u =
                    alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default(
                    );
                u.user = user;
                u.error_code = e;
                u.error_message = why.clone();
                r.results.push(u);
            }
            to.frame(r)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let Some(Frame::Bytes(mut b)) = group_request(&request, to) else {
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
}
