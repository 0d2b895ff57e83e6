//! The TLS layer's two halves, which share one rustls connection:
//! [`TlsInbound`] feeds it ciphertext and passes plaintext on (sending the
//! handshake's records as they come), [`TlsOutbound`] gathers plaintext
//! until a flush and writes it as records. File regions are read and
//! encrypted a chunk at a time, only while the channel is writable, so a
//! large file costs a chunk of memory, not its size; with the channel's
//! `FileLoader`, only chunks the page cache holds are read on the loop
//! (`FileReads`). A server built with
//! `kernel_tls` hands the session's keys to the kernel after the handshake
//! (`try_kernel_tls`); both halves then pass everything straight through,
//! and the channel reads records and sends `close_notify` itself. Uses
//! the handler traits, the settings, session, framing and error types
//! beside it, and the kernel interface in `crate::ktls`.
//!
//! The halves are separate values (each layer's are), so they share the
//! connection through an `Rc<RefCell<..>>`: a pipeline lives on its loop's
//! thread only, and no borrow is held across a call into another layer (a
//! plaintext read passed on may come straight back as a write).

use super::config::{TlsAcceptor, TlsConnector};
use super::error::TlsError;
use super::framing::RecordFraming;
use super::session::TlsSession;
use crate::chain::Append;
use crate::cold_file::ColdFiles;
use crate::error::Error;
use crate::file_loader::{FileLoader, Waker};
use crate::handler::{InboundContext, InboundHandler, OutboundContext, OutboundHandler, UserEvent};
use crate::ktls;
use crate::outbound::Outbound;
use crate::pipeline::Pipeline;
use crate::timer::TimerId;
use bytes::{BufMut, Bytes, BytesMut};
use gyre_zerocopy::FileRegion;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Plaintext is read out of rustls in pieces of about this much.
const PLAIN_CHUNK: usize = 16 * 1024;
/// A file region is read and encrypted this much at a time (four records).
const FILE_CHUNK: usize = 64 * 1024;

/// What both halves share.
struct Shared {
    /// `None` if rustls refused to start the connection (a configuration
    /// it cannot use); the layer then fails at `active`.
    conn: Option<rustls::Connection>,
    /// Why it refused.
    setup_error: Option<rustls::Error>,
    /// Records ready for the socket, split off as they are written.
    records: BytesMut,
    /// Plaintext read, split off as it is passed on.
    plain: BytesMut,
    /// Plaintext bytes written since the last flush, encrypted at the flush
    /// (so several small writes make one record, as in Netty's
    /// `SslHandler`).
    pending: BytesMut,
    /// The one write since the last flush, while there is only one: it
    /// goes to rustls as it is, without the copy into `pending` (an echo's
    /// answer, a large message).
    pending_one: Option<Bytes>,
    /// What waits behind a file region still being encrypted, in order.
    queue: VecDeque<Outbound>,
    /// A file chunk on its way into rustls.
    scratch: Vec<u8>,
    /// A close waits for the queue to empty.
    close_pending: bool,
    /// Our `close_notify` has been sent, or the connection has failed:
    /// nothing more is written.
    done: bool,
    /// The kernel runs the record layer now (kTLS): both halves pass
    /// plaintext and file regions straight through, and `conn` is gone.
    kernel: bool,
    /// File chunks are read only where the page cache has them.
    files: FileReads,
}

/// The layer's reads of file regions through the channel's
/// [`FileLoader`](crate::FileLoader), if it has one: a chunk whose bytes
/// are not in the page cache is read in by a loader first, and the layer
/// encrypts on when the loader's [`FileLoaded`] event comes back, so the
/// loop never waits on the disk in the layer's `pread`.
#[derive(Default)]
struct FileReads {
    loader: Option<FileLoader>,
    /// Also says whether encryption waits for a loader.
    cold: ColdFiles,
}

/// The event a loader queues this layer once the file bytes it waits for
/// are in (a zero-sized box: no allocation).
struct FileLoaded;

/// What one step of encryption left.
enum Step {
    /// Records to send, and whether more is waiting.
    Records(Option<Bytes>, bool),
    /// It failed (a file that cannot be read; rustls refusing a write).
    Failed(Error),
}

