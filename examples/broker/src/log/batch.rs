//! Kafka record batches (magic 2), as stored: parsing and checking their
//! headers, and giving them offsets.
//!
//! The layout, all big-endian: base offset (i64), batch length (i32, the
//! bytes after this field), partition leader epoch (i32), magic (i8, 2),
//! CRC-32C (u32, of everything after it), attributes (i16), last offset
//! delta (i32), base timestamp (i64), max timestamp (i64), producer id
//! (i64), producer epoch (i16), base sequence (i32), record count (i32),
//! then the records. The base offset is outside the CRC, so the broker can
//! assign offsets by rewriting it without touching anything else.

use std::ops::Range;

/// Bytes of the header before the records.
pub const HEADER_LEN: usize = 61;
/// The base offset and length fields, which the length does not count.
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;

/// What a batch header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// The first record's offset.
    pub base_offset: i64,
    /// The whole batch's size in bytes, header included.
    pub size: usize,
    /// The leader epoch the batch was appended in (outside the CRC: the
    /// log stamps it); -1 in a producer's batch and in batches appended
    /// before the broker kept epochs.
    pub partition_leader_epoch: i32,
    /// The last record's offset minus the first's.
    pub last_offset_delta: i32,
    /// The first record's timestamp (ms).
    pub base_timestamp: i64,
    /// The largest record timestamp (ms).
    pub max_timestamp: i64,
    /// Records in the batch.
    pub record_count: i32,
    /// The stored CRC-32C.
    pub crc: u32,
    /// The idempotent producer that wrote the batch, or -1.
    pub producer_id: i64,
    /// That producer's epoch, or -1.
    pub producer_epoch: i16,
    /// The first record's sequence number for its producer and
    /// partition, or -1.
    pub base_sequence: i32,
    /// The attributes field: compression, timestamp type, and the
    /// transactional and control bits.
    pub attributes: i16,
}

impl BatchHeader {
    /// The last record's offset.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// One past the last record's offset.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }

    /// Whether a transactional producer wrote the batch (its records
    /// count once a commit marker follows, never after an abort marker).
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL != 0
    }

    /// Whether the batch is a control batch (a transaction marker the
    /// broker wrote), not a producer's records.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL != 0
    }
}

/// The attributes bit of a transactional producer's batch.
const TRANSACTIONAL: i16 = 1 << 4;
/// The attributes bit of a control batch.
const CONTROL: i16 = 1 << 5;

/// What a lookup inside one batch found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordLookup {
    /// The first matching record: its offset and timestamp.
    Found(i64, i64),
    /// No record of the batch matches.
    None,
    /// The records do not decode (the caller falls back to the batch's
    /// own bounds).
    Undecodable,
}

/// The first record of the whole batch `bytes` at or after offset
/// `from_offset` whose timestamp is at or after `timestamp`. Decodes the
/// records (decompressing them if the producer compressed the batch);
/// under log-append time every record carries the batch's timestamp.
pub fn first_record_at_or_after(
    bytes: bytes::Bytes,
    timestamp: i64,
    from_offset: i64,
) -> RecordLookup {
    use kafka_protocol::records::{RecordBatchDecoder, TimestampType};
    let Ok(header) = parse_header(&bytes) else {
        return RecordLookup::Undecodable;
    };
    let Ok(set) = RecordBatchDecoder::decode(&mut bytes.clone()) else {
        return RecordLookup::Undecodable;
    };
    set.records
        .iter()
        .filter(|r| r.offset >= from_offset)
        .find_map(|r| {
            let ts = match r.timestamp_type {
                TimestampType::LogAppend => header.max_timestamp,
                TimestampType::Creation => r.timestamp,
            };
            (ts >= timestamp).then_some(RecordLookup::Found(r.offset, ts))
        })
        .unwrap_or(RecordLookup::None)
}

