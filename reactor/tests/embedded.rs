//! `EmbeddedChannel`: a pipeline run on the test's thread over a real
//! channel. Covered: a decoder's refusal kept for the test (the channel
//! stays open), output far beyond a socket pair's buffer delivered whole,
//! input likewise, handler timers firing only when the clock is moved, the
//! peer's EOF with and without half-closure, a close delivering what was
//! queued, a handle used from another thread, calls on a closed channel
//! refused, and a handler's panic closing the channel as on a server. No
//! test sleeps.

use bytes::{Bytes, BytesMut};
use gyre_codec::{LineDecoder, LineEncoder, LineEnding};
use gyre_reactor::{
    ChannelHandle, ChannelOptions, EmbeddedChannel, EmbeddedError, Error, InboundContext,
    InboundHandler, Pipeline, TimerId, UserEvent,
};
use std::time::Duration;

/// Passes each chunk on and, on the commands below, writes, schedules or
/// closes.
#[derive(Default)]
struct Commands {
    timer: Option<TimerId>,
}

impl InboundHandler for Commands {
    type Read = BytesMut;
    type Pass = BytesMut;
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        match &msg[..] {
            b"flood" => {
                for i in 0..64u8 {
                    ctx.write(Bytes::from(vec![i; 64 * 1024]));
                }
                ctx.flush();
            }
            b"later" => self.timer = Some(ctx.schedule(Duration::from_secs(5), 7)),
            b"queue-then-close" => {
                ctx.write(Bytes::from_static(b"last words"));
                ctx.close();
            }
            _ => {}
        }
        ctx.fire_read(msg);
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, tag: u64) {
        ctx.write_and_flush(Bytes::from(format!("timer {tag}")));
    }
}

#[test]
fn a_decoders_refusal_is_kept_for_the_test_and_the_channel_stays_open() {
    let mut ch: EmbeddedChannel<Bytes, Bytes> = EmbeddedChannel::new(
        Pipeline::new().codec(LineDecoder::new(8), LineEncoder::new(LineEnding::Lf)),
    )
    .unwrap();
    ch.write_inbound(b"short\n").unwrap();
    assert_eq!(ch.read_inbound(), Some(Bytes::from_static(b"short")));
    assert!(ch.take_error().is_none());
    ch.write_inbound(b"far too long for the decoder\n").unwrap();
    let error = ch.take_error().expect("the decoder's refusal");
    assert!(matches!(error, Error::Codec(_)), "{error:?}");
    assert!(
        ch.is_open(),
        "kept, not closed, as Netty's checkException leaves it"
    );
}

#[test]
fn output_far_beyond_the_socket_pairs_buffer_comes_out_whole() {
    let mut ch = EmbeddedChannel::new(Pipeline::new().inbound(Commands::default())).unwrap();
    ch.write_inbound(b"flood").unwrap();
    let out = ch.read_outbound().unwrap();
    assert_eq!(out.len(), 64 * 64 * 1024);
    for (i, chunk) in out.chunks(64 * 1024).enumerate() {
        assert!(
            chunk.iter().all(|&b| b == i as u8),
            "chunk {i} out of order"
        );
    }
    assert!(ch.read_outbound().unwrap().is_empty(), "taken once");
}

#[test]
fn input_far_beyond_the_socket_pairs_buffer_reaches_the_pipeline_whole() {
    let mut ch = EmbeddedChannel::new(Pipeline::new().inbound(Commands::default())).unwrap();
    let input: Vec<u8> = (0..4 << 20).map(|i| (i % 251) as u8).collect();
    ch.write_inbound(&input).unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = ch.read_inbound() {
        got.extend_from_slice(&chunk);
    }
    assert!(
        got == input,
        "{} bytes of {} arrived in order",
        got.len(),
        input.len()
    );
}