impl Shared {
    /// Takes plaintext written by a handler.
    fn push(&mut self, msg: Outbound) {
        if self.done {
            return;
        }
        match msg {
            Outbound::Bytes(b) if b.is_empty() => {}
            Outbound::Bytes(b) if self.queue.is_empty() => {
                if self.pending.is_empty() && self.pending_one.is_none() {
                    self.pending_one = Some(b);
                } else {
                    if let Some(first) = self.pending_one.take() {
                        self.pending.extend_from_slice(&first);
                    }
                    self.pending.extend_from_slice(&b);
                }
            }
            other => {
                if let Some(first) = self.pending_one.take() {
                    self.queue.push_back(Outbound::Bytes(first));
                } else if !self.pending.is_empty() {
                    let before = self.pending.split().freeze();
                    self.queue.push_back(Outbound::Bytes(before));
                }
                self.queue.push_back(other);
            }
        }
    }

    /// Whether plaintext is waiting to be encrypted.
    fn has_plaintext(&self) -> bool {
        !self.pending.is_empty() || self.pending_one.is_some() || !self.queue.is_empty()
    }

    /// Encrypts what is waiting, up to one file chunk (file regions wait
    /// for the handshake's end, so they never pile up inside rustls), and
    /// takes every record rustls has ready (handshake messages, alerts,
    /// data).
    fn step(&mut self) -> Step {
        let Some(conn) = self.conn.as_mut() else {
            return Step::Records(None, false);
        };
        if !self.done && !self.files.cold.is_waiting() {
            if let Err(e) = Self::encrypt_some(
                conn,
                &mut self.pending,
                &mut self.pending_one,
                &mut self.queue,
                &mut self.scratch,
                &mut self.files,
            ) {
                return Step::Failed(e);
            }
        }
        back_to_the_front(&mut self.records);
        while conn.wants_write() {
            // Writing into memory cannot fail or stop short.
            if let Err(e) = conn.write_tls(&mut (&mut self.records).writer()) {
                return Step::Failed(Error::Io(e));
            }
        }
        let handshaking = conn.is_handshaking();
        let more =
            !self.done && self.has_plaintext() && !handshaking && !self.files.cold.is_waiting();
        let records = (!self.records.is_empty()).then(|| self.records.split().freeze());
        Step::Records(records, more)
    }

