//! The PROXY protocol header (HAProxy's, versions 1 and 2): what a TCP
//! proxy or load balancer (HAProxy, AWS NLB, GCP, nginx's `proxy_protocol
//! on`) sends first on each connection it opens to a server, so that the
//! server learns the client's address instead of the proxy's. The
//! [`ProxyHeaderDecoder`] takes the header off the front of a connection's
//! input, and [`ProxyHeader`] writes one (for a proxy, or a test). Plain
//! data over `bytes`; uses the crate's error and decoder traits.
//!
//! Bounded and strict, as a server facing a proxy must be: a connection
//! whose first bytes cannot start a header is refused at once (not after
//! 107 bytes), a version 1 line must end within its 107 bytes, and a
//! header longer than the decoder's maximum is refused from its length
//! field, before it is buffered.

use crate::codec::{Decoder, Encoder};
use crate::error::CodecError;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 2's signature, its first twelve bytes.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's first bytes.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest version 1 line, its CRLF included.
const V1_MAX: usize = 107;
/// Version 2's fixed part: the signature, version and command, family
/// and transport, and the length of what follows.
const V2_FIXED: usize = 16;
/// The default longest header a [`ProxyHeaderDecoder`] takes: room for
/// version 2's longest addresses (two UNIX paths, 216 bytes) and the TLVs
/// load balancers add (a VPC endpoint's id, an authority, a CRC).
pub const DEFAULT_MAX_PROXY_HEADER: usize = 4096;

/// The client's address and the one it connected to, as the proxy saw
/// them.
///
/// ```
/// use gyre_codec::ProxiedAddresses;
///
/// let seen = ProxiedAddresses {
///     source: "203.0.113.7:51000".parse()?,
///     destination: "10.0.0.5:443".parse()?,
/// };
/// assert!(seen.source.is_ipv4());
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProxiedAddresses {
    /// The client: the connection's real peer.
    pub source: SocketAddr,
    /// Where the client connected (the proxy's listener).
    pub destination: SocketAddr,
}

/// One PROXY protocol header.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Decoder, ProxiedAddresses, ProxyHeader, ProxyHeaderDecoder};
///
/// // What a proxy sends before the client's bytes...
/// let client = ProxiedAddresses {
///     source: "203.0.113.7:51000".parse()?,
///     destination: "10.0.0.5:443".parse()?,
/// };
/// let mut wire = BytesMut::new();
/// ProxyHeader::v2(Some(client)).encode_into(&mut wire)?;
/// wire.extend_from_slice(b"GET / HTTP/1.1\r\n");
/// // ...and what the server takes off the front.
/// let header = ProxyHeaderDecoder::new().decode(&mut wire)?.unwrap();
/// assert_eq!(header.addresses, Some(client));
/// assert_eq!(&wire[..], b"GET / HTTP/1.1\r\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyHeader {
    /// 1 (the text line) or 2 (binary).
    pub version: u8,
    /// The proxied connection's addresses; `None` for a connection the
    /// proxy opened for itself (version 2's `LOCAL`, a health check), for
    /// version 1's `UNKNOWN`, and for families this does not represent
    /// (version 2's `UNSPEC` and UNIX sockets).
    pub addresses: Option<ProxiedAddresses>,
    /// Version 2's TLVs (type, 16-bit length, value, ...) as they came;
    /// empty for version 1.
    pub tlvs: Bytes,
}

impl ProxyHeader {
    /// A version 1 header (`UNKNOWN` without addresses).
    pub fn v1(addresses: Option<ProxiedAddresses>) -> ProxyHeader {
        ProxyHeader {
            version: 1,
            addresses,
            tlvs: Bytes::new(),
        }
    }

    /// A version 2 header without TLVs (`LOCAL` without addresses).
    pub fn v2(addresses: Option<ProxiedAddresses>) -> ProxyHeader {
        ProxyHeader {
            version: 2,
            addresses,
            tlvs: Bytes::new(),
        }
    }

    /// This header with these version 2 TLVs (raw: type, length, value).
    pub fn with_tlvs(mut self, tlvs: Bytes) -> ProxyHeader {
        self.tlvs = tlvs;
        self
    }

