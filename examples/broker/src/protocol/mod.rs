//! Kafka's wire protocol as the broker speaks it: which APIs and versions
//! it answers ([`versions`]), the request header ([`header`]) and whole
//! requests ([`request`], after [`shape`] has checked their array counts),
//! responses
//! framed for the wire ([`response`]), and the fetch response, which is
//! encoded by hand around the segment files it sends ([`fetch_response`]),
//! and the throttle time responses carry ([`throttle`]).
//!
//! Request and response bodies are decoded and encoded with the
//! `kafka-protocol` crate, classic and flexible versions alike (see
//! [`versions`]).

pub mod fetch_response;
pub mod header;
pub mod pattern;
pub mod request;
pub mod response;
pub mod shape;
pub mod share_fetch_response;
pub mod throttle;
pub mod versions;

/// Kafka's error codes, as the broker uses them.
pub mod error_code {
    /// No error.
    pub const NONE: i16 = 0;
    /// An error the broker did not expect (a bug of its own): Kafka's
    /// answer to a request whose handler threw.
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    /// The requested offset is outside the log.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// A record batch failed its CRC or shape checks.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// A record breaks a rule of its topic (a compacted topic's record
    /// without a key).
    pub const INVALID_RECORD: i16 = 87;
    /// The request goes against a topic's policy (DeleteRecords on a
    /// compacted topic).
    pub const POLICY_VIOLATION: i16 = 44;
    /// A record batch is larger than its topic's `max.message.bytes`.
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    /// The topic or partition does not exist.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// A committed offset's metadata is longer than
    /// `offset.metadata.max.bytes`.
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    /// The coordinator is still loading (unused: offsets load at start).
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    /// A storage failure.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    /// The group member's generation is stale.
    pub const ILLEGAL_GENERATION: i16 = 22;
    /// The group's members use incompatible protocols.
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    /// The group id is empty.
    pub const INVALID_GROUP_ID: i16 = 24;
    /// The member id is not in the group.
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    /// The session timeout is outside the broker's bounds.
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    /// The group is rebalancing; rejoin.
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    /// A request for an unsupported API version.
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// No such transactional id (DescribeTransactions).
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    /// A transaction not yet ended has offsets for the partition
    /// (OffsetFetch with `require_stable`); retry.
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
    /// The principal may not use the transactional id.
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
    /// The coordinator cannot answer now (its file failed); retry.
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    /// The request is not valid in the transaction's state.
    pub const INVALID_TXN_STATE: i16 = 48;
    /// The producer id is not the one the transactional id has.
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    /// The transaction timeout is above the broker's maximum (or not
    /// positive).
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    /// The transaction is being ended (or the previous one still is);
    /// retry.
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    /// Another partition of the request failed, so this one was not
    /// tried.
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    /// A newer producer with the same transactional id fenced this one
    /// (answered from the versions that know it; older ones get
    /// INVALID_PRODUCER_EPOCH).
    pub const PRODUCER_FENCED: i16 = 90;
    /// The topic already exists.
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    /// A replica assignment the broker cannot follow.
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    /// A replica asked to move to a log directory the broker does not have.
    pub const LOG_DIR_NOT_FOUND: i16 = 57;
    /// The partition's leader is already the one an election would choose.
    pub const ELECTION_NOT_NEEDED: i16 = 84;
    /// A reassignment to cancel is not in progress.
    pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    /// A partition count below one.
    pub const INVALID_PARTITIONS: i16 = 37;
    /// A replication factor the broker cannot meet.
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    /// A topic config the broker does not know or cannot parse.
    pub const INVALID_CONFIG: i16 = 40;
    /// An invalid request (bad field values).
    pub const INVALID_REQUEST: i16 = 42;
    /// The topic name is not legal.
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    /// The request timed out.
    pub const REQUEST_TIMED_OUT: i16 = 7;
    /// The group has members: it cannot be deleted.
    pub const NON_EMPTY_GROUP: i16 = 68;
    /// No such group.
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    /// A member of the group is subscribed to the topic whose offsets were
    /// to be deleted.
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    /// An idempotent producer's batch does not follow on from its last.
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    /// A request repeats a batch already written, inside a larger one.
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    /// An idempotent producer's epoch is older than its current one.
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    /// A transaction marker carries a coordinator epoch older than the
    /// producer's last marker here (a zombie coordinator's).
    pub const TRANSACTION_COORDINATOR_FENCED: i16 = 52;
    /// No topic has this id (Metadata v10+, Fetch v13+).
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
    /// An incremental fetch named a fetch session the broker does not
    /// have (KIP-227): the client starts again with a full fetch.
    pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
    /// An incremental fetch carried an epoch other than the one its
    /// session expects next.
    pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
    /// A request named a leader epoch older than the partition's: the
    /// client's metadata is stale (the broker restarted since).
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    /// A request named a leader epoch newer than the partition's.
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
    /// An incremental fetch named topics by id in a session that names
    /// them by name, or the other way round.
    pub const FETCH_SESSION_TOPIC_ID_ERROR: i16 = 106;
    /// DescribeCluster asked for an endpoint type the broker lacks.
    pub const UNSUPPORTED_ENDPOINT_TYPE: i16 = 120;
    /// The SASL mechanism asked for is not offered.
    pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
    /// A SASL request out of order (or on a listener without SASL).
    pub const ILLEGAL_SASL_STATE: i16 = 34;
    /// The principal may not do this to the topic.
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    /// The principal may not do this to the group.
    pub const GROUP_AUTHORIZATION_FAILED: i16 = 30;
    /// The principal may not do this to the cluster.
    pub const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
    /// A feature level an UpdateFeatures asked for cannot be set.
    pub const INVALID_UPDATE_VERSION: i16 = 95;
    /// SASL authentication failed (wrong credentials).
    pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
    /// A controller mutation quota is spent (KIP-599): try again after
    /// the throttle time.
    pub const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
    /// No such resource (a user without a SCRAM credential).
    pub const RESOURCE_NOT_FOUND: i16 = 91;
    /// The same resource twice in one request.
    pub const DUPLICATE_RESOURCE: i16 = 92;
    /// A credential that cannot be accepted (iterations out of range, an
    /// empty name).
    pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
    /// A member id is required: rejoin with the one given.
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    /// A consumer group member's epoch is not one the coordinator can
    /// accept; it gives up its partitions and rejoins.
    pub const FENCED_MEMBER_EPOCH: i16 = 110;
    /// A static member's request under a member id its instance id no
    /// longer maps to: a newer client with the same `group.instance.id`
    /// took its place.
    pub const FENCED_INSTANCE_ID: i16 = 82;
    /// The group has as many members as it may (`group.max.size`,
    /// `group.consumer.max.size`).
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    /// A static member's instance id is held by a member still present.
    pub const UNRELEASED_INSTANCE_ID: i16 = 111;
    /// The server-side assignor asked for is not served.
    pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
    /// An offset commit or fetch named an older member epoch than the
    /// member's current one; it retries with its new epoch.
    pub const STALE_MEMBER_EPOCH: i16 = 113;
    /// An acknowledgement names a record its member does not hold.
    pub const INVALID_RECORD_STATE: i16 = 121;
    /// A share session epoch above 0 with no share session open.
    pub const SHARE_SESSION_NOT_FOUND: i16 = 122;
    /// A share session epoch that does not follow the last one.
    pub const INVALID_SHARE_SESSION_EPOCH: i16 = 123;
    /// A subscription's regular expression does not compile.
    pub const INVALID_REGULAR_EXPRESSION: i16 = 128;
}

