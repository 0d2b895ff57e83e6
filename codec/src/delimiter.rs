//! Delimiter framing: [`DelimiterDecoder`] splits on any of several byte
//! strings, [`DelimiterEncoder`] appends one.

use crate::codec::{Decoder, Encoder};
use crate::error::CodecError;
use crate::search::SearchState;
use bytes::{Buf, Bytes, BytesMut};
use memchr::memmem::Finder;

/// Splits input on any of several delimiters.
///
/// Like Netty's `DelimiterBasedFrameDecoder`: when more than one delimiter
/// matches, the one that gives the shortest frame wins (so `ABC\nDEF\r\n`
/// with delimiters `\n` and `\r\n` gives `ABC` and `DEF`); when two start at
/// the same byte, the longer one is taken, so a `\r\n` is consumed whole
/// rather than leaving a `\n` to start the next frame. The same
/// maximum-length, strip and fail-fast rules as
/// [`LineDecoder`](crate::LineDecoder) apply.
///
/// Each search starts where the last one stopped (less the longest
/// delimiter's length, for a delimiter split across reads), so input is never
/// rescanned, and delimiters are found with prebuilt `memmem` searchers.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Decoder, DelimiterDecoder};
/// let mut d = DelimiterDecoder::new(64, [&b"\n"[..], b"\r\n"])?;
/// let mut buf = BytesMut::from(&b"ABC\nDEF\r\n"[..]);
/// assert_eq!(d.decode(&mut buf)?.unwrap(), "ABC");
/// assert_eq!(d.decode(&mut buf)?.unwrap(), "DEF");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DelimiterDecoder {
    finders: Vec<Finder<'static>>,
    longest: usize,
    state: SearchState,
}

impl DelimiterDecoder {
    /// Frames of at most `max_length` bytes (not counting the delimiter),
    /// split on any of `delimiters`.
    ///
    /// # Errors
    /// [`CodecError::InvalidConfig`] if there are no delimiters or one is empty.
    pub fn new<D: AsRef<[u8]>>(
        max_length: usize,
        delimiters: impl IntoIterator<Item = D>,
    ) -> Result<Self, CodecError> {
        let finders: Vec<Finder<'static>> = delimiters
            .into_iter()
            .map(|d| Finder::new(d.as_ref()).into_owned())
            .collect();
        if finders.is_empty() || finders.iter().any(|f| f.needle().is_empty()) {
            return Err(CodecError::InvalidConfig(
                "a delimiter decoder needs at least one non-empty delimiter".into(),
            ));
        }
        let longest = finders.iter().map(|f| f.needle().len()).max().unwrap_or(1);
        Ok(DelimiterDecoder {
            finders,
            longest,
            state: SearchState::new(max_length),
        })
    }

    /// Whether frames exclude their delimiter (default true).
    pub fn strip_delimiter(mut self, strip: bool) -> Self {
        self.state.strip_delimiter = strip;
        self
    }

    /// Report an over-long frame as soon as it exceeds the maximum (true), or
    /// once its delimiter has arrived and been dropped (false, the default).
    pub fn fail_fast(mut self, fail_fast: bool) -> Self {
        self.state.fail_fast = fail_fast;
        self
    }

    /// The earliest delimiter at or after `self.state.searched`: (start, length).
    fn find(&self, src: &[u8]) -> Option<(usize, usize)> {
        let haystack = &src[self.state.searched..];
        let mut best: Option<(usize, usize)> = None;
        for finder in &self.finders {
            // Only search as far as the best match so far could be beaten.
            let limit = best.map_or(haystack.len(), |(start, _)| {
                (start + finder.needle().len()).min(haystack.len())
            });
            if let Some(start) = finder.find(&haystack[..limit]) {
                let len = finder.needle().len();
                let better = match best {
                    None => true,
                    Some((s, l)) => start < s || (start == s && len > l),
                };
                if better {
                    best = Some((start, len));
                }
            }
        }
        best.map(|(start, len)| (self.state.searched + start, len))
    }

    /// Nothing found in `src`: remember how far no delimiter can start.
    fn mark_searched(&mut self, len: usize) {
        self.state.searched = (len + 1).saturating_sub(self.longest);
    }
}

