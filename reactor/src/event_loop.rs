//! The event loop: one thread, one `mio::Poll`, the channels registered on
//! it, a timer wheel and a lock-free inbox other threads feed.
//!
//! Everything a channel does runs on its loop, so the data path needs no
//! locks. Other threads reach a loop in two ways: a boxed task (connection
//! hand-off, user tasks: rare) or a channel token in the inbox, put there by
//! a [`ChannelHandle`](crate::ChannelHandle) whose mailbox had news (hot,
//! allocation-free). Both ring the loop's [`Doorbell`], which wakes the
//! `mio::Waker` only if the loop has answered it since it was last rung:
//! the loop answers it only as it is about to sleep, so a loop that is
//! awake is never woken, and its own thread never rings it.
//!
//! The loop knows its channels only through the interface it calls,
//! [`ChannelOps`] (as mio's `Poll` knows only `Source`), and is generic over
//! nothing: what makes a socket and a pipeline into a channel task is the
//! `connection` module above it. The loop's state is composed of parts
//! that each know only their own concern: the channel slots (`slab`), the
//! listeners (`listeners`), the scheduled tasks (`task_table`), the
//! graceful shutdown (`shutdown`) and the timer wheel; this file holds the
//! run loop that turns poll events and completions into calls on them.
//!
//! A panic in a channel's handlers closes that channel, not the loop (as
//! Netty's `exceptionCaught` ends in a close): the loop catches it at the
//! call into the channel, logs it, and closes the channel at once; should
//! that close panic too, the channel is left to leak (its buffers may be
//! the kernel's until its io_uring operations complete) rather than freed.
//! A panicking task is logged and the loop goes on. Every other channel on
//! the loop is untouched.

use crate::accept_backoff;
use crate::connection_cap::{CapSlot, CapWaker, ConnectionCap};
use crate::driver::Driver;
use crate::listeners::{Accepted, Listener, Listeners};
use crate::loop_shared::LoopShared;
use crate::metrics::{LoopMetrics, Traffic};
use crate::shutdown::{Shutdown, Step};
use crate::slab::Slab;
use crate::socket::{ListenSocket, Stream};
use crate::task_table::{TaskFn, TaskTable};
use crate::timer::{TimerId, TimerWheel};
use crate::token;
use mio::{Events, Poll, Token};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) type Task = Box<dyn FnOnce(&mut LoopInner) + Send>;

/// What other threads share with this loop.
pub(crate) type Shared = LoopShared<Task>;

#[derive(Clone, Copy)]
pub(crate) enum TimerTarget {
    Channel {
        token: Token,
        layer: usize,
        tag: u64,
    },
    Task(u64),
    /// Listener `index` ran out of resources; accept again.
    Accept(usize),
}

/// Work the loop comes back for with no event to announce it: each
/// entry is done after the other events of the turn that queued it, and
/// an entry queued while that is done waits for the next turn (the loop
/// polls without sleeping while any wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Again {
    /// Read the channel: data may be waiting that no edge will announce
    /// (reading resumed, a read budget spent, a lent input given back).
    Read(Token),
    /// Write the channel: its last write spent its bytes per event with
    /// the socket still taking more.
    Write(Token),
    /// Accept on listener `index`: its last turn took its accepts per
    /// event with connections still waiting.
    Accept(usize),
}

/// The loop's own state that a channel may use while it runs: the timer
/// wheel, the clock, the list of work to come back for.
pub(crate) struct LoopLocal {
    pub(crate) driver: Driver,
    wheel: TimerWheel<TimerTarget>,
    now: Instant,
    again: Vec<Again>,
    shared: Arc<Shared>,
}

impl LoopLocal {
    pub(crate) fn now(&self) -> Instant {
        self.now
    }

    /// The ring of an io_uring loop. Only completions and the operations
    /// they lead to call this, and only an io_uring loop has completions:
    /// the one place that knows it.
    #[cfg(feature = "io-uring")]
    pub(crate) fn ring(&mut self) -> &mut crate::uring::UringDriver {
        match &mut self.driver {
            Driver::Uring(ring) => ring,
            Driver::Epoll(_) => unreachable!("an io_uring completion on an epoll loop"),
        }
    }

