//! The records inside a stored batch, read without building Kafka's record
//! types: each record's offset delta, key and whether it has a value, and
//! its bytes as stored. The compacted topics' key check and the log
//! cleaner read batches this way, and the cleaner writes a batch back with
//! some of its records left out. Uses only [`batch`](super::batch)'s
//! header layout and `kafka-protocol`'s codecs for compressed batches.
//!
//! A record (magic 2) is: its length (varint), attributes (i8),
//! timestamp delta (varlong), offset delta (varint), key length (varint,
//! -1 for none) and key, value length (varint, -1 for none: a tombstone)
//! and value, then its headers. The batch's records section is compressed
//! as a whole when the attributes' low three bits say so.

use super::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use std::borrow::Cow;

/// The CRC covers the batch from the attributes field on.
const CRC_START: usize = 21;
/// Where the record count sits in the header.
const COUNT_AT: usize = 57;
/// The attributes' compression bits.
const COMPRESSION_MASK: i16 = 0x7;

/// Why a batch's records could not be read or written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    /// The records section does not decompress (or compress again).
    #[error("records do not {what} with codec {codec}: {reason}")]
    Codec {
        /// "decompress" or "compress".
        what: &'static str,
        /// The attributes' compression code.
        codec: i16,
        /// What the codec said.
        reason: String,
    },
    /// A record runs past the records section or a length is negative.
    #[error("record {index} of {count} is malformed: {reason}")]
    Malformed {
        /// Which record, from 0.
        index: i32,
        /// The batch's record count.
        count: i32,
        /// What was wrong.
        reason: &'static str,
    },
}

/// One record of a batch, borrowed from its records section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Its offset less the batch's base offset.
    pub offset_delta: i32,
    /// Its key, if it has one.
    pub key: Option<&'a [u8]>,
    /// Whether it has a value (a record without one is a tombstone: its
    /// key is deleted once compaction has passed it).
    pub has_value: bool,
    /// The whole record as stored, its length prefix included.
    pub bytes: &'a [u8],
}

/// The batch's compression code (0 none, 1 gzip, 2 snappy, 3 lz4, 4
/// zstd).
fn codec(header: &BatchHeader) -> i16 {
    header.attributes & COMPRESSION_MASK
}

/// The records section of the whole batch `batch`, decompressed if the
/// producer compressed it.
pub fn payload<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<Cow<'a, [u8]>, RecordsError> {
    let body = &batch[HEADER_LEN..header.size];
    let codec = codec(header);
    let out = match codec {
        0 => return Ok(Cow::Borrowed(body)),
        1 => inflate::<Gzip>(body),
        2 => inflate::<Snappy>(body),
        3 => inflate::<Lz4>(body),
        4 => inflate::<Zstd>(body),
        _ => Err("unknown codec".to_owned()),
    };
    out.map(Cow::Owned).map_err(|reason| RecordsError::Codec {
        what: "decompress",
        codec,
        reason,
    })
}

/// `body` decompressed by codec `D`.
fn inflate<'a, D: Decompressor<&'a [u8], Buf = bytes::Bytes>>(
    mut body: &'a [u8],
) -> Result<Vec<u8>, String> {
    D::decompress(&mut body, |b| Ok(b.to_vec())).map_err(|e| e.to_string())
}

/// `raw` compressed by codec `C`, appended to `out`.
fn deflate<C: Compressor<bytes::BytesMut, BufMut = bytes::BytesMut>>(
    out: &mut bytes::BytesMut,
    raw: &[u8],
) -> Result<(), String> {
    C::compress(out, |b| {
        b.extend_from_slice(raw);
        Ok(())
    })
    .map_err(|e| e.to_string())
}

/// Reads a zigzag varint (at most 10 bytes) at `*at`, moving past it.
fn varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    None
}

/// The start of one record, read as far as its key length.
struct Head {
    /// One past the record's last byte.
    end: usize,
    /// Its offset delta.
    offset_delta: i64,
    /// Its key length (-1: no key).
    key_len: i64,
}

