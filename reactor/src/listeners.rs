//! A loop's listening sockets: registering them with the driver, accepting
//! on readiness (epoll) or through single-shot accepts in the ring
//! (io_uring, a bounded number ahead of the loop), holding
//! each turn to its share of accepts, backing off when the process runs
//! out of descriptors, and closing them. Uses the driver, the token layout
//! and the accept back-off; generic over what is done with an accepted
//! connection (the loop's acceptor), so it knows nothing of the loop above
//! it.

use crate::accept_backoff::{self, AcceptBackoff};
use crate::connection_cap::{CapSlot, CapWaker, ConnectionCap};
use crate::driver::Driver;
use crate::socket::{ListenSocket, Stream};
use crate::token;
use mio::Interest;
use std::collections::VecDeque;
use std::io;
use std::time::Instant;

/// One listening socket and what is done with its connections.
pub(crate) struct Listener<A> {
    socket: ListenSocket,
    /// Called with each accepted connection.
    pub(crate) acceptor: A,
    backoff: AcceptBackoff,
    /// The most connections one loop turn hands to the acceptor
    /// (`ListenOptions::max_accepts_per_event`), so that a flood of
    /// connections does not hold the loop's other channels.
    per_event: usize,
    /// The turn the count below is of, and how many it handed over.
    turn: u64,
    taken: usize,
    /// The loop has this listener on its come-back list.
    again_queued: bool,
    /// The cap on open connections this listener shares, if any, and
    /// what it leaves with the cap at the cap: a call that has the loop
    /// accept on this listener again.
    cap: Option<(ConnectionCap, CapWaker)>,
    /// At the cap: the waker is with the cap (it wakes the loop once,
    /// after which the listener leaves it again if still at the cap).
    cap_waiting: bool,
    /// Connections the ring accepted past a turn's share, first to be
    /// handed over next turn: `Some` on io_uring, whose accepts take
    /// connections before the loop asks; `None` on epoll, where the
    /// kernel's backlog holds them.
    parked: Option<VecDeque<Stream>>,
    /// io_uring: single-shot accepts in the ring (pushed, their completion
    /// not yet seen). Each brings in one connection at most, so parked
    /// and in flight together never pass [`park_limit`].
    #[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
    in_flight: usize,
}

/// How many turns' shares of connections an io_uring listener keeps
/// parked before it stops accepting ahead of the loop.
#[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
const PARKED_SHARES: usize = 4;
/// The fewest it may keep, so that a small share does not pause and
/// resume the accept every few connections.
#[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
const MIN_PARKED: usize = 64;

/// The most connections an io_uring listener holds ahead of its loop,
/// parked and being accepted together. A loop slower than the connections
/// arriving would otherwise hold every one of them as a descriptor until
/// the process ran out, and the clients would never feel the full backlog
/// that tells them to slow down.
///
/// The ring accepts with single-shot accepts, a turn's share of them in
/// flight, and pushes another only while the two counts stay below this
/// limit: each accept brings in one connection at most, whenever the
/// kernel runs it. (A multishot accept, cancelled at the limit, overshot
/// it: in one `io_uring_enter` the kernel keeps accepting for as long as
/// connections keep arriving, 200 past the bound in a test on a slow
/// host, before the cancel could take effect.)
#[cfg_attr(not(feature = "io-uring"), allow(dead_code))]
fn park_limit(per_event: usize) -> usize {
    per_event.saturating_mul(PARKED_SHARES).max(MIN_PARKED)
}

/// What one accept gave: from the socket (epoll) or the parked ones
/// (io_uring).
pub(crate) enum Accepted {
    Stream(Stream),
    /// Nothing is waiting: the backlog is empty (epoll: wait for the next
    /// readable edge), or no connection the ring accepted is parked.
    Drained,
    /// Accepting failed (out of descriptors, say) and the edge is spent:
    /// schedule the retry timer if `retry`.
    Refused {
        retry: bool,
    },
}

