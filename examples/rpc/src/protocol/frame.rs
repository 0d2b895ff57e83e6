//! Whole frames: the decoder that cuts them from a connection's bytes, and
//! encoding a header and body into one buffer. Also the limit on the
//! warnings a peer can cause at will (a bad frame, a refused call): a
//! burst, then one a second, so a peer doing it in a loop cannot fill the
//! log's disk.

use super::header::{Header, HeaderError, Kind, HEADER_LEN};
use super::serialization::Serialization;
use bytes::{BufMut, Bytes, BytesMut};
use gyre_codec::LengthFieldDecoder;
use gyre_reactor::{warn_limited, LogLimit};
use std::sync::LazyLock;

/// Warnings a peer can cause at will, shared by every connection.
pub(crate) static PEER_WARNINGS: LazyLock<LogLimit> = LazyLock::new(|| LogLimit::new(20, 1));

/// The default largest body, as Dubbo's `payload` default.
pub const DEFAULT_MAX_BODY: usize = 8 << 20;

/// A decoded frame: its header and body (a slice of the read buffer).
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_codec::Decoder;
/// use gyre_rpc::protocol::{frame_decoder, heartbeat_frame, Frame, Kind, DEFAULT_MAX_BODY};
///
/// // Two pings arrive in one read: the decoder cuts frames, `parse` splits each.
/// let mut scratch = BytesMut::new();
/// let mut input = BytesMut::new();
/// input.extend_from_slice(&heartbeat_frame(&mut scratch, true, 1));
/// input.extend_from_slice(&heartbeat_frame(&mut scratch, true, 2));
/// let mut decoder = frame_decoder(DEFAULT_MAX_BODY);
/// let mut ids = Vec::new();
/// while let Some(cut) = decoder.decode(&mut input)? {
///     let frame = Frame::parse(cut)?;
///     assert_eq!(frame.header.kind, Kind::Heartbeat { request: true });
///     assert!(frame.body.is_empty());
///     ids.push(frame.header.request_id);
/// }
/// assert_eq!(ids, [1, 2]);
/// // Sixteen bytes that are not a gyre-rpc header.
/// assert!(Frame::parse(Bytes::from_static(b"GET / HTTP/1.1\r\n")).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// The bytes after it.
    pub body: Bytes,
}

impl Frame {
    /// Splits a frame the decoder cut into header and body.
    pub fn parse(mut frame: Bytes) -> Result<Frame, HeaderError> {
        let header = Header::decode(&frame)?;
        let body = frame.split_off(HEADER_LEN);
        Ok(Frame { header, body })
    }

    /// [`parse`](Self::parse) for a connection handler: a frame that does
    /// not parse is logged and closes the connection (`None`).
    pub fn parse_or_close<H: gyre_reactor::InboundHandler>(
        frame: Bytes,
        ctx: &mut impl gyre_reactor::InboundContext<H>,
    ) -> Option<Frame> {
        match Frame::parse(frame) {
            Ok(f) => Some(f),
            Err(e) => {
                warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), error = %e, "closing connection");
                ctx.close();
                None
            }
        }
    }
}

/// The frame decoder for bodies of at most `max_body` bytes: the length
/// field at offset 12 counts the body, and a longer frame is refused from
/// its header, before its body is buffered.
pub fn frame_decoder(max_body: usize) -> LengthFieldDecoder {
    LengthFieldDecoder::builder()
        .length_field_offset(12)
        .length_field_length(4)
        .max_frame_length(HEADER_LEN + max_body)
        .fail_fast(true)
        .build()
        .expect("a valid length-field layout")
}

/// A body larger than the limit, refused before it is sent.
///
/// ```
/// use gyre_rpc::protocol::{encode_frame, BodyTooLarge, Kind, Serialization};
///
/// let mut scratch = bytes::BytesMut::new();
/// let big = vec![7u8; 2048];
/// let encoded = encode_frame(&mut scratch, Kind::Request { two_way: true }, Serialization::Binary, 1, 1024, |out| {
///     Serialization::Binary.serialize(&big, out)
/// })?;
/// match encoded {
///     Err(BodyTooLarge { len, max }) => assert!(len > max && max == 1024),
///     Ok(_) => panic!("a 2 KiB body went past a 1 KiB limit"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[error("body of {len} bytes exceeds the {max}-byte limit")]
pub struct BodyTooLarge {
    /// Its size.
    pub len: usize,
    /// The limit.
    pub max: usize,
}

/// Room taken at once when a scratch buffer runs short: frames are split
/// off it and may still be queued when the next is encoded, so a buffer
/// with room for only one would allocate for every frame a burst of calls
/// or answers makes. A block holds dozens of small frames and is reused
/// whole once all of them are gone; it is small enough to keep per
/// connection.
pub const FRAME_BLOCK: usize = 4096;