    fn encrypt_some(
        conn: &mut rustls::Connection,
        pending: &mut BytesMut,
        pending_one: &mut Option<Bytes>,
        queue: &mut VecDeque<Outbound>,
        scratch: &mut Vec<u8>,
        files: &mut FileReads,
    ) -> Result<(), Error> {
        while let Some(item) = queue.front_mut() {
            match item {
                Outbound::File(region) if region.is_done() => {
                    // An empty region (an empty file's body).
                    queue.pop_front();
                }
                Outbound::File(region) => {
                    if conn.is_handshaking() {
                        return Ok(());
                    }
                    let cached = match &files.loader {
                        None => u64::MAX,
                        Some(loader) => match files.cold.ready(Some(loader), Some(region)) {
                            Some(cached) => cached,
                            // Waiting (`ColdFiles::is_waiting`): the
                            // loader's event resumes.
                            None => return Ok(()),
                        },
                    };
                    let n = encrypt_file_chunk(conn, region, scratch, cached)?;
                    files.cold.sent(n, region.is_done());
                    if region.is_done() {
                        queue.pop_front();
                    }
                    // One chunk per step: the caller checks writability.
                    return Ok(());
                }
                Outbound::Bytes(b) => {
                    conn.writer().write_all(b)?;
                    queue.pop_front();
                }
                _ => {
                    queue.pop_front();
                    return Err(Error::Io(std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "only bytes and file regions can be sent over TLS",
                    )));
                }
            }
        }
        if let Some(one) = pending_one.take() {
            conn.writer().write_all(&one)?;
        } else if !pending.is_empty() {
            conn.writer().write_all(pending)?;
            pending.clear();
        }
        Ok(())
    }

    /// Moves the plaintext rustls has decrypted into `plain`; true once the
    /// peer's `close_notify` has been read.
    fn read_plaintext(&mut self) -> Result<bool, std::io::Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        back_to_the_front(&mut self.plain);
        let mut reader = conn.reader();
        loop {
            match reader.fill_buf() {
                Ok([]) => return Ok(true),
                Ok(piece) => {
                    let n = piece.len().min(PLAIN_CHUNK);
                    if self.plain.capacity() - self.plain.len() < n {
                        self.plain.reserve(PLAIN_CHUNK.max(n));
                    }
                    self.plain.extend_from_slice(&piece[..n]);
                    reader.consume(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

/// Before `buf` is written into: if everything split off it has been
/// handed on and dropped, start again at the front of its block, whose
/// memory is still in cache, rather than walk on through it (as the
/// channel's read buffer does). Asking for one byte more than the room
/// left makes `try_reclaim` look, and it succeeds exactly when the block
/// is ours alone and something before the room was used; it never
/// allocates.
fn back_to_the_front(buf: &mut BytesMut) {
    if buf.is_empty() {
        let _ = buf.try_reclaim(buf.capacity() + 1);
    }
}

/// Reads the next chunk of `region` and hands it to rustls.
fn encrypt_file_chunk(
    conn: &mut rustls::Connection,
    region: &mut FileRegion,
    scratch: &mut Vec<u8>,
    cached: u64,
) -> Result<usize, Error> {
    let want = region.remaining().min(FILE_CHUNK as u64).min(cached) as usize;
    scratch.resize(want, 0);
    let file = region.file();
    let n = loop {
        match file.file().read_at(&mut scratch[..want], region.position()) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(Error::File(gyre_zerocopy::Error::Io {
                    op: "pread",
                    path: file.path().to_owned(),
                    source,
                }))
            }
        }
    };
    if n == 0 {
        return Err(Error::File(region.truncated_error()));
    }
    conn.writer().write_all(&scratch[..n])?;
    region.advance(n as u64);
    Ok(n)
}

/// The TLS layer's inbound half: ciphertext chunks in, plaintext chunks
/// on. `W` is what the layer hands the socket: `Bytes`, or
/// [`Outbound`] in a pipeline [with file regions](Pipeline::with_file_regions).
/// Made by [`Pipeline::tls_server`](crate::Pipeline::tls_server) and
/// [`Pipeline::tls_client`](crate::Pipeline::tls_client), or by
/// [`TlsInbound::server`] and [`TlsInbound::client`] with its outbound
/// half, to place by hand with `Pipeline::duplex`.
pub struct TlsInbound<W = Bytes> {
    shared: Rc<RefCell<Shared>>,
    timeout: Duration,
    timer: Option<TimerId>,
    handshaken: bool,
    /// The peer's `close_notify` has been passed on (as `InputClosed`).
    input_closed: bool,
    failed: bool,
    /// The session is to go to the kernel after the handshake, and has
    /// not yet gone nor been found unable to.
    kernel_tls: bool,
    /// Where the records fed to rustls end (followed while `kernel_tls`).
    framing: RecordFraming,
    _w: PhantomData<fn(W)>,
}

/// The TLS layer's outbound half: plaintext in (`Bytes`, and file regions
/// where `W` is [`Outbound`]), records out. Made with its inbound half by
/// [`TlsInbound::server`] or [`TlsInbound::client`].
///
/// ```
/// use bytes::Bytes;
/// use gyre_reactor::{Pipeline, TlsConnector, TlsInbound, TlsOutbound, TlsRoots};
///
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// let roots = TlsRoots::from_pem(made.cert.pem().as_bytes())?;
/// let tls = TlsConnector::builder("localhost").roots(roots).build()?;
/// // What `Pipeline::new().tls_client(&tls)` does.
/// let (inbound, outbound): (TlsInbound, TlsOutbound) = TlsInbound::<Bytes>::client(&tls);
/// let pipeline = Pipeline::new().duplex(inbound, outbound);
/// # let _ = pipeline;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TlsOutbound<W = Bytes> {
    shared: Rc<RefCell<Shared>>,
    _w: PhantomData<fn(W)>,
}

/// Sends records and encrypts more while the channel takes them: `send`
/// writes through the context of whichever half runs this and says
/// whether the channel is still writable.
fn pump<W: From<Bytes>>(
    shared: &RefCell<Shared>,
    mut send: impl FnMut(Option<W>) -> bool,
) -> Result<(), Error> {
    loop {
        let step = shared.borrow_mut().step();
        match step {
            Step::Failed(e) => {
                shared.borrow_mut().done = true;
                return Err(e);
            }
            Step::Records(records, more) => {
                let writable = send(records.map(W::from));
                if !more || !writable {
                    return Ok(());
                }
            }
        }
    }
}

/// Once nothing waits any more, sends our `close_notify`: the records to
/// write before closing.
fn close_notify(shared: &RefCell<Shared>) -> Option<Bytes> {
    let mut shared = shared.borrow_mut();
    if shared.done {
        return None;
    }
    shared.done = true;
    shared.close_pending = false;
    if let Some(conn) = shared.conn.as_mut() {
        conn.send_close_notify();
    }
    match shared.step() {
        Step::Records(records, _) => records,
        Step::Failed(_) => None,
    }
}

impl<W> TlsInbound<W> {
    fn pair(
        conn: Result<rustls::Connection, rustls::Error>,
        timeout: Duration,
        kernel_tls: bool,
    ) -> (TlsInbound<W>, TlsOutbound<W>) {
        let (conn, setup_error) = match conn {
            Ok(mut conn) => {
                // Bytes written before the handshake ends wait inside
                // rustls (file regions wait in the layer's queue).
                conn.set_buffer_limit(None);
                (Some(conn), None)
            }
            Err(e) => (None, Some(e)),
        };
        let shared = Rc::new(RefCell::new(Shared {
            conn,
            setup_error,
            records: BytesMut::new(),
            plain: BytesMut::new(),
            pending: BytesMut::new(),
            pending_one: None,
            queue: VecDeque::new(),
            scratch: Vec::new(),
            close_pending: false,
            done: false,
            kernel: false,
            files: FileReads::default(),
        }));
        (
            TlsInbound {
                shared: shared.clone(),
                timeout,
                timer: None,
                handshaken: false,
                input_closed: false,
                failed: false,
                kernel_tls,
                framing: RecordFraming::default(),
                _w: PhantomData,
            },
            TlsOutbound {
                shared,
                _w: PhantomData,
            },
        )
    }

    /// A server connection's two halves, with `acceptor`'s settings.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gyre_reactor::{Pipeline, TlsAcceptor, TlsIdentity, TlsInbound};
    ///
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let identity = TlsIdentity::from_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// let tls = TlsAcceptor::builder().identity(identity).build()?;
    /// // What `Pipeline::new().tls_server(&tls)` does.
    /// let (inbound, outbound) = TlsInbound::<Bytes>::server(&tls);
    /// let pipeline = Pipeline::new().duplex(inbound, outbound);
    /// # let _ = pipeline;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn server(acceptor: &TlsAcceptor) -> (TlsInbound<W>, TlsOutbound<W>) {
        let conn =
            rustls::ServerConnection::new(acceptor.config.clone()).map(rustls::Connection::Server);
        Self::pair(conn, acceptor.handshake_timeout, acceptor.kernel_tls)
    }

    /// A client connection's two halves, with `connector`'s settings.
    pub fn client(connector: &TlsConnector) -> (TlsInbound<W>, TlsOutbound<W>) {
        let conn =
            rustls::ClientConnection::new(connector.config.clone(), connector.server_name.clone())
                .map(rustls::Connection::Client);
        Self::pair(conn, connector.handshake_timeout, false)
    }
}