/// Why bytes are not a good batch.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header (or the batch) needs.
    #[error("truncated batch: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header or length asks for.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// A length field that cannot be a batch's.
    #[error("impossible batch length {0}")]
    BadLength(i32),
    /// Not the v2 format.
    #[error("unsupported record batch magic {0} (only 2 is supported)")]
    BadMagic(i8),
    /// The bytes do not match their checksum.
    #[error("batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// A base offset no log could hold: negative, or so large that the
    /// batch's last offset would not fit an i64.
    #[error("impossible base offset {0}")]
    BadOffset(i64),
    /// A record count or offset delta that does not fit together.
    #[error("inconsistent batch: {records} records, last offset delta {delta}")]
    BadCount {
        /// The record count.
        records: i32,
        /// The last offset delta.
        delta: i32,
    },
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses and sanity-checks the header at the start of `buf` (at least
/// [`HEADER_LEN`] bytes); does not need the records or check the CRC.
pub fn parse_header(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if buf.len() < HEADER_LEN {
        return Err(BatchError::Truncated {
            needed: HEADER_LEN,
            available: buf.len(),
        });
    }
    let length = be_i32(buf, 8);
    if length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
        return Err(BatchError::BadLength(length));
    }
    let magic = buf[16] as i8;
    if magic != 2 {
        return Err(BatchError::BadMagic(magic));
    }
    let header = BatchHeader {
        base_offset: be_i64(buf, 0),
        size: LOG_OVERHEAD + length as usize,
        partition_leader_epoch: be_i32(buf, 12),
        last_offset_delta: be_i32(buf, 23),
        base_timestamp: be_i64(buf, 27),
        max_timestamp: be_i64(buf, 35),
        record_count: be_i32(buf, 57),
        crc: u32::from_be_bytes(buf[17..21].try_into().expect("4 bytes")),
        producer_id: be_i64(buf, 43),
        producer_epoch: i16::from_be_bytes([buf[51], buf[52]]),
        base_sequence: be_i32(buf, 53),
        attributes: i16::from_be_bytes([buf[21], buf[22]]),
    };
    // A batch never holds more records than the offsets it covers; it
    // holds fewer once compaction has left some out (a producer's batch
    // covers exactly its records: `split` checks that).
    if header.record_count < 1 || header.last_offset_delta < header.record_count - 1 {
        return Err(BatchError::BadCount {
            records: header.record_count,
            delta: header.last_offset_delta,
        });
    }
    // The delta is at most 2^32 here, so this bounds last and next offset.
    if header.base_offset < 0 || header.base_offset > i64::MAX - (1 << 33) {
        return Err(BatchError::BadOffset(header.base_offset));
    }
    Ok(header)
}

/// Parses the batch at the start of `buf` and checks that it is all there
/// and that its CRC matches.
pub fn validate(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = parse_header(buf)?;
    if buf.len() < header.size {
        return Err(BatchError::Truncated {
            needed: header.size,
            available: buf.len(),
        });
    }
    let computed = crc32c::crc32c(&buf[CRC_START..header.size]);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    Ok(header)
}

/// Splits a records blob (as a produce request carries it) into whole,
/// checked batches; any error refuses the whole blob. Each batch must
/// cover exactly as many offsets as it has records, as Kafka checks.
pub fn split(buf: &[u8]) -> Result<Vec<(BatchHeader, Range<usize>)>, BatchError> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let header = validate(&buf[at..])?;
        if header.last_offset_delta != header.record_count - 1 {
            return Err(BatchError::BadCount {
                records: header.record_count,
                delta: header.last_offset_delta,
            });
        }
        out.push((header, at..at + header.size));
        at += header.size;
    }
    Ok(out)
}

/// Gives the batch at the start of `buf` the base offset `offset` (outside
/// the CRC, so nothing else changes).
pub fn set_base_offset(buf: &mut [u8], offset: i64) {
    buf[..8].copy_from_slice(&offset.to_be_bytes());
}

