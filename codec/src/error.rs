//! [`CodecError`]: the one error type of every codec in this crate.

use thiserror::Error;

/// Why a frame could not be decoded or encoded.
///
/// After [`FrameTooLong`](CodecError::FrameTooLong) the decoder is still
/// usable: it has dropped (or is dropping) the offending frame and the next
/// good frame decodes. The other decode errors mean the stream itself is
/// broken and the connection should be closed.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{CodecError, Decoder, LineDecoder};
///
/// let mut lines = LineDecoder::new(8);
/// let mut buf = BytesMut::from(&b"far too long a line\nok\n"[..]);
/// match lines.decode(&mut buf) {
///     Err(CodecError::FrameTooLong { .. }) => {} // skipped; the next line decodes
///     other => panic!("{other:?}"),
/// }
/// assert_eq!(lines.decode(&mut buf)?.unwrap(), "ok");
/// # Ok::<(), CodecError>(())
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame was longer than the decoder's maximum. `length` is the
    /// frame's length when known (a length field said so, or its end
    /// arrived), else how much of it was seen; `dropped` is how many bytes
    /// were discarded so far because of it.
    #[error("frame of {length} bytes exceeds the maximum of {max} ({dropped} bytes dropped)")]
    FrameTooLong {
        /// The maximum frame length.
        max: usize,
        /// The frame's length, or what was seen of it.
        length: u64,
        /// Bytes discarded because of this frame.
        dropped: u64,
    },
    /// A length field described an impossible frame.
    #[error("corrupt frame: {0}")]
    CorruptFrame(String),
    /// The stream ended in the middle of a frame.
    #[error("stream ended with {0} bytes of an incomplete frame")]
    Truncated(usize),
    /// A codec was configured with settings that cannot work.
    #[error("invalid codec configuration: {0}")]
    InvalidConfig(String),
    /// A value to encode does not fit the frame format.
    #[error("cannot encode: {0}")]
    Unencodable(String),
    /// An I/O error from the transport (for `tokio_util::codec::Framed`).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
