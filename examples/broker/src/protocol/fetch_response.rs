//! The Fetch response (v4 to v18; v18 changed only the request), encoded by hand around the record bytes
//! so that those go to the socket straight from the segment files with
//! `sendfile`: the response is a run of small in-memory pieces (sizes,
//! offsets, error codes) with a [`FileRegion`] after each partition's
//! record-set length.

use bytes::{BufMut, BytesMut};
use gyre_reactor::Outbound;
use gyre_zerocopy::FileRegion;

/// One partition's part of a fetch response.
#[derive(Debug)]
pub struct FetchedPartition {
    /// The partition index within its topic.
    pub index: i32,
    /// Kafka error code.
    pub error_code: i16,
    /// The log end offset (a single broker's high watermark).
    pub high_watermark: i64,
    /// The first offset kept.
    pub log_start_offset: i64,
    /// The last stable offset (below it every transaction has ended).
    pub last_stable_offset: i64,
    /// Aborted transactions in the records (producer id, first offset);
    /// empty goes out as null.
    pub aborted: Vec<(i64, i64)>,
    /// Whole record batches, sent from the file.
    pub records: Option<FileRegion>,
    /// Where the log diverges from what the consumer read (v12+, a
    /// tagged field): an epoch and the offset its records end at.
    pub diverging_epoch: Option<(i32, i64)>,
}

/// One topic's part of a fetch response.
#[derive(Debug)]
pub struct FetchedTopic {
    /// The topic's name (v4 to v12).
    pub name: String,
    /// The topic's id (v13 on, which name topics by id).
    pub id: uuid::Uuid,
    /// Its partitions, in request order.
    pub partitions: Vec<FetchedPartition>,
}

/// The diverging epoch's encoding: epoch, end offset, empty tags.
const DIVERGING_EPOCH_LEN: usize = 4 + 8 + 1;

/// Writes `n` as an unsigned varint.
fn put_uvarint(buf: &mut BytesMut, mut n: u32) {
    while n >= 0x80 {
        buf.put_u8(n as u8 | 0x80);
        n >>= 7;
    }
    buf.put_u8(n as u8);
}

/// Bytes of `n` as an unsigned varint.
fn uvarint_len(n: u32) -> usize {
    (32 - n.max(1).leading_zeros() as usize).div_ceil(7)
}

/// How one version lays out what varies: classic lengths and counts
/// (`i16`/`i32`) or flexible ones (a varint of one more, and an empty set
/// of tagged fields closing each structure).
#[derive(Clone, Copy)]
struct Layout {
    version: i16,
    flexible: bool,
}

impl Layout {
    fn new(version: i16) -> Self {
        Layout {
            version,
            flexible: version >= 12,
        }
    }

    fn put_count(self, buf: &mut BytesMut, n: usize) {
        if self.flexible {
            put_uvarint(buf, n as u32 + 1);
        } else {
            buf.put_i32(n as i32);
        }
    }

    fn count_len(self, n: usize) -> usize {
        if self.flexible {
            uvarint_len(n as u32 + 1)
        } else {
            4
        }
    }

    /// The topic: its id from v13, its name before.
    fn put_topic(self, buf: &mut BytesMut, topic: &FetchedTopic) {
        if self.version >= 13 {
            buf.put_slice(topic.id.as_bytes());
        } else {
            self.put_name(buf, &topic.name);
        }
    }

    fn topic_len(self, topic: &FetchedTopic) -> usize {
        if self.version >= 13 {
            16
        } else {
            self.name_len(&topic.name)
        }
    }

    fn put_name(self, buf: &mut BytesMut, name: &str) {
        if self.flexible {
            put_uvarint(buf, name.len() as u32 + 1);
        } else {
            buf.put_i16(name.len() as i16);
        }
        buf.put_slice(name.as_bytes());
    }

    fn name_len(self, name: &str) -> usize {
        name.len()
            + if self.flexible {
                uvarint_len(name.len() as u32 + 1)
            } else {
                2
            }
    }

    /// An empty set of tagged fields, in a flexible version.
    fn put_tags(self, buf: &mut BytesMut) {
        if self.flexible {
            buf.put_u8(0);
        }
    }

    fn tags_len(self) -> usize {
        usize::from(self.flexible)
    }

    /// A partition's tagged fields: its diverging epoch (tag 0: epoch,
    /// end offset and its own empty tags), if it has one.
    fn put_partition_tags(self, buf: &mut BytesMut, diverging_epoch: Option<(i32, i64)>) {
        match diverging_epoch.filter(|_| self.flexible) {
            Some((epoch, end_offset)) => {
                buf.put_u8(1); // one field
                buf.put_u8(0); // tag 0
                buf.put_u8(DIVERGING_EPOCH_LEN as u8);
                buf.put_i32(epoch);
                buf.put_i64(end_offset);
                buf.put_u8(0);
            }
            None => self.put_tags(buf),
        }
    }

