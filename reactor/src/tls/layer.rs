//! The TLS layer's two halves, which share one rustls connection:
//! [`TlsInbound`] feeds it ciphertext and passes plaintext on (sending the
//! handshake's records as they come), [`TlsOutbound`] gathers plaintext
//! until a flush and writes it as records. Uses the handler traits, the
//! settings, session and error types beside it.
//!
//! The halves are separate values (each layer's are), so they share the
//! connection through an `Rc<RefCell<..>>`: a pipeline lives on its loop's
//! thread only, and no borrow is held across a call into another layer (a
//! plaintext read passed on may come straight back as a write).

use super::config::{TlsAcceptor, TlsConnector};
use super::error::TlsError;
use super::session::TlsSession;
use crate::chain::Append;
use crate::error::Error;
use crate::handler::{InboundContext, InboundHandler, OutboundContext, OutboundHandler, UserEvent};
use crate::pipeline::Pipeline;
use crate::timer::TimerId;
use bytes::{BufMut, Bytes, BytesMut};
use std::cell::RefCell;
use std::io::{BufRead, Write};
use std::rc::Rc;
use std::time::Duration;

/// Plaintext is read out of rustls in pieces of about this much.
const PLAIN_CHUNK: usize = 16 * 1024;

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
    /// Plaintext written since the last flush, encrypted at the flush (so
    /// several small writes make one record, as in Netty's `SslHandler`).
    pending: BytesMut,
    /// Our `close_notify` has been sent, or the connection has failed:
    /// nothing more is written.
    done: bool,
}

impl Shared {
    /// Encrypts the pending plaintext and takes every record rustls has
    /// ready (handshake messages, alerts, data).
    fn take_records(&mut self) -> Result<Option<Bytes>, std::io::Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        if !self.pending.is_empty() && !self.done {
            conn.writer().write_all(&self.pending)?;
            self.pending.clear();
        }
        while conn.wants_write() {
            // Writing into memory cannot fail or stop short.
            conn.write_tls(&mut (&mut self.records).writer())?;
        }
        Ok((!self.records.is_empty()).then(|| self.records.split().freeze()))
    }

    /// Moves the plaintext rustls has decrypted into `plain`; true once the
    /// peer's `close_notify` has been read.
    fn read_plaintext(&mut self) -> Result<bool, std::io::Error> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
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

/// The TLS layer's inbound half: ciphertext chunks in, plaintext chunks
/// on. Made by [`Pipeline::tls_server`](crate::Pipeline::tls_server) and
/// [`Pipeline::tls_client`](crate::Pipeline::tls_client), or by
/// [`TlsInbound::server`] and [`TlsInbound::client`] with its outbound
/// half, to place by hand with `Pipeline::duplex`.
pub struct TlsInbound {
    shared: Rc<RefCell<Shared>>,
    timeout: Duration,
    timer: Option<TimerId>,
    handshaken: bool,
    /// The peer's `close_notify` has been passed on (as `InputClosed`).
    input_closed: bool,
    failed: bool,
}

/// The TLS layer's outbound half: plaintext `Bytes` in, records out.
pub struct TlsOutbound {
    shared: Rc<RefCell<Shared>>,
}