    /// Reads channel `token` again after this turn's other events.
    pub(crate) fn reread(&mut self, token: Token) {
        self.again.push(Again::Read(token));
    }

    /// Writes channel `token` again after this turn's other events.
    pub(crate) fn rewrite(&mut self, token: Token) {
        self.again.push(Again::Write(token));
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Puts a channel whose mailbox still has commands back in the inbox:
    /// its turn comes after the channels already waiting, in the next pass
    /// (the loop polls without sleeping while its inbox is not empty).
    pub(crate) fn reschedule(&mut self, token: Token) {
        self.shared.inbox.push(token);
    }

    /// Schedules a timer for layer `layer` (a pipeline layer, or one of the
    /// channel's own: drain, connect, linger) of the channel behind `token`.
    /// The channel keeps the ids of its repeating timers (see
    /// `Channel::schedule_timer`).
    pub(crate) fn schedule_for_channel(
        &mut self,
        token: Token,
        layer: usize,
        tag: u64,
        delay: Duration,
        period: Option<Duration>,
    ) -> TimerId {
        let target = TimerTarget::Channel { token, layer, tag };
        self.wheel.schedule(self.now, delay, period, target)
    }

    pub(crate) fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.wheel.cancel(id)
    }
}

/// What the loop needs of a channel: it stores its channels as this
/// interface (as mio's `Poll` knows only `Source`) and never sees their
/// pipelines. Implemented by `channel::task::ChannelTask`.
pub(crate) trait ChannelOps {
    /// The channel is registered: run the pipeline's `active`.
    fn activate(&mut self, lp: &mut LoopLocal);
    /// Readiness for the channel's socket (epoll).
    fn ready(&mut self, lp: &mut LoopLocal, readable: bool, hup: bool, writable: bool);
    /// Its handles' mailboxes have news.
    fn mail(&mut self, lp: &mut LoopLocal);
    /// One of its timers fired.
    fn timer(&mut self, lp: &mut LoopLocal, layer: usize, tag: u64);
    /// Read again: data may be waiting that no event will announce.
    fn reread(&mut self, lp: &mut LoopLocal);
    /// Write again: the last write yielded with the socket still writable,
    /// which no event will announce.
    fn rewrite(&mut self, lp: &mut LoopLocal);
    /// Close (gracefully, or at once if `force`).
    fn close(&mut self, lp: &mut LoopLocal, force: bool);
    /// An io_uring completion of one of its operations.
    #[cfg(feature = "io-uring")]
    fn complete(&mut self, lp: &mut LoopLocal, kind: crate::token::Op, res: i32, flags: u32);
    /// Whether it is closed and its slot may be freed.
    fn is_closed(&self) -> bool;
    /// What it has moved, for the loop's metrics.
    fn traffic(&self) -> Traffic;
    /// Its socket's descriptor while it has one (not once closed).
    fn socket_fd(&self) -> Option<std::os::fd::RawFd>;
}

type Acceptor = Box<dyn FnMut(&mut LoopInner, Stream, Option<CapSlot>) + Send>;

/// Connections counted by the loop (cold paths only: one add per
/// connection), and the traffic of the closed ones.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) accepted: u64,
    pub(crate) connected: u64,
    pub(crate) closed: u64,
    pub(crate) retired: Traffic,
}

impl Counts {
    fn retire(&mut self, t: Traffic) {
        self.closed += 1;
        // A closed channel has nothing queued any more.
        self.retired += Traffic { queued: 0, ..t };
    }
}

