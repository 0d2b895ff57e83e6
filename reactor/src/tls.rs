//! TLS as a pipeline layer, on rustls (feature `tls`): a server side
//! ([`TlsAcceptor`]: certificates from PEM files, SNI, ALPN, client
//! certificates) and a client side ([`TlsConnector`]), added next to the
//! socket with [`Pipeline::tls_server`](crate::Pipeline::tls_server) and
//! [`Pipeline::tls_client`](crate::Pipeline::tls_client). Uses the
//! handler traits and the pipeline builder, as the codec adapters do.
//!
//! The layer reads ciphertext chunks and passes plaintext `BytesMut` on,
//! takes plaintext `Bytes` and writes records: what sits after it is
//! written exactly as for a plain socket. When the handshake completes it
//! fires [`UserEvent::TlsHandshake`](crate::UserEvent::TlsHandshake) with
//! the [`TlsSession`] (the peer's verified certificates, the ALPN protocol,
//! the SNI name). A handshake that fails or runs past its timeout closes
//! only its connection, after sending the alert, and is logged (info) with
//! the peer and the reason; a graceful close sends `close_notify` first.
//! Sessions resume (TLS 1.3 tickets and TLS 1.2 session ids, rustls's
//! in-memory stores) without configuration.

mod config;
// The error and the session are leaves the crate's error and handler
// types name, so they stay below the layer that uses those.
pub(crate) mod error;
mod framing;
mod layer;
pub(crate) mod session;

pub use config::{
    TlsAcceptor, TlsAcceptorBuilder, TlsConnector, TlsConnectorBuilder, TlsIdentity, TlsRoots,
};
pub use error::TlsError;
pub use layer::{TlsInbound, TlsOutbound};
pub use session::TlsSession;
