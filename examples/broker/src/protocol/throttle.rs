//! The throttle time a response carries (`throttle_time_ms`, in the
//! responses of every API a client sends but the SASL ones and
//! WriteTxnMarkers, whose Kafka callers were brokers): a request
//! quota's throttle goes into whichever response its request gets, so the
//! responses' types share [`ThrottleTime`]. Uses `kafka-protocol`'s
//! message types only.

use kafka_protocol::messages::*;

/// A response that can say how long its client is throttled.
///
/// ```
/// use gyre_broker::protocol::throttle::ThrottleTime;
/// use kafka_protocol::messages::ProduceResponse;
///
/// let mut r = ProduceResponse::default();
/// r.throttle_time_ms = 40; // a byte rate's throttle
/// r.throttle_at_least(15); // a request quota's: the longer stands
/// assert_eq!(r.throttle_time_ms(), 40);
/// ```
pub trait ThrottleTime {
    /// The throttle time it carries (ms).
    fn throttle_time_ms(&self) -> i32;
    /// Makes it carry at least `ms`: a longer throttle already set (by a
    /// byte or mutation quota) stands. A version without the field
    /// leaves it out.
    fn throttle_at_least(&mut self, ms: i32);
}

macro_rules! throttled {
    ($($t:ty),* $(,)?) => {$(
        impl ThrottleTime for $t {
            fn throttle_time_ms(&self) -> i32 {
                self.throttle_time_ms
            }
            fn throttle_at_least(&mut self, ms: i32) {
                self.throttle_time_ms = self.throttle_time_ms.max(ms);
            }
        }
    )*};
}

macro_rules! without_throttle {
    ($($t:ty),* $(,)?) => {$(
        impl ThrottleTime for $t {
            fn throttle_time_ms(&self) -> i32 {
                0
            }
            fn throttle_at_least(&mut self, _ms: i32) {}
        }
    )*};
}

throttled!(
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse,
    AlterClientQuotasResponse,
    AlterConfigsResponse,
    AlterPartitionReassignmentsResponse,
    AlterReplicaLogDirsResponse,
    AlterUserScramCredentialsResponse,
    ApiVersionsResponse,
    ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse,
    ShareAcknowledgeResponse,
    AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponse,
    DescribeShareGroupOffsetsResponse,
    ShareFetchResponse,
    ShareGroupDescribeResponse,
    ShareGroupHeartbeatResponse,
    CreateAclsResponse,
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteAclsResponse,
    DeleteGroupsResponse,
    DeleteRecordsResponse,
    DeleteTopicsResponse,
    DescribeAclsResponse,
    DescribeClientQuotasResponse,
    DescribeClusterResponse,
    DescribeConfigsResponse,
    DescribeGroupsResponse,
    DescribeLogDirsResponse,
    DescribeProducersResponse,
    DescribeTopicPartitionsResponse,
    DescribeTransactionsResponse,
    DescribeUserScramCredentialsResponse,
    ElectLeadersResponse,
    UpdateFeaturesResponse,
    EndTxnResponse,
    FetchResponse,
    FindCoordinatorResponse,
    HeartbeatResponse,
    IncrementalAlterConfigsResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListConfigResourcesResponse,
    ListGroupsResponse,
    ListOffsetsResponse,
    ListPartitionReassignmentsResponse,
    ListTransactionsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    OffsetFetchResponse,
    OffsetForLeaderEpochResponse,
    ProduceResponse,
    SyncGroupResponse,
    TxnOffsetCommitResponse,
);

without_throttle!(
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
    WriteTxnMarkersResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn a_longer_throttle_stands_and_versions_without_the_field_still_encode() {
        let mut r = MetadataResponse::default();
        r.throttle_at_least(30);
        r.throttle_at_least(10);
        assert_eq!(r.throttle_time_ms(), 30);
        // Metadata v0-v2 have no throttle time: it is left out.
        let mut v0 = bytes::BytesMut::new();
        r.encode(&mut v0, 0).unwrap();
        let mut v3 = bytes::BytesMut::new();
        r.encode(&mut v3, 3).unwrap();
        assert_eq!(&v3[..4], &30i32.to_be_bytes());
        let mut h = HeartbeatResponse::default();
        h.throttle_at_least(5);
        let mut v0 = bytes::BytesMut::new();
        h.encode(&mut v0, 0).unwrap();
        assert_eq!(v0.len(), 2, "v0: the error code alone");
    }
}
