//! `ChannelHandle`: write to, flush and close a channel from any thread.

#[cfg(not(loom))]
use crate::alarm::{sleep_beside, Alarm, InputWait};
use crate::channel::SentNotice;
use crate::direct::{DirectGate, Written};
use crate::error::{ChannelClosed, Error};
use crate::event_loop::Shared;
use crate::mailbox::Mailbox;
use crate::socket::{close_from_any_thread, send_from_any_thread};
use crate::user_event::UserEvent;
use bytes::Bytes;
use mio::Token;
use std::fmt;
use std::sync::Arc;

/// A cross-thread command, run on the channel's loop in the order queued.
#[doc(hidden)]
pub enum Command<W> {
    Write(W),
    WriteAndFlush(W),
    Flush,
    Close,
    /// A flush, then a notice when what was written so far is sent.
    FlushThen(SentNotice),
    /// An event for the pipeline's inbound handlers (see
    /// [`ChannelHandle::fire_user_event`]).
    UserEvent(UserEvent),
}

/// A `Send + Clone` handle to a channel.
///
/// Every operation is queued to the loop that owns the channel and runs
/// there, in order per handle, through the same outbound handlers a write
/// from the pipeline would take (from the layer that made the handle, or the
/// whole pipeline for a handle from [`Bootstrap::connect`]). Queuing takes no
/// lock and wakes the loop at most once per batch.
///
/// Once the channel has closed every operation returns [`ChannelClosed`]
/// with the message given back; `Ok` means "queued", as the channel may
/// still close before the loop gets to it.
///
/// [`Bootstrap::connect`]: crate::Bootstrap::connect
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{ChannelHandle, InboundContext, InboundHandler, Pipeline, ServerBootstrap};
/// use std::io::Read;
/// use std::sync::mpsc;
///
/// /// Gives its channel's handle away when the connection opens.
/// struct Register(mpsc::Sender<ChannelHandle<Bytes>>);
///
/// impl InboundHandler for Register {
///     type Read = bytes::BytesMut;
///     type Pass = ();
///     type Write = Bytes;
///
///     fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
///         let _ = self.0.send(ctx.handle());
///     }
///     fn read(&mut self, _: &mut impl InboundContext<Self>, _: bytes::BytesMut) {}
/// }
///
/// let (tx, rx) = mpsc::channel();
/// let tx = std::sync::Mutex::new(tx);
/// let server = ServerBootstrap::new().bind("127.0.0.1:0", move |_peer| {
///     Pipeline::new().inbound(Register(tx.lock().unwrap().clone()))
/// })?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// let handle = rx.recv()?;
/// // From any thread: a push to the client, then a close after it.
/// std::thread::spawn(move || {
///     handle.write_and_flush(Bytes::from_static(b"news")).unwrap();
///     handle.close().unwrap();
/// })
/// .join()
/// .unwrap();
/// let mut got = Vec::new();
/// client.read_to_end(&mut got)?;
/// assert_eq!(got, b"news");
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ChannelHandle<W> {
    mailbox: Arc<Mailbox<Command<W>>>,
    token: Token,
    lp: Arc<Shared>,
    direct: Option<Arc<DirectGate>>,
}

impl<W> Clone for ChannelHandle<W> {
    fn clone(&self) -> Self {
        ChannelHandle {
            mailbox: self.mailbox.clone(),
            token: self.token,
            lp: self.lp.clone(),
            direct: self.direct.clone(),
        }
    }
}

impl<W> fmt::Debug for ChannelHandle<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelHandle")
            .field("token", &self.token.0)
            .field("closed", &self.mailbox.is_closed())
            .finish()
    }
}

impl<W> ChannelHandle<W> {
    pub(crate) fn new(
        mailbox: Arc<Mailbox<Command<W>>>,
        token: Token,
        lp: Arc<Shared>,
        direct: Option<Arc<DirectGate>>,
    ) -> Self {
        ChannelHandle {
            mailbox,
            token,
            lp,
            direct,
        }
    }

