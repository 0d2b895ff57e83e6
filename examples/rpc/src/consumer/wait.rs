//! How a blocking call waits for its answer ([`wait_for_answer`]): with the
//! connection's input lent to it, reading and decoding the answer itself
//! ([`LentCall`]); asleep beside the socket, woken with the loop; or asleep
//! on its reply slot. Uses the consumer's sink, reply slot and calls read
//! by their callers (`lent`), and the reactor's wait beside a socket.

use super::error::RpcError;
use super::lent::{with_read_buffer, Lent, Read};
use super::reply::Reply;
use super::sink::{Answer, Sink};
use bytes::BytesMut;
use gyre_reactor::{ChannelHandle, InputWait};
use std::io;
use std::time::Duration;

/// How long a caller woken by its connection's input watches for its
/// answer before it sleeps the usual way. The loop, woken by the same
/// input, must read, decode and settle the call: 5-20 µs on the VMs we
/// measure on. Input that turns out to be someone else's costs the caller
/// this much watching (it yields its core meanwhile), once.
const WATCH: Duration = Duration::from_micros(50);

/// How far past its deadline a caller sleeping beside the socket gives
/// up on it and sleeps on its reply slot alone (the loop answers a timed
/// out call with `Timeout` and rings, so this is a safety margin only).
const BESIDE_SLACK: Duration = Duration::from_secs(1);

/// How a call left.
pub(crate) enum Sent<'a> {
    /// Through the connection's loop, or from this thread with others in
    /// flight: the loop settles it.
    Queued,
    /// From this thread with nothing else in flight: the loop settles it,
    /// and its answer is most likely the socket's next input.
    Alone,
    /// From this thread with the connection's input lent to it: this
    /// thread reads the answer.
    Lent(LentCall<'a>),
}

/// A blocking call sent from its caller's thread while the connection's
/// input is lent to that thread (see `lent`), and its reply slot.
pub(crate) struct LentCall<'a> {
    pub(crate) lent: Lent<'a>,
    pub(crate) done: Reply,
}

impl LentCall<'_> {
    /// Reads until this call's answer is in, and puts it in the call's
    /// reply slot (the timeout too); or files the call and gives the
    /// input back with everything read, for the loop to settle.
    pub(crate) fn read_answer(self) {
        with_read_buffer(|buf| self.read_into(buf))
    }

    fn read_into(self, buf: &mut BytesMut) {
        let LentCall { mut lent, done } = self;
        let deadline = lent.deadline();
        buf.clear();
        loop {
            match lent.lend.read(buf, deadline) {
                Ok(0) => return lent.give_up(buf, Sink::Reply(done)),
                Ok(_) => match lent.look(buf) {
                    Read::More => {}
                    Read::Ours { len } => return done.send(lent.answered(buf, len)),
                    Read::Other => return lent.give_up(buf, Sink::Reply(done)),
                },
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return done.send(lent.timed_out(buf));
                }
                Err(_) => return lent.give_up(buf, Sink::Reply(done)),
            }
        }
    }
}

/// Runs `start` with a sink for one call (on this thread's reply slot)
/// and waits for its answer. If `start` fails, its sink has been dropped
/// (and has answered `Closed`): that answer is discarded and `start`'s
/// error returned.
///
/// How it waits depends on how the call left ([`Sent`]). Lent the input,
/// it reads its answer itself. Sent alone, the next input on the socket
/// is then most likely the answer, so the thread sleeps beside the socket
/// ([`ChannelHandle::wait_for_input`]) and, woken by input, watches for
/// the answer for up to [`WATCH`] before it sleeps on its reply slot: the
/// kernel wakes it as it wakes the loop, in parallel, instead of the loop
/// waking it after its own wake-up, read and decode. Otherwise it sleeps
/// on its reply slot.
pub(crate) fn wait_for_answer<'a, W>(
    handle: &ChannelHandle<W>,
    timeout: Duration,
    start: impl FnOnce(Sink) -> Result<Sent<'a>, RpcError>,
) -> Answer {
    let (reply, waiter) = Reply::for_this_thread();
    match start(Sink::Reply(reply)) {
        Ok(sent) => {
            match sent {
                Sent::Lent(call) => call.read_answer(),
                Sent::Alone => {
                    if let Some(alarm) = waiter.alarm() {
                        let ready = || waiter.is_ready();
                        let woke = handle.wait_for_input(alarm, ready, timeout + BESIDE_SLACK);
                        if woke == InputWait::Input {
                            waiter.watch(WATCH);
                        }
                    }
                }
                Sent::Queued => {}
            }
            waiter.recv()
        }
        Err(e) => {
            waiter.discard();
            Err(e)
        }
    }
}
