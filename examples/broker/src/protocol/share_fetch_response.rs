//! The ShareFetch response (v1, flexible), encoded by hand around the
//! record bytes so that those go to the socket straight from the segment
//! files, as [`fetch_response`](super::fetch_response) does for Fetch: a
//! run of small in-memory pieces with a [`FileRegion`] after each
//! partition's record-set length, behind a frame size summed from the
//! pieces. Uses `bytes` and the reactor's outbound pieces.

use bytes::{BufMut, BytesMut};
use gyre_reactor::Outbound;
use gyre_zerocopy::FileRegion;
use uuid::Uuid;

/// One run of acquired records: first, last offset and delivery count.
pub type AcquiredRun = (i64, i64, i16);

/// One partition's part of a ShareFetch response.
#[derive(Debug)]
pub struct SharePartition {
    /// The partition index.
    pub index: i32,
    /// The fetch error (0: none) and its message.
    pub error: (i16, Option<String>),
    /// The acknowledgements' error (0: none) and its message.
    pub ack_error: (i16, Option<String>),
    /// The leader's id and epoch.
    pub leader: (i32, i32),
    /// Whole batches holding the acquired records.
    pub records: Option<FileRegion>,
    /// The records acquired.
    pub acquired: Vec<AcquiredRun>,
}

/// What the response says above its partitions.
#[derive(Debug, Default)]
pub struct ShareHead {
    /// The request's correlation id.
    pub correlation_id: i32,
    /// How long the client is throttled (ms).
    pub throttle_ms: i32,
    /// The top-level error (0: none) and its message.
    pub error: (i16, Option<String>),
    /// How long acquired records stay with the member (ms).
    pub lock_ms: i32,
}