/// Stamps the batch at the start of `buf` with the leader epoch it is
/// appended in (outside the CRC, as the base offset is).
pub fn set_leader_epoch(buf: &mut [u8], epoch: i32) {
    buf[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// The attributes bit saying a batch's timestamps are the broker's.
const LOG_APPEND_TIME: i16 = 1 << 3;

/// Whether the batch at the start of `buf` (a checked header) carries the
/// broker's append time rather than its producer's timestamps.
pub fn has_log_append_time(buf: &[u8]) -> bool {
    i16::from_be_bytes([buf[21], buf[22]]) & LOG_APPEND_TIME != 0
}

/// Stamps the whole batch `buf` (whose checked header is `header`) with
/// the broker's clock `now`, as Kafka does for a topic with
/// `message.timestamp.type=LogAppendTime`: the timestamp-type bit set and
/// the max timestamp `now`, which readers take as every record's time;
/// the records are not touched. The CRC is computed again and `header`
/// follows.
pub fn set_log_append_time(buf: &mut [u8], header: &mut BatchHeader, now: i64) {
    let attributes = i16::from_be_bytes([buf[21], buf[22]]) | LOG_APPEND_TIME;
    buf[21..23].copy_from_slice(&attributes.to_be_bytes());
    buf[35..43].copy_from_slice(&now.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..header.size]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    header.max_timestamp = now;
    header.crc = crc;
    header.attributes = attributes;
}

/// Builds a batch of `records` simple records (no key, no headers), for
/// tests and tools: the record encoding is Kafka's varint format.
pub fn build(base_offset: i64, timestamp: i64, records: &[&[u8]]) -> Vec<u8> {
    let keyless: Vec<(Option<&[u8]>, &[u8])> = records.iter().map(|v| (None, *v)).collect();
    build_keyed(base_offset, timestamp, &keyless)
}

/// [`build`] with a key (or none) for each record, as a compacted topic
/// needs them.
pub fn build_keyed(
    base_offset: i64,
    timestamp: i64,
    records: &[(Option<&[u8]>, &[u8])],
) -> Vec<u8> {
    fn varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }
    let mut body = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let mut rec = vec![0u8]; // attributes
        varint(&mut rec, 0); // timestamp delta
        varint(&mut rec, i as i64); // offset delta
        match key {
            None => varint(&mut rec, -1),
            Some(k) => {
                varint(&mut rec, k.len() as i64);
                rec.extend_from_slice(k);
            }
        }
        varint(&mut rec, value.len() as i64);
        rec.extend_from_slice(value);
        varint(&mut rec, 0); // no headers
        varint(&mut body, rec.len() as i64);
        body.extend_from_slice(&rec);
    }
    let mut b = Vec::with_capacity(HEADER_LEN + body.len());
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + body.len()) as i32).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, below
    b.extend_from_slice(&0i16.to_be_bytes()); // attributes
    b.extend_from_slice(&(records.len() as i32 - 1).to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Marks the whole batch `buf` as written by an idempotent producer:
/// its id, epoch and first sequence number, with the CRC computed again.
/// For tests and tools, as [`build`] is.
pub fn set_producer(buf: &mut [u8], producer_id: i64, epoch: i16, base_sequence: i32) {
    buf[43..51].copy_from_slice(&producer_id.to_be_bytes());
    buf[51..53].copy_from_slice(&epoch.to_be_bytes());
    buf[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// What a transaction marker says: its transaction committed or aborted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// The producer's records since its last marker are aborted.
    Abort,
    /// The producer's records since its last marker are committed.
    Commit,
}

impl Marker {
    /// The control record's type field (Kafka's `ControlRecordType`).
    fn code(self) -> i16 {
        match self {
            Marker::Abort => 0,
            Marker::Commit => 1,
        }
    }
}

/// Builds the control batch that ends producer `producer_id`'s
/// transaction in a partition, as Kafka's transaction coordinator has
/// the partition leader write it: transactional and control bits set, the
/// producer's id and epoch, no sequence, and one record whose key is
/// (version 0, type) and whose value is (version 0, the coordinator's
/// epoch). Base offset 0, for the log to assign.
pub fn build_marker(
    producer_id: i64,
    producer_epoch: i16,
    marker: Marker,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    // Every varint here is below 64, so one byte each (zigzag doubles).
    let mut record = vec![0u8, 0, 0, 8]; // attributes, ts delta, offset delta, key length 4
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&marker.code().to_be_bytes());
    record.push(12); // value length 6
    record.extend_from_slice(&0i16.to_be_bytes());
    record.extend_from_slice(&coordinator_epoch.to_be_bytes());
    record.push(0); // no headers
    let mut b = build(0, timestamp, &[]);
    b.truncate(HEADER_LEN);
    b.push((record.len() as u8) << 1);
    b.extend_from_slice(&record);
    let length = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    b[21..23].copy_from_slice(&(TRANSACTIONAL | CONTROL).to_be_bytes());
    b[23..27].copy_from_slice(&0i32.to_be_bytes()); // last offset delta
    b[57..61].copy_from_slice(&1i32.to_be_bytes()); // one record
    set_producer(&mut b, producer_id, producer_epoch, -1);
    b
}

/// What the control batch `buf` (from its header on, at least its first
/// record's key) marks; `None` if it is not a control batch or its record
/// is not a transaction marker (Kafka's other control records, such as
/// leader-change messages, are neither commit nor abort).
pub fn read_marker(buf: &[u8]) -> Option<Marker> {
    let header = parse_header(buf).ok()?;
    if !header.is_control() {
        return None;
    }
    let mut at = HEADER_LEN;
    read_varint(buf, &mut at)?; // record length
    at += 1; // attributes
    read_varint(buf, &mut at)?; // timestamp delta
    read_varint(buf, &mut at)?; // offset delta
    if read_varint(buf, &mut at)? < 4 {
        return None; // no (version, type) key
    }
    let key = buf.get(at..at + 4)?;
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Some(Marker::Abort),
        1 => Some(Marker::Commit),
        _ => None,
    }
}