/// Kafka's config resource types (DescribeConfigs, AlterConfigs,
/// IncrementalAlterConfigs; not the ACLs' resource types).
pub mod config_resource {
    /// A topic's configs.
    pub const TOPIC: i8 = 2;
    /// A broker's configs.
    pub const BROKER: i8 = 4;
    /// A broker's loggers' levels (not served here).
    pub const BROKER_LOGGER: i8 = 8;
    /// A client-metrics subscription (KIP-714; none exist here).
    pub const CLIENT_METRICS: i8 = 16;
    /// A group's configs.
    pub const GROUP: i8 = 32;
}

/// The bytes a response's pieces put on the wire, file regions read from
/// their files (for the hand-encoded responses' tests).
#[cfg(test)]
pub(crate) fn wire_bytes(out: &[gyre_reactor::Outbound]) -> Vec<u8> {
    use gyre_reactor::Outbound;
    use std::os::unix::fs::FileExt;
    let mut v = Vec::new();
    for piece in out {
        match piece {
            Outbound::Bytes(b) => v.extend_from_slice(b),
            Outbound::File(r) => {
                let mut chunk = vec![0; r.remaining() as usize];
                r.file()
                    .file()
                    .read_exact_at(&mut chunk, r.position())
                    .unwrap();
                v.extend_from_slice(&chunk);
            }
            other => panic!("a response holds no {other:?}"),
        }
    }
    v
}
