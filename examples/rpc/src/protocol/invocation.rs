//! A request body: which service and method, string attachments, then the
//! serialized arguments.
//!
//! ```text
//!  u8 len, service | u8 len, version | u8 len, group | u8 len, method
//!  u16 attachment count, then each: u16 len, key | u16 len, value
//!  arguments (the rest, in the header's serialization)
//! ```
//!
//! The routing part is plain length-prefixed UTF-8 rather than serde, so a
//! provider finds the method with slices of the frame (no allocation, no
//! deserializer) and so both serializations share one layout.

use bytes::{BufMut, BytesMut};

/// Names a service: its interface name, version and group (Dubbo's three
/// coordinates; two services differing in any one are different services).
///
/// ```
/// use gyre_rpc::ServiceKey;
///
/// let key = ServiceKey::new("demo.Greeter").version("1.0").group("blue");
/// assert_eq!(key.to_string(), "blue/demo.Greeter:1.0");
/// // Providers and consumers must agree on all three to meet.
/// assert_ne!(key, ServiceKey::new("demo.Greeter").version("1.0"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    /// The interface name, e.g. `demo.Greeter`.
    pub name: String,
    /// Its version, e.g. `1.0.0` (empty: unversioned).
    pub version: String,
    /// Its group (empty: the default group).
    pub group: String,
}

impl ServiceKey {
    /// The unversioned, ungrouped service `name`.
    pub fn new(name: impl Into<String>) -> ServiceKey {
        ServiceKey {
            name: name.into(),
            ..ServiceKey::default()
        }
    }

    /// The same service at `version`.
    pub fn version(mut self, version: impl Into<String>) -> ServiceKey {
        self.version = version.into();
        self
    }

    /// The same service in `group`.
    pub fn group(mut self, group: impl Into<String>) -> ServiceKey {
        self.group = group.into();
        self
    }
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        f.write_str(&self.name)?;
        if !self.version.is_empty() {
            write!(f, ":{}", self.version)?;
        }
        Ok(())
    }
}

/// Why a request body does not parse.
///
/// ```
/// use gyre_rpc::protocol::{write_routing, Invocation, InvocationError};
/// use gyre_rpc::ServiceKey;
///
/// let mut body = bytes::BytesMut::new();
/// write_routing(&mut body, &ServiceKey::new("demo.Calc"), "add", &[], None)?;
/// // Cut short inside the names.
/// assert!(matches!(Invocation::parse(&body[..5]), Err(InvocationError::Truncated(_))));
/// // A method name longer than its length byte allows.
/// let long = "m".repeat(300);
/// let refused = write_routing(&mut bytes::BytesMut::new(), &ServiceKey::new("demo.Calc"), &long, &[], None);
/// assert!(matches!(refused, Err(InvocationError::TooLong { len: 300, .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvocationError {
    /// The body ends inside the routing part.
    #[error("request body ends inside its {0}")]
    Truncated(&'static str),
    /// A name that is not UTF-8.
    #[error("request {0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A name too long for its length prefix.
    #[error("{what} is {len} bytes, at most {max}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The field's limit.
        max: usize,
    },
}

