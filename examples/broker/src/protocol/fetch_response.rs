//! The Fetch response (v4 to v11), encoded by hand around the record bytes
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
    /// Whole record batches, sent from the file.
    pub records: Option<FileRegion>,
}

/// One topic's part of a fetch response.
#[derive(Debug)]
pub struct FetchedTopic {
    /// The topic's name.
    pub name: String,
    /// Its partitions, in request order.
    pub partitions: Vec<FetchedPartition>,
}

/// Encodes a fetch response at `version` (4..=11) as the pieces to write,
/// in order, starting with the frame's size.
pub fn encode(correlation_id: i32, version: i16, topics: Vec<FetchedTopic>) -> Vec<Outbound> {
    debug_assert!((4..=11).contains(&version));
    let mut out = Vec::with_capacity(1 + 2 * topics.len());
    let mut buf = BytesMut::with_capacity(128);
    buf.put_i32(frame_size(version, &topics));
    buf.put_i32(correlation_id);
    buf.put_i32(0); // throttle_time_ms
    if version >= 7 {
        buf.put_i16(0); // error_code
        buf.put_i32(0); // session_id: sessions are not kept
    }
    buf.put_i32(topics.len() as i32);
    for topic in topics {
        buf.put_i16(topic.name.len() as i16);
        buf.put_slice(topic.name.as_bytes());
        buf.put_i32(topic.partitions.len() as i32);
        for p in topic.partitions {
            buf.put_i32(p.index);
            buf.put_i16(p.error_code);
            buf.put_i64(p.high_watermark);
            buf.put_i64(p.high_watermark); // last_stable_offset: no transactions
            if version >= 5 {
                buf.put_i64(p.log_start_offset);
            }
            buf.put_i32(-1); // aborted_transactions: null
            if version >= 11 {
                buf.put_i32(-1); // preferred_read_replica: none
            }
            match p.records {
                Some(region) if region.remaining() > 0 => {
                    buf.put_i32(region.remaining() as i32);
                    out.push(Outbound::Bytes(buf.split().freeze()));
                    out.push(Outbound::File(region));
                }
                _ => buf.put_i32(0), // an empty record set
            }
        }
    }
    out.push(Outbound::Bytes(buf.freeze()));
    out
}

/// The frame's size after its size field, worked out before encoding so
/// the header goes out as written, with no patching copy.
fn frame_size(version: i16, topics: &[FetchedTopic]) -> i32 {
    let per_partition = 4
        + 2
        + 8
        + 8
        + 4
        + 4
        + if version >= 5 { 8 } else { 0 }
        + if version >= 11 { 4 } else { 0 };
    let head = 4 + 4 + if version >= 7 { 6 } else { 0 } + 4;
    let body: usize = topics
        .iter()
        .map(|t| {
            2 + t.name.len()
                + 4
                + t.partitions
                    .iter()
                    .map(|p| {
                        per_partition + p.records.as_ref().map_or(0, |r| r.remaining() as usize)
                    })
                    .sum::<usize>()
        })
        .sum();
    (head + body) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Buf, Bytes};
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::Decodable;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    fn flatten(out: &[Outbound]) -> Vec<u8> {
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
            }
        }
        v
    }

    #[test]
    fn kafka_protocol_decodes_what_we_encode_at_every_version() {
        let path = std::env::temp_dir().join(format!("gyre-fetch-enc-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"0123456789abcdef").unwrap();
        let file = gyre_zerocopy::SharedFile::open(&path).unwrap();
        for version in 4..=11 {
            let topics = vec![
                FetchedTopic {
                    name: "orders".into(),
                    partitions: vec![
                        FetchedPartition {
                            index: 0,
                            error_code: 0,
                            high_watermark: 42,
                            log_start_offset: 7,
                            records: Some(FileRegion::new(file.clone(), 4, 8).unwrap()),
                        },
                        FetchedPartition {
                            index: 3,
                            error_code: 1,
                            high_watermark: 5,
                            log_start_offset: 0,
                            records: None,
                        },
                    ],
                },
                FetchedTopic {
                    name: "empty".into(),
                    partitions: vec![],
                },
            ];
            let wire = flatten(&encode(77, version, topics));
            let mut b = Bytes::from(wire);
            assert_eq!(b.get_i32() as usize, b.len());
            assert_eq!(b.get_i32(), 77);
            let r = FetchResponse::decode(&mut b, version).unwrap();
            assert!(b.is_empty(), "v{version}: {} bytes left", b.len());
            assert_eq!(r.responses.len(), 2);
            let p = &r.responses[0].partitions;
            assert_eq!(r.responses[0].topic.as_str(), "orders");
            assert_eq!(p[0].records.as_deref(), Some(&b"456789ab"[..]));
            assert_eq!((p[0].high_watermark, p[0].partition_index), (42, 0));
            if version >= 5 {
                assert_eq!(p[0].log_start_offset, 7);
            }
            assert_eq!((p[1].error_code, p[1].partition_index), (1, 3));
            assert_eq!(p[1].records.as_deref(), Some(&b""[..]));
        }
        std::fs::remove_file(&path).unwrap();
    }
}