/// Reads the record starting at `*at` (record `index` of `count`) as far
/// as its key length, leaving `*at` there.
fn head(payload: &[u8], at: &mut usize, index: i32, count: i32) -> Result<Head, RecordsError> {
    let bad = |reason| RecordsError::Malformed {
        index,
        count,
        reason,
    };
    let len = varint(payload, at).ok_or(bad("length cut short"))?;
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| at.checked_add(l))
        .filter(|&e| e <= payload.len())
        .ok_or(bad("length runs past the batch"))?;
    let body = &payload[..end];
    *at += 1; // attributes
    varint(body, at).ok_or(bad("timestamp delta cut short"))?;
    let offset_delta = varint(body, at).ok_or(bad("offset delta cut short"))?;
    let key_len = varint(body, at).ok_or(bad("key length cut short"))?;
    Ok(Head {
        end,
        offset_delta,
        key_len,
    })
}

/// Calls `each` with every record of the records section `payload`
/// (`count` of them), in order; stops at the first malformed one.
pub fn walk<'a>(
    payload: &'a [u8],
    count: i32,
    mut each: impl FnMut(RecordRef<'a>),
) -> Result<(), RecordsError> {
    let bad = |index, reason| RecordsError::Malformed {
        index,
        count,
        reason,
    };
    let mut at = 0usize;
    for index in 0..count.max(0) {
        let start = at;
        let Head {
            end,
            offset_delta,
            key_len,
        } = head(payload, &mut at, index, count)?;
        let body = &payload[..end];
        let key = match key_len {
            -1 => None,
            n if n >= 0 && at + n as usize <= end => {
                let k = &body[at..at + n as usize];
                at += n as usize;
                Some(k)
            }
            _ => return Err(bad(index, "key runs past the record")),
        };
        let value_len = varint(body, &mut at).ok_or(bad(index, "value length cut short"))?;
        if value_len < -1 || (value_len > 0 && at + value_len as usize > end) {
            return Err(bad(index, "value runs past the record"));
        }
        each(RecordRef {
            offset_delta: i32::try_from(offset_delta)
                .map_err(|_| bad(index, "offset delta out of range"))?,
            key,
            has_value: value_len >= 0,
            bytes: &payload[start..end],
        });
        at = end;
    }
    Ok(())
}

/// The offset delta of the first record of the whole batch `batch` that
/// has no key, if any (a compacted topic takes only keyed records).
pub fn first_keyless(batch: &[u8], header: &BatchHeader) -> Result<Option<i32>, RecordsError> {
    // On every produce to a compacted topic: read each record only as far
    // as its key length, then jump to the next by the record's length.
    let payload = payload(batch, header)?;
    let mut at = 0usize;
    for index in 0..header.record_count.max(0) {
        let h = head(&payload, &mut at, index, header.record_count)?;
        if h.key_len == -1 {
            return Ok(Some(h.offset_delta as i32));
        }
        at = h.end;
    }
    Ok(None)
}