impl Decoder for DelimiterDecoder {
    type Item = Bytes;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        if let Some(dropped) = self.state.discarding {
            match self.find(src) {
                Some((start, len)) => self.state.finish_discarding(src, dropped, start + len)?,
                None => {
                    // Keep a possible partial delimiter at the end; drop the rest.
                    let keep = (self.longest - 1).min(src.len());
                    let drop = src.len() - keep;
                    src.advance(drop);
                    self.state.discarding = Some(dropped + drop as u64);
                    self.mark_searched(src.len());
                    return Ok(None);
                }
            }
        }
        match self.find(src) {
            Some((start, len)) => {
                self.state.searched = 0;
                if start > self.state.max_length {
                    src.advance(start + len);
                    return Err(self.state.too_long(start as u64, (start + len) as u64));
                }
                let mut frame = src.split_to(start + len);
                if self.state.strip_delimiter {
                    frame.truncate(start);
                }
                Ok(Some(frame.freeze()))
            }
            None => {
                self.mark_searched(src.len());
                if self.state.searched > self.state.max_length {
                    // No delimiter starts within the first `max_length + 1` bytes.
                    let keep = (self.longest - 1).min(src.len());
                    let drop = src.len() - keep;
                    src.advance(drop);
                    self.mark_searched(src.len());
                    self.state.start_discarding(drop as u64)?;
                }
                Ok(None)
            }
        }
    }
}

/// Writes each item followed by a delimiter.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{DelimiterEncoder, Encoder};
/// let mut buf = BytesMut::new();
/// DelimiterEncoder::new(&b"\0"[..]).encode("a", &mut buf)?;
/// assert_eq!(&buf[..], b"a\0");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DelimiterEncoder {
    delimiter: Bytes,
}

impl DelimiterEncoder {
    /// An encoder appending `delimiter`.
    pub fn new(delimiter: impl Into<Bytes>) -> Self {
        DelimiterEncoder {
            delimiter: delimiter.into(),
        }
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for DelimiterEncoder {
    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
        let data = item.as_ref();
        dst.reserve(data.len() + self.delimiter.len());
        dst.extend_from_slice(data);
        dst.extend_from_slice(&self.delimiter);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(d: &mut DelimiterDecoder, input: &[u8]) -> Vec<Result<Bytes, u64>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match d.decode(&mut buf) {
                Ok(Some(f)) => out.push(Ok(f)),
                Ok(None) => return out,
                Err(CodecError::FrameTooLong { dropped, .. }) => out.push(Err(dropped)),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn shortest_frame_wins() {
        let mut d = DelimiterDecoder::new(64, [&b"\n"[..], b"\r\n"]).unwrap();
        assert_eq!(
            frames(&mut d, b"ABC\nDEF\r\n"),
            [Ok("ABC".into()), Ok("DEF".into())]
        );
        let mut d = DelimiterDecoder::new(64, [&b"::"[..], b";"]).unwrap();
        assert_eq!(
            frames(&mut d, b"a;b::c::;"),
            [
                Ok("a".into()),
                Ok("b".into()),
                Ok("c".into()),
                Ok("".into())
            ]
        );
    }

    #[test]
    fn delimiter_split_across_reads() {
        let mut d = DelimiterDecoder::new(64, [&b"<END>"[..]]).unwrap();
        let mut buf = BytesMut::from(&b"hello<EN"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        assert_eq!(
            d.state.searched, 4,
            "only the last len-1 bytes are searched again"
        );
        buf.extend_from_slice(b"D>x");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "hello");
        assert_eq!(&buf[..], b"x");
    }

    #[test]
    fn keeping_the_delimiter() {
        let mut d = DelimiterDecoder::new(64, [&b"|"[..]])
            .unwrap()
            .strip_delimiter(false);
        assert_eq!(frames(&mut d, b"a|b|"), [Ok("a|".into()), Ok("b|".into())]);
    }

    #[test]
    fn over_long_frames_are_dropped_and_decoding_resumes() {
        let mut d = DelimiterDecoder::new(3, [&b"||"[..]]).unwrap();
        assert_eq!(frames(&mut d, b"abcdef||ok||"), [Err(8), Ok("ok".into())]);
        // Arriving in pieces, with nothing buffered past max + delimiter.
        let mut buf = BytesMut::new();
        for piece in [&b"abcdefgh"[..], b"ijk|", b"|ok||"] {
            buf.extend_from_slice(piece);
            loop {
                match d.decode(&mut buf) {
                    Ok(Some(f)) => {
                        assert_eq!(f, "ok");
                        return;
                    }
                    Ok(None) => break,
                    Err(CodecError::FrameTooLong { dropped, .. }) => assert_eq!(dropped, 13),
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(buf.len() <= 3 + 2, "buffered {} bytes", buf.len());
        }
        panic!("the frame after the over-long one never came");
    }

    #[test]
    fn fail_fast_reports_before_the_delimiter() {
        let mut d = DelimiterDecoder::new(3, [&b"\n"[..]])
            .unwrap()
            .fail_fast(true);
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert!(matches!(
            d.decode(&mut buf),
            Err(CodecError::FrameTooLong { .. })
        ));
        buf.extend_from_slice(b"gh\nok\n");
        assert_eq!(d.decode(&mut buf).unwrap().unwrap(), "ok");
    }

    #[test]
    fn no_delimiters_is_an_error() {
        assert!(DelimiterDecoder::new(3, Vec::<Vec<u8>>::new()).is_err());
        assert!(DelimiterDecoder::new(3, [&b""[..]]).is_err());
    }
}