/// A parsed request body, borrowing the frame.
///
/// ```
/// use gyre_rpc::protocol::{write_routing, Invocation, Serialization};
/// use gyre_rpc::ServiceKey;
///
/// // What a consumer writes: the routing part, then the arguments.
/// let key = ServiceKey::new("demo.Calc").version("2.0").group("eu");
/// let mut body = bytes::BytesMut::new();
/// write_routing(&mut body, &key, "add", &[("trace".into(), "a1b2".into())], Some("s3cret"))?;
/// Serialization::Binary.serialize(&(2u32, 3u32), &mut body)?;
///
/// // What a provider reads.
/// let call = Invocation::parse(&body)?;
/// assert_eq!((call.service, call.version, call.group, call.method), ("demo.Calc", "2.0", "eu", "add"));
/// assert_eq!(call.attachment("trace"), Some("a1b2"));
/// assert_eq!(call.attachment(gyre_rpc::protocol::TOKEN), Some("s3cret"));
/// let args: (u32, u32) = Serialization::Binary.deserialize(call.args)?;
/// assert_eq!(args, (2, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invocation<'a> {
    /// Service name.
    pub service: &'a str,
    /// Service version.
    pub version: &'a str,
    /// Service group.
    pub group: &'a str,
    /// Method name.
    pub method: &'a str,
    /// The four names as the body carries them, each behind its length
    /// byte: one method of one service, byte for byte (see
    /// [`routing_key`]).
    pub(crate) routing: &'a [u8],
    attachments: &'a [u8],
    attachment_count: u16,
    /// The serialized arguments.
    pub args: &'a [u8],
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], InvocationError> {
        if self.buf.len() < n {
            return Err(InvocationError::Truncated(what));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn str8(&mut self, what: &'static str) -> Result<&'a str, InvocationError> {
        let n = self.take(1, what)?[0] as usize;
        std::str::from_utf8(self.take(n, what)?).map_err(|_| InvocationError::NotUtf8(what))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, InvocationError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn str16(&mut self, what: &'static str) -> Result<&'a str, InvocationError> {
        let n = self.u16(what)? as usize;
        std::str::from_utf8(self.take(n, what)?).map_err(|_| InvocationError::NotUtf8(what))
    }
}

impl<'a> Invocation<'a> {
    /// Parses `body`, checking every name and attachment.
    pub fn parse(body: &'a [u8]) -> Result<Invocation<'a>, InvocationError> {
        let mut r = Reader { buf: body };
        let service = r.str8("service name")?;
        let version = r.str8("service version")?;
        let group = r.str8("service group")?;
        let method = r.str8("method name")?;
        let routing = &body[..body.len() - r.buf.len()];
        let attachment_count = r.u16("attachment count")?;
        let start = r.buf;
        for _ in 0..attachment_count {
            r.str16("attachment key")?;
            r.str16("attachment value")?;
        }
        let attachments = &start[..start.len() - r.buf.len()];
        Ok(Invocation {
            service,
            version,
            group,
            method,
            routing,
            attachments,
            attachment_count,
            args: r.buf,
        })
    }

    /// The attachments, in the order they were written.
    pub fn attachments(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let mut r = Reader {
            buf: self.attachments,
        };
        (0..self.attachment_count).map(move |_| {
            // Checked by `parse`.
            let k = r.str16("attachment key").expect("checked");
            let v = r.str16("attachment value").expect("checked");
            (k, v)
        })
    }

    /// The attachment named `key`.
    pub fn attachment(&self, key: &str) -> Option<&'a str> {
        self.attachments().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

fn put_str8(out: &mut BytesMut, s: &str, what: &'static str) -> Result<(), InvocationError> {
    let len = u8::try_from(s.len()).map_err(|_| InvocationError::TooLong {
        what,
        len: s.len(),
        max: 255,
    })?;
    out.put_u8(len);
    out.put_slice(s.as_bytes());
    Ok(())
}

fn put_str16(out: &mut BytesMut, s: &str, what: &'static str) -> Result<(), InvocationError> {
    let len = u16::try_from(s.len()).map_err(|_| InvocationError::TooLong {
        what,
        len: s.len(),
        max: 65535,
    })?;
    out.put_u16(len);
    out.put_slice(s.as_bytes());
    Ok(())
}

/// The four names that route a call, each behind its length byte.
fn put_names(
    out: &mut BytesMut,
    service: &ServiceKey,
    method: &str,
) -> Result<(), InvocationError> {
    put_str8(out, &service.name, "service name")?;
    put_str8(out, &service.version, "service version")?;
    put_str8(out, &service.group, "service group")?;
    put_str8(out, method, "method name")
}

/// The routing bytes of every call to `method` of `service`: what
/// [`Invocation::parse`] finds at the start of such a call's body (the
/// provider's routing table is keyed by them). Names too long for a
/// request fail as [`write_routing`] does.
pub(crate) fn routing_key(service: &ServiceKey, method: &str) -> Result<BytesMut, InvocationError> {
    let mut out = BytesMut::new();
    put_names(&mut out, service, method)?;
    Ok(out)
}

/// Writes the routing part of a request body for `method` of `service`
/// with `attachments` and, for a provider that requires one, its `token`
/// (as the attachment [`TOKEN`]); the arguments follow it.
pub fn write_routing(
    out: &mut BytesMut,
    service: &ServiceKey,
    method: &str,
    attachments: &[(String, String)],
    token: Option<&str>,
) -> Result<(), InvocationError> {
    put_names(out, service, method)?;
    let total = attachments.len() + usize::from(token.is_some());
    let count = u16::try_from(total).map_err(|_| InvocationError::TooLong {
        what: "attachment list",
        len: total,
        max: 65535,
    })?;
    out.put_u16(count);
    for (k, v) in attachments {
        put_str16(out, k, "attachment key")?;
        put_str16(out, v, "attachment value")?;
    }
    if let Some(token) = token {
        put_str16(out, TOKEN, "attachment key")?;
        put_str16(out, token, "token")?;
    }
    Ok(())
}

/// The attachment that carries a provider's token (Dubbo's name for it).
pub const TOKEN: &str = "token";

/// The method every exported service answers with its own argument
/// (Dubbo's `EchoService.$echo`): a check that a provider serves the
/// service, through its whole path but the method
/// ([`Connection::echo`](crate::consumer::Connection::echo)).
pub const ECHO_METHOD: &str = "$echo";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_round_trips_and_every_cut_is_refused() {
        let key = ServiceKey::new("demo.Greeter").version("1.0").group("blue");
        let mut out = BytesMut::new();
        let attachments = vec![("trace".to_string(), "abc".to_string())];
        write_routing(&mut out, &key, "greet", &attachments, None).unwrap();
        let routing_len = out.len();
        out.put_slice(b"ARGS");
        let inv = Invocation::parse(&out).unwrap();
        assert_eq!(
            (inv.service, inv.version, inv.group, inv.method, inv.args),
            ("demo.Greeter", "1.0", "blue", "greet", &b"ARGS"[..])
        );
        assert_eq!(inv.attachment("trace"), Some("abc"));
        assert_eq!(inv.attachment("other"), None);
        assert_eq!(inv.routing, &routing_key(&key, "greet").unwrap()[..]);
        for cut in 0..routing_len {
            assert!(Invocation::parse(&out[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(key.to_string(), "blue/demo.Greeter:1.0");
    }

    #[test]
    fn refuses_names_too_long_and_not_utf8() {
        let mut out = BytesMut::new();
        let long = ServiceKey::new("x".repeat(256));
        assert!(matches!(
            write_routing(&mut out, &long, "m", &[], None),
            Err(InvocationError::TooLong { max: 255, .. })
        ));
        let body = [1, 0xff, 0, 0, 0, 0, 0];
        assert_eq!(
            Invocation::parse(&body),
            Err(InvocationError::NotUtf8("service name"))
        );
    }
}
