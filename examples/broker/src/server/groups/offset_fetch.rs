//! OffsetFetch answers, v1 to v8: the offsets a group committed, for the
//! partitions asked for (none committed: -1) or, with no topics named, all
//! of them. Up to v7 a request asks for one group; v8 (KIP-709) batches
//! several, each answered in its own entry. A request asking for stable
//! offsets (v7+, KIP-447) gets UNSTABLE_OFFSET_COMMIT for a partition a
//! transaction not yet ended has an offset for, and retries. Plain
//! functions over the offset store.

use super::offsets::{Committed, OffsetStore};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

/// One partition's index, committed offset (-1: none), the leader epoch
/// the committer read it in (-1: none) and metadata.
type Entry = (i32, i64, i32, Option<StrBytes>);

/// The group's committed offsets of `asked` (topics and partitions), or
/// all of them when `asked` is `None`; by topic, in order.
fn committed(
    store: &OffsetStore,
    group: &str,
    asked: Option<Vec<(TopicName, &[i32])>>,
) -> Vec<(TopicName, Vec<Entry>)> {
    let entry = |index: i32, c: Option<&Committed>| -> Entry {
        let metadata = c.and_then(|c| c.metadata.clone()).unwrap_or_default();
        (
            index,
            c.map_or(-1, |c| c.offset),
            c.map_or(-1, |c| c.leader_epoch),
            Some(StrBytes::from_string(metadata)),
        )
    };
    match asked {
        Some(topics) => topics
            .into_iter()
            .map(|(name, indexes)| {
                let parts = indexes
                    .iter()
                    .map(|&i| entry(i, store.get(group, name.0.as_str(), i)))
                    .collect();
                (name, parts)
            })
            .collect(),
        None => {
            let mut by_topic: Vec<(TopicName, Vec<Entry>)> = Vec::new();
            for (topic, index, c) in store.of_group(group) {
                if by_topic.last().is_none_or(|(t, _)| t.0.as_str() != topic) {
                    by_topic.push((
                        TopicName(StrBytes::from_string(topic.to_owned())),
                        Vec::new(),
                    ));
                }
                by_topic
                    .last_mut()
                    .expect("pushed")
                    .1
                    .push(entry(index, Some(c)));
            }
            by_topic
        }
    }
}

/// The response topics of `committed`, in the types of one version range
/// (the classic and the batched responses have types of their own with the
/// same fields).
macro_rules! response_topics {
    ($committed:expr, $topic:ty, $partition:ty) => {
        $committed
            .into_iter()
            .map(|(name, parts)| {
                let mut topic = <$topic>::default();
                topic.name = name;
                topic.partitions = parts
                    .into_iter()
                    .map(|(index, offset, leader_epoch, metadata)| {
                        let mut p = <$partition>::default();
                        p.partition_index = index;
                        p.committed_offset = offset;
                        p.committed_leader_epoch = leader_epoch;
                        p.metadata = metadata;
                        p
                    })
                    .collect();
                topic
            })
            .collect()
    };
}

/// The answer to `r` at `version`; `pending` says whether a transaction
/// not yet ended has an offset for (group, topic, partition).
pub(super) fn answer(
    store: &OffsetStore,
    r: &OffsetFetchRequest,
    version: i16,
    pending: impl Fn(&str, &str, i32) -> bool,
) -> OffsetFetchResponse {
    let stable = r.require_stable;
    let group_id = r.group_id.clone();
    let mut resp = as_committed(store, r, version);
    if !stable {
        return resp;
    }
    const UNSTABLE: i16 = crate::protocol::error_code::UNSTABLE_OFFSET_COMMIT;
    for t in &mut resp.topics {
        for p in &mut t.partitions {
            if pending(group_id.0.as_str(), t.name.0.as_str(), p.partition_index) {
                p.error_code = UNSTABLE;
            }
        }
    }
    for g in &mut resp.groups {
        for t in &mut g.topics {
            for p in &mut t.partitions {
                if pending(g.group_id.0.as_str(), t.name.0.as_str(), p.partition_index) {
                    p.error_code = UNSTABLE;
                }
            }
        }
    }
    resp
}

/// The answer to `r` at `version`, every partition as committed.
fn as_committed(store: &OffsetStore, r: &OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
    if version < 8 {
        let asked = r.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.clone(), &t.partition_indexes[..]))
                .collect()
        });
        let committed = committed(store, r.group_id.0.as_str(), asked);
        resp.topics = response_topics!(
            committed,
            OffsetFetchResponseTopic,
            OffsetFetchResponsePartition
        );
        return resp;
    }
    for g in &r.groups {
        let asked = g.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.clone(), &t.partition_indexes[..]))
                .collect()
        });
        let committed = committed(store, g.group_id.0.as_str(), asked);
        let mut group = OffsetFetchResponseGroup::default();
        group.topics = response_topics!(
            committed,
            OffsetFetchResponseTopics,
            OffsetFetchResponsePartitions
        );
        group.group_id = g.group_id.clone();
        resp.groups.push(group);
    }
    resp
}