impl<W: From<Bytes> + Send + 'static> TlsInbound<W> {
    /// Sends what rustls has ready for the peer and encrypts what waits
    /// while the channel takes it; then flushes, and closes if a close was
    /// waiting for the queue to empty.
    fn send_records(&mut self, ctx: &mut impl InboundContext<Self>) {
        let shared = self.shared.clone();
        let mut wrote = false;
        let result = pump::<W>(&shared, |records| {
            if let Some(records) = records {
                wrote = true;
                ctx.write(records);
            }
            ctx.channel().is_writable()
        });
        if let Err(e) = result {
            ctx.fire_error(e);
            ctx.close();
            return;
        }
        let close = {
            let s = shared.borrow();
            s.close_pending && !s.has_plaintext()
        };
        if close {
            if let Some(records) = close_notify(&shared) {
                ctx.write(W::from(records));
            }
            ctx.flush();
            ctx.close();
        } else if wrote {
            ctx.flush();
        }
    }

    /// The connection cannot go on: say why (and log it), stop, close.
    fn fail(&mut self, ctx: &mut impl InboundContext<Self>, error: TlsError) {
        if self.failed {
            return;
        }
        self.failed = true;
        self.shared.borrow_mut().done = true;
        tracing::info!(%error, "closing the connection");
        if let Some(id) = self.timer.take() {
            ctx.cancel_timer(id);
        }
        ctx.fire_error(Error::Tls(error));
        ctx.close();
    }

    /// The handshake has just finished: stop its timer and tell the
    /// handlers after this layer what it agreed.
    fn handshake_done(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.handshaken = true;
        if let Some(id) = self.timer.take() {
            ctx.cancel_timer(id);
        }
        let session = {
            let shared = self.shared.borrow();
            shared.conn.as_ref().map(TlsSession::of)
        };
        if let Some(session) = session {
            tracing::debug!(peer = ?ctx.channel().peer_addr(), resumed = session.resumed, "TLS handshake done");
            ctx.fire_user_event(UserEvent::TlsHandshake(Box::new(session)));
        }
        // File regions written during the handshake may go now.
        self.send_records(ctx);
    }

    /// Hands the session to the kernel if it was asked for and this is a
    /// moment it can be done: the handshake over, every record rustls made
    /// on the socket, none half-read, nothing waiting to be encrypted.
    /// Otherwise it is tried again after the next read or once the queue
    /// drains; a connection the kernel cannot take stays in
    /// rustls.
    fn try_kernel_tls(&mut self, ctx: &mut impl InboundContext<Self>) {
        if !self.kernel_tls || !self.handshaken || self.failed || self.input_closed {
            return;
        }
        let channel = ctx.channel();
        if !channel.is_open() || !channel.kernel_tls_possible() {
            self.kernel_tls = false;
            return;
        }
        if channel.queued_bytes() != 0 || !self.framing.at_boundary() {
            return;
        }
        let mut shared = self.shared.borrow_mut();
        // Plaintext already read out of rustls (`plain`) is no obstacle.
        if shared.done || shared.close_pending || shared.has_plaintext() {
            return;
        }
        let Some(conn) = shared.conn.as_ref() else {
            return;
        };
        if conn.is_handshaking() || conn.wants_write() {
            return;
        }
        // One attempt from here on, whatever comes of it.
        self.kernel_tls = false;
        let suite = conn.negotiated_cipher_suite().map(|s| s.suite());
        let Some((version, suite)) = conn.protocol_version().zip(suite) else {
            return;
        };
        if !ktls::suits(version, suite) {
            return;
        }
        if let Err(error) = channel.attach_kernel_tls() {
            tracing::debug!(peer = ?channel.peer_addr(), %error, "kernel TLS refused; staying in rustls");
            return;
        }
        let conn = shared.conn.take().expect("checked above");
        let installed = conn
            .dangerous_extract_secrets()
            .map_err(std::io::Error::other)
            .and_then(|secrets| channel.install_kernel_tls(version, secrets));
        match installed {
            Ok(()) => {
                shared.kernel = true;
                tracing::debug!(peer = ?channel.peer_addr(), ?version, ?suite, "kernel TLS on");
            }
            Err(source) => {
                drop(shared);
                let peer = ctx.channel().peer_addr();
                self.fail(ctx, TlsError::KernelTls { peer, source });
            }
        }
    }
}

