//! The DescribeTopicPartitions response (KIP-966, v0): Metadata's
//! partitions of the topics asked for, or of all, a page at a time, as
//! Kafka answers it. Topics go in name order; a page holds at most
//! `response_partition_limit` partitions (and at most 2,000, Kafka's
//! `max.request.partition.size.limit`), and a cursor (topic, partition)
//! says where the next page starts. Topics the principal may not describe
//! are left out of a listing of all and answered
//! `TOPIC_AUTHORIZATION_FAILED`, after the page, when asked for by name.
//! Plain functions over the catalog.

use crate::protocol::error_code as ec;
use crate::security::acl::op;
use crate::topics::{self, Catalog, Topic};
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// The most partitions one response holds, whatever the request asks
/// (Kafka's `max.request.partition.size.limit` default).
pub const MAX_PARTITIONS: i32 = 2000;

/// The answer to `r`. `may_describe` says whether the principal may
/// describe a topic; `operations` gives the Kafka bit set of what it may
/// do to one (`topic_authorized_operations`).
pub fn response(
    catalog: &Catalog,
    r: &DescribeTopicPartitionsRequest,
    may_describe: impl Fn(&str) -> bool,
    operations: impl Fn(&str) -> i32,
) -> DescribeTopicPartitionsResponse {
    let mut resp = DescribeTopicPartitionsResponse::default();
    let all = r.topics.is_empty();
    let cursor_topic = r.cursor.as_ref().map_or("", |c| c.topic_name.0.as_str());
    // Every topic at or after the cursor's, once each, in name order;
    // a listing of all has each topic in hand already (one read of the
    // catalog), names asked for are looked up as their turn comes.
    let names: BTreeMap<String, Option<Arc<Topic>>> = if all {
        catalog
            .all()
            .into_iter()
            .map(|t| (t.name.clone(), Some(t)))
            .collect()
    } else {
        r.topics
            .iter()
            .map(|t| (t.name.0.to_string(), None))
            .collect()
    };
    let names: Vec<(String, Option<Arc<Topic>>)> = names
        .into_iter()
        .filter(|(n, _)| n.as_str() >= cursor_topic)
        .collect();
    if !all && r.cursor.is_some() && !names.iter().any(|(n, _)| n == cursor_topic) {
        // Kafka's InvalidRequestException: each topic asked for carries it.
        for t in &r.topics {
            resp.topics
                .push(failed(ec::INVALID_REQUEST, t.name.0.clone()));
        }
        return resp;
    }
    let (allowed, refused): (Vec<_>, Vec<_>) =
        names.into_iter().partition(|(n, _)| may_describe(n));
    let first_partition = match &r.cursor {
        Some(c) if may_describe(cursor_topic) => c.partition_index.max(0),
        _ => 0,
    };
    let leader_epoch = catalog.leader_epoch();
    let mut remaining = r.response_partition_limit.min(MAX_PARTITIONS);
    for (name, found) in allowed {
        if remaining == 0 {
            // The page is full at a topic's start: the next one starts
            // there.
            resp.next_cursor = Some(cursor(&name, 0));
            break;
        }
        if remaining < 0 {
            // A limit below zero answers nothing, as in Kafka.
            continue;
        }
        let Some(topic) = found.or_else(|| catalog.get(&name)) else {
            if !all {
                let code = match topics::validate_name(&name) {
                    Ok(()) => ec::UNKNOWN_TOPIC_OR_PARTITION,
                    Err(_) => ec::INVALID_TOPIC_EXCEPTION,
                };
                resp.topics
                    .push(failed(code, StrBytes::from_string(name.clone())));
            }
            continue;
        };
        let count = topic.partitions.len() as i32;
        let start = if name == cursor_topic {
            first_partition.min(count)
        } else {
            0
        };
        let end = start.saturating_add(remaining).min(count);
        let mut t = DescribeTopicPartitionsResponseTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(name.clone())));
        t.topic_id = topic.id;
        t.topic_authorized_operations = operations(&name);
        t.partitions = (start..end)
            .map(|index| {
                let mut p = DescribeTopicPartitionsResponsePartition::default();
                p.partition_index = index;
                p.leader_id = BrokerId(0);
                p.leader_epoch = leader_epoch;
                p.replica_nodes = vec![BrokerId(0)];
                p.isr_nodes = vec![BrokerId(0)];
                p.eligible_leader_replicas = Some(Vec::new());
                p.last_known_elr = Some(Vec::new());
                p
            })
            .collect();
        resp.topics.push(t);
        if end < count {
            resp.next_cursor = Some(cursor(&name, end));
            break;
        }
        remaining -= end - start;
    }
    for (name, _) in refused.into_iter().filter(|_| !all) {
        resp.topics.push(failed(
            ec::TOPIC_AUTHORIZATION_FAILED,
            StrBytes::from_string(name),
        ));
    }
    resp
}

