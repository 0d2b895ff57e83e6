//! Who may connect, by address: [`IpSubnet`] (an address and a prefix
//! length, as CIDR writes it), [`IpFilter`] (allow and deny rules, the
//! first that matches decides, as nginx's `allow`/`deny` and Netty's
//! `RuleBasedIpFilter` do) and [`IpFilterHandler`], the pipeline layer
//! that closes a connection the filter refuses before anything of it is
//! read. A filter may also hold each address to a number of connections
//! open at once (`ip_limit`). Behind a load balancer it judges the
//! address the PROXY protocol header names. Uses the handler traits, the
//! per-address counts and the codec's header type.

use crate::handler::{InboundContext, InboundHandler, UserEvent};
use crate::ip_limit::{ConnectionsPerIp, IpSlot};
use bytes::{Bytes, BytesMut};
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

/// An address block: an address and how many of its leading bits a
/// member shares with it (`10.0.0.0/8`, `2001:db8::/32`; a bare address
/// is the block of that one address). An IPv4 address mapped into IPv6
/// (a dual-stack listener's IPv4 peer) is a member of the IPv4 blocks it
/// falls in.
///
/// ```
/// use gyre_reactor::IpSubnet;
///
/// let private: IpSubnet = "10.0.0.0/8".parse()?;
/// assert!(private.contains("10.20.30.40".parse()?));
/// assert!(private.contains("::ffff:10.1.2.3".parse()?));
/// assert!(!private.contains("11.0.0.1".parse()?));
/// assert!("10.0.0.0/33".parse::<IpSubnet>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpSubnet {
    /// The block's first address (the bits past the prefix cleared).
    base: IpAddr,
    prefix: u8,
}

/// A text that is not an address block, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an address block (a.b.c.d/n or an IPv6 address/n): {why}")]
pub struct IpSubnetError {
    text: String,
    why: &'static str,
}

impl IpSubnet {
    /// The block of `prefix` leading bits of `addr` (at most 32 for IPv4,
    /// 128 for IPv6).
    ///
    /// # Errors
    /// A prefix longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, IpSubnetError> {
        let addr = addr.to_canonical();
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(IpSubnetError {
                text: format!("{addr}/{prefix}"),
                why: "the prefix is longer than the address",
            });
        }
        Ok(IpSubnet {
            base: masked(addr, prefix),
            prefix,
        })
    }

    /// Every address of both families (`0.0.0.0/0` and `::/0` together).
    pub fn all() -> [IpSubnet; 2] {
        [
            IpSubnet {
                base: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix: 0,
            },
            IpSubnet {
                base: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                prefix: 0,
            },
        ]
    }

    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (ip, self.base) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                masked(ip, self.prefix) == self.base
            }
            _ => false,
        }
    }
}

/// `addr` with the bits past `prefix` cleared.
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

impl FromStr for IpSubnet {
    type Err = IpSubnetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |why| IpSubnetError {
            text: text.to_owned(),
            why,
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| fail("not an IP address"))?;
        let prefix = match prefix {
            Some(p) => p.parse().map_err(|_| fail("the prefix is not a number"))?,
            None if addr.to_canonical().is_ipv4() => 32,
            None => 128,
        };
        IpSubnet::new(addr, prefix).map_err(|e| fail(e.why))
    }
}

impl std::fmt::Display for IpSubnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Allow(IpSubnet),
    Deny(IpSubnet),
}

/// Allow and deny rules on addresses, checked in the order given; the
/// first rule whose block holds the address decides, and an address no
/// rule holds is allowed (as nginx's `allow`/`deny`; end with
/// [`deny_others`](Self::deny_others) for an allow list). Cheap to clone
/// (the rules are shared).
///
/// ```
/// use gyre_reactor::IpFilter;
///
/// // nginx: allow 10.1.0.0/16; deny 10.0.0.0/8; allow 127.0.0.1; deny all;
/// let filter = IpFilter::new()
///     .allow("10.1.0.0/16".parse()?)
///     .deny("10.0.0.0/8".parse()?)
///     .allow("127.0.0.1".parse()?)
///     .deny_others();
/// assert!(filter.allows("10.1.2.3".parse()?));
/// assert!(!filter.allows("10.2.0.1".parse()?));
/// assert!(filter.allows("127.0.0.1".parse()?));
/// assert!(!filter.allows("192.0.2.1".parse()?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct IpFilter {
    rules: Arc<Vec<Rule>>,
    per_address: Option<ConnectionsPerIp>,
}