impl<W: From<Bytes> + Send + 'static> InboundHandler for TlsInbound<W> {
    type Read = BytesMut;
    type Pass = BytesMut;
    type Write = W;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        // Every byte written must pass through the session.
        ctx.channel().refuse_direct_writes();
        if self.kernel_tls {
            // Before the first read: an io_uring loop must read this
            // connection itself for the switch to be possible.
            self.kernel_tls = ctx.channel().prepare_kernel_tls();
        }
        let setup_error = self.shared.borrow_mut().setup_error.take();
        if let Some(source) = setup_error {
            let peer = ctx.channel().peer_addr();
            self.fail(ctx, TlsError::Handshake { peer, source });
            return;
        }
        if !self.timeout.is_zero() {
            self.timer = Some(ctx.schedule(self.timeout, 0));
        }
        if let Some(loader) = ctx.channel().file_loader().cloned() {
            // The loader's word that a file's bytes are in comes back as
            // an event only this layer hears (its own handle's).
            let handle = ctx.handle();
            let wake = Waker::Call(Arc::new(move || {
                let _ = handle.fire_user_event(UserEvent::Custom(Box::new(FileLoaded)));
            }));
            let mut shared = self.shared.borrow_mut();
            shared.files.loader = Some(loader);
            shared.files.cold.set_waker(wake);
        }
        // A client's hello.
        self.send_records(ctx);
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, chunk: BytesMut) {
        if self.failed {
            return;
        }
        if self.shared.borrow().kernel {
            // The kernel has decrypted it.
            ctx.fire_read(chunk);
            return;
        }
        if self.kernel_tls {
            self.framing.feed(&chunk);
        }
        let mut input = &chunk[..];
        let mut peer_closed = false;
        let outcome = loop {
            if input.is_empty() {
                break Ok(());
            }
            let mut shared = self.shared.borrow_mut();
            let Some(conn) = shared.conn.as_mut() else {
                return;
            };
            if let Err(e) = conn.read_tls(&mut input) {
                break Err(rustls::Error::General(e.to_string()));
            }
            if let Err(e) = conn.process_new_packets() {
                break Err(e);
            }
            match shared.read_plaintext() {
                Ok(closed) => peer_closed |= closed,
                Err(e) => break Err(rustls::Error::General(e.to_string())),
            }
        };
        // Handshake replies, or the alert that tells the peer why not.
        self.send_records(ctx);
        let handshaking = self
            .shared
            .borrow()
            .conn
            .as_ref()
            .is_some_and(|c| c.is_handshaking());
        if let Err(source) = outcome {
            let peer = ctx.channel().peer_addr();
            let error = if self.handshaken {
                TlsError::Record { peer, source }
            } else {
                TlsError::Handshake { peer, source }
            };
            self.fail(ctx, error);
            return;
        }
        if !self.handshaken && !handshaking {
            self.handshake_done(ctx);
        }
        if !peer_closed {
            // Before the plaintext goes on, so that what it asks for (a
            // request pipelined behind the handshake's last message, as
            // clients send them) is answered through the kernel already.
            self.try_kernel_tls(ctx);
        }
        let plain = {
            let mut shared = self.shared.borrow_mut();
            (!shared.plain.is_empty()).then(|| shared.plain.split())
        };
        if let Some(plain) = plain {
            ctx.fire_read(plain);
        }
        if peer_closed && !self.input_closed {
            self.input_closed = true;
            if ctx.channel().options().allow_half_closure {
                ctx.fire_user_event(UserEvent::InputClosed);
            } else {
                // The peer is done: answer its close_notify with ours
                // (after what is queued) and close.
                self.shared.borrow_mut().close_pending = true;
                self.send_records(ctx);
            }
        }
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        if writable && self.handshaken && !self.shared.borrow().kernel {
            // The socket took what was queued: encrypt the next chunks.
            self.send_records(ctx);
            self.try_kernel_tls(ctx);
        }
        ctx.fire_writability_changed(writable);
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        let event = match event {
            UserEvent::Custom(any) => match any.downcast::<FileLoaded>() {
                Ok(_) => {
                    // The file bytes this layer waited for are in.
                    let waited = self.shared.borrow_mut().files.cold.take_wait();
                    if waited && !self.failed {
                        self.send_records(ctx);
                    }
                    return;
                }
                Err(other) => UserEvent::Custom(other),
            },
            other => other,
        };
        if matches!(event, UserEvent::InputClosed) {
            if !self.handshaken && !self.failed {
                let peer = ctx.channel().peer_addr();
                self.fail(ctx, TlsError::ClosedInHandshake { peer });
                return;
            }
            if self.input_closed {
                // Already passed on at the peer's close_notify.
                return;
            }
        }
        ctx.fire_user_event(event);
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, _: u64) {
        self.timer = None;
        if !self.handshaken && !self.failed {
            let peer = ctx.channel().peer_addr();
            let timeout = self.timeout;
            self.fail(ctx, TlsError::HandshakeTimeout { peer, timeout });
        }
    }
}

