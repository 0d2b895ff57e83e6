//! Kafka's replica and log-directory admin APIs, answered for what the
//! broker is: a cluster of one broker (node 0, the leader and only
//! replica of every partition) keeping every log in one directory.
//!
//! - ElectLeaders (v0-2; confluent-kafka's `elect_leaders`, Kafka's
//!   `kafka-leader-election.sh`): every partition's leader is already its
//!   preferred and only replica, so each named partition is answered
//!   ELECTION_NOT_NEEDED; asked for all partitions (null), each topic is
//!   listed with no partition, as Kafka leaves out those whose leader is
//!   already the one wanted.
//! - ListPartitionReassignments (v0): no reassignment is ever in progress.
//!   AlterPartitionReassignments (v0-1): a partition may be "moved" to the
//!   replicas it has (`[0]`: done at once); any other broker is not
//!   registered (INVALID_REPLICA_ASSIGNMENT, Kafka's message); cancelling
//!   finds nothing to cancel (NO_REASSIGNMENT_IN_PROGRESS).
//! - AlterReplicaLogDirs (v1-2; kafka-python's `alter_replica_log_dirs`): a
//!   replica asked to move to the broker's own directory is already there;
//!   any other path is LOG_DIR_NOT_FOUND.
//! - DescribeLogDirs (v1-4; kafka-python's `describe_log_dirs`, Kafka's
//!   `kafka-log-dirs.sh`, the UIs' disk views): the one directory, each
//!   partition's size on disk (from the log writer, which owns the logs),
//!   and (v4) the file system's total and usable bytes.
//!
//! The caller checks the ACLs (CLUSTER: DESCRIBE for the listings, ALTER
//! for the changes, as Kafka asks) and passes the verdict in. Plain
//! functions of the catalog; uses the protocol's error codes.

use crate::protocol::error_code as ec;
use crate::topics::{Catalog, PartitionId};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, ElectLeadersRequest, ElectLeadersResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

/// The only broker's id, and so every partition's only replica.
const NODE: i32 = 0;

fn message(text: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(text))
}

/// Whether `topic` has partition `index`.
fn exists(catalog: &Catalog, topic: &str, index: i32) -> bool {
    catalog
        .get(topic)
        .and_then(|t| t.partition(index))
        .is_some()
}

/// ElectLeaders, with `allowed` the verdict on ALTER of the cluster.
pub fn elect_leaders(
    catalog: &Catalog,
    r: &ElectLeadersRequest,
    allowed: bool,
) -> ElectLeadersResponse {
    let mut resp = ElectLeadersResponse::default();
    let partition = |index: i32, code: i16, why: Option<String>| {
        let mut p = PartitionResult::default();
        p.partition_id = index;
        p.error_code = code;
        p.error_message = why.map(StrBytes::from_string);
        p
    };
    match &r.topic_partitions {
        None if allowed => {
            // Every leader is already the one wanted: each topic with no
            // partition, as Kafka answers an election of all partitions.
            resp.replica_election_results = catalog
                .all()
                .iter()
                .map(|t| {
                    let mut res = ReplicaElectionResult::default();
                    res.topic = TopicName(StrBytes::from_string(t.name.clone()));
                    res
                })
                .collect();
        }
        None => resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED,
        Some(topics) => {
            if !allowed {
                resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
            }
            resp.replica_election_results = topics
                .iter()
                .map(|t| {
                    let mut res = ReplicaElectionResult::default();
                    res.topic = t.topic.clone();
                    res.partition_result = t
                        .partitions
                        .iter()
                        .map(|&index| match () {
                            _ if !allowed => partition(
                                index,
                                ec::CLUSTER_AUTHORIZATION_FAILED,
                                Some("the principal may not alter the cluster".into()),
                            ),
                            _ if exists(catalog, &t.topic, index) => partition(
                                index,
                                ec::ELECTION_NOT_NEEDED,
                                Some(format!(
                                    "{}-{index}'s leader is already broker {NODE}, its preferred and only replica",
                                    t.topic.as_str()
                                )),
                            ),
                            _ => partition(
                                index,
                                ec::UNKNOWN_TOPIC_OR_PARTITION,
                                Some(format!("no partition {}-{index}", t.topic.as_str())),
                            ),
                        })
                        .collect();
                    res
                })
                .collect();
        }
    }
    resp
}

/// ListPartitionReassignments, with `allowed` the verdict on DESCRIBE of
/// the cluster: none is ever in progress.
pub fn list_reassignments(
    _r: &ListPartitionReassignmentsRequest,
    allowed: bool,
) -> ListPartitionReassignmentsResponse {
    let mut resp = ListPartitionReassignmentsResponse::default();
    if !allowed {
        resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = message("the principal may not describe the cluster".into());
    }
    resp
}

