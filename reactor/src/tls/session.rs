//! What a finished handshake agreed: [`TlsSession`], handed to handlers in
//! [`UserEvent::TlsHandshake`](crate::UserEvent::TlsHandshake). Plain
//! data read off a rustls connection.

use rustls::pki_types::CertificateDer;
use rustls::{HandshakeKind, ProtocolVersion};

/// What a connection's TLS handshake agreed, as a handler learns it from
/// [`UserEvent::TlsHandshake`](crate::UserEvent::TlsHandshake).
///
/// ```
/// use bytes::BytesMut;
/// use gyre_reactor::{InboundContext, InboundHandler, UserEvent};
///
/// /// Serves only clients whose certificate was verified (mutual TLS).
/// struct RequireClient {
///     verified: bool,
/// }
///
/// impl InboundHandler for RequireClient {
///     type Read = BytesMut;
///     type Pass = BytesMut;
///     type Write = bytes::Bytes;
///
///     fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
///         if let UserEvent::TlsHandshake(session) = &event {
///             self.verified = session.peer_certificates.is_some();
///         }
///         ctx.fire_user_event(event);
///     }
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, msg: BytesMut) {
///         if self.verified {
///             ctx.fire_read(msg);
///         } else {
///             ctx.close();
///         }
///     }
/// }
/// # let _ = RequireClient { verified: false };
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsSession {
    /// The peer's certificate chain (leaf first), verified against the
    /// roots this side trusts; `None` if the peer sent none (a client
    /// where client certificates are optional or not asked for).
    pub peer_certificates: Option<Vec<CertificateDer<'static>>>,
    /// The application protocol agreed by ALPN.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The server name the client asked for (SNI): on a server, what the
    /// client sent; on a client, `None`.
    pub server_name: Option<String>,
    /// TLS 1.2 or 1.3.
    pub protocol_version: Option<ProtocolVersion>,
    /// The cipher suite, by its standard name.
    pub cipher_suite: Option<&'static str>,
    /// Whether a previous session was resumed (no full handshake).
    pub resumed: bool,
}

impl TlsSession {
    pub(super) fn of(conn: &rustls::Connection) -> Self {
        let server_name = match conn {
            rustls::Connection::Server(s) => s.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => None,
        };
        TlsSession {
            peer_certificates: conn.peer_certificates().map(|c| c.to_vec()),
            alpn_protocol: conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
            protocol_version: conn.protocol_version(),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .and_then(|s| s.suite().as_str()),
            resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
        }
    }
}