/// What an accept's completion gave (io_uring).
#[cfg(feature = "io-uring")]
pub(crate) struct Completed {
    pub(crate) stream: Option<Stream>,
    /// Schedule the retry timer (none is pending).
    pub(crate) schedule_retry: bool,
}

impl<A> Listener<A> {
    fn new(
        socket: ListenSocket,
        acceptor: A,
        per_event: usize,
        cap: Option<(ConnectionCap, CapWaker)>,
        ring: bool,
    ) -> Self {
        Listener {
            cap,
            cap_waiting: false,
            socket,
            acceptor,
            backoff: AcceptBackoff::default(),
            per_event: per_event.max(1),
            turn: 0,
            taken: 0,
            again_queued: false,
            parked: ring.then(VecDeque::new),
            in_flight: 0,
        }
    }

    /// Whether turn `turn` may hand over another connection.
    pub(crate) fn has_room(&mut self, turn: u64) -> bool {
        if self.turn != turn {
            self.turn = turn;
            self.taken = 0;
        }
        self.taken < self.per_event
    }

    /// A slot for the next connection under the listener's cap (`Ok(None)`
    /// without one); `Err` at the cap, where the listener has left its
    /// waker: the place the next close gives back wakes the loop for it.
    pub(crate) fn cap_slot(&mut self) -> Result<Option<CapSlot>, ()> {
        let Some((cap, _)) = &self.cap else {
            return Ok(None);
        };
        if let Some(slot) = cap.try_take() {
            return Ok(Some(slot));
        }
        if self.wait_for_cap() {
            if let Some((cap, _)) = &self.cap {
                return cap.try_take().map(Some).ok_or(());
            }
        }
        Err(())
    }

    /// Whether the cap has room, leaving the waker with it (once until
    /// woken) if not: the room the cap finds right after leaving it is
    /// not missed either (see `connection_cap`).
    #[cfg(feature = "io-uring")]
    fn cap_has_room(&mut self) -> bool {
        match &self.cap {
            None => true,
            Some((cap, _)) if cap.has_room() => true,
            Some(_) => self.wait_for_cap(),
        }
    }

    /// Leaves the waker with the cap unless it is there; whether the cap
    /// has room now.
    fn wait_for_cap(&mut self) -> bool {
        match &self.cap {
            Some((cap, waker)) if !self.cap_waiting => {
                self.cap_waiting = true;
                cap.wait_for_room(waker)
            }
            _ => false,
        }
    }

    /// The cap woke the loop for this listener: it looks for room again.
    pub(crate) fn cap_woken(&mut self) {
        self.cap_waiting = false;
    }

    /// Whether the loop should put this listener on its come-back list
    /// (it is not on it yet); marks it as on it.
    pub(crate) fn queue_again(&mut self) -> bool {
        !std::mem::replace(&mut self.again_queued, true)
    }

    /// The loop came back for this listener.
    pub(crate) fn came_back(&mut self) {
        self.again_queued = false;
    }

    /// Keeps a connection the ring accepted until a turn has room for it
    /// (io_uring).
    #[cfg(feature = "io-uring")]
    pub(crate) fn park(&mut self, stream: Stream) {
        self.parked
            .as_mut()
            .expect("only an io_uring listener parks")
            .push_back(stream);
    }

    /// Accepts one connection: from the socket's backlog (epoll), or the
    /// next the ring accepted (io_uring). Counts it against this turn's
    /// share.
    pub(crate) fn accept_one(&mut self, now: Instant) -> Accepted {
        let got = match &mut self.parked {
            Some(parked) => parked
                .pop_front()
                .map_or(Accepted::Drained, Accepted::Stream),
            None => self.accept_from_socket(now),
        };
        if matches!(got, Accepted::Stream(_)) {
            self.taken += 1;
        }
        got
    }

    fn accept_from_socket(&mut self, now: Instant) -> Accepted {
        loop {
            match self.socket.accept() {
                Ok(stream) => return Accepted::Stream(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Accepted::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE and friends: the connection stays in the
                    // backlog and no new edge will come for it.
                    let retry = self.refused(&e, now, true);
                    return Accepted::Refused { retry };
                }
            }
        }
    }