/// AlterPartitionReassignments, with `allowed` the verdict on ALTER of the
/// cluster.
pub fn alter_reassignments(
    catalog: &Catalog,
    r: &AlterPartitionReassignmentsRequest,
    allowed: bool,
) -> AlterPartitionReassignmentsResponse {
    let mut resp = AlterPartitionReassignmentsResponse::default();
    if !allowed {
        resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
        resp.error_message = message("the principal may not alter the cluster".into());
        return resp;
    }
    resp.responses = r
        .topics
        .iter()
        .map(|t| {
            let mut out = ReassignableTopicResponse::default();
            out.name = t.name.clone();
            out.partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut res = ReassignablePartitionResponse::default();
                    res.partition_index = p.partition_index;
                    let name = format!("{}-{}", t.name.as_str(), p.partition_index);
                    let (code, why) = match &p.replicas {
                        _ if !exists(catalog, &t.name, p.partition_index) => (
                            ec::UNKNOWN_TOPIC_OR_PARTITION,
                            Some(format!("no partition {name}")),
                        ),
                        None => (
                            ec::NO_REASSIGNMENT_IN_PROGRESS,
                            Some(format!("no reassignment of {name} is in progress")),
                        ),
                        Some(replicas) if replicas.is_empty() => (
                            ec::INVALID_REPLICA_ASSIGNMENT,
                            Some("The manual partition assignment includes an empty replica list.".into()),
                        ),
                        Some(replicas) => match replicas.iter().find(|b| b.0 != NODE) {
                            Some(other) => (
                                ec::INVALID_REPLICA_ASSIGNMENT,
                                Some(format!("The manual partition assignment includes broker {}, but no such broker is registered.", other.0)),
                            ),
                            None if replicas.len() > 1 => (
                                ec::INVALID_REPLICA_ASSIGNMENT,
                                Some("The manual partition assignment includes duplicate replicas.".into()),
                            ),
                            // Already where it is asked to be: done.
                            None => (ec::NONE, None),
                        },
                    };
                    res.error_code = code;
                    res.error_message = why.map(StrBytes::from_string);
                    res
                })
                .collect();
            out
        })
        .collect();
    resp
}

/// AlterReplicaLogDirs, with `allowed` the verdict on ALTER of the cluster
/// and `log_dir` the broker's one directory.
pub fn alter_log_dirs(
    catalog: &Catalog,
    r: &AlterReplicaLogDirsRequest,
    allowed: bool,
    log_dir: &str,
) -> AlterReplicaLogDirsResponse {
    let mut resp = AlterReplicaLogDirsResponse::default();
    for dir in &r.dirs {
        let here = std::path::Path::new(dir.path.as_str()) == std::path::Path::new(log_dir);
        for t in &dir.topics {
            let mut out = AlterReplicaLogDirTopicResult::default();
            out.topic_name = t.name.clone();
            out.partitions = t
                .partitions
                .iter()
                .map(|&index| {
                    let mut p = AlterReplicaLogDirPartitionResult::default();
                    p.partition_index = index;
                    p.error_code = if !allowed {
                        ec::CLUSTER_AUTHORIZATION_FAILED
                    } else if !here {
                        ec::LOG_DIR_NOT_FOUND
                    } else if !exists(catalog, &t.name, index) {
                        ec::UNKNOWN_TOPIC_OR_PARTITION
                    } else {
                        ec::NONE // already in that directory
                    };
                    p
                })
                .collect();
            resp.results.push(out);
        }
    }
    resp
}

/// A topic DescribeLogDirs reports: its name, and each partition's index
/// and the log writer's id for it.
pub type LogDirTopic = (StrBytes, Vec<(i32, PartitionId)>);

/// What DescribeLogDirs asks the log writer about: every partition the
/// request names that exists (all of them when it names none), by topic.
/// Partitions that do not exist are left out, as Kafka does.
pub fn log_dirs_asked(catalog: &Catalog, r: &DescribeLogDirsRequest) -> Vec<LogDirTopic> {
    let layout = |name: &str, indexes: &mut dyn Iterator<Item = i32>| {
        let topic = catalog.get(name)?;
        let partitions: Vec<(i32, PartitionId)> = indexes
            .filter_map(|i| Some((i, topic.partition(i)?)))
            .collect();
        (!partitions.is_empty()).then(|| (StrBytes::from_string(name.to_owned()), partitions))
    };
    match &r.topics {
        None => catalog
            .all()
            .iter()
            .filter_map(|t| layout(&t.name, &mut (0..t.partitions.len() as i32)))
            .collect(),
        Some(topics) => topics
            .iter()
            .filter_map(|t| layout(t.topic.as_str(), &mut t.partitions.iter().copied()))
            .collect(),
    }
}