impl<W: From<Bytes> + Into<Outbound> + 'static> OutboundHandler for TlsOutbound<W> {
    type Write = W;
    type Pass = W;

    #[inline]
    fn write(&mut self, ctx: &mut impl OutboundContext<Self>, msg: W) {
        let mut shared = self.shared.borrow_mut();
        if shared.kernel {
            // The kernel makes the records (and keeps `sendfile` for files).
            drop(shared);
            ctx.write(msg);
        } else {
            shared.push(msg.into());
        }
    }

    fn flush(&mut self, ctx: &mut impl OutboundContext<Self>) {
        if self.shared.borrow().kernel {
            ctx.flush();
            return;
        }
        let result = pump::<W>(&self.shared, |records| {
            if let Some(records) = records {
                ctx.write(records);
            }
            ctx.channel().is_writable()
        });
        if let Err(e) = result {
            ctx.fail(e);
        }
        ctx.flush();
    }

    fn close(&mut self, ctx: &mut impl OutboundContext<Self>) {
        // What was written goes first.
        self.flush(ctx);
        if self.shared.borrow().kernel {
            // The channel sends our close_notify once its output is out.
            ctx.close();
            return;
        }
        let waiting = {
            let mut shared = self.shared.borrow_mut();
            let waiting = shared.has_plaintext() && !shared.done;
            shared.close_pending |= waiting;
            waiting
        };
        if waiting {
            // A file region still being encrypted: the inbound half sends
            // the rest as the socket takes it, then closes.
            return;
        }
        if let Some(records) = close_notify(&self.shared) {
            ctx.write(W::from(records));
        }
        ctx.flush();
        ctx.close();
    }
}