    fn partition_tags_len(self, p: &FetchedPartition) -> usize {
        match p.diverging_epoch.filter(|_| self.flexible) {
            Some(_) => 3 + DIVERGING_EPOCH_LEN,
            None => self.tags_len(),
        }
    }

    /// The fixed part of a partition: index, error, high watermark, last
    /// stable offset, log start, aborted transactions, preferred read
    /// replica.
    fn partition_len(self, p: &FetchedPartition) -> usize {
        4 + 2
            + 8
            + 8
            + if self.version >= 5 { 8 } else { 0 }
            + self.aborted_len(&p.aborted)
            + if self.version >= 11 { 4 } else { 0 }
    }

    /// The aborted transactions: null when there are none.
    fn put_aborted(self, buf: &mut BytesMut, aborted: &[(i64, i64)]) {
        if aborted.is_empty() {
            if self.flexible {
                buf.put_u8(0);
            } else {
                buf.put_i32(-1);
            }
            return;
        }
        self.put_count(buf, aborted.len());
        for &(producer_id, first_offset) in aborted {
            buf.put_i64(producer_id);
            buf.put_i64(first_offset);
            self.put_tags(buf);
        }
    }

    fn aborted_len(self, aborted: &[(i64, i64)]) -> usize {
        if aborted.is_empty() {
            return if self.flexible { 1 } else { 4 };
        }
        self.count_len(aborted.len()) + aborted.len() * (16 + self.tags_len())
    }
}

/// The bytes a fetch response at `version` of `topics` takes on the wire
/// (what a client's fetch quota counts).
pub fn response_size(version: i16, topics: &[FetchedTopic]) -> usize {
    4 + frame_size(Layout::new(version), topics).0 as usize
}

/// What a fetch response says above its topics.
#[derive(Clone, Copy, Debug, Default)]
pub struct ResponseHead {
    /// The request's correlation id.
    pub correlation_id: i32,
    /// How long a client over its quota is held back (ms; 0 for none).
    pub throttle_ms: i32,
    /// The top-level error (v7+: a fetch session the request could not
    /// use).
    pub error_code: i16,
    /// The fetch session the client goes on with (v7+; 0 for none).
    pub session_id: i32,
}

/// Encodes a fetch response at `version` (4..=18) as the pieces to write,
/// in order, starting with the frame's size.
pub fn encode(head: ResponseHead, version: i16, topics: Vec<FetchedTopic>) -> Vec<Outbound> {
    debug_assert!((4..=18).contains(&version));
    let l = Layout::new(version);
    let mut out = Vec::with_capacity(1 + 2 * topics.len());
    let (size, records) = frame_size(l, &topics);
    // Everything but the records, in one allocation: a response of a
    // thousand partitions otherwise grows its buffer a dozen times.
    let mut buf = BytesMut::with_capacity(4 + size as usize - records);
    buf.put_i32(size);
    crate::protocol::response::put_header(&mut buf, i16::from(l.flexible), head.correlation_id);
    buf.put_i32(head.throttle_ms);
    if version >= 7 {
        buf.put_i16(head.error_code);
        buf.put_i32(head.session_id);
    }
    l.put_count(&mut buf, topics.len());
    for topic in topics {
        l.put_topic(&mut buf, &topic);
        l.put_count(&mut buf, topic.partitions.len());
        for p in topic.partitions {
            buf.put_i32(p.index);
            buf.put_i16(p.error_code);
            buf.put_i64(p.high_watermark);
            buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                buf.put_i64(p.log_start_offset);
            }
            l.put_aborted(&mut buf, &p.aborted);
            if version >= 11 {
                buf.put_i32(-1); // preferred_read_replica: none
            }
            let len = p.records.as_ref().map_or(0, |r| r.remaining() as usize);
            l.put_count(&mut buf, len);
            if let Some(region) = p.records.filter(|_| len > 0) {
                out.push(Outbound::Bytes(buf.split().freeze()));
                out.push(Outbound::File(region));
            }
            l.put_partition_tags(&mut buf, p.diverging_epoch);
        }
        l.put_tags(&mut buf);
    }
    l.put_tags(&mut buf);
    out.push(Outbound::Bytes(buf.freeze()));
    out
}

