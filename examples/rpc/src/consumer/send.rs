//! How a call whose caller sends its own frame leaves: with the
//! connection's input lent to the caller, which then reads the answer
//! itself; or, if nothing else is in flight, filed for the loop first and
//! sent from the caller's thread; or handed to the loop behind the others.
//! Uses the consumer's filings, sink, outgoing messages, calls read by
//! their callers (`lent`) and the `Sent` report of `wait`, and the
//! reactor's input lend.

use super::filings::{Filed, Filings};
use super::lent::{Lent, Settling};
use super::pending::Outgoing;
use super::sink::Sink;
use super::wait::Sent;
use bytes::Bytes;
use gyre_reactor::{ChannelHandle, InputLend};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Sends the call `id` (`frame`) from this thread with the connection's
/// input lent to it, taken before the frame goes so that the loop cannot
/// read the answer first: takes the lend if the loop offers it, runs
/// `check` under it (the caller's own condition; `None` declines), counts
/// the call in flight if nothing else is (calls made meanwhile then go
/// through the loop), and writes. Returns the call, to be read by its
/// caller, and what `check` gave; otherwise `frame`, unsent, with nothing
/// counted (a lend taken is given back as it drops).
///
/// With calls already in flight it declines before it touches the lend:
/// the count decides after the lend is taken, and a lend taken and given
/// back costs two `epoll_ctl`s (the input's registration off and on) and
/// can wake the loop for bytes waiting meanwhile. Taken and given back by
/// every one of 64 calls in flight, that held `tokio_reads` callers to
/// 0.76x the default consumer's calls/s (`rpc`, Zen 4 VM). A call that
/// finds the count just fallen to zero after this look goes the usual way.
pub(crate) fn send_under_lend<'a, T>(
    handle: &ChannelHandle<Outgoing>,
    on: Settling<'a>,
    id: u64,
    timeout: Duration,
    frame: Bytes,
    check: impl FnOnce(&InputLend) -> Option<T>,
) -> Result<(Lent<'a>, T), Bytes> {
    if on.waiting.load(Ordering::Relaxed) != 0 {
        return Err(frame);
    }
    let Some(lend) = handle.lend_input() else {
        return Err(frame);
    };
    let Some(checked) = check(&lend) else {
        return Err(frame);
    };
    if on
        .waiting
        .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
        .is_err()
    {
        return Err(frame);
    }
    let started = Instant::now();
    match handle.write_direct(frame) {
        Ok(()) => {
            let lent = Lent {
                lend,
                id,
                timeout,
                started,
                on,
            };
            Ok((lent, checked))
        }
        Err(frame) => {
            drop(lend);
            on.waiting.fetch_sub(1, Ordering::Relaxed);
            Err(frame)
        }
    }
}

/// Sends the call `id` (`frame`, its answer to `done`) from this thread
/// if it is alone in flight, sparing the loop a wake-up: filed first, so
/// that the loop knows the call before its answer can arrive (a closed
/// connection fails the filing). With other calls in flight it goes
/// through the loop, which gathers the frames of many calls into one
/// system call and files each on its way out; filing it here as well
/// would put a counter and a queue that this thread and the loop both
/// write in every call's path (with 64 calls in flight on the Zen 5 VM,
/// 1.09x the calls/s of filing them all here).
pub(crate) fn send_or_queue(
    handle: &ChannelHandle<Outgoing>,
    filings: &Filings,
    id: u64,
    frame: Bytes,
    timeout: Duration,
    done: Sink,
) -> Sent<'static> {
    if filings.in_flight() > 0 {
        let call = Outgoing::Call {
            id,
            frame,
            timeout,
            done,
            names: None,
        };
        // A closed connection drops the call, whose sink then answers
        // `Closed`.
        let _ = handle.write_and_flush(call);
        return Sent::Queued;
    }
    let before = filings.file(Filed {
        id,
        done,
        timeout,
        started: Instant::now(),
    });
    let frame = if before == 0 {
        handle.write_direct(frame).err()
    } else {
        Some(frame)
    };
    match frame {
        None => Sent::Alone,
        Some(frame) => {
            let _ = handle.write_and_flush(Outgoing::Frame(frame));
            Sent::Queued
        }
    }
}

#[cfg(test)]
mod tests {
    use super::send_under_lend;
    use crate::consumer::{Connection, Consumer};
    use crate::protocol::heartbeat_frame;
    use crate::ServiceKey;
    use bytes::{Bytes, BytesMut};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    /// A consumer whose deadlines are checked once a minute (so its loop
    /// takes no filing during a test), connected to a provider socket the
    /// test holds and never answers from.
    fn connected() -> (Consumer, Connection, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let consumer = Consumer::builder()
            .timeout_tick(Duration::from_secs(60))
            .build()
            .unwrap();
        let conn = consumer.connect(listener.local_addr().unwrap()).unwrap();
        let (provider, _) = listener.accept().unwrap();
        (consumer, conn, provider)
    }

    /// With a call in flight, a caller that would read its own answer
    /// leaves the offered input alone: it declines before taking the lend,
    /// whose taking and giving back cost two `epoll_ctl`s per call at 64
    /// in flight. (Each try first waits for the offer, taking and dropping
    /// a lend, which leaves it standing; without the early decline nearly
    /// every try takes it.)
    #[test]
    fn a_call_with_another_in_flight_leaves_the_input_alone() {
        let (consumer, conn, mut provider) = connected();
        // A ping: the loop reads it, drains the socket and offers its input.
        let ping = heartbeat_frame(&mut BytesMut::new(), true, 7);
        provider.write_all(&ping).unwrap();
        // One call in flight: the provider never answers.
        let key = ServiceKey::new("demo.Silent");
        let first = conn.call_async::<_, ()>(&key, "wait", &1u8);
        assert_eq!(conn.in_flight(), 1);
        for _ in 0..20 {
            let deadline = Instant::now() + Duration::from_secs(5);
            while conn.link.handle.lend_input().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "the loop never offered its input"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let mut looked = false;
            let sent = send_under_lend(
                &conn.link.handle,
                conn.link.settling(),
                99,
                Duration::from_secs(1),
                Bytes::from_static(b"never sent"),
                |_| {
                    looked = true;
                    Some(())
                },
            );
            assert!(sent.is_err(), "sent with another call in flight");
            assert!(!looked, "took the input's lend with another call in flight");
        }
        assert_eq!(conn.in_flight(), 1);
        drop(first);
        consumer.shutdown();
    }

    /// The first call, alone in flight, is filed and sent by its caller;
    /// the second, with the first still waiting, is handed to the loop
    /// unfiled.
    #[test]
    fn a_call_with_others_in_flight_goes_through_the_loop_unfiled() {
        let (consumer, conn, _provider) = connected();
        let key = ServiceKey::new("demo.Silent");
        let first = conn.call_async::<_, ()>(&key, "wait", &1u8);
        assert_eq!(conn.link.filings.len(), 1, "the first call filed itself");
        let second = conn.call_async::<_, ()>(&key, "wait", &2u8);
        assert_eq!(conn.link.filings.len(), 1, "the second went to the loop");
        // The loop files the second on its way out.
        let deadline = Instant::now() + Duration::from_secs(5);
        while conn.in_flight() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(conn.in_flight(), 2);
        drop((first, second));
        consumer.shutdown();
    }
}
