//! The APIs the broker answers and their version ranges: each API from
//! the oldest version the `kafka-protocol` crate decodes (the group APIs
//! from 0, so librdkafka's group consumer accepts the broker) up to the
//! newest flexible version (compact encodings, tagged fields) whose
//! meaning the broker implements, so current clients speak their current
//! protocol. Topics have ids (Metadata 10+, Fetch 13+, CreateTopics 7,
//! DeleteTopics 6). Where the next version changes meaning, the range
//! stops before it: Produce 13 names topics by id (Kafka 4.1);
//! InitProducerId 5, AddPartitionsToTxn 4, and AddOffsetsToTxn, EndTxn
//! and TxnOffsetCommit 4 are transactions v2 (KIP-890: broker-to-broker
//! batches, TRANSACTION_ABORTABLE, an epoch per transaction), so the
//! broker speaks transactions v1.

use kafka_protocol::messages::ApiKey;

/// One API's supported versions, inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiRange {
    /// The API.
    pub key: ApiKey,
    /// Lowest version answered.
    pub min: i16,
    /// Highest version answered.
    pub max: i16,
}

const fn range(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

/// Every API the broker answers.
pub const SUPPORTED: &[ApiRange] = &[
    range(ApiKey::Produce, 3, 12),
    // v18's follower high-watermark (KIP-1166) is a tagged field a
    // consumer leaves unset.
    range(ApiKey::Fetch, 4, 18),
    // v9: -5, the latest offset in tiered storage (KIP-1005): none
    // here. v10: a timeout for remote reads, which never happen here.
    range(ApiKey::ListOffsets, 1, 10),
    // Where a leader epoch's records end, for consumers checking their
    // positions after the epoch moved (KIP-320; v3 adds the replica id,
    // v4 is flexible).
    range(ApiKey::OffsetForLeaderEpoch, 2, 4),
    // v13 has a top-level error (KIP-1102's REBOOTSTRAP_REQUIRED).
    range(ApiKey::Metadata, 0, 13),
    // Metadata's partitions a page at a time (KIP-966): the Java admin
    // client's describeTopics and kafka-python's describe_topic_partitions.
    range(ApiKey::DescribeTopicPartitions, 0, 0),
    // v9 of both name a consumer group member's epoch (KIP-848).
    range(ApiKey::OffsetCommit, 2, 9),
    range(ApiKey::OffsetFetch, 1, 9),
    // v5 may answer TRANSACTION_ABORTABLE (never here: no transactions
    // v2); v6 finds share partitions' coordinators (KIP-932).
    range(ApiKey::FindCoordinator, 0, 6),
    range(ApiKey::JoinGroup, 0, 9),
    range(ApiKey::Heartbeat, 0, 4),
    range(ApiKey::LeaveGroup, 0, 5),
    range(ApiKey::SyncGroup, 0, 5),
    range(ApiKey::ApiVersions, 0, 4),
    range(ApiKey::CreateTopics, 2, 7),
    range(ApiKey::DeleteTopics, 1, 6),
    range(ApiKey::InitProducerId, 0, 4),
    range(ApiKey::AddPartitionsToTxn, 0, 3),
    range(ApiKey::AddOffsetsToTxn, 0, 3),
    range(ApiKey::EndTxn, 0, 3),
    range(ApiKey::TxnOffsetCommit, 0, 3),
    // v2 filters ids by a regular expression (KIP-1152).
    range(ApiKey::ListTransactions, 0, 2),
    range(ApiKey::DescribeTransactions, 0, 0),
    range(ApiKey::DescribeProducers, 0, 0),
    // An operator's abort of a hanging transaction (KIP-664: Kafka's
    // `kafka-transactions.sh abort`); v0 went in Kafka 4.0, v2 carries
    // the transaction version (KIP-1228).
    range(ApiKey::WriteTxnMarkers, 1, 1),
    // The consumer group protocol (KIP-848; v1 adds regular expression
    // subscriptions and member ids the clients choose).
    range(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    range(ApiKey::ConsumerGroupDescribe, 0, 1),
    // Share groups (KIP-932, Kafka 4.1's stable versions): queue-like
    // consumption with records acquired and acknowledged one by one.
    range(ApiKey::ShareGroupHeartbeat, 1, 1),
    range(ApiKey::ShareGroupDescribe, 1, 1),
    range(ApiKey::ShareFetch, 1, 1),
    range(ApiKey::ShareAcknowledge, 1, 1),
    range(ApiKey::DescribeShareGroupOffsets, 0, 0),
    range(ApiKey::AlterShareGroupOffsets, 0, 0),
    range(ApiKey::DeleteShareGroupOffsets, 0, 0),
    // v6 answers a group that is not classic, or not known, with
    // GROUP_ID_NOT_FOUND and a message where older versions say Dead.
    range(ApiKey::DescribeGroups, 0, 6),
    range(ApiKey::ListGroups, 0, 5),
    range(ApiKey::DeleteGroups, 0, 2),
    range(ApiKey::OffsetDelete, 0, 0),
    range(ApiKey::DescribeConfigs, 1, 4),
    range(ApiKey::CreatePartitions, 0, 3),
    range(ApiKey::AlterConfigs, 0, 2),
    range(ApiKey::IncrementalAlterConfigs, 0, 1),
    range(ApiKey::DeleteRecords, 0, 2),
    // v2 can list fenced brokers (KIP-1073): this one never is.
    range(ApiKey::DescribeCluster, 0, 2),
    // v0 lists client-metrics resources, v1 every config resource by
    // type (KIP-1142; see `server::config_resources`).
    range(ApiKey::ListConfigResources, 0, 1),
    // Produce and fetch byte rates (see `server::quotas`).
    range(ApiKey::DescribeClientQuotas, 0, 1),
    range(ApiKey::AlterClientQuotas, 0, 1),
    // One broker, one log directory (see `server::replicas`).
    range(ApiKey::DescribeLogDirs, 1, 4),
    range(ApiKey::AlterReplicaLogDirs, 1, 2),
    range(ApiKey::ElectLeaders, 0, 2),
    range(ApiKey::ListPartitionReassignments, 0, 0),
    range(ApiKey::AlterPartitionReassignments, 0, 1),
    // The feature levels (KIP-584; v1 validates only, v2 answers at the
    // top alone; see `server::features`).
    range(ApiKey::UpdateFeatures, 0, 2),
    // SASL (on SASL listeners; elsewhere answered ILLEGAL_SASL_STATE).
    // After a v0 handshake the SASL tokens follow raw (length-prefixed,
    // no request header); after v1 they come in SaslAuthenticate.
    // librdkafka will not start SASL unless v0 is listed.
    range(ApiKey::SaslHandshake, 0, 1),
    range(ApiKey::SaslAuthenticate, 0, 2),
    range(ApiKey::DescribeUserScramCredentials, 0, 0),
    range(ApiKey::AlterUserScramCredentials, 0, 0),
    range(ApiKey::DescribeAcls, 1, 3),
    range(ApiKey::CreateAcls, 1, 3),
    range(ApiKey::DeleteAcls, 1, 3),
];

/// The range for `key`, if the broker answers it at all.
pub fn range_of(key: ApiKey) -> Option<ApiRange> {
    SUPPORTED.iter().copied().find(|r| r.key == key)
}

/// Whether the broker answers `key` at `version`.
pub fn supports(key: ApiKey, version: i16) -> bool {
    range_of(key).is_some_and(|r| (r.min..=r.max).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Message;

    #[test]
    fn every_range_is_inside_what_the_crate_decodes_and_reaches_a_flexible_version() {
        for r in SUPPORTED {
            let crate_range = r.key.valid_versions();
            assert!(
                r.min >= crate_range.min && r.max <= crate_range.max,
                "{r:?}"
            );
            // Flexible versions use request header v2; OffsetDelete and
            // SaslHandshake have none.
            if r.key != ApiKey::OffsetDelete && r.key != ApiKey::SaslHandshake {
                assert_eq!(r.key.request_header_version(r.max), 2, "{r:?}");
            }
        }
        assert!(supports(ApiKey::Fetch, 18));
        assert!(!supports(ApiKey::Fetch, 19));
        assert!(supports(ApiKey::SaslHandshake, 0));
        assert!(supports(ApiKey::SaslAuthenticate, 2));
        assert_eq!(kafka_protocol::messages::ProduceRequest::VERSIONS.min, 3);
    }
}