/// Encodes a frame into `scratch` (its spare capacity is reused from frame
/// to frame, [`FRAME_BLOCK`] bytes taken at a time) and returns it: the
/// header, then what `body` writes.
///
/// ```
/// use gyre_rpc::protocol::{encode_frame, Frame, Kind, Serialization, Status};
/// let mut scratch = bytes::BytesMut::new();
/// let frame = encode_frame(&mut scratch, Kind::Response(Status::Ok), Serialization::Json, 9, 1024, |out| {
///     Serialization::Json.serialize("hi", out).map_err(|e| e.to_string())
/// })
/// .unwrap()
/// .unwrap();
/// let parsed = Frame::parse(frame).unwrap();
/// assert_eq!(parsed.header.request_id, 9);
/// assert_eq!(&parsed.body[..], b"\"hi\"");
/// ```
pub fn encode_frame<E>(
    scratch: &mut BytesMut,
    kind: Kind,
    serialization: Serialization,
    request_id: u64,
    max_body: usize,
    body: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Result<Result<Bytes, BodyTooLarge>, E> {
    scratch.clear();
    if scratch.capacity() < HEADER_LEN + 64 {
        scratch.reserve(FRAME_BLOCK);
    }
    scratch.put_bytes(0, HEADER_LEN);
    body(scratch)?;
    let len = scratch.len() - HEADER_LEN;
    if len > max_body {
        scratch.clear();
        return Ok(Err(BodyTooLarge { len, max: max_body }));
    }
    let header = Header {
        kind,
        serialization,
        request_id,
        body_len: len as u32,
    };
    let mut head = [0u8; HEADER_LEN];
    header.encode(&mut head);
    scratch[..HEADER_LEN].copy_from_slice(&head);
    Ok(Ok(scratch.split().freeze()))
}

/// A provider's read-only notice (see [`Kind::ReadOnly`]; empty body,
/// request id 0).
///
/// ```
/// use bytes::BytesMut;
/// use gyre_rpc::protocol::{read_only_frame, Frame, Kind};
///
/// let notice = Frame::parse(read_only_frame(&mut BytesMut::new()))?;
/// assert_eq!(notice.header.kind, Kind::ReadOnly);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn read_only_frame(scratch: &mut BytesMut) -> Bytes {
    encode_frame::<()>(scratch, Kind::ReadOnly, Serialization::Binary, 0, 0, |_| {
        Ok(())
    })
    .expect("an empty body cannot fail")
    .expect("an empty body fits any limit")
}

/// A heartbeat frame (empty body): the ping when `request`, else the pong
/// answering ping `request_id`.
pub fn heartbeat_frame(scratch: &mut BytesMut, request: bool, request_id: u64) -> Bytes {
    encode_frame::<()>(
        scratch,
        Kind::Heartbeat { request },
        Serialization::Binary,
        request_id,
        0,
        |_| Ok(()),
    )
    .expect("an empty body cannot fail")
    .expect("an empty body fits any limit")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Status;
    use gyre_codec::{CodecError, Decoder};

    #[test]
    fn the_decoder_cuts_frames_and_refuses_big_ones_from_the_header() {
        let mut scratch = BytesMut::new();
        let mut wire = BytesMut::new();
        for id in 0..3u64 {
            let f = encode_frame::<()>(
                &mut scratch,
                Kind::Request { two_way: true },
                Serialization::Binary,
                id,
                100,
                |out| {
                    out.put_slice(&[7; 10]);
                    Ok(())
                },
            )
            .unwrap()
            .unwrap();
            wire.put_slice(&f);
        }
        let mut decoder = frame_decoder(100);
        for id in 0..3u64 {
            let frame = Frame::parse(decoder.decode(&mut wire).unwrap().unwrap()).unwrap();
            assert_eq!(frame.header.request_id, id);
            assert_eq!(&frame.body[..], &[7; 10]);
        }
        // A header claiming 1 MiB against a 100-byte limit: refused at once.
        let mut head = [0u8; HEADER_LEN];
        Header {
            kind: Kind::Response(Status::Ok),
            serialization: Serialization::Binary,
            request_id: 1,
            body_len: 1 << 20,
        }
        .encode(&mut head);
        let mut big = BytesMut::from(&head[..]);
        assert!(matches!(
            decoder.decode(&mut big),
            Err(CodecError::FrameTooLong { .. })
        ));
    }

    #[test]
    fn an_oversized_body_is_refused_at_encoding() {
        let mut scratch = BytesMut::new();
        let r = encode_frame::<()>(
            &mut scratch,
            Kind::Response(Status::Ok),
            Serialization::Binary,
            1,
            4,
            |out| {
                out.put_slice(b"12345");
                Ok(())
            },
        )
        .unwrap();
        assert!(matches!(r, Err(BodyTooLarge { len: 5, max: 4 })));
    }
}