    /// Writes the header. Refused: addresses of two families, or TLVs on
    /// a version 1 header or too long for version 2's length field.
    pub fn encode_into(&self, dst: &mut BytesMut) -> Result<(), CodecError> {
        let families = self
            .addresses
            .map(|a| (a.source.is_ipv4(), a.destination.is_ipv4()));
        if matches!(families, Some((s, d)) if s != d) {
            return Err(CodecError::Unencodable(
                "a PROXY header's two addresses are of one family".into(),
            ));
        }
        match self.version {
            1 if self.tlvs.is_empty() => {
                let line = match self.addresses {
                    None => "PROXY UNKNOWN\r\n".to_owned(),
                    Some(a) => format!(
                        "PROXY {} {} {} {} {}\r\n",
                        if a.source.is_ipv4() { "TCP4" } else { "TCP6" },
                        a.source.ip(),
                        a.destination.ip(),
                        a.source.port(),
                        a.destination.port()
                    ),
                };
                dst.put_slice(line.as_bytes());
                Ok(())
            }
            1 => Err(CodecError::Unencodable(
                "a version 1 PROXY header has no TLVs".into(),
            )),
            2 => {
                let addresses = match self.addresses {
                    None => 0,
                    Some(a) if a.source.is_ipv4() => 12,
                    Some(_) => 36,
                };
                let len = u16::try_from(addresses + self.tlvs.len()).map_err(|_| {
                    CodecError::Unencodable(format!("{} bytes of TLVs", self.tlvs.len()))
                })?;
                dst.reserve(V2_FIXED + usize::from(len));
                dst.put_slice(V2_SIGNATURE);
                // Version 2; LOCAL without addresses, else PROXY.
                dst.put_u8(if self.addresses.is_some() { 0x21 } else { 0x20 });
                match self.addresses {
                    None => dst.put_u8(0x00),
                    Some(a) => {
                        // INET or INET6, STREAM.
                        dst.put_u8(if a.source.is_ipv4() { 0x11 } else { 0x21 });
                    }
                }
                dst.put_u16(len);
                if let Some(a) = self.addresses {
                    for ip in [a.source.ip(), a.destination.ip()] {
                        match ip {
                            IpAddr::V4(v4) => dst.put_slice(&v4.octets()),
                            IpAddr::V6(v6) => dst.put_slice(&v6.octets()),
                        }
                    }
                    dst.put_u16(a.source.port());
                    dst.put_u16(a.destination.port());
                }
                dst.put_slice(&self.tlvs);
                Ok(())
            }
            v => Err(CodecError::Unencodable(format!(
                "PROXY protocol version {v}"
            ))),
        }
    }
}

impl Encoder<&ProxyHeader> for ProxyHeaderEncoder {
    fn encode(&mut self, item: &ProxyHeader, dst: &mut BytesMut) -> Result<(), CodecError> {
        item.encode_into(dst)
    }
}

/// Writes [`ProxyHeader`]s (as [`ProxyHeader::encode_into`] does), for a
/// pipeline's encoder stage.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{Encoder, ProxyHeader, ProxyHeaderEncoder};
///
/// let mut out = BytesMut::new();
/// ProxyHeaderEncoder.encode(&ProxyHeader::v1(None), &mut out)?;
/// assert_eq!(&out[..], b"PROXY UNKNOWN\r\n");
/// # Ok::<(), gyre_codec::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ProxyHeaderEncoder;

/// Takes the PROXY header off the front of a connection's input (either
/// version), once: call it until it returns the header, then hand the
/// rest of the input to the connection's own decoder. An input that does
/// not start with a header is [`CodecError::CorruptFrame`] as soon as its
/// first bytes show it; one longer than the maximum is
/// [`CodecError::FrameTooLong`]. Either way the connection should close:
/// a server behind a proxy never serves a connection whose client it
/// cannot name.
///
/// ```
/// use bytes::BytesMut;
/// use gyre_codec::{CodecError, Decoder, ProxyHeaderDecoder};
///
/// let mut d = ProxyHeaderDecoder::new();
/// let mut buf = BytesMut::from(&b"PROXY TCP4 192.0.2.1 198.51.100.2 5000 80\r"[..]);
/// assert!(d.decode(&mut buf)?.is_none()); // the line is not over yet
/// buf.extend_from_slice(b"\nhello");
/// let header = d.decode(&mut buf)?.unwrap();
/// assert_eq!(header.addresses.unwrap().source, "192.0.2.1:5000".parse()?);
/// assert_eq!(&buf[..], b"hello");
///
/// // A client that talks to the server directly is refused at once.
/// let mut direct = BytesMut::from(&b"GET / HTTP/1.1\r\n"[..]);
/// assert!(matches!(d.decode(&mut direct), Err(CodecError::CorruptFrame(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ProxyHeaderDecoder {
    max_len: usize,
}

