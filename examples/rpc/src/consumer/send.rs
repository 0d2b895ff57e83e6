//! How a call whose caller sends its own frame leaves: with the
//! connection's input lent to the caller, which then reads the answer
//! itself; or filed for the loop first, then sent from the caller's thread
//! if nothing else is in flight, or handed to the loop behind the others.
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

/// Files the call `id` with its sink `done`, then sends `frame`: from
/// this thread if it is alone in flight (sparing the loop a wake-up), or
/// through the loop, which gathers the frames of many calls into one
/// system call. Filed before it is sent, so the loop knows the call
/// before its answer can arrive; a closed connection fails the filing.
pub(crate) fn send_filed(
    handle: &ChannelHandle<Outgoing>,
    filings: &Filings,
    id: u64,
    frame: Bytes,
    timeout: Duration,
    done: Sink,
) -> Sent<'static> {
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
