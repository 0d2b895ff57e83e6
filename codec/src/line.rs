//! Line framing: [`LineDecoder`] splits on LF or CRLF, [`LineEncoder`]
//! appends a line ending.

use crate::codec::{Decoder, Encoder};
use crate::error::CodecError;
use crate::newline_scan::NewlineScan;
use crate::search::SearchState;
use bytes::{Buf, Bytes, BytesMut};

/// Splits input into lines ending in `\n` or `\r\n`.
///
/// Like Netty's `LineBasedFrameDecoder`: the line ending is stripped by
/// default; a line longer than `max_length` (not counting its ending) is
/// discarded up to the next line end and reported as
/// [`CodecError::FrameTooLong`], either as soon as it is known to be too
/// long (`fail_fast(true)`) or once its end arrives (the default), after which
/// decoding carries on with the next line. Input already searched is never
/// searched again, and at most `max_length + 1` bytes of an unfinished line are
/// held (beyond that they are dropped as they arrive).
///
/// At the end of the stream, an unfinished last line (bytes with no line
/// ending) is discarded and reported as [`CodecError::Truncated`] with its
/// length, as Netty's decoder drops it: a peer that vanished mid-line
/// (`SET key half` and a disconnect) did not send a line. With
/// [`emit_unfinished(true)`](Self::emit_unfinished) it is handed on as a
/// last line instead, as tokio-util's `LinesCodec` does.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Decoder, LineDecoder};
/// let mut lines = LineDecoder::new(64);
/// let mut buf = BytesMut::from(&b"hello\r\nwor"[..]);
/// assert_eq!(lines.decode(&mut buf)?.unwrap(), "hello");
/// assert_eq!(lines.decode(&mut buf)?, None);
/// buf.extend_from_slice(b"ld\n");
/// assert_eq!(lines.decode(&mut buf)?.unwrap(), "world");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct LineDecoder {
    state: SearchState,
    scan: NewlineScan,
    emit_unfinished: bool,
}

impl LineDecoder {
    /// Lines of at most `max_length` bytes (not counting the ending),
    /// ending stripped, failing when an over-long line's end arrives.
    pub fn new(max_length: usize) -> Self {
        LineDecoder {
            state: SearchState::new(max_length),
            scan: NewlineScan::default(),
            emit_unfinished: false,
        }
    }

    /// At the end of the stream, hand on an unfinished last line as a line
    /// (true), or discard it and report [`CodecError::Truncated`] (false,
    /// the default, as Netty does).
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gyre_codec::{CodecError, Decoder, LineDecoder};
    /// let mut buf = BytesMut::from(&b"SET a 1\nSET b hal"[..]);
    /// let mut strict = LineDecoder::new(64);
    /// assert_eq!(strict.decode_eof(&mut buf)?.unwrap(), "SET a 1");
    /// assert!(matches!(strict.decode_eof(&mut buf), Err(CodecError::Truncated(9))));
    /// let mut buf = BytesMut::from(&b"SET b hal"[..]);
    /// let mut lenient = LineDecoder::new(64).emit_unfinished(true);
    /// assert_eq!(lenient.decode_eof(&mut buf)?.unwrap(), "SET b hal");
    /// # Ok::<(), CodecError>(())
    /// ```
    pub fn emit_unfinished(mut self, emit: bool) -> Self {
        self.emit_unfinished = emit;
        self
    }

    /// Whether frames exclude their line ending (default true).
    pub fn strip_delimiter(mut self, strip: bool) -> Self {
        self.state.strip_delimiter = strip;
        self
    }

    /// Report an over-long line as soon as it exceeds the maximum (true), or
    /// once its end has arrived and been dropped (false, the default).
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.state.fail_fast = fail_fast;
        self
    }

    /// The maximum line length.
    pub fn max_length(&self) -> usize {
        self.state.max_length
    }
}

impl LineDecoder {
    /// The line ending at `newline`: split it off, or drop it if over-long.
    #[inline]
    fn take_line(
        &mut self,
        src: &mut BytesMut,
        newline: usize,
    ) -> Result<Option<Bytes>, CodecError> {
        let crlf = newline > 0 && src[newline - 1] == b'\r';
        let length = newline - usize::from(crlf);
        if length > self.state.max_length {
            return Err(self.too_long_line(src, length, newline));
        }
        let mut frame = src.split_to(newline + 1);
        if self.state.strip_delimiter {
            frame.truncate(length);
        }
        Ok(Some(frame.freeze()))
    }