impl TlsInbound {
    fn pair(
        conn: Result<rustls::Connection, rustls::Error>,
        timeout: Duration,
    ) -> (TlsInbound, TlsOutbound) {
        let (conn, setup_error) = match conn {
            Ok(mut conn) => {
                // Writes before the handshake ends wait inside rustls; the
                // channel's watermarks bound them once they are records.
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
            done: false,
        }));
        (
            TlsInbound {
                shared: shared.clone(),
                timeout,
                timer: None,
                handshaken: false,
                input_closed: false,
                failed: false,
            },
            TlsOutbound { shared },
        )
    }

    /// A server connection's two halves, with `acceptor`'s settings.
    ///
    /// ```
    /// use gyre_reactor::{Pipeline, TlsAcceptor, TlsIdentity, TlsInbound};
    ///
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let identity = TlsIdentity::from_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// let tls = TlsAcceptor::builder().identity(identity).build()?;
    /// // What `Pipeline::new().tls_server(&tls)` does.
    /// let (inbound, outbound) = TlsInbound::server(&tls);
    /// let pipeline = Pipeline::new().duplex(inbound, outbound);
    /// # let _ = pipeline;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn server(acceptor: &TlsAcceptor) -> (TlsInbound, TlsOutbound) {
        let conn =
            rustls::ServerConnection::new(acceptor.config.clone()).map(rustls::Connection::Server);
        Self::pair(conn, acceptor.handshake_timeout)
    }

    /// A client connection's two halves, with `connector`'s settings.
    pub fn client(connector: &TlsConnector) -> (TlsInbound, TlsOutbound) {
        let conn =
            rustls::ClientConnection::new(connector.config.clone(), connector.server_name.clone())
                .map(rustls::Connection::Client);
        Self::pair(conn, connector.handshake_timeout)
    }

    /// Sends what rustls has ready for the peer, and flushes it.
    fn send_records(&mut self, ctx: &mut impl InboundContext<Self>) {
        let records = self.shared.borrow_mut().take_records();
        match records {
            Ok(Some(records)) => ctx.write_and_flush(records),
            Ok(None) => {}
            Err(e) => ctx.fire_error(Error::Io(e)),
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
    }
}

impl InboundHandler for TlsInbound {
    type Read = BytesMut;
    type Pass = BytesMut;
    type Write = Bytes;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        let setup_error = self.shared.borrow_mut().setup_error.take();
        if let Some(source) = setup_error {
            let peer = ctx.channel().peer_addr();
            self.fail(ctx, TlsError::Handshake { peer, source });
            return;
        }
        if !self.timeout.is_zero() {
            self.timer = Some(ctx.schedule(self.timeout, 0));
        }
        // A client's hello.
        self.send_records(ctx);
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, chunk: BytesMut) {
        if self.failed {
            return;
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
                ctx.close();
            }
        }
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
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

impl OutboundHandler for TlsOutbound {
    type Write = Bytes;
    type Pass = Bytes;

    #[inline]
    fn write(&mut self, _: &mut impl OutboundContext<Self>, msg: Bytes) {
        let mut shared = self.shared.borrow_mut();
        if !shared.done {
            shared.pending.extend_from_slice(&msg);
        }
    }

    fn flush(&mut self, ctx: &mut impl OutboundContext<Self>) {
        let records = self.shared.borrow_mut().take_records();
        match records {
            Ok(Some(records)) => ctx.write(records),
            Ok(None) => {}
            Err(e) => ctx.fail(Error::Io(e)),
        }
        ctx.flush();
    }

    fn close(&mut self, ctx: &mut impl OutboundContext<Self>) {
        let records = {
            let mut shared = self.shared.borrow_mut();
            if !shared.done {
                // What was written goes first, then our close_notify.
                let data = shared.take_records();
                shared.done = true;
                if let Some(conn) = shared.conn.as_mut() {
                    conn.send_close_notify();
                }
                let alert = shared.take_records();
                match (data, alert) {
                    (Ok(a), Ok(b)) => [a, b],
                    _ => [None, None],
                }
            } else {
                [None, None]
            }
        };
        for records in records.into_iter().flatten() {
            ctx.write(records);
        }
        ctx.flush();
        ctx.close();
    }
}

impl<L, S> Pipeline<L, BytesMut, Bytes, S> {
    /// Adds the server side of TLS next to the socket: handlers after it
    /// read and write plaintext as on a plain connection, and learn the
    /// handshake's outcome from
    /// [`UserEvent::TlsHandshake`](crate::UserEvent::TlsHandshake). See
    /// [`TlsAcceptor`] for an example.
    pub fn tls_server(self, acceptor: &TlsAcceptor) -> Pipeline<L::Output, BytesMut, Bytes, S>
    where
        L: Append<(TlsInbound, TlsOutbound)>,
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
    pub fn tls_client(self, connector: &TlsConnector) -> Pipeline<L::Output, BytesMut, Bytes, S>
    where
        L: Append<(TlsInbound, TlsOutbound)>,
    {
        let (inbound, outbound) = TlsInbound::client(connector);
        self.duplex(inbound, outbound)
    }
}
