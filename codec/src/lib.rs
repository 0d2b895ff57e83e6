//! Frame decoders and encoders over [`bytes`]: line, delimiter,
//! fixed-length, length-field and varint-length (protobuf's) framing,
//! and the PROXY protocol header
//! a load balancer sends first ([`ProxyHeaderDecoder`], HAProxy's
//! versions 1 and 2), built to survive bad input.
//!
//! A [`Decoder`] takes the bytes accumulated so far and splits whole frames
//! off the front as [`Bytes`](bytes::Bytes), without copying them. Every
//! decoder bounds what it buffers by a maximum frame length: an over-long
//! frame is dropped (as it arrives, never held) and reported as
//! [`CodecError::FrameTooLong`], and the decoder carries on with the next
//! frame, so one bad message need not cost the connection. Semantics follow
//! Netty's documented behaviour for the same decoders.
//!
//! ```
//! use bytes::BytesMut;
//! use gyre_codec::{Decoder, Encoder, LengthFieldDecoder, LengthFieldPrepender};
//!
//! let mut wire = BytesMut::new();
//! let mut prepender = LengthFieldPrepender::new(4)?;
//! prepender.encode(&b"first"[..], &mut wire)?;
//! prepender.encode(&b"second"[..], &mut wire)?;
//!
//! let mut decoder = LengthFieldDecoder::builder().initial_bytes_to_strip(4).build()?;
//! assert_eq!(decoder.decode(&mut wire)?.unwrap(), "first");
//! assert_eq!(decoder.decode(&mut wire)?.unwrap(), "second");
//! # Ok::<(), gyre_codec::CodecError>(())
//! ```
//!
//! With the `tokio-util` feature every codec also implements
//! `tokio_util::codec::Decoder`/`Encoder`, for `Framed` under tokio.
//!
//! The crate knows nothing of the reactor; `gyre-reactor` adapts these
//! codecs into pipeline stages.

mod codec;
mod delimiter;
mod error;
mod fixed;
mod length_field;
mod length_prepender;
mod line;
mod newline_scan;
mod proxy_header;
mod search;
#[cfg(feature = "tokio-util")]
mod tokio_codec;
mod varint;

pub use codec::{Decoder, Encoder};
pub use delimiter::{DelimiterDecoder, DelimiterEncoder};
pub use error::CodecError;
pub use fixed::FixedLengthDecoder;
pub use length_field::{ByteOrder, LengthFieldDecoder, LengthFieldDecoderBuilder};
pub use length_prepender::{FrameHeader, LengthFieldPrepender};
pub use line::{LineDecoder, LineEncoder, LineEnding};
pub use proxy_header::{
    ProxiedAddresses, ProxyHeader, ProxyHeaderDecoder, ProxyHeaderEncoder, DEFAULT_MAX_PROXY_HEADER,
};
pub use varint::{VarintLengthDecoder, VarintLengthPrepender};

/// The crate's README example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeExample;
