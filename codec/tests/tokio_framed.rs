//! The codecs under tokio-util's `Framed`, over an in-memory duplex stream
//! (feature `tokio-util`).
#![cfg(feature = "tokio-util")]

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use gyre_codec::{CodecError, LengthFieldDecoder, LengthFieldPrepender, LineDecoder, LineEncoder};
use tokio_util::codec::{FramedRead, FramedWrite};

#[tokio::test]
async fn lines_through_framed() {
    let (client, server) = tokio::io::duplex(16);
    let writer = tokio::spawn(async move {
        let mut sink = FramedWrite::new(client, LineEncoder::default());
        for line in ["alpha", "beta", "a line longer than the sixteen-byte pipe"] {
            sink.send(line).await.unwrap();
        }
    });
    let mut lines = FramedRead::new(server, LineDecoder::new(64));
    let mut got = Vec::new();
    while let Some(line) = lines.next().await {
        got.push(line.unwrap());
    }
    writer.await.unwrap();
    assert_eq!(
        got,
        ["alpha", "beta", "a line longer than the sixteen-byte pipe"]
    );
}

#[tokio::test]
async fn length_fields_through_framed_with_an_over_long_frame() {
    let (client, server) = tokio::io::duplex(64);
    let writer = tokio::spawn(async move {
        let mut sink = FramedWrite::new(client, LengthFieldPrepender::new(2).unwrap());
        sink.send(&b"ok"[..]).await.unwrap();
        // The reader hangs up once it has seen the error, so this may fail.
        let _ = sink.send(&[0u8; 300][..]).await;
    });
    let decoder = LengthFieldDecoder::builder()
        .length_field_length(2)
        .initial_bytes_to_strip(2)
        .max_frame_length(100)
        .build()
        .unwrap();
    let mut frames = FramedRead::new(server, decoder);
    assert_eq!(frames.next().await.unwrap().unwrap(), Bytes::from("ok"));
    assert!(matches!(
        frames.next().await.unwrap(),
        Err(CodecError::FrameTooLong { max: 100, .. })
    ));
    drop(frames); // hang up, as a server would after a fatal frame error
    writer.await.unwrap();
}

#[tokio::test]
async fn varint_frames_and_a_proxy_header_through_framed() {
    use gyre_codec::{
        ProxiedAddresses, ProxyHeader, ProxyHeaderDecoder, ProxyHeaderEncoder, VarintLengthDecoder,
        VarintLengthPrepender,
    };
    let (client, server) = tokio::io::duplex(32);
    let client_addr = ProxiedAddresses {
        source: "198.51.100.9:4000".parse().unwrap(),
        destination: "192.0.2.10:80".parse().unwrap(),
    };
    let writer = tokio::spawn(async move {
        let mut header = FramedWrite::new(client, ProxyHeaderEncoder);
        header
            .send(&ProxyHeader::v2(Some(client_addr)))
            .await
            .unwrap();
        let mut sink = FramedWrite::new(header.into_inner(), VarintLengthPrepender);
        for frame in [&b"one"[..], &[9u8; 200][..], b""] {
            sink.send(frame).await.unwrap();
        }
    });
    let mut header = FramedRead::new(server, ProxyHeaderDecoder::new());
    let got = header.next().await.unwrap().unwrap();
    assert_eq!(got.addresses, Some(client_addr));
    let parts = header.into_parts();
    let mut frames = FramedRead::new(parts.io, VarintLengthDecoder::new(1024));
    // What the header's reader had read past the header goes first.
    *frames.read_buffer_mut() = parts.read_buf;
    let mut sizes = Vec::new();
    while let Some(frame) = frames.next().await {
        sizes.push(frame.unwrap().len());
    }
    writer.await.unwrap();
    assert_eq!(sizes, [3, 200, 0]);
}
