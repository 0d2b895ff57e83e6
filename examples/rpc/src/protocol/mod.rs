//! The gyre-rpc wire format.
//!
//! Every message is a frame: a 16-byte [`header`] (magic `0xdabb`, flags,
//! status, request id, body length) and a body. A request's body is an
//! [`invocation`] (service, version, group, method, attachments) followed by
//! the arguments; a response's body is the result when the status is
//! [`Status::Ok`] and a UTF-8 message otherwise; heartbeats have empty
//! bodies. Arguments and results are serialized with serde in the frame's
//! [`Serialization`]: postcard's compact binary (id 1, the default) or JSON
//! (id 2).

pub mod frame;
pub mod header;
pub mod invocation;
pub mod serialization;

pub use frame::{
    encode_frame, frame_decoder, heartbeat_frame, read_only_frame, BodyTooLarge, Frame,
    DEFAULT_MAX_BODY, FRAME_BLOCK,
};
pub use header::{Header, HeaderError, Kind, Status, HEADER_LEN, MAGIC};
pub use invocation::{write_routing, Invocation, InvocationError, ServiceKey, ECHO_METHOD, TOKEN};
pub use serialization::{Serialization, SerializationError};
