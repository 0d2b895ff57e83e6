//! Responses framed for the wire: a 4-byte size, the response header
//! (the correlation id; in flexible versions also an empty set of tagged
//! fields, except for ApiVersions, whose header is always v0 so that a
//! client can read it before it knows what the broker speaks), then the
//! body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::{Encodable, HeaderVersion};

/// A response that could not be encoded: a field its version cannot
/// carry, which is a bug in the broker, not in the client's input.
#[derive(Debug, thiserror::Error)]
#[error("response encoding failed: {0}")]
pub struct EncodeError(String);

/// The bytes of the response header of version `header_version` after the
/// size: the correlation id and, from v1, no tagged fields.
pub fn header_len(header_version: i16) -> usize {
    if header_version >= 1 {
        5
    } else {
        4
    }
}

/// Writes the response header of version `header_version`.
pub fn put_header(buf: &mut impl BufMut, header_version: i16, correlation_id: i32) {
    buf.put_i32(correlation_id);
    if header_version >= 1 {
        buf.put_u8(0); // no tagged fields
    }
}

/// Encodes `body` at `version` behind its size and response header.
pub fn encode<M: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &M,
) -> Result<Bytes, EncodeError> {
    let size = body
        .compute_size(version)
        .map_err(|e| EncodeError(e.to_string()))?;
    let header = M::header_version(version);
    let head = header_len(header);
    let mut buf = BytesMut::with_capacity(4 + head + size);
    buf.put_i32((head + size) as i32);
    put_header(&mut buf, header, correlation_id);
    body.encode(&mut buf, version)
        .map_err(|e| EncodeError(e.to_string()))?;
    Ok(buf.freeze())
}
