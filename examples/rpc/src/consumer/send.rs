//! How a call whose caller sends its own frame leaves: filed for the loop
//! first, then sent from the caller's thread if nothing else is in flight,
//! or handed to the loop behind the others. Uses the consumer's filings,
//! sink, outgoing messages and the `Sent` report of `wait`.

use super::filings::{Filed, Filings};
use super::pending::Outgoing;
use super::sink::Sink;
use super::wait::Sent;
use bytes::Bytes;
use gyre_reactor::ChannelHandle;
use std::time::{Duration, Instant};

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
