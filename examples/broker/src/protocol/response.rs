//! Responses framed for the wire: a 4-byte size, the v0 response header
//! (the correlation id), then the body.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::Encodable;

/// A response that could not be encoded: a field its version cannot
/// carry, which is a bug in the broker, not in the client's input.
#[derive(Debug, thiserror::Error)]
#[error("response encoding failed: {0}")]
pub struct EncodeError(String);

/// Encodes `body` at `version` behind its size and correlation id.
pub fn encode<M: Encodable>(
    correlation_id: i32,
    version: i16,
    body: &M,
) -> Result<Bytes, EncodeError> {
    let size = body
        .compute_size(version)
        .map_err(|e| EncodeError(e.to_string()))?;
    let mut buf = BytesMut::with_capacity(8 + size);
    buf.put_i32((4 + size) as i32);
    buf.put_i32(correlation_id);
    body.encode(&mut buf, version)
        .map_err(|e| EncodeError(e.to_string()))?;
    Ok(buf.freeze())
}