/// The disk space of the file system holding the logs, as DescribeLogDirs
/// v4 reports it: (total, usable by the broker) bytes.
pub type Space = Option<(u64, u64)>;

/// The DescribeLogDirs answer: the one directory `log_dir` with each
/// partition of `layout` and its size (`sizes`, in layout order; `None`
/// for one deleted meanwhile, left out), and the file system's `space`
/// (-1 where unknown).
pub fn log_dirs_response(
    log_dir: &str,
    layout: &[LogDirTopic],
    sizes: &[(PartitionId, Option<u64>)],
    space: Space,
) -> DescribeLogDirsResponse {
    let mut sizes = sizes.iter();
    let mut result = DescribeLogDirsResult::default();
    result.log_dir = StrBytes::from_string(log_dir.to_owned());
    (result.total_bytes, result.usable_bytes) = match space {
        Some((total, usable)) => (total as i64, usable as i64),
        None => (-1, -1),
    };
    for (name, partitions) in layout {
        let mut topic = DescribeLogDirsTopic::default();
        topic.name = TopicName(name.clone());
        for &(index, _) in partitions {
            if let Some((_, Some(size))) = sizes.next() {
                let mut p = DescribeLogDirsPartition::default();
                p.partition_index = index;
                p.partition_size = *size as i64;
                topic.partitions.push(p);
            }
        }
        if !topic.partitions.is_empty() {
            result.topics.push(topic);
        }
    }
    let mut resp = DescribeLogDirsResponse::default();
    resp.results.push(result);
    resp
}