impl<L, W: From<Bytes> + Into<Outbound> + Send + 'static, S> Pipeline<L, BytesMut, W, S> {
    /// Adds the server side of TLS next to the socket: handlers after it
    /// read and write plaintext as on a plain connection (file regions
    /// too, in a pipeline [with file regions](Pipeline::with_file_regions):
    /// read and encrypted a chunk at a time), and learn the handshake's
    /// outcome from [`UserEvent::TlsHandshake`](crate::UserEvent::TlsHandshake).
    /// See [`TlsAcceptor`] for an example.
    pub fn tls_server(self, acceptor: &TlsAcceptor) -> Pipeline<L::Output, BytesMut, W, S>
    where
        L: Append<(TlsInbound<W>, TlsOutbound<W>)>,
    {
        let (inbound, outbound) = TlsInbound::server(acceptor);
        self.duplex(inbound, outbound)
    }

    /// Adds the client side of TLS next to the socket, for
    /// `connector`'s server name.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use gyre_reactor::{Bootstrap, EventLoopGroup, Pipeline, TlsConnector, TlsRoots};
    ///
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let ca_pem = made.cert.pem();
    /// let tls = TlsConnector::builder("localhost").roots(TlsRoots::from_pem(ca_pem.as_bytes())?).build()?;
    /// let group = EventLoopGroup::new(1)?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let handle = Bootstrap::new(group.clone())
    ///     .connect(listener.local_addr()?, move |_| Pipeline::new().tls_client(&tls))?;
    /// // Sent once the handshake is done (nobody answers it here).
    /// handle.write_and_flush(Bytes::from_static(b"hello"))?;
    /// group.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tls_client(self, connector: &TlsConnector) -> Pipeline<L::Output, BytesMut, W, S>
    where
        L: Append<(TlsInbound<W>, TlsOutbound<W>)>,
    {
        let (inbound, outbound) = TlsInbound::client(connector);
        self.duplex(inbound, outbound)
    }
}