/// The whole batch `batch` with only the records `kept` (each as
/// [`RecordRef::bytes`] gave it, in order, `count` of them), compressed
/// as the batch was. The base offset, last offset delta, timestamps,
/// producer fields and attributes stay as they were, so the batch still
/// covers the same offsets and the producer's sequence still reads on;
/// the length, record count and CRC are computed again.
pub fn rebuild(
    batch: &[u8],
    header: &BatchHeader,
    kept: &[u8],
    count: i32,
) -> Result<Vec<u8>, RecordsError> {
    let codec = codec(header);
    let mut body = bytes::BytesMut::new();
    let done = match codec {
        0 => {
            body.extend_from_slice(kept);
            Ok(())
        }
        1 => deflate::<Gzip>(&mut body, kept),
        2 => deflate::<Snappy>(&mut body, kept),
        3 => deflate::<Lz4>(&mut body, kept),
        4 => deflate::<Zstd>(&mut body, kept),
        _ => Err("unknown codec".to_owned()),
    };
    done.map_err(|reason| RecordsError::Codec {
        what: "compress",
        codec,
        reason,
    })?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    out.extend_from_slice(&body);
    let length = (out.len() - LOG_OVERHEAD) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[COUNT_AT..COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&out[CRC_START..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::log::batch;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    /// A batch of records at offsets `base..`, each `(key, value)`
    /// (`None` for none), compressed as asked: Kafka's encoding, by
    /// `kafka-protocol`.
    pub(crate) fn keyed_batch(
        base: i64,
        records: &[(Option<&str>, Option<&str>)],
        compression: Compression,
    ) -> Vec<u8> {
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: base + i as i64,
                sequence: i as i32,
                timestamp: 1_000 + i as i64,
                key: k.map(|k| Bytes::copy_from_slice(k.as_bytes())),
                value: v.map(|v| Bytes::copy_from_slice(v.as_bytes())),
                headers: Default::default(),
                delete_horizon: false,
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.to_vec()
    }

    #[test]
    fn records_are_walked_and_a_batch_rebuilt_with_some_left_out_decodes_as_kafkas() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = keyed_batch(
                100,
                &[
                    (Some("a"), Some("1")),
                    (Some("b"), None),
                    (Some("a"), Some("3")),
                ],
                compression,
            );
            let h = batch::validate(&b).unwrap();
            let payload = payload(&b, &h).unwrap();
            let mut seen = Vec::new();
            walk(&payload, h.record_count, |r| seen.push(r)).unwrap();
            let keys: Vec<_> = seen
                .iter()
                .map(|r| (r.offset_delta, r.key, r.has_value))
                .collect();
            assert_eq!(
                keys,
                [
                    (0, Some(&b"a"[..]), true),
                    (1, Some(&b"b"[..]), false),
                    (2, Some(&b"a"[..]), true)
                ],
                "{compression:?}"
            );
            // Keep the tombstone and the last "a".
            let kept: Vec<u8> = [seen[1].bytes, seen[2].bytes].concat();
            let out = rebuild(&b, &h, &kept, 2).unwrap();
            let back = batch::validate(&out).unwrap();
            assert_eq!(back.base_offset, 100);
            assert_eq!(back.last_offset(), 102, "the batch covers the same offsets");
            assert_eq!(back.record_count, 2);
            let set = RecordBatchDecoder::decode(&mut Bytes::from(out)).unwrap();
            let got: Vec<_> = set
                .records
                .iter()
                .map(|r| (r.offset, r.key.clone(), r.value.clone()))
                .collect();
            assert_eq!(
                got,
                [
                    (101, Some(Bytes::from_static(b"b")), None),
                    (
                        102,
                        Some(Bytes::from_static(b"a")),
                        Some(Bytes::from_static(b"3"))
                    )
                ],
                "{compression:?}"
            );
        }
    }

    #[test]
    fn a_keyless_record_is_found_and_a_cut_record_is_an_error_not_a_panic() {
        let b = keyed_batch(
            0,
            &[(Some("k"), Some("v")), (None, Some("w"))],
            Compression::Gzip,
        );
        let h = batch::validate(&b).unwrap();
        assert_eq!(first_keyless(&b, &h).unwrap(), Some(1));
        let b = keyed_batch(0, &[(Some("k"), Some("v"))], Compression::None);
        let h = batch::validate(&b).unwrap();
        assert_eq!(first_keyless(&b, &h).unwrap(), None);
        // Every cut of the records section fails cleanly.
        let payload = &b[HEADER_LEN..];
        for cut in 0..payload.len() {
            assert!(walk(&payload[..cut], 1, |_| {}).is_err(), "cut at {cut}");
        }
        // A record count larger than the records is an error too.
        assert!(walk(payload, 2, |_| {}).is_err());
    }
}