/// The DescribeLogDirs answer to a principal that may not describe the
/// cluster: no directory, and (v3+) the error.
pub fn log_dirs_refused() -> DescribeLogDirsResponse {
    let mut resp = DescribeLogDirsResponse::default();
    resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;
    use crate::topics::Topic;
    use kafka_protocol::messages::BrokerId;
    use std::sync::Arc;

    fn catalog() -> Catalog {
        let c = Catalog::default();
        for (name, ids) in [("a", vec![1, 2]), ("b", vec![3])] {
            c.insert(Arc::new(Topic {
                name: name.into(),
                id: crate::topics::new_topic_id(),
                partitions: ids,
                config: LogConfig::default(),
            }));
        }
        c
    }

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.into()))
    }

    #[test]
    fn elections_are_never_needed_and_unknown_partitions_are_named() {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        let c = catalog();
        let mut t = TopicPartitions::default();
        t.topic = name("a");
        t.partitions = vec![1, 5];
        let mut r = ElectLeadersRequest::default();
        r.topic_partitions = Some(vec![t]);
        let resp = elect_leaders(&c, &r, true);
        let codes: Vec<(i32, i16)> = resp.replica_election_results[0]
            .partition_result
            .iter()
            .map(|p| (p.partition_id, p.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                (1, ec::ELECTION_NOT_NEEDED),
                (5, ec::UNKNOWN_TOPIC_OR_PARTITION)
            ]
        );
        let refused = elect_leaders(&c, &r, false);
        assert_eq!(refused.error_code, ec::CLUSTER_AUTHORIZATION_FAILED);
        assert!(refused.replica_election_results[0]
            .partition_result
            .iter()
            .all(|p| p.error_code == ec::CLUSTER_AUTHORIZATION_FAILED));
        // All partitions: each topic, no partition left to report.
        r.topic_partitions = None;
        let all = elect_leaders(&c, &r, true);
        let mut topics: Vec<&str> = all
            .replica_election_results
            .iter()
            .map(|t| t.topic.as_str())
            .collect();
        topics.sort_unstable();
        assert_eq!(topics, ["a", "b"]);
        assert!(all
            .replica_election_results
            .iter()
            .all(|t| t.partition_result.is_empty()));
    }

    #[test]
    fn a_partition_may_only_be_reassigned_where_it_is() {
        use kafka_protocol::messages::alter_partition_reassignments_request::{
            ReassignablePartition, ReassignableTopic,
        };
        let c = catalog();
        let part = |index, replicas: Option<Vec<i32>>| {
            let mut p = ReassignablePartition::default();
            p.partition_index = index;
            p.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
            p
        };
        let mut t = ReassignableTopic::default();
        t.name = name("a");
        t.partitions = vec![
            part(0, Some(vec![0])),
            part(1, Some(vec![0, 1])),
            part(0, Some(vec![0, 0])),
            part(1, None),
            part(9, Some(vec![0])),
            part(0, Some(vec![])),
        ];
        let mut r = AlterPartitionReassignmentsRequest::default();
        r.topics = vec![t];
        let resp = alter_reassignments(&c, &r, true);
        let codes: Vec<i16> = resp.responses[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(
            codes,
            vec![
                ec::NONE,
                ec::INVALID_REPLICA_ASSIGNMENT,
                ec::INVALID_REPLICA_ASSIGNMENT,
                ec::NO_REASSIGNMENT_IN_PROGRESS,
                ec::UNKNOWN_TOPIC_OR_PARTITION,
                ec::INVALID_REPLICA_ASSIGNMENT,
            ]
        );
        assert!(resp.responses[0].partitions[1]
            .error_message
            .as_ref()
            .is_some_and(|m| m.contains("broker 1")));
        assert_eq!(
            alter_reassignments(&c, &r, false).error_code,
            ec::CLUSTER_AUTHORIZATION_FAILED
        );
        let list = ListPartitionReassignmentsRequest::default();
        assert!(list_reassignments(&list, true).topics.is_empty());
        assert_eq!(
            list_reassignments(&list, false).error_code,
            ec::CLUSTER_AUTHORIZATION_FAILED
        );
    }

    #[test]
    fn log_dirs_name_existing_partitions_with_their_sizes() {
        use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
        let c = catalog();
        let mut asked = DescribableLogDirTopic::default();
        asked.topic = name("a");
        asked.partitions = vec![1, 7];
        let mut gone = DescribableLogDirTopic::default();
        gone.topic = name("nope");
        gone.partitions = vec![0];
        let mut r = DescribeLogDirsRequest::default();
        r.topics = Some(vec![asked, gone]);
        let layout = log_dirs_asked(&c, &r);
        assert_eq!(layout.len(), 1, "unknown topics and partitions left out");
        assert_eq!(layout[0].1, vec![(1, 2)]);
        let resp = log_dirs_response("/d", &layout, &[(2, Some(4096))], Some((100, 40)));
        let dir = &resp.results[0];
        assert_eq!(
            (dir.log_dir.as_str(), dir.total_bytes, dir.usable_bytes),
            ("/d", 100, 40)
        );
        assert_eq!(dir.topics[0].partitions[0].partition_size, 4096);
        // All of them, a partition deleted meanwhile left out.
        r.topics = None;
        let layout = log_dirs_asked(&c, &r);
        let found: Vec<(&str, usize)> = layout
            .iter()
            .map(|(name, parts)| (name.as_str(), parts.len()))
            .collect();
        assert_eq!(found.len(), 2);
        assert!(found.contains(&("a", 2)) && found.contains(&("b", 1)));
        let sizes: Vec<(PartitionId, Option<u64>)> = layout
            .iter()
            .flat_map(|(_, parts)| parts.iter())
            .map(|&(_, id)| (id, (id != 3).then_some(10)))
            .collect();
        let resp = log_dirs_response("/d", &layout, &sizes, None);
        let listed: usize = resp.results[0]
            .topics
            .iter()
            .map(|t| t.partitions.len())
            .sum();
        assert_eq!((listed, resp.results[0].total_bytes), (2, -1));
    }

    #[test]
    fn replicas_stay_in_the_one_directory() {
        use kafka_protocol::messages::alter_replica_log_dirs_request::{
            AlterReplicaLogDir, AlterReplicaLogDirTopic,
        };
        let c = catalog();
        let dir = |path: &str| {
            let mut t = AlterReplicaLogDirTopic::default();
            t.name = name("a");
            t.partitions = vec![0, 4];
            let mut d = AlterReplicaLogDir::default();
            d.path = StrBytes::from_string(path.into());
            d.topics = vec![t];
            d
        };
        let mut r = AlterReplicaLogDirsRequest::default();
        r.dirs = vec![dir("/data/"), dir("/elsewhere")];
        let resp = alter_log_dirs(&c, &r, true, "/data");
        let codes: Vec<Vec<i16>> = resp
            .results
            .iter()
            .map(|t| t.partitions.iter().map(|p| p.error_code).collect())
            .collect();
        assert_eq!(
            codes,
            vec![
                vec![ec::NONE, ec::UNKNOWN_TOPIC_OR_PARTITION],
                vec![ec::LOG_DIR_NOT_FOUND, ec::LOG_DIR_NOT_FOUND]
            ]
        );
        let refused = alter_log_dirs(&c, &r, false, "/data");
        assert!(refused.results[0]
            .partitions
            .iter()
            .all(|p| p.error_code == ec::CLUSTER_AUTHORIZATION_FAILED));
    }
}
