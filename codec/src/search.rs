//! The state the two searching decoders ([`LineDecoder`](crate::LineDecoder)
//! and [`DelimiterDecoder`](crate::DelimiterDecoder)) share: their limits,
//! how far they have searched, and the discarding of an over-long frame.

use crate::error::CodecError;
use bytes::{Buf, BytesMut};

#[derive(Debug, Clone)]
pub(crate) struct SearchState {
    pub(crate) max_length: usize,
    pub(crate) strip_delimiter: bool,
    pub(crate) fail_fast: bool,
    /// No frame end starts before this offset of the buffer.
    pub(crate) searched: usize,
    /// While discarding an over-long frame: how many bytes of it were dropped.
    pub(crate) discarding: Option<u64>,
}

impl SearchState {
    /// Frames of at most `max_length` bytes, ending stripped, failing when
    /// an over-long frame's end arrives (Netty's defaults).
    pub(crate) fn new(max_length: usize) -> Self {
        SearchState {
            max_length,
            strip_delimiter: true,
            fail_fast: false,
            searched: 0,
            discarding: None,
        }
    }

    #[inline]
    pub(crate) fn too_long(&self, length: u64, dropped: u64) -> CodecError {
        CodecError::FrameTooLong {
            max: self.max_length,
            length,
            dropped,
        }
    }

    /// The end of the frame being discarded is at `end`: drop through it and
    /// leave discarding mode, reporting the frame unless failing fast (which
    /// reported it when discarding began).
    #[inline]
    pub(crate) fn finish_discarding(
        &mut self,
        src: &mut BytesMut,
        dropped: u64,
        end: usize,
    ) -> Result<(), CodecError> {
        let dropped = dropped + end as u64;
        src.advance(end);
        self.searched = 0;
        self.discarding = None;
        if self.fail_fast {
            Ok(())
        } else {
            Err(self.too_long(dropped, dropped))
        }
    }

    /// Start discarding an over-long frame whose first `dropped` bytes were
    /// just dropped; report it now if failing fast.
    #[inline]
    pub(crate) fn start_discarding(&mut self, dropped: u64) -> Result<(), CodecError> {
        self.discarding = Some(dropped);
        if self.fail_fast {
            Err(self.too_long(dropped, dropped))
        } else {
            Ok(())
        }
    }
}
