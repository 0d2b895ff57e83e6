//! The driver every fuzz target shares: feed the input to a decoder in
//! reads of fuzzer-chosen sizes and check that nothing panics and that the
//! decoder never leaves more than its bound plus one read buffered.

use bytes::{Bytes, BytesMut};
use gyre_codec::{CodecError, Decoder};

/// Reads are cut at sizes taken from the input's first bytes.
pub fn exercise<D: Decoder<Item = Bytes>>(decoder: &mut D, data: &[u8], bound: usize) {
    let (sizes, stream) = data.split_at(data.len().min(8));
    let mut buf = BytesMut::new();
    let mut at = 0;
    let mut turn = 0;
    while at < stream.len() {
        let size = 1 + sizes.get(turn % sizes.len().max(1)).copied().unwrap_or(255) as usize;
        turn += 1;
        let end = (at + size).min(stream.len());
        buf.extend_from_slice(&stream[at..end]);
        at = end;
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(_)) | Err(CodecError::FrameTooLong { .. }) => continue,
                Ok(None) => break,
                Err(_) => {
                    buf.clear();
                    break;
                }
            }
        }
        assert!(buf.len() <= bound + size, "buffered {} bytes, bound {bound} + read {size}", buf.len());
    }
    let _ = decoder.decode_eof(&mut buf);
}