impl Default for ProxyHeaderDecoder {
    fn default() -> Self {
        ProxyHeaderDecoder::new()
    }
}

impl ProxyHeaderDecoder {
    /// A decoder taking headers of up to [`DEFAULT_MAX_PROXY_HEADER`]
    /// bytes.
    pub fn new() -> ProxyHeaderDecoder {
        ProxyHeaderDecoder {
            max_len: DEFAULT_MAX_PROXY_HEADER,
        }
    }

    /// A decoder taking headers of up to `max_len` bytes (at least
    /// version 1's 107 and version 2's 16-byte fixed part plus IPv6
    /// addresses, 52).
    pub fn with_max_len(max_len: usize) -> ProxyHeaderDecoder {
        ProxyHeaderDecoder {
            max_len: max_len.max(V1_MAX),
        }
    }
}

impl Decoder for ProxyHeaderDecoder {
    type Item = ProxyHeader;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ProxyHeader>, CodecError> {
        if src.is_empty() {
            return Ok(None);
        }
        // The two versions' first bytes differ ('\r' and 'P'), so what
        // has come so far says which it is, or that it is neither.
        let v2 = src.len().min(V2_SIGNATURE.len());
        if src[..v2] == V2_SIGNATURE[..v2] {
            return decode_v2(src, self.max_len);
        }
        let v1 = src.len().min(V1_PREFIX.len());
        if src[..v1] == V1_PREFIX[..v1] {
            return decode_v1(src);
        }
        Err(CodecError::CorruptFrame(
            "the connection does not start with a PROXY protocol header".into(),
        ))
    }
}

fn corrupt(why: impl Into<String>) -> CodecError {
    CodecError::CorruptFrame(format!("PROXY header: {}", why.into()))
}

/// Version 1: `PROXY TCP4|TCP6 <source> <destination> <sport> <dport>\r\n`
/// or `PROXY UNKNOWN ...\r\n`, at most 107 bytes.
fn decode_v1(src: &mut BytesMut) -> Result<Option<ProxyHeader>, CodecError> {
    let seen = &src[..src.len().min(V1_MAX)];
    let Some(end) = seen.windows(2).position(|w| w == b"\r\n") else {
        if src.len() >= V1_MAX {
            return Err(CodecError::FrameTooLong {
                max: V1_MAX,
                length: src.len() as u64,
                dropped: 0,
            });
        }
        if seen.contains(&b'\n') {
            return Err(corrupt("a version 1 line ends with CRLF"));
        }
        return Ok(None);
    };
    let line = std::str::from_utf8(&src[V1_PREFIX.len()..end])
        .map_err(|_| corrupt("a version 1 line is ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let addresses = match fields[..] {
        ["UNKNOWN", ..] => None,
        [family @ ("TCP4" | "TCP6"), source, destination, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, CodecError> {
                let ip: IpAddr = s
                    .parse()
                    .map_err(|_| corrupt(format!("{s:?} is not an address")))?;
                if ip.is_ipv4() != (family == "TCP4") {
                    return Err(corrupt(format!("{s} is not a {family} address")));
                }
                Ok(ip)
            };
            Some(ProxiedAddresses {
                source: SocketAddr::new(ip(source)?, port(sport)?),
                destination: SocketAddr::new(ip(destination)?, port(dport)?),
            })
        }
        _ => return Err(corrupt(format!("unknown version 1 line {line:?}"))),
    };
    src.advance(end + 2);
    Ok(Some(ProxyHeader::v1(addresses)))
}

/// A version 1 port: decimal digits, no sign, at most 65535.
fn port(s: &str) -> Result<u16, CodecError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(corrupt(format!("{s:?} is not a port")));
    }
    s.parse()
        .map_err(|_| corrupt(format!("{s:?} is not a port")))
}