    /// One of the accepts completed with `res` (io_uring).
    #[cfg(feature = "io-uring")]
    pub(crate) fn completed(&mut self, res: i32, now: Instant) -> Completed {
        let mut done = Completed {
            stream: None,
            schedule_retry: false,
        };
        self.in_flight = self.in_flight.saturating_sub(1);
        if res >= 0 {
            // SAFETY: a successful accept returns a fresh descriptor of the
            // listener's family that nobody else owns.
            done.stream = Some(unsafe { self.socket.adopt(res) });
        } else if res != -libc::ECANCELED {
            let error = io::Error::from_raw_os_error(-res);
            // Accepting again at once would fail again at once, so wait on
            // the retry timer instead.
            let exhausted = accept_backoff::is_exhaustion(&error);
            done.schedule_retry = self.refused(&error, now, exhausted);
        }
        done
    }

    /// Reports a failed accept (rate-limited); whether to schedule the
    /// retry timer (`retry` asked, and none is pending).
    fn refused(&mut self, error: &io::Error, now: Instant, retry: bool) -> bool {
        if let Some(count) = self.backoff.refused(now) {
            tracing::warn!(
                addr = %self.socket.describe(),
                %error,
                refused = count,
                retry_ms = accept_backoff::ACCEPT_RETRY.as_millis() as u64,
                "accept failed; connections wait in the backlog and accepting retries on a timer"
            );
        }
        retry && self.backoff.needs_retry()
    }

    /// The retry timer fired: re-arm on io_uring; on epoll, true (the
    /// caller accepts now, no edge will come).
    pub(crate) fn retried(&mut self, driver: &mut Driver, index: usize) -> bool {
        self.backoff.retried();
        self.pace(driver, index);
        matches!(driver, Driver::Epoll(_))
    }

    /// Keeps the ring accepting ahead of the loop only while few are
    /// parked (io_uring; nothing to do on epoll): tops the accepts in
    /// flight up to a turn's share, as far as the [`park_limit`] leaves
    /// room, unless accepting is backing off (its retry timer will). Runs
    /// after each change to the parked connections or the accepts: when a
    /// lent listener is given back, and when its retry timer fires.
    pub(crate) fn pace(&mut self, driver: &mut Driver, index: usize) {
        match driver {
            Driver::Epoll(_) => {
                let _ = index;
            }
            #[cfg(feature = "io-uring")]
            Driver::Uring(ring) => {
                // At the cap, connections wait in the kernel's backlog,
                // not accepted ahead: the place the next close gives back
                // wakes the loop, which paces again.
                if self.backoff.retry_pending() || !self.cap_has_room() {
                    return;
                }
                let parked = self.parked.as_ref().map_or(0, VecDeque::len);
                let room = park_limit(self.per_event).saturating_sub(parked + self.in_flight);
                let wanted = self.per_event.saturating_sub(self.in_flight).min(room);
                for _ in 0..wanted {
                    self.arm(ring, index);
                }
            }
        }
    }

    /// Pushes one single-shot accept.
    #[cfg(feature = "io-uring")]
    fn arm(&mut self, ring: &mut crate::uring::UringDriver, index: usize) {
        use std::os::fd::AsRawFd;
        self.in_flight += 1;
        let fd = crate::uring::Fd(self.socket.as_raw_fd());
        let entry = crate::uring::ops::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build();
        let entry = crate::uring::with_data(entry, token::Op::Accept, index);
        // SAFETY: no address buffers are passed; the ring holds its own
        // reference to the listening socket while the accept is pending.
        unsafe { ring.push(&entry) };
    }

    /// Cancels every accept in flight; each one's completion (`ECANCELED`)
    /// still comes.
    #[cfg(feature = "io-uring")]
    fn cancel(&self, ring: &mut crate::uring::UringDriver, index: usize) {
        use crate::uring;
        let target = uring::user_data(token::Op::Accept, index);
        let all = uring::CancelBuilder::user_data(target).all();
        let cancel = uring::ops::AsyncCancel2::new(all).build();
        let cancel = uring::with_data(cancel, token::Op::Cancel, index);
        // SAFETY: a cancellation points at no memory of ours.
        unsafe { ring.push(&cancel) };
    }