    #[inline]
    fn too_long_line(&mut self, src: &mut BytesMut, length: usize, newline: usize) -> CodecError {
        src.advance(newline + 1);
        self.state.too_long(length as u64, newline as u64 + 1)
    }

    /// No line end in `src`: start discarding if what is pending is already
    /// too long to be a line.
    #[inline]
    fn no_line(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        // A trailing `\r` may be the start of a CRLF: not part of the line.
        let pending = src.len() - usize::from(src.last() == Some(&b'\r'));
        if pending > self.state.max_length {
            let dropped = src.len() as u64;
            src.clear();
            self.scan.reset();
            self.state.start_discarding(dropped)?;
        }
        Ok(None)
    }

    /// Inside an over-long line: drop through its end, then decode on.
    #[inline]
    fn decode_discarding(
        &mut self,
        src: &mut BytesMut,
        dropped: u64,
    ) -> Result<Option<Bytes>, CodecError> {
        match self.scan.take(src) {
            Some(newline) => {
                self.state.finish_discarding(src, dropped, newline + 1)?;
                match self.scan.take(src) {
                    Some(newline) => self.take_line(src, newline),
                    None => self.no_line(src),
                }
            }
            None => {
                self.state.discarding = Some(dropped + src.len() as u64);
                src.clear();
                self.scan.reset();
                Ok(None)
            }
        }
    }
}

impl Decoder for LineDecoder {
    type Item = Bytes;

    // Inlined into the caller's decode loop, every path of it: the rare
    // paths too (over-long line, discarding, no line end), and all they call,
    // which is why none of them is `#[cold]`. A call the compiler cannot see
    // into that receives the decoder's address makes it keep the decoder in
    // memory around every frame's (opaque) split and drop, and re-read its
    // settings per frame; inlined whole, the scan position stays in
    // registers and the settings fold into the caller's loop. On 64-byte
    // lines that was 10-15% of the decoder's time (`gyre/floor` in the
    // codec bench went from 0.83-0.89 to 0.94-0.99).
    #[inline]
    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if let Some(dropped) = self.state.discarding {
            return self.decode_discarding(src, dropped);
        }
        match self.scan.take(src) {
            Some(newline) => self.take_line(src, newline),
            None => self.no_line(src),
        }
    }

    /// At end of stream, a last line without an ending is discarded and
    /// reported as truncated, or handed on under `emit_unfinished`.
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if self.state.discarding.take().is_some() || src.is_empty() {
            self.scan.reset();
            src.clear();
            return Ok(None);
        }
        self.scan.reset();
        if !self.emit_unfinished {
            let len = src.len();
            src.clear();
            return Err(CodecError::Truncated(len));
        }
        let mut frame = src.split();
        if self.state.strip_delimiter && frame.last() == Some(&b'\r') {
            frame.truncate(frame.len() - 1);
        }
        Ok(Some(frame.freeze()))
    }
}

/// The line ending a [`LineEncoder`] appends.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Encoder, LineEncoder, LineEnding};
///
/// let mut out = BytesMut::new();
/// LineEncoder::new(LineEnding::CrLf).encode("HELLO", &mut out)?;
/// assert_eq!(&out[..], b"HELLO\r\n");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LineEnding {
    /// `\n`
    #[default]
    Lf,
    /// `\r\n`
    CrLf,
}

impl LineEnding {
    /// The ending's bytes.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            LineEnding::Lf => b"\n",
            LineEnding::CrLf => b"\r\n",
        }
    }
}

/// Writes each item followed by a line ending.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Encoder, LineEncoder, LineEnding};
/// let mut buf = BytesMut::new();
/// LineEncoder::new(LineEnding::CrLf).encode("PING", &mut buf)?;
/// assert_eq!(&buf[..], b"PING\r\n");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LineEncoder {
    ending: LineEnding,
}