/// What a topic's ACLs let a principal do, as Kafka's bit set of
/// operation codes (`topic_authorized_operations`): the topic operations
/// `may` allows.
pub fn operations(may: impl Fn(i8) -> bool) -> i32 {
    op::bits(&op::ON_TOPIC, may)
}

/// A topic answered with `code` alone (no id, no partitions).
fn failed(code: i16, name: StrBytes) -> DescribeTopicPartitionsResponseTopic {
    let mut t = DescribeTopicPartitionsResponseTopic::default();
    t.error_code = code;
    t.name = Some(TopicName(name));
    t.topic_id = Uuid::nil();
    t
}

fn cursor(topic: &str, partition: i32) -> Cursor {
    let mut c = Cursor::default();
    c.topic_name = TopicName(StrBytes::from_string(topic.to_owned()));
    c.partition_index = partition;
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::Topic;
    use kafka_protocol::messages::describe_topic_partitions_request;
    use std::sync::Arc;

    /// Topics `a` (3 partitions), `b` (2) and `c` (4), at leader epoch 7.
    fn catalog() -> Catalog {
        let catalog = Catalog::default();
        let mut next = 0;
        for (name, count) in [("b", 2), ("a", 3), ("c", 4)] {
            catalog.insert(Arc::new(Topic {
                name: name.into(),
                id: Uuid::from_u128(next as u128 + 1),
                partitions: (next..next + count).collect(),
                config: Default::default(),
            }));
            next += count;
        }
        catalog.set_leader_epoch(7);
        catalog
    }

    fn request(
        topics: &[&str],
        limit: i32,
        at: Option<(&str, i32)>,
    ) -> DescribeTopicPartitionsRequest {
        use describe_topic_partitions_request::{Cursor, TopicRequest};
        let mut r = DescribeTopicPartitionsRequest::default();
        for name in topics {
            let mut t = TopicRequest::default();
            t.name = TopicName(StrBytes::from_string(name.to_string()));
            r.topics.push(t);
        }
        r.response_partition_limit = limit;
        r.cursor = at.map(|(topic, partition)| {
            let mut c = Cursor::default();
            c.topic_name = TopicName(StrBytes::from_string(topic.to_owned()));
            c.partition_index = partition;
            c
        });
        r
    }

    /// Each topic answered: (name, error, partition indexes), and the
    /// next cursor.
    type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

    fn page(r: &DescribeTopicPartitionsRequest, may: impl Fn(&str) -> bool) -> Page {
        let resp = response(&catalog(), r, may, |_| 0);
        let topics = resp
            .topics
            .iter()
            .map(|t| {
                let name = t.name.as_ref().map_or(String::new(), |n| n.0.to_string());
                let parts = t.partitions.iter().map(|p| p.partition_index).collect();
                (name, t.error_code, parts)
            })
            .collect();
        let next = resp
            .next_cursor
            .map(|c| (c.topic_name.0.to_string(), c.partition_index));
        (topics, next)
    }

    fn everyone(_: &str) -> bool {
        true
    }

    fn t(name: &str, error: i16, parts: &[i32]) -> (String, i16, Vec<i32>) {
        (name.to_owned(), error, parts.to_vec())
    }

    #[test]
    fn every_topic_in_name_order_a_page_at_a_time() {
        let all = page(&request(&[], 2000, None), everyone);
        assert_eq!(
            all,
            (
                vec![
                    t("a", 0, &[0, 1, 2]),
                    t("b", 0, &[0, 1]),
                    t("c", 0, &[0, 1, 2, 3])
                ],
                None
            )
        );
        // Four a page: the cursor stops inside b, then inside c.
        let first = page(&request(&[], 4, None), everyone);
        assert_eq!(
            first,
            (
                vec![t("a", 0, &[0, 1, 2]), t("b", 0, &[0])],
                Some(("b".into(), 1))
            )
        );
        let second = page(&request(&[], 4, Some(("b", 1))), everyone);
        assert_eq!(
            second,
            (
                vec![t("b", 0, &[1]), t("c", 0, &[0, 1, 2])],
                Some(("c".into(), 3))
            )
        );
        let third = page(&request(&[], 4, Some(("c", 3))), everyone);
        assert_eq!(third, (vec![t("c", 0, &[3])], None));
        // A page filled at a topic's end points at the next topic's start.
        let exact = page(&request(&[], 3, None), everyone);
        assert_eq!(exact, (vec![t("a", 0, &[0, 1, 2])], Some(("b".into(), 0))));
        // At most 2,000 whatever is asked; and a limit below zero, nothing.
        assert_eq!(page(&request(&[], i32::MAX, None), everyone), all);
        assert_eq!(page(&request(&[], -1, None), everyone), (vec![], None));
    }

    #[test]
    fn each_partition_names_this_broker_and_the_leader_epoch() {
        let resp = response(&catalog(), &request(&["b"], 10, None), everyone, |_| 0b1000);
        let topic = &resp.topics[0];
        assert_eq!(
            (topic.topic_id, topic.topic_authorized_operations),
            (Uuid::from_u128(1), 8)
        );
        for p in &topic.partitions {
            assert_eq!((p.leader_id, p.leader_epoch), (BrokerId(0), 7));
            assert_eq!(
                (&p.replica_nodes, &p.isr_nodes),
                (&vec![BrokerId(0)], &vec![BrokerId(0)])
            );
            assert!(p.offline_replicas.is_empty());
        }
    }

    #[test]
    fn topics_named_are_answered_each_with_their_errors_last_the_refused() {
        let hidden = |n: &str| n != "b";
        let got = page(
            &request(&["c", "zz", "b", "a", "a", "bad name!"], 2000, None),
            hidden,
        );
        assert_eq!(
            got,
            (
                vec![
                    t("a", 0, &[0, 1, 2]),
                    t("bad name!", ec::INVALID_TOPIC_EXCEPTION, &[]),
                    t("c", 0, &[0, 1, 2, 3]),
                    t("zz", ec::UNKNOWN_TOPIC_OR_PARTITION, &[]),
                    t("b", ec::TOPIC_AUTHORIZATION_FAILED, &[]),
                ],
                None
            )
        );
        // Listing all leaves a refused topic out.
        let all = page(&request(&[], 2000, None), hidden);
        assert_eq!(
            all.0.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
    }

    #[test]
    fn a_cursor_must_name_a_topic_asked_for() {
        let got = page(&request(&["a", "c"], 2000, Some(("b", 0))), everyone);
        assert_eq!(
            got,
            (
                vec![
                    t("a", ec::INVALID_REQUEST, &[]),
                    t("c", ec::INVALID_REQUEST, &[])
                ],
                None
            )
        );
        // Topics before the cursor's are skipped; a cursor past a topic's
        // partitions answers it with none.
        let got = page(&request(&["a", "c"], 2000, Some(("c", 9))), everyone);
        assert_eq!(got, (vec![t("c", 0, &[])], None));
    }

    #[test]
    fn operations_are_kafkas_bits() {
        assert_eq!(operations(|_| false), 0);
        assert_eq!(
            operations(|o| o == op::READ || o == op::DESCRIBE),
            (1 << 3) | (1 << 8)
        );
        assert_eq!(operations(|_| true), 0b1101_1111_1000);
    }
}