    fn send(&self, cmd: Command<W>) -> Result<(), Command<W>> {
        match self.mailbox.push(cmd) {
            Ok(true) => {
                self.lp.notify_channel(self.token);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(cmd) => Err(cmd),
        }
    }

    /// Queues `msg`; it is sent at the next flush.
    pub fn write(&self, msg: W) -> Result<(), ChannelClosed<W>> {
        self.send(Command::Write(msg)).map_err(take_msg)
    }

    /// Queues `msg` and a flush.
    pub fn write_and_flush(&self, msg: W) -> Result<(), ChannelClosed<W>> {
        self.send(Command::WriteAndFlush(msg)).map_err(take_msg)
    }

    /// Queues a flush.
    pub fn flush(&self) -> Result<(), ChannelClosed<W>> {
        self.send(Command::Flush).map_err(take_msg)
    }

    /// Queues a flush, and `notice` to run on the channel's loop once the
    /// socket has taken every byte written (by any handle or handler)
    /// before it: `Ok(())`, or `Err(Error::Unsent)` if the channel closes
    /// first. Netty's write future, for a writer that must know its data
    /// left (to pace itself, or to close after it); a write without one
    /// costs nothing extra. The notice is boxed: one allocation per notice.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gyre_reactor::{Bootstrap, EventLoopGroup, Pipeline};
    /// use std::io::Read;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let group = EventLoopGroup::new(1)?;
    /// let handle = Bootstrap::new(group.clone()).connect(listener.local_addr()?, |_| Pipeline::new())?;
    /// let (mut peer, _) = listener.accept()?;
    /// handle.write(Bytes::from_static(b"hello"))?;
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// handle.flush_then(move |sent| tx.send(sent.is_ok()).unwrap())?;
    /// assert!(rx.recv()?, "the socket took the bytes");
    /// let mut got = [0; 5];
    /// peer.read_exact(&mut got)?;
    /// assert_eq!(&got, b"hello");
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_then(
        &self,
        notice: impl FnOnce(Result<(), Error>) + Send + 'static,
    ) -> Result<(), ChannelClosed<W>> {
        self.send(Command::FlushThen(SentNotice::new(notice)))
            .map_err(take_msg)
    }

    /// Queues `event` for the pipeline's inbound side, run on the channel's
    /// loop in order with this handle's other commands: what Netty's
    /// `pipeline.fireUserEventTriggered` does from another thread. A handle
    /// from [`Bootstrap::connect`](crate::Bootstrap::connect) gives it to
    /// the first inbound handler, which passes it on as it passes any
    /// event; a handle a handler made ([`InboundContext::handle`]) gives it
    /// to that handler's [`user_event`], so a
    /// handler can have its loop call it back from any thread (to restart
    /// a timer it stopped, say). Costs what a write does: a push, and a
    /// wake-up of the loop if it sleeps. A closed channel gives the event
    /// back.
    ///
    /// [`InboundContext::handle`]: crate::InboundContext::handle
    /// [`user_event`]: crate::InboundHandler::user_event
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use gyre_reactor::{Bootstrap, EventLoopGroup, InboundContext, InboundHandler, Pipeline, UserEvent};
    /// use std::sync::mpsc;
    ///
    /// /// Tells the test thread which thread ran each event it got.
    /// struct Report(mpsc::Sender<(&'static str, std::thread::ThreadId)>);
    ///
    /// impl InboundHandler for Report {
    ///     type Read = BytesMut;
    ///     type Pass = ();
    ///     type Write = bytes::Bytes;
    ///
    ///     fn read(&mut self, _: &mut impl InboundContext<Self>, _: BytesMut) {}
    ///     fn user_event(&mut self, _: &mut impl InboundContext<Self>, event: UserEvent) {
    ///         if let UserEvent::Custom(what) = event {
    ///             let what = *what.downcast::<&'static str>().unwrap();
    ///             self.0.send((what, std::thread::current().id())).unwrap();
    ///         }
    ///     }
    /// }
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let group = EventLoopGroup::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// let handle = Bootstrap::new(group.clone())
    ///     .connect(listener.local_addr()?, move |_| Pipeline::new().inbound(Report(tx)))?;
    /// handle.fire_user_event(UserEvent::Custom(Box::new("restart")))?;
    /// let (what, thread) = rx.recv()?;
    /// assert_eq!(what, "restart");
    /// assert_ne!(thread, std::thread::current().id(), "run on the channel's loop");
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fire_user_event(&self, event: UserEvent) -> Result<(), ChannelClosed<UserEvent>> {
        // `send` gives back the command it was given.
        self.send(Command::UserEvent(event))
            .map_err(|cmd| match cmd {
                Command::UserEvent(event) => ChannelClosed(Some(event)),
                _ => ChannelClosed(None),
            })
    }

    /// Queues a close: the channel delivers what was queued before it, then
    /// closes.
    pub fn close(&self) -> Result<(), ChannelClosed<W>> {
        self.send(Command::Close).map_err(take_msg)
    }

    /// Sends `bytes` on the socket from this thread, now, if the channel
    /// allows it ([`ChannelOptions::direct_writes`]) and its loop has
    /// nothing of its own to write; otherwise gives them back, to be
    /// written the usual way. What the socket does not take at once goes
    /// out from the loop before anything else. Saves the loop a wake-up
    /// and the writer a hop: the way to send a request when the answer is
    /// what matters (an RPC client's call).
    ///
    /// The bytes go straight to the socket: no outbound handler sees them,
    /// and the channel's counters, idle events and
    /// [`flush_then`](Self::flush_then) notices do not count them. They
    /// never overtake what this handle queued before, nor interleave with
    /// any other write.
    ///
    /// [`ChannelOptions::direct_writes`]: crate::ChannelOptions::direct_writes
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gyre_reactor::{Bootstrap, ChannelOptions, EventLoopGroup, Pipeline};
    /// use std::io::Read;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let group = EventLoopGroup::new(1)?;
    /// let handle = Bootstrap::new(group.clone())
    ///     .options(ChannelOptions::default().direct_writes(true))
    ///     .connect(listener.local_addr()?, |_| Pipeline::new())?;
    /// let (mut peer, _) = listener.accept()?;
    /// for word in [&b"one "[..], b"two"] {
    ///     // From this thread if the loop lets us, through it if not.
    ///     if let Err(bytes) = handle.write_direct(Bytes::from_static(word)) {
    ///         handle.write_and_flush(bytes)?;
    ///     }
    /// }
    /// let mut got = [0; 7];
    /// peer.read_exact(&mut got)?;
    /// assert_eq!(&got, b"one two");
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_direct(&self, bytes: Bytes) -> Result<(), Bytes> {
        let Some(gate) = &self.direct else {
            return Err(bytes);
        };
        // What this handle queued before must go first: only an empty
        // mailbox lets us ahead (see `direct` for why that is enough).
        if !self.mailbox.is_empty() || self.mailbox.is_closed() {
            return Err(bytes);
        }
        let (result, notify) = match gate.write(bytes, send_from_any_thread, close_from_any_thread)
        {
            Written::Sent { notify } => (Ok(()), notify),
            Written::Refused { bytes, notify } => (Err(bytes), notify),
        };
        if notify {
            self.lp.notify_channel(self.token);
        }
        result
    }

    /// Blocks this thread until `ready()` says yes, the channel's socket
    /// has input, or `timeout` passes, whichever comes first, and says
    /// which. `alarm` is this thread's own; whoever makes `ready()` true
    /// must call [`Alarm::ring`] after doing so. The socket is never read
    /// here: its input stays for the loop.
    ///
    /// What it is for: a thread that has sent a request (say by
    /// [`write_direct`](Self::write_direct)) and waits for the loop to
    /// hand it the answer. Asleep in its own futex it would be woken by
    /// the loop after the loop had been woken, read and decoded: two
    /// wake-ups in a row. Asleep on the socket, the kernel wakes it at the
    /// moment it wakes the loop, so it can be on a core, watching
    /// `ready()`, when the loop hands the answer over. The caller decides
    /// how long to watch after [`InputWait::Input`] before it sleeps the
    /// usual way; input may be someone else's.
    ///
    /// Offered on stream sockets on the epoll transport with
    /// [`ChannelOptions::direct_writes`] on; elsewhere it returns
    /// [`InputWait::Unsupported`] at once. Never call it on an event
    /// loop's thread: it sleeps.
    ///
    /// [`ChannelOptions::direct_writes`]: crate::ChannelOptions::direct_writes
    ///
    /// ```
    /// use gyre_reactor::{Alarm, Bootstrap, ChannelOptions, EventLoopGroup, InputWait, Pipeline};
    /// use std::io::Write;
    /// use std::time::Duration;
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let group = EventLoopGroup::new(1)?;
    /// let options = ChannelOptions::default().direct_writes(true).auto_read(false);
    /// let handle = Bootstrap::new(group.clone())
    ///     .options(options)
    ///     .connect(listener.local_addr()?, |_| Pipeline::new())?;
    /// let (mut peer, _) = listener.accept()?;
    /// let alarm = Alarm::new()?;
    /// // Nothing to read and nothing ready: the wait times out.
    /// let quiet = handle.wait_for_input(&alarm, || false, Duration::from_millis(10));
    /// assert_eq!(quiet, InputWait::TimedOut);
    /// // The peer answers: the socket wakes us (this loop does not read).
    /// peer.write_all(b"answer")?;
    /// let woke = handle.wait_for_input(&alarm, || false, Duration::from_secs(5));
    /// assert_eq!(woke, InputWait::Input);
    /// # group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(not(loom))]
    pub fn wait_for_input(
        &self,
        alarm: &Alarm,
        ready: impl FnMut() -> bool,
        timeout: std::time::Duration,
    ) -> InputWait {
        match &self.direct {
            Some(gate) => sleep_beside(gate.fd(), alarm, ready, timeout),
            None => InputWait::Unsupported,
        }
    }

    /// Borrows the channel's input, if its loop offers it: the loop then
    /// reads nothing until the [`InputLend`] ends, and this thread waits
    /// for bytes and reads them itself. The loop offers its input only
    /// while it has none in hand (the socket drained, no partial frame in
    /// any handler: [`InboundHandler::holds_input`]), with reading on,
    /// and on channels with [`ChannelOptions::lend_input`]; otherwise, or
    /// while another thread holds it, this returns `None`.
    ///
    /// What it is for: a thread that sends a request directly
    /// ([`write_direct`](Self::write_direct)) and waits for the answer
    /// reads it the moment it lands, where waiting for the loop to hand
    /// it over costs the loop's wake-up, read and decode first. Take the
    /// lend before sending, so that the loop cannot read the answer first.
    /// Whatever the thread reads and does not take (another frame, part of
    /// one) goes back with [`InputLend::give_back`], and the loop reads it
    /// ahead of the socket's next bytes. Never hold it on an event loop's
    /// thread: it sleeps. Bytes taken under a lend count in the channel's
    /// [`bytes_read`](crate::Channel::bytes_read), so idle detection sees
    /// them.
    ///
    /// [`InputLend`]: crate::InputLend
    /// [`InputLend::give_back`]: crate::InputLend::give_back
    /// [`InboundHandler::holds_input`]: crate::InboundHandler::holds_input
    /// [`ChannelOptions::lend_input`]: crate::ChannelOptions::lend_input
    ///
    /// ```
    /// use gyre_reactor::{Bootstrap, ChannelOptions, EventLoopGroup, Pipeline};
    ///
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let group = EventLoopGroup::new(1)?;
    /// // Without `lend_input` the loop never lends.
    /// let handle = Bootstrap::new(group.clone())
    ///     .options(ChannelOptions::default().direct_writes(true))
    ///     .connect(listener.local_addr()?, |_| Pipeline::new())?;
    /// std::thread::sleep(std::time::Duration::from_millis(20));
    /// assert!(handle.lend_input().is_none());
    /// # group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(not(loom))]
    pub fn lend_input(&self) -> Option<crate::lend::InputLend> {
        let gate = self.direct.as_ref()?;
        gate.lend_input()
            .then(|| crate::lend::InputLend::new(gate.clone(), self.lp.clone(), self.token))
    }

    /// Whether the channel is still open, as far as this thread can tell.
    pub fn is_open(&self) -> bool {
        !self.mailbox.is_closed()
    }

    /// Runs `f` on the channel's socket on its loop and waits for the
    /// result: a socket option changed while the channel runs (a UDP
    /// socket's multicast memberships). Refused on any loop's thread, as
    /// every call that waits for a loop; fails `NotConnected` once the
    /// channel has closed.
    pub(crate) fn with_socket<T: Send + 'static>(
        &self,
        operation: &'static str,
        f: impl FnOnce(socket2::SockRef<'_>) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        crate::loop_thread::refuse_to_wait(operation)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let token = self.token;
        self.lp.execute(Box::new(move |inner| {
            let done = match inner.channel_fd(token) {
                Some(fd) => {
                    // SAFETY: `fd` is the socket of a channel open on this
                    // loop (its slot holds it, with the descriptor), and
                    // this task runs on the loop's thread: nothing closes
                    // the channel, and so the descriptor, until `f`
                    // returns and the borrow ends.
                    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                    f(socket2::SockRef::from(&borrowed))
                }
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotConnected,
                    "the channel has closed",
                )),
            };
            let _ = tx.send(done);
        }))?;
        // A loop that stops drops the task unrun, and with it the sender.
        rx.recv()
            .map_err(|_| Error::LoopShutDown)?
            .map_err(Error::Io)
    }
}

fn take_msg<W>(cmd: Command<W>) -> ChannelClosed<W> {
    match cmd {
        Command::Write(m) | Command::WriteAndFlush(m) => ChannelClosed(Some(m)),
        Command::Flush | Command::Close | Command::UserEvent(_) => ChannelClosed(None),
        Command::FlushThen(notice) => {
            notice.send(Err(Error::Unsent));
            ChannelClosed(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Command;
    use crate::channel::SentNotice;
    use crate::error::Error;
    use crate::mailbox::Mailbox;
    use std::sync::mpsc;

    /// A notice whose command a closing channel drops with its mailbox
    /// still hears `Unsent`: dropped unanswered, it answers itself.
    #[test]
    fn a_notice_dropped_with_a_closed_mailbox_answers_unsent() {
        let mailbox = Mailbox::<Command<bytes::Bytes>>::new();
        let (tx, rx) = mpsc::channel();
        let notice = SentNotice::new(move |r| tx.send(matches!(r, Err(Error::Unsent))).unwrap());
        assert!(mailbox.push(Command::FlushThen(notice)).is_ok());
        mailbox.close();
        while mailbox.pop().is_some() {}
        assert_eq!(rx.try_recv(), Ok(true));
    }
}