impl LineEncoder {
    /// An encoder appending `ending`.
    pub fn new(ending: LineEnding) -> Self {
        LineEncoder { ending }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for LineEncoder {
    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
        let line = item.as_ref();
        let ending = self.ending.as_bytes();
        dst.reserve(line.len() + ending.len());
        dst.extend_from_slice(line);
        dst.extend_from_slice(ending);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut LineDecoder, buf: &mut BytesMut) -> Vec<Result<Bytes, String>> {
        let mut out = Vec::new();
        loop {
            match decoder.decode(buf) {
                Ok(Some(frame)) => out.push(Ok(frame)),
                Ok(None) => return out,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }

    #[test]
    fn lf_and_crlf_are_both_line_ends() {
        let mut d = LineDecoder::new(16);
        let mut buf = BytesMut::from(&b"a\nbb\r\n\r\nccc\n"[..]);
        let frames = decode_all(&mut d, &mut buf);
        assert_eq!(
            frames,
            [
                Ok(Bytes::from("a")),
                Ok(Bytes::from("bb")),
                Ok(Bytes::new()),
                Ok(Bytes::from("ccc"))
            ]
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn keeping_the_delimiter() {
        let mut d = LineDecoder::new(16).strip_delimiter(false);
        let mut buf = BytesMut::from(&b"a\r\nb\n"[..]);
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "a\r\n");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "b\n");
    }

    #[test]
    fn crlf_split_across_reads() {
        let mut d = LineDecoder::new(3);
        let mut buf = BytesMut::from(&b"abc\r"[..]);
        // Exactly max_length bytes plus a pending `\r` is not too long yet.
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\n");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "abc");
    }

    #[test]
    fn already_searched_input_is_not_rescanned() {
        let mut d = LineDecoder::new(1024);
        let mut buf = BytesMut::from(&b"0123456789"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert_eq!(d.scan.searched, 10);
        buf.extend_from_slice(b"ab\n");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "0123456789ab");
        assert_eq!(d.scan.searched, 0);
    }

    #[test]
    fn over_long_line_with_end_in_sight_is_dropped_and_reported() {
        let mut d = LineDecoder::new(3);
        let mut buf = BytesMut::from(&b"toolong\nok\n"[..]);
        let frames = decode_all(&mut d, &mut buf);
        assert_eq!(frames.len(), 2);
        assert_eq!(
            frames[0],
            Err("frame of 7 bytes exceeds the maximum of 3 (8 bytes dropped)".to_string())
        );
        assert_eq!(frames[1], Ok(Bytes::from("ok")));
    }

    #[test]
    fn over_long_line_fails_when_its_end_arrives_by_default() {
        let mut d = LineDecoder::new(4);
        let mut buf = BytesMut::from(&b"0123456"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert!(
            buf.is_empty(),
            "the over-long prefix is dropped, not buffered"
        );
        buf.extend_from_slice(b"789");
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
        buf.extend_from_slice(b"ab\nnext\n");
        match d.decode(&mut buf) {
            Err(CodecError::FrameTooLong { max, dropped, .. }) => {
                assert_eq!((max, dropped), (4, 13))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "next");
    }

    #[test]
    fn over_long_line_fails_at_once_with_fail_fast() {
        let mut d = LineDecoder::new(4).fail_fast(true);
        let mut buf = BytesMut::from(&b"0123456"[..]);
        match d.decode(&mut buf) {
            Err(CodecError::FrameTooLong { dropped, .. }) => assert_eq!(dropped, 7),
            other => panic!("{other:?}"),
        }
        buf.extend_from_slice(b"89\nnext\n");
        // The rest of the long line is discarded silently; the next line decodes.
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "next");
    }

    #[test]
    fn eof_discards_an_unterminated_last_line_unless_asked_to_emit_it() {
        let mut d = LineDecoder::new(16);
        let mut buf = BytesMut::from(&b"a\nlast\r"[..]);
        assert_eq!(d.decode_eof(&mut buf).unwrap().unwrap(), "a");
        assert!(matches!(
            d.decode_eof(&mut buf),
            Err(CodecError::Truncated(5))
        ));
        assert!(buf.is_empty(), "the tail is gone");
        assert_eq!(d.decode_eof(&mut buf).unwrap(), None);

        let mut d = LineDecoder::new(16).emit_unfinished(true);
        let mut buf = BytesMut::from(&b"a\nlast\r"[..]);
        assert_eq!(d.decode_eof(&mut buf).unwrap().unwrap(), "a");
        assert_eq!(d.decode_eof(&mut buf).unwrap().unwrap(), "last");
        assert_eq!(d.decode_eof(&mut buf).unwrap(), None);
    }

    #[test]
    fn encoder_appends_the_ending() {
        let mut buf = BytesMut::new();
        let mut e = LineEncoder::default();
        e.encode("a", &mut buf).unwrap();
        e.encode(Bytes::from("b"), &mut buf).unwrap();
        assert_eq!(&buf[..], b"a\nb\n");
    }
}