impl IpFilter {
    /// No rules: every address is allowed.
    pub fn new() -> Self {
        Self::default()
    }

    fn push(mut self, rule: Rule) -> Self {
        Arc::make_mut(&mut self.rules).push(rule);
        self
    }

    /// Allows the addresses of `subnet` (unless an earlier rule denied them).
    pub fn allow(self, subnet: IpSubnet) -> Self {
        self.push(Rule::Allow(subnet))
    }

    /// Denies the addresses of `subnet` (unless an earlier rule allowed them).
    pub fn deny(self, subnet: IpSubnet) -> Self {
        self.push(Rule::Deny(subnet))
    }

    /// Denies every address no earlier rule allowed (nginx's `deny all`).
    pub fn deny_others(self) -> Self {
        let [v4, v6] = IpSubnet::all();
        self.deny(v4).deny(v6)
    }

    /// Also holds each allowed address to `limits`' connections open at
    /// once (nginx's `limit_conn`; Netty's `UniqueIpFilter` is a limit of
    /// 1): one more is refused as the rules' refusals are. Clones of
    /// `limits` share its counts, so one limit may span several servers.
    ///
    /// ```
    /// use gyre_reactor::{ConnectionsPerIp, IpFilter};
    ///
    /// let filter = IpFilter::new().limit_per_address(&ConnectionsPerIp::new(Some(10), []));
    /// # let _ = filter;
    /// ```
    pub fn limit_per_address(mut self, limits: &ConnectionsPerIp) -> Self {
        self.per_address = Some(limits.clone());
        self
    }

    /// Whether `ip` may connect by the rules (its count is not asked).
    pub fn allows(&self, ip: IpAddr) -> bool {
        for rule in self.rules.iter() {
            match rule {
                Rule::Allow(s) if s.contains(ip) => return true,
                Rule::Deny(s) if s.contains(ip) => return false,
                _ => {}
            }
        }
        true
    }
}

/// Closes a connection whose address its [`IpFilter`] refuses, or that
/// would take its address past the filter's
/// [per-address limit](IpFilter::limit_per_address), before anything of
/// it is read or passed on (Netty's `RuleBasedIpFilter`). Put
/// it first in a pipeline, where it judges the peer's address when the
/// connection opens; or, with [`behind_proxy`](Self::behind_proxy), right
/// after a [`ProxyProtocolHandler`](crate::ProxyProtocolHandler), where it
/// judges the client the header names (a header without addresses, a
/// proxy's own health check, is judged by the proxy's address). A Unix
/// domain connection has no address and is allowed.
///
/// ```
/// use gyre_reactor::{IpFilter, IpFilterHandler, Pipeline, ServerBootstrap};
/// use std::io::Read;
///
/// let only_others = IpFilter::new().deny("127.0.0.0/8".parse()?);
/// let server = ServerBootstrap::new().bind("127.0.0.1:0", move |_peer| {
///     Pipeline::new().inbound(IpFilterHandler::new(only_others.clone()))
/// })?;
/// // Loopback is refused: closed at once.
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// assert_eq!(client.read(&mut [0u8; 1])?, 0);
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct IpFilterHandler<W = Bytes> {
    filter: IpFilter,
    behind_proxy: bool,
    refused: bool,
    /// The connection's place in its address's count, under a
    /// [`limit_per_address`](IpFilter::limit_per_address).
    slot: Option<IpSlot>,
    _write: PhantomData<fn(W)>,
}

impl<W> IpFilterHandler<W> {
    /// A handler judging the peer's address by `filter`.
    pub fn new(filter: IpFilter) -> Self {
        IpFilterHandler {
            filter,
            behind_proxy: false,
            refused: false,
            slot: None,
            _write: PhantomData,
        }
    }

    /// Judges the client a PROXY protocol header names instead (put the
    /// handler after a [`ProxyProtocolHandler`](crate::ProxyProtocolHandler)).
    pub fn behind_proxy(mut self) -> Self {
        self.behind_proxy = true;
        self
    }
}