/// The frame's size after its size field, worked out before encoding so
/// the header goes out as written, with no patching copy; and how many of
/// its bytes are records (sent from the files, not from the buffer).
fn frame_size(l: Layout, topics: &[FetchedTopic]) -> (i32, usize) {
    let head = crate::protocol::response::header_len(i16::from(l.flexible))
        + 4
        + if l.version >= 7 { 6 } else { 0 }
        + l.count_len(topics.len());
    let mut all_records = 0;
    let body: usize = topics
        .iter()
        .map(|t| {
            l.topic_len(t)
                + l.count_len(t.partitions.len())
                + t.partitions
                    .iter()
                    .map(|p| {
                        let records = p.records.as_ref().map_or(0, |r| r.remaining() as usize);
                        all_records += records;
                        l.partition_len(p)
                            + l.count_len(records)
                            + records
                            + l.partition_tags_len(p)
                    })
                    .sum::<usize>()
                + l.tags_len()
        })
        .sum();
    ((head + body + l.tags_len()) as i32, all_records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Buf, Bytes};
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Decodable;
    use std::io::Write;

    #[test]
    fn varint_lengths_match_what_is_written() {
        for n in [0, 1, 127, 128, 16_383, 16_384, u32::MAX] {
            let mut b = BytesMut::new();
            put_uvarint(&mut b, n);
            assert_eq!(b.len(), uvarint_len(n), "{n}");
        }
    }

    #[test]
    fn kafka_protocol_decodes_what_we_encode_at_every_version() {
        let path =
            gyre_testkit::scratch_root().join(format!("gyre-fetch-enc-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"0123456789abcdef").unwrap();
        let file = gyre_zerocopy::SharedFile::open(&path).unwrap();
        let id = uuid::Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788);
        for version in 4..=18 {
            let topics = vec![
                FetchedTopic {
                    name: "orders".into(),
                    id,
                    partitions: vec![
                        FetchedPartition {
                            index: 0,
                            error_code: 0,
                            high_watermark: 42,
                            log_start_offset: 7,
                            last_stable_offset: 30,
                            aborted: vec![(5, 9), (6, 20)],
                            records: Some(FileRegion::new(file.clone(), 4, 8).unwrap()),
                            diverging_epoch: None,
                        },
                        FetchedPartition {
                            index: 3,
                            error_code: 1,
                            high_watermark: 5,
                            log_start_offset: 0,
                            last_stable_offset: 5,
                            aborted: Vec::new(),
                            records: None,
                            diverging_epoch: Some((4, 17)),
                        },
                    ],
                },
                FetchedTopic {
                    name: "empty".into(),
                    id: uuid::Uuid::nil(),
                    partitions: vec![],
                },
            ];
            let head = ResponseHead {
                correlation_id: 77,
                throttle_ms: 0,
                error_code: 71,
                session_id: 12345,
            };
            let wire = crate::protocol::wire_bytes(&encode(head, version, topics));
            let mut b = Bytes::from(wire);
            assert_eq!(b.get_i32() as usize, b.len());
            assert_eq!(b.get_i32(), 77);
            if version >= 12 {
                assert_eq!(b.get_u8(), 0, "no tagged fields in the header");
            }
            let r = FetchResponse::decode(&mut b, version).unwrap();
            assert!(b.is_empty(), "v{version}: {} bytes left", b.len());
            if version >= 7 {
                assert_eq!((r.error_code, r.session_id), (71, 12345));
            }
            assert_eq!(r.responses.len(), 2);
            let p = &r.responses[0].partitions;
            assert_eq!(p[0].last_stable_offset, 30);
            let aborted: Vec<(i64, i64)> = p[0]
                .aborted_transactions
                .iter()
                .flatten()
                .map(|a| (a.producer_id.0, a.first_offset))
                .collect();
            assert_eq!(aborted, vec![(5, 9), (6, 20)]);
            assert!(p[1].aborted_transactions.is_none(), "none goes out as null");
            if version >= 13 {
                assert_eq!(r.responses[0].topic_id, id);
            } else {
                assert_eq!(r.responses[0].topic.as_str(), "orders");
            }
            assert_eq!(p[0].records.as_deref(), Some(&b"456789ab"[..]));
            assert_eq!((p[0].high_watermark, p[0].partition_index), (42, 0));
            if version >= 5 {
                assert_eq!(p[0].log_start_offset, 7);
            }
            assert_eq!((p[1].error_code, p[1].partition_index), (1, 3));
            assert_eq!(p[1].records.as_deref(), Some(&b""[..]));
            // A tagged field of the flexible versions only.
            let diverging =
                |i: usize| (p[i].diverging_epoch.epoch, p[i].diverging_epoch.end_offset);
            assert_eq!(diverging(0), (-1, -1));
            if version >= 12 {
                assert_eq!(diverging(1), (4, 17));
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
}