fn put_uvarint(buf: &mut BytesMut, mut n: u64) {
    while n >= 0x80 {
        buf.put_u8(n as u8 | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

/// A compact array's or compact bytes' length (one more; 0 for null).
fn put_len(buf: &mut BytesMut, n: Option<usize>) {
    put_uvarint(buf, n.map_or(0, |n| n as u64 + 1));
}

fn put_nullable_str(buf: &mut BytesMut, s: &Option<String>) {
    put_len(buf, s.as_ref().map(String::len));
    if let Some(s) = s {
        buf.put_slice(s.as_bytes());
    }
}

/// Encodes a ShareFetch v1 response of `topics` (topic id, partitions)
/// as the pieces to write, in order, starting with the frame's size.
/// `throttle` is told the bytes the response takes on the wire (for a
/// fetch quota to count) and gives the throttle time (ms) it earned; the
/// response carries the larger of that and the head's.
pub fn encode(
    head: ShareHead,
    topics: Vec<(Uuid, Vec<SharePartition>)>,
    throttle: impl FnOnce(usize) -> i32,
) -> Vec<Outbound> {
    let mut out = Vec::with_capacity(2 + 2 * topics.len());
    // The frame's size, header and throttle time go first but are
    // written last, once the size (which the throttle time depends on)
    // is known.
    out.push(Outbound::Bytes(bytes::Bytes::new()));
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i16(head.error.0);
    put_nullable_str(&mut buf, &head.error.1);
    buf.put_i32(head.lock_ms);
    put_len(&mut buf, Some(topics.len()));
    let mut size = 0u64;
    for (id, partitions) in topics {
        buf.put_slice(id.as_bytes());
        put_len(&mut buf, Some(partitions.len()));
        for p in partitions {
            buf.put_i32(p.index);
            buf.put_i16(p.error.0);
            put_nullable_str(&mut buf, &p.error.1);
            buf.put_i16(p.ack_error.0);
            put_nullable_str(&mut buf, &p.ack_error.1);
            buf.put_i32(p.leader.0);
            buf.put_i32(p.leader.1);
            buf.put_u8(0); // the leader's tags
            match p.records.filter(|r| r.remaining() > 0) {
                Some(region) => {
                    put_len(&mut buf, Some(region.remaining() as usize));
                    size += buf.len() as u64 + region.remaining();
                    out.push(Outbound::Bytes(buf.split().freeze()));
                    out.push(Outbound::File(region));
                }
                // Empty, not null: librdkafka reads a null record set as
                // a malformed one, as Kafka never sends it.
                None => put_len(&mut buf, Some(0)),
            }
            put_len(&mut buf, Some(p.acquired.len()));
            for (first, last, deliveries) in p.acquired {
                buf.put_i64(first);
                buf.put_i64(last);
                buf.put_i16(deliveries);
                buf.put_u8(0);
            }
            buf.put_u8(0); // the partition's tags
        }
        buf.put_u8(0); // the topic's tags
    }
    put_len(&mut buf, Some(0)); // node endpoints: none (no leader moved)
    buf.put_u8(0);
    size += buf.len() as u64;
    out.push(Outbound::Bytes(buf.freeze()));
    // Correlation id, the header's empty tags, the throttle time.
    let size = size + 4 + 1 + 4;
    let throttle_ms = throttle(4 + size as usize).max(head.throttle_ms);
    let mut first = BytesMut::with_capacity(4 + 4 + 1 + 4);
    first.put_i32(size as i32);
    super::response::put_header(&mut first, 1, head.correlation_id);
    first.put_i32(throttle_ms);
    out[0] = Outbound::Bytes(first.freeze());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Buf, Bytes};
    use kafka_protocol::messages::ShareFetchResponse;
    use kafka_protocol::protocol::Decodable;
    use std::io::Write;

    #[test]
    fn kafka_protocol_decodes_what_is_written() {
        let path = std::env::temp_dir().join(format!("gyre-sfr-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"0123456789abcdef")
            .unwrap();
        let region = FileRegion::open_range(&path, 3, 9).unwrap();
        let topic = Uuid::from_u128(99);
        let mut counted = 0;
        let out = encode(
            ShareHead {
                correlation_id: 7,
                throttle_ms: 5,
                error: (0, None),
                lock_ms: 30_000,
            },
            vec![(
                topic,
                vec![
                    SharePartition {
                        index: 2,
                        error: (0, None),
                        ack_error: (121, Some("not held".into())),
                        leader: (0, 1),
                        records: Some(region),
                        acquired: vec![(10, 12, 1), (14, 14, 2)],
                    },
                    SharePartition {
                        index: 3,
                        error: (3, None),
                        ack_error: (0, None),
                        leader: (0, 1),
                        records: None,
                        acquired: Vec::new(),
                    },
                ],
            )],
            |size| {
                counted = size;
                2
            },
        );
        let bytes = crate::protocol::wire_bytes(&out);
        assert_eq!(counted, bytes.len(), "the quota counts the whole response");
        let mut b = Bytes::from(bytes);
        assert_eq!(b.get_i32() as usize, b.remaining());
        assert_eq!(b.get_i32(), 7);
        assert_eq!(b.get_u8(), 0);
        let r = ShareFetchResponse::decode(&mut b, 1).unwrap();
        assert_eq!(b.remaining(), 0);
        assert_eq!(
            (r.throttle_time_ms, r.acquisition_lock_timeout_ms),
            (5, 30_000)
        );
        let t = &r.responses[0];
        assert_eq!(t.topic_id, topic);
        let p = &t.partitions[0];
        assert_eq!(p.records.as_deref(), Some(&b"3456789ab"[..]));
        assert_eq!(p.acknowledge_error_code, 121);
        assert_eq!(
            p.acquired_records
                .iter()
                .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
                .collect::<Vec<_>>(),
            [(10, 12, 1), (14, 14, 2)]
        );
        assert_eq!(t.partitions[1].error_code, 3);
        assert_eq!(t.partitions[1].records.as_deref(), Some(&b""[..]));
        std::fs::remove_file(&path).unwrap();
    }
}
