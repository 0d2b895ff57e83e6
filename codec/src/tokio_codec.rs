//! tokio-util's `Decoder` and `Encoder` for every codec (feature
//! `tokio-util`), so they work with `tokio_util::codec::Framed`.
//!
//! Each impl forwards to this crate's own trait; `CodecError` already
//! converts from `std::io::Error`, as tokio-util requires.

use crate::{
    CodecError, DelimiterDecoder, DelimiterEncoder, FixedLengthDecoder, LengthFieldDecoder,
    LengthFieldPrepender, LineDecoder, LineEncoder, VarintLengthDecoder, VarintLengthPrepender,
};
use bytes::{Bytes, BytesMut};

macro_rules! tokio_decoder {
    ($($decoder:ty),* $(,)?) => {$(
        impl tokio_util::codec::Decoder for $decoder {
            type Item = Bytes;
            type Error = CodecError;

            fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
                crate::Decoder::decode(self, src)
            }

            fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
                crate::Decoder::decode_eof(self, src)
            }
        }
    )*};
}

macro_rules! tokio_encoder {
    ($($encoder:ty),* $(,)?) => {$(
        impl<T: AsRef<[u8]>> tokio_util::codec::Encoder<T> for $encoder {
            type Error = CodecError;

            fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), CodecError> {
                crate::Encoder::encode(self, item, dst)
            }
        }
    )*};
}

tokio_decoder!(
    LineDecoder,
    DelimiterDecoder,
    FixedLengthDecoder,
    LengthFieldDecoder,
    VarintLengthDecoder
);
tokio_encoder!(
    LineEncoder,
    DelimiterEncoder,
    LengthFieldPrepender,
    VarintLengthPrepender
);

impl tokio_util::codec::Decoder for crate::ProxyHeaderDecoder {
    type Item = crate::ProxyHeader;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        crate::Decoder::decode(self, src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, CodecError> {
        crate::Decoder::decode_eof(self, src)
    }
}

impl tokio_util::codec::Encoder<&crate::ProxyHeader> for crate::ProxyHeaderEncoder {
    type Error = CodecError;

    fn encode(&mut self, item: &crate::ProxyHeader, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode_into(dst)
    }
}