/// A loop's whole state, owned by its thread.
pub(crate) struct LoopInner {
    pub(crate) local: LoopLocal,
    /// The channels, named by their tokens' slot and generation.
    slots: Slab<Box<dyn ChannelOps>>,
    /// What the metrics count beyond the open channels.
    pub(crate) counts: Counts,
    listeners: Listeners<Acceptor>,
    tasks: TaskTable,
    shutdown: Option<Shutdown>,
    /// Poll without sleeping while input came within this long (zero: off).
    busy_poll: Duration,
    /// Counts the loop's turns (each poll and what follows it), for the
    /// listeners' share of accepts per turn.
    turn: u64,
}

impl LoopInner {
    /// A loop's state on its own thread, driving `driver`.
    pub(crate) fn new(driver: Driver, shared: Arc<Shared>, busy_poll: Duration) -> LoopInner {
        let now = Instant::now();
        LoopInner {
            local: LoopLocal {
                driver,
                wheel: TimerWheel::new(now),
                now,
                again: Vec::new(),
                shared,
            },
            slots: Slab::new(token::GENERATION_MASK),
            counts: Counts::default(),
            listeners: Listeners::new(),
            tasks: TaskTable::default(),
            shutdown: None,
            busy_poll,
            turn: 0,
        }
    }

    /// A token for a channel about to be made (it needs its token first).
    pub(crate) fn vacant(&mut self) -> Token {
        let (index, generation) = self.slots.reserve();
        token::channel(index, generation)
    }

    /// Gives back a token from [`vacant`](Self::vacant) that got no channel.
    pub(crate) fn release(&mut self, token: Token) {
        let (index, _) = token::split_channel(token);
        self.slots.remove(index);
    }

    /// The socket descriptor of the channel behind `token`, if it is
    /// still open: valid until this loop next runs the channel.
    pub(crate) fn channel_fd(&mut self, token: Token) -> Option<std::os::fd::RawFd> {
        let (index, generation) = token::split_channel(token);
        let task = self.slots.get_mut(index, generation)?;
        if task.is_closed() {
            return None;
        }
        task.socket_fd()
    }

    /// Puts the channel in the slot its token names.
    pub(crate) fn install(&mut self, token: Token, task: Box<dyn ChannelOps>) {
        let (index, _) = token::split_channel(token);
        self.slots.fill(index as u32, task);
    }

    /// Runs `f` on the channel behind `token`, if it still exists, and
    /// frees its slot if that closed it. A panic in `f` closes the channel
    /// at once (see the module's doc).
    pub(crate) fn dispatch(
        &mut self,
        token: Token,
        f: impl FnOnce(&mut dyn ChannelOps, &mut LoopLocal),
    ) {
        let (index, generation) = token::split_channel(token);
        let Some(task) = self.slots.get_mut(index, generation) else {
            return;
        };
        // The channel is dropped, or closed and dropped, after a panic:
        // what it left half done is never looked at again, so asserting
        // unwind safety is sound. No other channel's state is reachable
        // from `f` but through the loop's own structures, which a
        // handler's panic does not leave half changed (they are changed by
        // the loop's methods, which do not call back into handlers).
        let ran = catch_unwind(AssertUnwindSafe(|| f(task.as_mut(), &mut self.local)));
        if let Err(panic) = ran {
            tracing::error!(
                panic = gyre_ringbuffer::panic_message(&*panic),
                "a channel's handler panicked: closing the channel; the loop and its other channels go on"
            );
            let closed = catch_unwind(AssertUnwindSafe(|| task.close(&mut self.local, true)));
            if closed.is_err() {
                tracing::error!("closing it panicked too: its memory and socket are leaked");
                let leaked = self.slots.remove(index);
                std::mem::forget(leaked);
                self.counts.closed += 1;
                return;
            }
        }
        if task.is_closed() {
            self.counts.retire(task.traffic());
            self.slots.remove(index);
        }
    }

