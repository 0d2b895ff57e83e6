//! The 16-byte frame header: magic, flags, status, request id, body length.
//!
//! ```text
//!  0      2       3        4                  12            16
//!  +------+-------+--------+------------------+-------------+
//!  | dabb | flags | status |  request id (u64) | body length |
//!  +------+-------+--------+------------------+-------------+
//!  flags: bit 7 request, bit 6 two-way, bit 5 event, bits 0-4 serialization
//! ```
//!
//! An event is a heartbeat (a two-way ping, and its pong) or, one-way, a
//! provider's read-only notice: it is shutting down, so send it nothing
//! new (Dubbo's READONLY event).
//!
//! All integers are big-endian, as in Dubbo's header; the status byte uses
//! Dubbo's codes, so a Dubbo user reads our captures with the same eyes.

use super::serialization::Serialization;

/// The first two bytes of every frame.
pub const MAGIC: u16 = 0xdabb;
/// Bytes of the header.
pub const HEADER_LEN: usize = 16;

const FLAG_REQUEST: u8 = 0x80;
const FLAG_TWO_WAY: u8 = 0x40;
const FLAG_EVENT: u8 = 0x20;
const SERIALIZATION_MASK: u8 = 0x1f;

/// How a call ended, on a response (Dubbo's codes).
///
/// ```
/// use gyre_rpc::consumer::RpcError;
/// use gyre_rpc::Status;
///
/// // What a caller files a failure under, as Dubbo's status codes do.
/// let e = RpcError::Failed { status: Status::ServerOverloaded, message: "pool full".into() };
/// assert_eq!(e.status(), Status::ServerOverloaded);
/// assert!(e.is_retryable()); // another provider may have room
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// The call succeeded; the body is the result.
    Ok = 20,
    /// The consumer gave up waiting (never sent on the wire by providers;
    /// what a consumer reports for a call that timed out).
    ClientTimeout = 30,
    /// The provider gave up on the call.
    ServerTimeout = 31,
    /// The request could not be decoded.
    BadRequest = 40,
    /// The provider refused the caller: a provider that requires a token
    /// (`ProviderBuilder::token`) got a call without the one it publishes.
    /// (Not one of Dubbo's codes: Dubbo reports this as a failed call
    /// carrying an exception.)
    Forbidden = 45,
    /// The response could not be decoded.
    BadResponse = 50,
    /// No such service (name, version, group) or method.
    ServiceNotFound = 60,
    /// The service's method returned an error; the body is its message.
    ServiceError = 70,
    /// The provider failed for a reason of its own.
    ServerError = 80,
    /// The consumer failed before or after the wire.
    ClientError = 90,
    /// The provider is overloaded (its worker queue is full).
    ServerOverloaded = 100,
}

impl Status {
    /// Every status, for tests and tables.
    pub const ALL: [Status; 11] = [
        Status::Ok,
        Status::ClientTimeout,
        Status::ServerTimeout,
        Status::BadRequest,
        Status::Forbidden,
        Status::BadResponse,
        Status::ServiceNotFound,
        Status::ServiceError,
        Status::ServerError,
        Status::ClientError,
        Status::ServerOverloaded,
    ];

    /// The status with wire code `code`.
    pub fn from_code(code: u8) -> Option<Status> {
        Status::ALL.into_iter().find(|s| *s as u8 == code)
    }
}

/// What kind of frame this is.
///
/// ```
/// use gyre_rpc::protocol::{Kind, Status};
///
/// /// What a connection does with each kind of frame.
/// fn route(kind: Kind) -> &'static str {
///     match kind {
///         Kind::Request { two_way: true } => "run it and answer",
///         Kind::Request { two_way: false } => "run it, answer nothing",
///         Kind::Response(Status::Ok) => "complete the call",
///         Kind::Response(_) => "fail the call with the body's message",
///         Kind::Heartbeat { request: true } => "answer the ping",
///         Kind::Heartbeat { request: false } => "note the peer is alive",
///         Kind::ReadOnly => "choose another provider for new calls",
///     }
/// }
/// assert_eq!(route(Kind::Response(Status::ServerTimeout)), "fail the call with the body's message");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A call; `two_way` when the caller waits for an answer.
    Request {
        /// An answer is expected.
        two_way: bool,
    },
    /// The answer to the request with the same id.
    Response(Status),
    /// A heartbeat; `request` is true for the ping, false for its answer.
    Heartbeat {
        /// The ping (true) or the pong (false).
        request: bool,
    },
    /// From a provider that is shutting down (Dubbo's READONLY event):
    /// it answers the calls it has, and a consumer sends it no new ones
    /// where it has another provider. Unanswered. A consumer that does
    /// not know it reads a ping and answers a pong, which the provider
    /// ignores.
    ReadOnly,
}

/// A decoded header.
///
/// ```
/// use gyre_rpc::protocol::{Header, Kind, Serialization, Status, HEADER_LEN};
///
/// let header = Header {
///     kind: Kind::Response(Status::Ok),
///     serialization: Serialization::Json,
///     request_id: 42,
///     body_len: 5,
/// };
/// let mut wire = [0u8; HEADER_LEN];
/// header.encode(&mut wire);
/// assert_eq!(&wire[..2], &[0xda, 0xbb]); // the magic
/// assert_eq!(Header::decode(&wire)?, header);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Request, response or heartbeat.
    pub kind: Kind,
    /// How the body is serialized.
    pub serialization: Serialization,
    /// Matches a response to its request.
    pub request_id: u64,
    /// Bytes after the header.
    pub body_len: u32,
}

