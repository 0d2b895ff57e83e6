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
pub(crate) fn send_under_lend<'a, T>(
    handle: &ChannelHandle<Outgoing>,
    on: Settling<'a>,
    id: u64,
    timeout: Duration,
    frame: Bytes,
    check: impl FnOnce(&InputLend) -> Option<T>,
) -> Result<(Lent<'a>, T), Bytes> {
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
    use crate::consumer::Consumer;
    use crate::ServiceKey;
    use std::net::TcpListener;
    use std::time::Duration;

    /// The first call, alone in flight, is filed and sent by its caller;
    /// the second, with the first still waiting, is handed to the loop
    /// unfiled. (Deadlines are checked once a minute here, so the loop
    /// takes no filing during the test; the provider never answers.)
    #[test]
    fn a_call_with_others_in_flight_goes_through_the_loop_unfiled() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let consumer = Consumer::builder()
            .timeout_tick(Duration::from_secs(60))
            .build()
            .unwrap();
        let conn = consumer.connect(listener.local_addr().unwrap()).unwrap();
        let _provider = listener.accept().unwrap();
        let key = ServiceKey::new("demo.Silent");
        let first = conn.call_async::<_, ()>(&key, "wait", &1u8);
        assert_eq!(conn.link.filings.len(), 1, "the first call filed itself");
        let second = conn.call_async::<_, ()>(&key, "wait", &2u8);
        assert_eq!(conn.link.filings.len(), 1, "the second went to the loop");
        // The loop files the second on its way out.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while conn.in_flight() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(conn.in_flight(), 2);
        drop((first, second));
        consumer.shutdown();
    }
}