    /// Runs a task, logging its panic rather than letting it end the loop.
    fn run_task(&mut self, task: Task) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| task(self))) {
            tracing::error!(
                panic = gyre_ringbuffer::panic_message(&*panic),
                "a task on the event loop panicked; the loop goes on"
            );
        }
    }

    /// Starts accepting on `listener`, handing each connection to
    /// `acceptor`, at most `per_event` a turn.
    pub(crate) fn add_listener(
        &mut self,
        listener: ListenSocket,
        acceptor: Acceptor,
        per_event: usize,
        cap: Option<ConnectionCap>,
    ) -> io::Result<()> {
        let index = self.listeners.next_index();
        let cap = cap.map(|cap| (cap, self.cap_waker(index)));
        self.listeners
            .add(&mut self.local.driver, listener, acceptor, per_event, cap)
    }

    /// What listener `index` leaves with its cap when at it: a close on
    /// any thread that gives a place back has this loop accept on the
    /// listener again. (Should the listener be gone by then, the loop
    /// finds no listener at `index`, or another one, which accepts for
    /// nothing.)
    fn cap_waker(&self, index: usize) -> CapWaker {
        let shared = Arc::downgrade(&self.local.shared);
        Arc::new(move || {
            if let Some(shared) = shared.upgrade() {
                let _ = shared.execute(Box::new(move |lp: &mut LoopInner| lp.cap_room(index)));
            }
        })
    }

    /// Listener `index`'s cap gave a place back: accept again.
    fn cap_room(&mut self, index: usize) {
        if let Some(listener) = self.listeners.get_mut(index) {
            listener.cap_woken();
            self.accept(index, false);
        }
    }

    /// Listener `index` is readable (epoll), the loop came back for it
    /// (`came_back`), or its retry timer fired: accept what is waiting, up
    /// to this turn's share.
    fn accept(&mut self, index: usize, came_back: bool) {
        let Some(mut listener) = self.listeners.take(index) else {
            return;
        };
        if came_back {
            listener.came_back();
        }
        self.accept_share(&mut listener, index);
        let keep = self.shutdown.is_none();
        self.listeners
            .give_back(index, listener, keep, &mut self.local.driver);
    }

    /// Hands `listener`'s waiting connections to its acceptor until none
    /// is left or this turn's share is taken; then the loop comes back for
    /// the rest after its other channels, as no new event may announce
    /// them.
    fn accept_share(&mut self, listener: &mut Listener<Acceptor>, index: usize) {
        loop {
            if !listener.has_room(self.turn) {
                if listener.queue_again() {
                    self.local.again.push(Again::Accept(index));
                }
                return;
            }
            let Ok(slot) = listener.cap_slot() else {
                // At the cap: the rest wait in the backlog until a close
                // wakes the loop.
                return;
            };
            match listener.accept_one(self.local.now) {
                Accepted::Stream(stream) => {
                    // The acceptor builds the connection's pipeline (user
                    // code): a panic there drops the connection, not the
                    // listener, which is out of its table while it accepts.
                    let acceptor = &mut listener.acceptor;
                    if let Err(panic) =
                        catch_unwind(AssertUnwindSafe(|| acceptor(self, stream, slot)))
                    {
                        tracing::error!(
                            panic = gyre_ringbuffer::panic_message(&*panic),
                            "making a connection's pipeline panicked: the connection is dropped, the listener goes on"
                        );
                    }
                }
                Accepted::Drained => return,
                Accepted::Refused { retry } => {
                    if retry {
                        self.schedule_accept_retry(index);
                    }
                    return;
                }
            }
        }
    }

    /// One of listener `index`'s accepts completed (io_uring).
    #[cfg(feature = "io-uring")]
    fn accepted(&mut self, index: usize, res: i32) {
        let Some(mut listener) = self.listeners.take(index) else {
            if res >= 0 {
                use std::os::fd::FromRawFd;
                // SAFETY: the kernel handed us this new descriptor; we own
                // it and close it now, as its listener is gone.
                drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(res) });
            }
            return;
        };
        let done = listener.completed(res, self.local.now);
        if let Some(stream) = done.stream {
            // In line behind any the ring accepted earlier.
            listener.park(stream);
            self.accept_share(&mut listener, index);
        }
        if done.schedule_retry {
            self.schedule_accept_retry(index);
        }
        let keep = self.shutdown.is_none();
        self.listeners
            .give_back(index, listener, keep, &mut self.local.driver);
    }

    fn schedule_accept_retry(&mut self, index: usize) {
        self.local.wheel.schedule(
            self.local.now,
            accept_backoff::ACCEPT_RETRY,
            None,
            TimerTarget::Accept(index),
        );
    }

    /// The accept retry timer of listener `index` fired.
    fn retry_accept(&mut self, index: usize) {
        let Some(listener) = self.listeners.get_mut(index) else {
            return;
        };
        if listener.retried(&mut self.local.driver, index) {
            self.accept(index, false);
        }
    }

    pub(crate) fn index(&self) -> usize {
        self.local.shared.index
    }

    /// Stops accepting on every listener of this loop.
    pub(crate) fn close_listeners(&mut self) {
        self.listeners.close_all(&mut self.local.driver);
    }

    /// The loop's metrics now: its open channels walked, plus what its
    /// closed ones left behind.
    pub(crate) fn metrics(&self) -> LoopMetrics {
        let mut t = self.counts.retired;
        for ch in self.slots.values() {
            t += ch.traffic();
        }
        LoopMetrics {
            connections_open: self.slots.len() as u64,
            accepted: self.counts.accepted,
            connected: self.counts.connected,
            closed: self.counts.closed,
            bytes_read: t.bytes_read,
            bytes_written: t.bytes_written,
            reads: t.reads,
            queued_outbound_bytes: t.queued,
            refused_accepts: self.listeners.refused_accepts(),
        }
    }

    /// Number of open channels on this loop.
    pub(crate) fn channel_count(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn schedule_task(
        &mut self,
        delay: Duration,
        period: Option<Duration>,
        f: TaskFn,
        cancelled: Arc<AtomicBool>,
    ) {
        let key = self.tasks.insert(f, cancelled);
        self.local
            .wheel
            .schedule(self.local.now, delay, period, TimerTarget::Task(key));
    }

    pub(crate) fn begin_shutdown(&mut self, quiet: Duration, timeout: Duration) {
        let now = Instant::now();
        self.close_listeners();
        if self.shutdown.is_none() {
            self.shutdown = Some(Shutdown::new(now, quiet, timeout));
        }
    }

    /// Runs the timers due at the loop's clock; whether any was.
    fn fire_timers(&mut self, fired: &mut Vec<(TimerId, TimerTarget)>) -> bool {
        self.local.wheel.advance(self.local.now, fired);
        let any = !fired.is_empty();
        for (id, target) in fired.drain(..) {
            match target {
                TimerTarget::Channel { token, layer, tag } => {
                    self.dispatch(token, |ch, lp| ch.timer(lp, layer, tag));
                }
                TimerTarget::Accept(index) => self.retry_accept(index),
                TimerTarget::Task(key) => {
                    let tasks = &mut self.tasks;
                    match catch_unwind(AssertUnwindSafe(|| tasks.run(key))) {
                        Ok(true) => {}
                        Ok(false) => {
                            self.local.wheel.cancel(id);
                        }
                        // A repeating task that panicked is not run again
                        // (it was taken out of the table to run).
                        Err(panic) => {
                            tracing::error!(
                                panic = gyre_ringbuffer::panic_message(&*panic),
                                "a scheduled task panicked; it is cancelled, the loop goes on"
                            );
                            self.local.wheel.cancel(id);
                        }
                    }
                }
            }
        }
        any
    }

    /// Does one entry of the come-back list; whether it was input.
    fn come_back(&mut self, what: Again) -> bool {
        match what {
            Again::Read(token) => {
                self.dispatch(token, |ch, lp| ch.reread(lp));
                true
            }
            // Output going on is not new work (as for writable events).
            Again::Write(token) => {
                self.dispatch(token, |ch, lp| ch.rewrite(lp));
                false
            }
            Again::Accept(index) => {
                self.accept(index, true);
                true
            }
        }
    }

    fn drain_inbox(&mut self) -> bool {
        let shared = self.local.shared.clone();
        let mut any = false;
        // Only the tasks waiting now: one that puts itself back (a long job
        // cut into steps) runs again next turn, after the sockets, and
        // never holds the loop (the loop polls without sleeping while
        // tasks wait).
        for _ in 0..shared.tasks.len() {
            let Some(task) = shared.tasks.pop() else {
                break;
            };
            any = true;
            self.run_task(task);
        }
        // Only the channels waiting now, likewise: one put back (its
        // mailbox had more than a batch) waits for the next pass.
        for _ in 0..shared.inbox.len() {
            let Some(token) = shared.inbox.pop() else {
                break;
            };
            any = true;
            self.dispatch(token, |ch, lp| ch.mail(lp));
        }
        any
    }

    fn each_channel(&mut self, mut f: impl FnMut(&mut dyn ChannelOps, &mut LoopLocal)) {
        for index in 0..self.slots.slot_count() {
            if let Some((index, generation)) = self.slots.full_name(index) {
                self.dispatch(token::channel(index, generation), &mut f);
            }
        }
    }

    /// Moves a shutting-down loop along (see `shutdown`); true when it
    /// may stop.
    fn shutdown_due(&mut self, busy: bool) -> bool {
        let channels = self.slots.len();
        let Some(s) = self.shutdown.as_mut() else {
            return false;
        };
        match s.step(self.local.now, busy, channels) {
            Step::Serve => false,
            Step::Stop => true,
            Step::CloseAll => {
                self.each_channel(|ch, lp| ch.close(lp, false));
                self.slots.len() == 0
            }
        }
    }

    /// Runs the loop on this thread until it shuts down; `poll` is the
    /// epoll instance (`None` on io_uring).
    pub(crate) fn run(mut self, mut poll: Option<Poll>) {
        let mut events = Events::with_capacity(1024);
        let mut completions = Vec::with_capacity(256);
        let mut fired = Vec::new();
        let mut again = Vec::new();
        // When input last arrived, for the busy-poll window.
        let mut last_input = Instant::now();
        loop {
            self.turn += 1;
            let shared = &self.local.shared;
            let immediate = !self.local.again.is_empty() || shared.has_queued();
            let mut timeout = if immediate {
                Some(Duration::ZERO)
            } else {
                self.local.wheel.next_timeout(Instant::now())
            };
            if self.shutdown.is_some() {
                let cap = Duration::from_millis(10);
                timeout = Some(timeout.map_or(cap, |t| t.min(cap)));
            }
            if !self.busy_poll.is_zero()
                && self.local.now.saturating_duration_since(last_input) < self.busy_poll
            {
                timeout = Some(Duration::ZERO);
            }
            if timeout != Some(Duration::ZERO) && !shared.may_sleep() {
                timeout = Some(Duration::ZERO);
            }
            let polled = match poll.as_mut() {
                Some(poll) => self.poll_epoll(poll, &mut events, timeout),
                None => self.poll_uring(&mut completions, timeout),
            };
            let Some(mut busy) = polled else {
                break;
            };
            busy |= self.drain_inbox();
            std::mem::swap(&mut again, &mut self.local.again);
            for what in again.drain(..) {
                busy |= self.come_back(what);
            }
            if busy {
                last_input = self.local.now;
            }
            self.fire_timers(&mut fired);
            if self.shutdown_due(busy) {
                break;
            }
        }
        self.finish();
    }

    /// Waits for readiness and runs it; whether there was input, or `None`
    /// if the poller broke.
    fn poll_epoll(
        &mut self,
        poll: &mut Poll,
        events: &mut Events,
        timeout: Option<Duration>,
    ) -> Option<bool> {
        if let Err(e) = poll.poll(events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                tracing::error!(error = %e, "poll failed; the loop stops");
                return None;
            }
        }
        self.local.now = Instant::now();
        let mut busy = false;
        for event in events.iter() {
            busy |= self.on_epoll_event(event);
        }
        Some(busy)
    }

    /// Runs one readiness event; whether it was input (draining output is
    /// not new work).
    fn on_epoll_event(&mut self, event: &mio::event::Event) -> bool {
        let token = event.token();
        if token == token::WAKER {
            return false;
        }
        if let Some(index) = token::as_listener(token) {
            self.accept(index, false);
            return true;
        }
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        let hup = event.is_read_closed() || event.is_error();
        let writable = event.is_writable() || event.is_error();
        self.dispatch(token, |ch, lp| ch.ready(lp, readable, hup, writable));
        readable
    }

    /// Submits, waits for completions and runs them; whether there was
    /// input, or `None` if the ring broke.
    #[cfg(feature = "io-uring")]
    fn poll_uring(
        &mut self,
        completions: &mut Vec<(u64, i32, u32)>,
        timeout: Option<Duration>,
    ) -> Option<bool> {
        use crate::token::{split_user_data, Op};
        let Driver::Uring(ring) = &mut self.local.driver else {
            unreachable!("an io_uring loop without a ring");
        };
        if let Err(e) = ring.wait(timeout) {
            tracing::error!(error = %e, "io_uring wait failed; the loop stops");
            return None;
        }
        ring.reap(completions);
        self.local.now = Instant::now();
        let mut busy = false;
        for (data, res, flags) in completions.drain(..) {
            let (Some(kind), id) = split_user_data(data) else {
                tracing::error!(data, "an io_uring completion we did not ask for");
                continue;
            };
            match kind {
                Op::Wake => self.local.ring().arm_wake(),
                Op::Cancel => {}
                Op::Accept => {
                    busy = true;
                    self.accepted(id, res);
                }
                _ => {
                    busy |= kind == Op::Recv;
                    self.dispatch(Token(id), |ch, lp| ch.complete(lp, kind, res, flags));
                }
            }
        }
        Some(busy)
    }

    #[cfg(not(feature = "io-uring"))]
    fn poll_uring(&mut self, _: &mut Vec<(u64, i32, u32)>, _: Option<Duration>) -> Option<bool> {
        unreachable!("io_uring loops exist only with the io-uring feature")
    }

    /// Closes every channel (delivering what each socket takes right now)
    /// and tells the world the loop is gone.
    fn finish(&mut self) {
        self.local.shared.alive.store(false, Ordering::Release);
        self.close_listeners();
        self.each_channel(|ch, lp| ch.close(lp, false));
        self.each_channel(|ch, lp| ch.close(lp, true));
        // Tasks that raced with the shutdown run now, so what they own (a
        // handed-over connection, say) is dropped here, not leaked.
        while let Some(task) = self.local.shared.tasks.pop() {
            self.run_task(task);
        }
        // Futures still waiting will not be polled again.
        crate::spawned::drop_all();
        self.each_channel(|ch, lp| ch.close(lp, true));
        self.await_in_flight();
        tracing::debug!(index = self.local.shared.index, "event loop stopped");
    }

    /// On io_uring, closed channels whose operations are still in flight
    /// stay until the cancelled operations complete: the kernel may write
    /// into their buffers until then. Waits (boundedly) for that; whatever
    /// is still in flight after the bound is leaked, never freed early.
    #[cfg(feature = "io-uring")]
    fn await_in_flight(&mut self) {
        if !matches!(self.local.driver, Driver::Uring(_)) {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut completions = Vec::new();
        while self.slots.len() > 0 && Instant::now() < deadline {
            if self
                .poll_uring(&mut completions, Some(Duration::from_millis(10)))
                .is_none()
            {
                break;
            }
        }
        if self.slots.len() > 0 {
            tracing::error!(
                channels = self.slots.len(),
                "io_uring operations still in flight at loop exit; leaking their buffers"
            );
            for task in self.slots.drain() {
                std::mem::forget(task);
            }
        }
    }

    #[cfg(not(feature = "io-uring"))]
    fn await_in_flight(&mut self) {}
}

pub(crate) mod by_hand;