    /// Stops accepting: deregisters (epoll) or cancels the accept
    /// (io_uring, whose ring holds its own reference to the socket until
    /// the cancelled accept completes); the socket closes when dropped.
    fn stop(mut self, driver: &mut Driver, index: usize) {
        match driver {
            Driver::Epoll(registry) => {
                let _ = registry.deregister(&mut self.socket);
            }
            // Cancelled even if no accept is in flight (the kernel then
            // answers ENOENT): a missed one would keep the port bound.
            #[cfg(feature = "io-uring")]
            Driver::Uring(ring) => self.cancel(ring, index),
        }
        #[cfg(not(feature = "io-uring"))]
        let _ = index;
        tracing::info!(addr = %self.socket.describe(), "stopped accepting");
    }
}

/// A loop's listeners, by index (the index their tokens carry).
pub(crate) struct Listeners<A> {
    entries: Vec<Option<Listener<A>>>,
    /// Refused accepts of listeners since stopped.
    retired_refusals: u64,
}

impl<A> Listeners<A> {
    pub(crate) fn new() -> Self {
        Listeners {
            entries: Vec::new(),
            retired_refusals: 0,
        }
    }

    /// Starts accepting on `socket`, handing over at most `per_event`
    /// connections a turn.
    pub(crate) fn add(
        &mut self,
        driver: &mut Driver,
        mut socket: ListenSocket,
        acceptor: A,
        per_event: usize,
        cap: Option<(ConnectionCap, CapWaker)>,
    ) -> io::Result<()> {
        let index = self.next_index();
        let listener = match driver {
            Driver::Epoll(registry) => {
                registry.register(&mut socket, token::listener(index), Interest::READABLE)?;
                Listener::new(socket, acceptor, per_event, cap, false)
            }
            #[cfg(feature = "io-uring")]
            Driver::Uring(ring) => {
                let mut listener = Listener::new(socket, acceptor, per_event, cap, true);
                listener.arm(ring, index);
                listener
            }
        };
        self.entries.push(Some(listener));
        Ok(())
    }

    /// The index the next listener added gets.
    pub(crate) fn next_index(&self) -> usize {
        self.entries.len()
    }

    /// Lends listener `index` out (its acceptor needs the whole loop);
    /// `None` if it was closed.
    pub(crate) fn take(&mut self, index: usize) -> Option<Listener<A>> {
        self.entries.get_mut(index).and_then(Option::take)
    }

    /// Gives back a lent listener: kept if `keep` (and paced: its accept
    /// re-armed if the kernel ended it, paused or resumed by what it has
    /// parked), else stopped (the loop began shutting down while it was
    /// lent).
    pub(crate) fn give_back(
        &mut self,
        index: usize,
        mut listener: Listener<A>,
        keep: bool,
        driver: &mut Driver,
    ) {
        if keep {
            listener.pace(driver, index);
            self.entries[index] = Some(listener);
        } else {
            self.retired_refusals += listener.backoff.total;
            listener.stop(driver, index);
        }
    }

    /// Listener `index`, if it is open and not lent.
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Listener<A>> {
        self.entries.get_mut(index).and_then(Option::as_mut)
    }

    /// Accepts refused for want of resources, by every listener this loop
    /// has had.
    pub(crate) fn refused_accepts(&self) -> u64 {
        self.retired_refusals
            + self
                .entries
                .iter()
                .flatten()
                .map(|l| l.backoff.total)
                .sum::<u64>()
    }

    /// Stops every listener.
    pub(crate) fn close_all(&mut self, driver: &mut Driver) {
        for (index, entry) in self.entries.iter_mut().enumerate() {
            if let Some(listener) = entry.take() {
                self.retired_refusals += listener.backoff.total;
                listener.stop(driver, index);
            }
        }
    }
}
