//! The request header: v1 (api key, version, correlation id, client id)
//! and, for flexible versions, v2 (the same, then tagged fields).
//!
//! Parsed by hand rather than through `kafka-protocol` so that a request
//! for an API or version the broker does not speak can still be answered
//! or refused by its correlation id: the first eight bytes are the same in
//! every header version.

use bytes::{Buf, Bytes};

/// What the broker reads of a request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// The API key, as sent (it may be one the broker does not know).
    pub api_key: i16,
    /// The API version.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
}

/// Why a request header could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer bytes than a header needs.
    #[error("request of {0} bytes is too short for a header")]
    Truncated(usize),
    /// The client id's length runs past the request.
    #[error("client id of {len} bytes overruns the request")]
    ClientId {
        /// The length field.
        len: i16,
    },
    /// The header's tagged fields are malformed or overrun the request.
    #[error("malformed tagged fields in the request header")]
    TaggedFields,
}

/// Reads the fixed part of the header without consuming anything.
pub fn peek(frame: &[u8]) -> Result<RequestHead, HeaderError> {
    if frame.len() < 8 {
        return Err(HeaderError::Truncated(frame.len()));
    }
    let mut b = frame;
    Ok(RequestHead {
        api_key: b.get_i16(),
        api_version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Consumes a v1 header from `frame`, leaving the body.
pub fn split_v1(frame: &mut Bytes) -> Result<RequestHead, HeaderError> {
    let head = peek(frame)?;
    if frame.len() < 10 {
        return Err(HeaderError::Truncated(frame.len()));
    }
    frame.advance(8);
    let len = frame.get_i16();
    if len > 0 {
        if len as usize > frame.len() {
            return Err(HeaderError::ClientId { len });
        }
        frame.advance(len as usize);
    }
    Ok(head)
}

/// Consumes a v2 header (a v1 header, then tagged fields, which the
/// broker does not use) from `frame`, leaving the body.
pub fn split_v2(frame: &mut Bytes) -> Result<RequestHead, HeaderError> {
    let head = split_v1(frame)?;
    let fields = uvarint(frame)?;
    for _ in 0..fields {
        uvarint(frame)?; // tag
        let size = uvarint(frame)? as usize;
        if size > frame.len() {
            return Err(HeaderError::TaggedFields);
        }
        frame.advance(size);
    }
    Ok(head)
}

fn uvarint(frame: &mut Bytes) -> Result<u32, HeaderError> {
    let mut value = 0u32;
    for i in 0..5 {
        if frame.is_empty() {
            return Err(HeaderError::TaggedFields);
        }
        let b = frame.get_u8();
        if i == 4 && b > 0x0f {
            return Err(HeaderError::TaggedFields);
        }
        value |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(HeaderError::TaggedFields)
}

/// The client id of a v1 (or later) header, without consuming anything:
/// a slice of `frame` (no copy), empty when null, absent, or overrunning
/// the frame (which [`split_v1`] then refuses).
pub fn client_id(frame: &Bytes) -> Bytes {
    if frame.len() < 10 {
        return Bytes::new();
    }
    let len = i16::from_be_bytes([frame[8], frame[9]]);
    if len <= 0 || 10 + len as usize > frame.len() {
        return Bytes::new();
    }
    frame.slice(10..10 + len as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_header_and_skips_the_client_id() {
        let mut f = Bytes::from_static(&[0, 1, 0, 4, 0, 0, 0, 9, 0, 2, b'a', b'b', 7]);
        let h = split_v1(&mut f).unwrap();
        assert_eq!(
            h,
            RequestHead {
                api_key: 1,
                api_version: 4,
                correlation_id: 9
            }
        );
        assert_eq!(&f[..], &[7]);
        let whole = Bytes::from_static(&[0, 1, 0, 4, 0, 0, 0, 9, 0, 2, b'a', b'b', 7]);
        assert_eq!(&client_id(&whole)[..], b"ab");
        let mut null_id = Bytes::from_static(&[0, 1, 0, 4, 0, 0, 0, 9, 0xff, 0xff]);
        assert!(split_v1(&mut null_id).unwrap().api_key == 1 && null_id.is_empty());
    }

    #[test]
    fn a_v2_header_skips_its_tagged_fields() {
        // One tagged field: tag 3, two bytes.
        let mut f = Bytes::from_static(&[0, 1, 0, 12, 0, 0, 0, 9, 0, 1, b'c', 1, 3, 2, 9, 9, 7]);
        assert_eq!(split_v2(&mut f).unwrap().api_version, 12);
        assert_eq!(&f[..], &[7]);
        let mut overrun = Bytes::from_static(&[0, 1, 0, 12, 0, 0, 0, 9, 0xff, 0xff, 1, 3, 9]);
        assert_eq!(split_v2(&mut overrun), Err(HeaderError::TaggedFields));
        let mut endless = Bytes::from_static(&[0, 1, 0, 12, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(split_v2(&mut endless), Err(HeaderError::TaggedFields));
    }

    #[test]
    fn short_or_overrunning_headers_are_errors() {
        assert_eq!(peek(&[0; 7]), Err(HeaderError::Truncated(7)));
        let mut f = Bytes::from_static(&[0, 1, 0, 4, 0, 0, 0, 9, 0, 5, b'a']);
        assert!(client_id(&f).is_empty());
        assert_eq!(split_v1(&mut f), Err(HeaderError::ClientId { len: 5 }));
    }
}
