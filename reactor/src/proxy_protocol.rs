//! The PROXY protocol (HAProxy's, versions 1 and 2) as a pipeline layer:
//! a server behind a TCP load balancer learns each connection's real
//! client from the header the balancer sends first, as Netty's
//! `HAProxyMessageDecoder` tells its pipeline. [`ProxyProtocolHandler`]
//! holds the connection's first bytes until the header is whole, tells
//! the handlers after it with [`UserEvent::ProxyHeader`], and from then on
//! passes every chunk through untouched. Uses `gyre-codec`'s header
//! decoder and the handler traits.

use crate::error::Error;
use crate::handler::{InboundContext, InboundHandler, UserEvent};
use bytes::{Bytes, BytesMut};
use gyre_codec::{Decoder, ProxyHeaderDecoder};
use std::marker::PhantomData;

/// Takes the PROXY protocol header off the front of a connection and
/// tells the handlers after it who the client is
/// ([`UserEvent::ProxyHeader`], before any of the connection's bytes);
/// passes the rest on as it comes. A connection whose first bytes are not
/// a header, or whose header is over the maximum (4 KiB by default), is
/// failed with the codec's error (which closes it) and nothing of it is
/// passed on: a server behind a proxy never serves a client it cannot
/// name. Bound it with an idle timeout ahead of it, as any server's
/// first bytes, for a peer that sends nothing.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use gyre_codec::{ProxiedAddresses, ProxyHeader};
/// use gyre_reactor::{
///     EventLoopGroup, InboundContext, InboundHandler, Pipeline, ProxyProtocolHandler,
///     ServerBootstrap, UserEvent,
/// };
/// use std::io::{Read, Write};
///
/// /// Answers each chunk with the client's address, as the proxy saw it.
/// #[derive(Default)]
/// struct WhoIsIt(Option<std::net::SocketAddr>);
///
/// impl InboundHandler for WhoIsIt {
///     type Read = BytesMut;
///     type Pass = ();
///     type Write = Bytes;
///
///     fn read(&mut self, ctx: &mut impl InboundContext<Self>, _: BytesMut) {
///         ctx.write_and_flush(Bytes::from(format!("{:?}", self.0)));
///     }
///
///     fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
///         if let UserEvent::ProxyHeader(header) = &event {
///             self.0 = header.addresses.map(|a| a.source);
///         }
///         ctx.fire_user_event(event);
///     }
/// }
///
/// let server = ServerBootstrap::new()
///     .group(EventLoopGroup::new(1)?)
///     .bind("127.0.0.1:0", |_| {
///         Pipeline::new()
///             .inbound(ProxyProtocolHandler::new())
///             .inbound(WhoIsIt::default())
///     })?;
/// // What a load balancer sends: the header, then the client's bytes.
/// let mut wire = BytesMut::new();
/// let client = ProxiedAddresses {
///     source: "203.0.113.7:51000".parse()?,
///     destination: "10.0.0.5:7000".parse()?,
/// };
/// ProxyHeader::v1(Some(client)).encode_into(&mut wire)?;
/// wire.extend_from_slice(b"hi");
/// let mut balancer = std::net::TcpStream::connect(server.local_addr())?;
/// balancer.write_all(&wire)?;
/// let mut answer = [0u8; 23];
/// balancer.read_exact(&mut answer)?;
/// assert_eq!(&answer, b"Some(203.0.113.7:51000)");
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProxyProtocolHandler<W = Bytes> {
    decoder: ProxyHeaderDecoder,
    /// The header's bytes so far; `None` once it is taken.
    pending: Option<BytesMut>,
    /// The header was refused: the channel is closing.
    refused: bool,
    _write: PhantomData<fn(W)>,
}

impl<W> Default for ProxyProtocolHandler<W> {
    fn default() -> Self {
        ProxyProtocolHandler::with_decoder(ProxyHeaderDecoder::new())
    }
}

impl<W> ProxyProtocolHandler<W> {
    /// A handler taking headers of up to
    /// [`DEFAULT_MAX_PROXY_HEADER`](gyre_codec::DEFAULT_MAX_PROXY_HEADER)
    /// bytes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handler using `decoder` (to set the longest header it takes).
    pub fn with_decoder(decoder: ProxyHeaderDecoder) -> Self {
        ProxyProtocolHandler {
            decoder,
            pending: Some(BytesMut::new()),
            refused: false,
            _write: PhantomData,
        }
    }
}

impl<W: 'static> InboundHandler for ProxyProtocolHandler<W> {
    type Read = BytesMut;
    type Pass = BytesMut;
    type Write = W;

    #[inline]
    fn read(&mut self, ctx: &mut impl InboundContext<Self>, chunk: BytesMut) {
        if self.refused {
            return;
        }
        let Some(pending) = self.pending.as_mut() else {
            return ctx.fire_read(chunk);
        };
        if pending.is_empty() {
            *pending = chunk;
        } else {
            pending.unsplit(chunk);
        }
        match self.decoder.decode(pending) {
            Ok(None) => {}
            Ok(Some(header)) => {
                let rest = self.pending.take().unwrap_or_default();
                ctx.fire_user_event(UserEvent::ProxyHeader(Box::new(header)));
                if !rest.is_empty() && ctx.channel().is_open() {
                    ctx.fire_read(rest);
                }
            }
            Err(e) => {
                self.refused = true;
                self.pending = Some(BytesMut::new());
                tracing::debug!(peer = ?ctx.channel().peer_addr(), error = %e, "no PROXY protocol header; closing");
                ctx.fire_error(Error::Codec(e));
            }
        }
    }

    fn holds_input(&self) -> bool {
        // Until the header is taken, no bytes of the connection are the
        // handlers' after it, nor a borrower's.
        self.pending.is_some()
    }
}