#[test]
fn a_handlers_timer_fires_only_when_the_clock_is_moved() {
    let mut ch = EmbeddedChannel::new(Pipeline::new().inbound(Commands::default())).unwrap();
    let start = ch.now();
    ch.write_inbound(b"later").unwrap();
    ch.advance_time_by(Duration::from_millis(4_990)).unwrap();
    assert!(ch.read_outbound().unwrap().is_empty(), "not yet");
    ch.advance_time_by(Duration::from_millis(20)).unwrap();
    assert_eq!(ch.read_outbound().unwrap(), "timer 7");
    assert_eq!(ch.now() - start, Duration::from_millis(5_010));
}

#[test]
fn the_peers_eof_closes_the_channel_or_with_half_closure_is_an_event() {
    let mut ch = EmbeddedChannel::new(Pipeline::new().inbound(Commands::default())).unwrap();
    ch.write_eof().unwrap();
    assert!(!ch.is_open());

    let options = ChannelOptions::default().allow_half_closure(true);
    let mut ch =
        EmbeddedChannel::with_options(options, Pipeline::new().inbound(Commands::default()))
            .unwrap();
    ch.write_eof().unwrap();
    assert!(matches!(ch.read_user_event(), Some(UserEvent::InputClosed)));
    assert!(ch.is_open(), "half-closed: still writable");
    ch.write_outbound(Bytes::from_static(b"after eof")).unwrap();
    assert_eq!(ch.read_outbound().unwrap(), "after eof");
}

#[test]
fn a_close_delivers_what_was_queued_then_refuses_more() {
    let mut ch = EmbeddedChannel::new(Pipeline::new().inbound(Commands::default())).unwrap();
    ch.write_inbound(b"queue-then-close").unwrap();
    assert!(!ch.is_open());
    assert_eq!(ch.read_outbound().unwrap(), "last words");
    assert!(ch.write_inbound(b"more").is_err(), "its end is closed");
    match ch.write_outbound(Bytes::from_static(b"late")) {
        Err(EmbeddedError::Closed(back)) => assert_eq!(back.0.unwrap(), "late"),
        other => panic!("{other:?}"),
    }
    ch.close().unwrap();
}

/// Gives out its channel's handle through a channel of the test's.
struct GivesHandle(std::sync::mpsc::Sender<ChannelHandle<Bytes>>);

impl InboundHandler for GivesHandle {
    type Read = BytesMut;
    type Pass = ();
    type Write = Bytes;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.0.send(ctx.handle()).unwrap();
        ctx.fire_active();
    }

    fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}
}

#[test]
fn a_handle_used_from_another_thread_is_served_by_the_next_run() {
    let (tx, rx) = std::sync::mpsc::channel();
    let mut ch = EmbeddedChannel::new(Pipeline::new().inbound(GivesHandle(tx))).unwrap();
    let handle = rx.recv().unwrap();
    std::thread::spawn(move || {
        handle
            .write_and_flush(Bytes::from_static(b"from afar"))
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(ch.read_outbound().unwrap(), "from afar");
}

/// Panics on "boom"; passes the rest on.
struct Brittle;

impl InboundHandler for Brittle {
    type Read = BytesMut;
    type Pass = BytesMut;
    type Write = Bytes;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
        assert!(&msg[..] != b"boom", "deliberate: the handler breaks");
        ctx.fire_read(msg);
    }
}

#[test]
fn a_handlers_panic_closes_the_embedded_channel_as_a_servers() {
    let mut ch = EmbeddedChannel::new(Pipeline::new().inbound(Brittle)).unwrap();
    ch.write_inbound(b"fine").unwrap();
    assert_eq!(ch.read_inbound().as_deref(), Some(&b"fine"[..]));
    ch.write_inbound(b"boom").unwrap();
    assert!(!ch.is_open(), "closed at once, the test's thread unharmed");
    assert!(ch.write_inbound(b"more").is_err());
    assert!(ch.read_inbound().is_none());
}