/// Version 2: the signature, version and command, family and transport,
/// a 16-bit length, then that many bytes of addresses and TLVs.
fn decode_v2(src: &mut BytesMut, max_len: usize) -> Result<Option<ProxyHeader>, CodecError> {
    if src.len() < V2_FIXED {
        return Ok(None);
    }
    let (ver_cmd, fam) = (src[12], src[13]);
    let len = usize::from(u16::from_be_bytes([src[14], src[15]]));
    if ver_cmd >> 4 != 2 {
        return Err(corrupt(format!(
            "version {} after the signature",
            ver_cmd >> 4
        )));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        c => return Err(corrupt(format!("unknown command {c}"))),
    };
    if V2_FIXED + len > max_len {
        return Err(CodecError::FrameTooLong {
            max: max_len,
            length: (V2_FIXED + len) as u64,
            dropped: 0,
        });
    }
    if src.len() < V2_FIXED + len {
        return Ok(None);
    }
    let needed = match fam >> 4 {
        0 => 0,
        1 => 12,
        2 => 36,
        3 => 216,
        f => return Err(corrupt(format!("unknown address family {f}"))),
    };
    if fam & 0x0f > 2 {
        return Err(corrupt(format!("unknown transport {}", fam & 0x0f)));
    }
    if len < needed {
        return Err(corrupt(format!(
            "{len} bytes cannot hold the family's {needed} bytes of addresses"
        )));
    }
    src.advance(V2_FIXED);
    let mut body = src.split_to(len);
    let addresses = match fam >> 4 {
        1 => {
            let (s, d) = (body.get_u32(), body.get_u32());
            let (sp, dp) = (body.get_u16(), body.get_u16());
            Some(ProxiedAddresses {
                source: SocketAddr::new(Ipv4Addr::from(s).into(), sp),
                destination: SocketAddr::new(Ipv4Addr::from(d).into(), dp),
            })
        }
        2 => {
            let (s, d) = (body.get_u128(), body.get_u128());
            let (sp, dp) = (body.get_u16(), body.get_u16());
            Some(ProxiedAddresses {
                source: SocketAddr::new(Ipv6Addr::from(s).into(), sp),
                destination: SocketAddr::new(Ipv6Addr::from(d).into(), dp),
            })
        }
        _ => {
            body.advance(needed);
            None
        }
    };
    Ok(Some(ProxyHeader {
        version: 2,
        // A LOCAL connection is the proxy's own: its addresses, if any,
        // are to be ignored.
        addresses: if local { None } else { addresses },
        tlvs: body.freeze(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn addrs(source: &str, destination: &str) -> Option<ProxiedAddresses> {
        Some(ProxiedAddresses {
            source: source.parse().unwrap(),
            destination: destination.parse().unwrap(),
        })
    }

    fn decode_all(bytes: &[u8]) -> Result<Option<ProxyHeader>, CodecError> {
        ProxyHeaderDecoder::new().decode(&mut BytesMut::from(bytes))
    }

    #[test]
    fn version_1_lines_decode_as_haproxy_writes_them() {
        let h = decode_all(b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 1\r\n").unwrap();
        assert_eq!(
            h.unwrap().addresses,
            addrs("[2001:db8::1]:65535", "[2001:db8::2]:1")
        );
        let h = decode_all(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").unwrap();
        assert_eq!(h.unwrap().addresses, None, "UNKNOWN ignores the rest");
        for bad in [
            &b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n"[..],
            b"PROXY TCP4 1.2.3.4 ::1 80 81\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 81\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 81\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 80 81\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 80 81\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 80 81\n",
            b"proxy TCP4 1.2.3.4 5.6.7.8 80 81\r\n",
            b"\r\n\r\n\0\r\nQUIT\n\x31\x11\0\x0c",
        ] {
            assert!(
                matches!(decode_all(bad), Err(CodecError::CorruptFrame(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [&b"PROXY UNKNOWN "[..], &[b'x'; 100][..]].concat();
        assert!(matches!(
            decode_all(&long),
            Err(CodecError::FrameTooLong { max: 107, .. })
        ));
    }

    #[test]
    fn version_2_local_unspec_unix_and_tlvs() {
        let mut wire = BytesMut::new();
        ProxyHeader::v2(None).encode_into(&mut wire).unwrap();
        assert_eq!(&wire[12..16], &[0x20, 0x00, 0, 0]);
        assert_eq!(decode_all(&wire).unwrap(), Some(ProxyHeader::v2(None)));
        // A UNIX socket's paths: kept out, the TLVs after them kept.
        let mut unix = BytesMut::from(&V2_SIGNATURE[..]);
        unix.put_slice(&[0x21, 0x31]);
        unix.put_u16(216 + 4);
        unix.put_slice(&[b'/'; 216]);
        unix.put_slice(&[0x04, 0, 1, 9]);
        let h = decode_all(&unix).unwrap().unwrap();
        assert_eq!((h.addresses, &h.tlvs[..]), (None, &[0x04, 0, 1, 9][..]));
        // LOCAL with addresses: ignored, as the specification says.
        let mut local = BytesMut::new();
        ProxyHeader::v2(addrs("1.1.1.1:1", "2.2.2.2:2"))
            .encode_into(&mut local)
            .unwrap();
        local[12] = 0x20;
        assert_eq!(decode_all(&local).unwrap().unwrap().addresses, None);
        // A length too short for its family's addresses.
        let mut short = BytesMut::from(&V2_SIGNATURE[..]);
        short.put_slice(&[0x21, 0x21, 0, 12]);
        short.put_slice(&[0; 12]);
        assert!(matches!(
            decode_all(&short),
            Err(CodecError::CorruptFrame(_))
        ));
    }

    #[test]
    fn a_header_over_the_maximum_is_refused_from_its_length() {
        let mut d = ProxyHeaderDecoder::with_max_len(200);
        let mut big = BytesMut::from(&V2_SIGNATURE[..]);
        big.put_slice(&[0x21, 0x11, 0xff, 0xff]);
        // Refused on its 16 bytes, nothing more buffered.
        assert!(matches!(
            d.decode(&mut big),
            Err(CodecError::FrameTooLong {
                max: 200,
                length: 65551,
                ..
            })
        ));
        let header =
            ProxyHeader::v2(addrs("1.1.1.1:1", "2.2.2.2:2")).with_tlvs(Bytes::from(vec![0u8; 300]));
        let mut wire = BytesMut::new();
        header.encode_into(&mut wire).unwrap();
        assert!(d.decode(&mut wire.clone()).is_err());
        assert_eq!(
            ProxyHeaderDecoder::new().decode(&mut wire).unwrap(),
            Some(header)
        );
    }

    #[test]
    fn unencodable_headers_are_refused() {
        let mixed = addrs("1.1.1.1:1", "[::1]:2");
        let mut out = BytesMut::new();
        assert!(ProxyHeader::v1(mixed).encode_into(&mut out).is_err());
        assert!(ProxyHeader::v2(mixed).encode_into(&mut out).is_err());
        let tlvs = ProxyHeader::v1(None).with_tlvs(Bytes::from_static(b"x"));
        assert!(tlvs.encode_into(&mut out).is_err());
        let huge = ProxyHeader::v2(None).with_tlvs(Bytes::from(vec![0u8; 70_000]));
        assert!(huge.encode_into(&mut out).is_err());
        assert!(out.is_empty());
    }

    fn any_addresses() -> impl Strategy<Value = Option<ProxiedAddresses>> {
        let v4 = (
            any::<[u8; 4]>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            any::<u16>(),
        )
            .prop_map(|(s, d, sp, dp)| ProxiedAddresses {
                source: SocketAddr::new(Ipv4Addr::from(s).into(), sp),
                destination: SocketAddr::new(Ipv4Addr::from(d).into(), dp),
            });
        let v6 = (any::<u128>(), any::<u128>(), any::<u16>(), any::<u16>()).prop_map(
            |(s, d, sp, dp)| ProxiedAddresses {
                source: SocketAddr::new(Ipv6Addr::from(s).into(), sp),
                destination: SocketAddr::new(Ipv6Addr::from(d).into(), dp),
            },
        );
        proptest::option::of(prop_oneof![v4, v6])
    }

    proptest! {
        /// Any header either version writes decodes to itself, and the
        /// bytes after it are left whole, however the input is cut: every
        /// prefix of the header asks for more and takes nothing.
        #[test]
        fn headers_round_trip_through_every_cut(
            addresses in any_addresses(),
            v2 in any::<bool>(),
            tlvs in proptest::collection::vec(any::<u8>(), 0..64),
            rest in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let header = if v2 {
                ProxyHeader::v2(addresses).with_tlvs(Bytes::from(tlvs))
            } else {
                ProxyHeader::v1(addresses)
            };
            let mut wire = BytesMut::new();
            header.encode_into(&mut wire).unwrap();
            let len = wire.len();
            for cut in 0..len {
                let mut part = BytesMut::from(&wire[..cut]);
                prop_assert_eq!(ProxyHeaderDecoder::new().decode(&mut part).unwrap(), None);
                prop_assert_eq!(part.len(), cut);
            }
            wire.extend_from_slice(&rest);
            let got = ProxyHeaderDecoder::new().decode(&mut wire).unwrap();
            prop_assert_eq!(got, Some(header));
            prop_assert_eq!(&wire[..], &rest[..]);
        }
    }
}