/// Why 16 bytes are not a header.
///
/// ```
/// use gyre_rpc::protocol::{Header, HeaderError};
///
/// assert_eq!(Header::decode(b"\xda\xbb\x01"), Err(HeaderError::Short(3)));
/// // An HTTP client on the RPC port.
/// assert_eq!(Header::decode(b"GET / HTTP/1.1\r\n"), Err(HeaderError::BadMagic(0x4745)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Fewer than 16 bytes.
    #[error("short header: {0} bytes")]
    Short(usize),
    /// The magic is not `0xdabb`.
    #[error("bad magic {0:#06x} (not a gyre-rpc frame)")]
    BadMagic(u16),
    /// A serialization id nobody defined.
    #[error("unknown serialization id {0}")]
    UnknownSerialization(u8),
    /// A status code nobody defined.
    #[error("unknown status code {0}")]
    UnknownStatus(u8),
}

impl Header {
    /// Writes the header into `out`.
    pub fn encode(&self, out: &mut [u8; HEADER_LEN]) {
        let (flags, status) = match self.kind {
            Kind::Request { two_way } => (FLAG_REQUEST | if two_way { FLAG_TWO_WAY } else { 0 }, 0),
            Kind::Response(status) => (0, status as u8),
            Kind::Heartbeat { request: true } => (FLAG_REQUEST | FLAG_TWO_WAY | FLAG_EVENT, 0),
            Kind::Heartbeat { request: false } => (FLAG_EVENT, Status::Ok as u8),
            Kind::ReadOnly => (FLAG_REQUEST | FLAG_EVENT, 0),
        };
        out[..2].copy_from_slice(&MAGIC.to_be_bytes());
        out[2] = flags | self.serialization.id();
        out[3] = status;
        out[4..12].copy_from_slice(&self.request_id.to_be_bytes());
        out[12..16].copy_from_slice(&self.body_len.to_be_bytes());
    }

    /// Reads the header at the start of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Header, HeaderError> {
        if buf.len() < HEADER_LEN {
            return Err(HeaderError::Short(buf.len()));
        }
        let magic = u16::from_be_bytes([buf[0], buf[1]]);
        if magic != MAGIC {
            return Err(HeaderError::BadMagic(magic));
        }
        let flags = buf[2];
        let id = flags & SERIALIZATION_MASK;
        let serialization =
            Serialization::from_id(id).ok_or(HeaderError::UnknownSerialization(id))?;
        let two_way = flags & FLAG_TWO_WAY != 0;
        let kind = match (flags & FLAG_REQUEST != 0, flags & FLAG_EVENT != 0) {
            (true, true) if !two_way => Kind::ReadOnly,
            (request, true) => Kind::Heartbeat { request },
            (true, false) => Kind::Request { two_way },
            (false, false) => {
                Kind::Response(Status::from_code(buf[3]).ok_or(HeaderError::UnknownStatus(buf[3]))?)
            }
        };
        Ok(Header {
            kind,
            serialization,
            request_id: u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes")),
            body_len: u32::from_be_bytes(buf[12..16].try_into().expect("4 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_status_round_trips() {
        let mut kinds = vec![
            Kind::Request { two_way: true },
            Kind::Request { two_way: false },
            Kind::Heartbeat { request: true },
            Kind::Heartbeat { request: false },
            Kind::ReadOnly,
        ];
        kinds.extend(Status::ALL.map(Kind::Response));
        for kind in kinds {
            for serialization in [Serialization::Binary, Serialization::Json] {
                let h = Header {
                    kind,
                    serialization,
                    request_id: 0x0102_0304_0506_0708,
                    body_len: 77,
                };
                let mut buf = [0; HEADER_LEN];
                h.encode(&mut buf);
                assert_eq!(&buf[..2], &[0xda, 0xbb]);
                assert_eq!(Header::decode(&buf), Ok(h));
            }
        }
    }

    #[test]
    fn the_layout_is_dubbos() {
        let h = Header {
            kind: Kind::Request { two_way: true },
            serialization: Serialization::Json,
            request_id: 5,
            body_len: 0x0a0b,
        };
        let mut buf = [0; HEADER_LEN];
        h.encode(&mut buf);
        assert_eq!(
            buf,
            [
                0xda,
                0xbb,
                0xc0 | 2,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                5,
                0,
                0,
                0x0a,
                0x0b
            ]
        );
    }

    #[test]
    fn refuses_what_is_not_a_header() {
        let mut buf = [0; HEADER_LEN];
        assert_eq!(Header::decode(&buf[..3]), Err(HeaderError::Short(3)));
        assert_eq!(Header::decode(&buf), Err(HeaderError::BadMagic(0)));
        buf[..2].copy_from_slice(&MAGIC.to_be_bytes());
        buf[2] = 0x1f;
        assert_eq!(
            Header::decode(&buf),
            Err(HeaderError::UnknownSerialization(31))
        );
        buf[2] = 1;
        buf[3] = 21;
        assert_eq!(Header::decode(&buf), Err(HeaderError::UnknownStatus(21)));
    }
}