/// The zigzag varint at `at` in `buf`, moving `at` past it.
fn read_varint(buf: &[u8], at: &mut usize) -> Option<i64> {
    let mut z = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        z |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    None
}

/// Marks the whole batch `buf` as a transactional producer's, with the
/// CRC computed again. For tests and tools, as [`build`] is.
pub fn set_transactional(buf: &mut [u8]) {
    let attributes = i16::from_be_bytes([buf[21], buf[22]]) | TRANSACTIONAL;
    buf[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One batch of `n` records at offsets 0.. with timestamps 1 s apart,
    /// compressed as asked.
    fn timed_batch(n: i64, compression: kafka_protocol::records::Compression) -> Vec<u8> {
        use kafka_protocol::records::*;
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                // The encoder keeps records in one batch while offset
                // minus sequence stays the same.
                sequence: i as i32,
                timestamp: 1_000_000 + i * 1000,
                key: None,
                value: Some(bytes::Bytes::from(format!("r{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        assert_eq!(parse_header(&buf).unwrap().size, buf.len(), "one batch");
        buf.to_vec()
    }

    #[test]
    fn a_time_lookup_finds_the_record_inside_the_batch() {
        use kafka_protocol::records::Compression;
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let b = timed_batch(100, compression);
            let b = bytes::Bytes::from(b);
            let find = |ts| first_record_at_or_after(b.clone(), ts, 0);
            let found = |o, t| RecordLookup::Found(o, t);
            assert_eq!(find(1_042_000), found(42, 1_042_000), "{compression:?}");
            assert_eq!(find(1_041_500), found(42, 1_042_000), "{compression:?}");
            assert_eq!(find(0), found(0, 1_000_000), "{compression:?}");
            assert_eq!(
                find(1_100_000),
                RecordLookup::None,
                "{compression:?}: every record is older"
            );
            // Records below a deleted-records start are not answered.
            assert_eq!(
                first_record_at_or_after(b.clone(), 0, 60),
                found(60, 1_060_000),
                "{compression:?}"
            );
        }
        let garbage = bytes::Bytes::from_static(b"not a batch");
        assert_eq!(
            first_record_at_or_after(garbage, 0, 0),
            RecordLookup::Undecodable
        );
    }

    #[test]
    fn built_batches_validate_and_split() {
        let a = build(0, 1000, &[b"one", b"two", b"three"]);
        let b = build(0, 2000, &[b"four"]);
        let h = validate(&a).unwrap();
        assert_eq!(
            (h.record_count, h.last_offset_delta, h.size),
            (3, 2, a.len())
        );
        assert_eq!(h.max_timestamp, 1000);
        let blob = [a.clone(), b.clone()].concat();
        let parts = split(&blob).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].1, a.len()..a.len() + b.len());
    }

    #[test]
    fn base_offset_rewrite_keeps_the_crc_valid() {
        let mut a = build(0, 1, &[b"x", b"y"]);
        set_base_offset(&mut a, 41);
        let h = validate(&a).unwrap();
        assert_eq!(
            (h.base_offset, h.last_offset(), h.next_offset()),
            (41, 42, 43)
        );
    }

    #[test]
    fn damage_is_detected() {
        let a = build(0, 1, &[b"payload"]);
        let mut flipped = a.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            validate(&flipped),
            Err(BatchError::CrcMismatch { .. })
        ));
        assert!(matches!(
            validate(&a[..a.len() - 1]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            validate(&a[..20]),
            Err(BatchError::Truncated { .. })
        ));
        let mut magic = a.clone();
        magic[16] = 1;
        assert_eq!(validate(&magic), Err(BatchError::BadMagic(1)));
        // Base offsets whose last offset would not fit an i64 (found by the
        // record_batch fuzz target: `next_offset` overflowed).
        for bad in [-1, i64::MAX - 3] {
            let mut far = a.clone();
            set_base_offset(&mut far, bad);
            assert_eq!(validate(&far), Err(BatchError::BadOffset(bad)));
        }
        let mut len = a.clone();
        len[8..12].copy_from_slice(&3i32.to_be_bytes());
        assert_eq!(validate(&len), Err(BatchError::BadLength(3)));
        assert!(split(&[a.clone(), flipped].concat()).is_err());
    }

    #[test]
    fn a_log_append_time_stamp_keeps_the_batch_valid_and_its_records_untouched() {
        let mut b = build(7, 1_000, &[b"a", b"b"]);
        let before = b.clone();
        let mut header = validate(&b).unwrap();
        assert!(!has_log_append_time(&b));
        set_log_append_time(&mut b, &mut header, 5_000);
        assert_eq!(validate(&b).unwrap(), header, "the CRC was computed again");
        assert!(has_log_append_time(&b));
        assert_eq!(
            (header.base_timestamp, header.max_timestamp),
            (1_000, 5_000)
        );
        assert_eq!(
            b[HEADER_LEN..],
            before[HEADER_LEN..],
            "the records are as sent"
        );
        // Bits other than the timestamp type are kept (here, gzip's 1).
        let mut gz = build(0, 1_000, &[b"c"]);
        gz[22] |= 1;
        let crc = crc32c::crc32c(&gz[CRC_START..]);
        gz[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut h = validate(&gz).unwrap();
        set_log_append_time(&mut gz, &mut h, 9);
        assert_eq!(i16::from_be_bytes([gz[21], gz[22]]), LOG_APPEND_TIME | 1);
    }

    #[test]
    fn a_marker_is_a_valid_control_batch_kafka_clients_decode() {
        use kafka_protocol::records::RecordBatchDecoder;
        for marker in [Marker::Commit, Marker::Abort] {
            let mut b = build_marker(77, 3, marker, 9, 1_700_000_000_000);
            set_base_offset(&mut b, 42);
            let h = validate(&b).expect("a valid batch");
            assert!(h.is_control() && h.is_transactional());
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (77, 3, -1)
            );
            assert_eq!((h.base_offset, h.record_count, h.size), (42, 1, b.len()));
            assert_eq!(read_marker(&b), Some(marker));
            let set = RecordBatchDecoder::decode(&mut bytes::Bytes::from(b.clone())).unwrap();
            let r = &set.records[0];
            assert!(r.control && r.transactional);
            assert_eq!(r.offset, 42);
            let key = r.key.as_ref().unwrap();
            let code = i16::from_be_bytes([key[2], key[3]]);
            assert_eq!(code, if marker == Marker::Commit { 1 } else { 0 });
            assert_eq!(&r.value.as_ref().unwrap()[2..], &9i32.to_be_bytes());
        }
        // A producer's batch is no marker.
        assert_eq!(read_marker(&build(0, 0, &[b"x"])), None);
    }
}