impl<W: 'static> IpFilterHandler<W> {
    /// Whether `ip` may connect (by the rules, and its address's count);
    /// if not, closes the channel.
    fn judge(&mut self, ctx: &mut impl InboundContext<Self>, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip else {
            return true;
        };
        let refusal = if !self.filter.allows(ip) {
            "address refused by the IP filter; closing"
        } else {
            match self.filter.per_address.as_ref().map(|l| l.admit(ip)) {
                None => return true,
                Some(Ok(slot)) => {
                    self.slot = Some(slot);
                    return true;
                }
                Some(Err(_)) => "address already has its most connections open; closing",
            }
        };
        self.refused = true;
        tracing::debug!(%ip, peer = ?ctx.channel().peer_addr(), "{refusal}");
        ctx.close();
        false
    }
}

impl<W: 'static> InboundHandler for IpFilterHandler<W> {
    type Read = BytesMut;
    type Pass = BytesMut;
    type Write = W;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        if !self.behind_proxy {
            let peer = ctx.channel().peer_addr().map(|p| p.ip());
            if !self.judge(ctx, peer) {
                return;
            }
        }
        ctx.fire_active();
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        if let (true, UserEvent::ProxyHeader(header)) = (self.behind_proxy, &event) {
            let client = match &header.addresses {
                Some(a) => Some(a.source.ip()),
                None => ctx.channel().peer_addr().map(|p| p.ip()),
            };
            if !self.judge(ctx, client) {
                return;
            }
        }
        if !self.refused {
            ctx.fire_user_event(event);
        }
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, chunk: BytesMut) {
        if !self.refused {
            ctx.fire_read(chunk);
        }
    }

    fn inactive(&mut self, ctx: &mut impl InboundContext<Self>) {
        // Its place in its address's count is free for the next.
        self.slot = None;
        // The handlers after a refusal at `active` never saw the channel
        // open; behind a proxy they did, and see it close.
        if !self.refused || self.behind_proxy {
            ctx.fire_inactive();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_hold_their_addresses_and_no_others() {
        let s: IpSubnet = "192.168.4.0/22".parse().unwrap();
        assert!(s.contains(ip("192.168.4.0")) && s.contains(ip("192.168.7.255")));
        assert!(!s.contains(ip("192.168.8.0")) && !s.contains(ip("192.168.3.255")));
        // Written with host bits set, the block is still the block.
        assert_eq!("192.168.5.9/22".parse::<IpSubnet>().unwrap(), s);
        assert_eq!(s.to_string(), "192.168.4.0/22");
        let v6: IpSubnet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        // Families do not mix, but a mapped IPv4 address is IPv4.
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(!"0.0.0.0/0".parse::<IpSubnet>().unwrap().contains(ip("::1")));
        assert!("0.0.0.0/0"
            .parse::<IpSubnet>()
            .unwrap()
            .contains(ip("::ffff:8.8.8.8")));
        // One address, and the edges of the prefix.
        let one: IpSubnet = "::1".parse().unwrap();
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        assert!("1.2.3.4/32"
            .parse::<IpSubnet>()
            .unwrap()
            .contains(ip("1.2.3.4")));
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4/",
            "1.2.3.4/x",
            "1.2.3.4/33",
            "::/129",
            "host/8",
        ] {
            assert!(bad.parse::<IpSubnet>().is_err(), "{bad:?} taken");
        }
        let err = "1.2.3.4/33".parse::<IpSubnet>().unwrap_err().to_string();
        assert!(
            err.contains("1.2.3.4/33") && err.contains("longer"),
            "{err}"
        );
    }

    #[test]
    fn the_first_rule_that_matches_decides_and_others_pass() {
        let f = IpFilter::new()
            .deny("10.0.0.1".parse().unwrap())
            .allow("10.0.0.0/8".parse().unwrap());
        assert!(!f.allows(ip("10.0.0.1")));
        assert!(f.allows(ip("10.0.0.2")));
        assert!(f.allows(ip("192.0.2.1")), "no rule matched: allowed");
        let strict = f.clone().deny_others();
        assert!(!strict.allows(ip("192.0.2.1")) && !strict.allows(ip("::1")));
        assert!(strict.allows(ip("10.9.9.9")));
        // Clones built on share nothing they should not.
        assert!(f.allows(ip("192.0.2.1")));
        assert!(IpFilter::new().allows(ip("::1")));
    }
}
