//! Turning a call into its response frame, the same way on an event loop
//! and on a pool worker.

use super::method::{Failure, Method, MethodEntry};
use crate::filter::{run_after, run_before, CallInfo, Filter, Side};
use crate::protocol::{encode_frame, Header, Kind, Serialization, Status};
use bytes::{BufMut, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// A response frame with `status` and `message` as its body.
pub(crate) fn failure_frame(
    scratch: &mut BytesMut,
    request_id: u64,
    serialization: Serialization,
    status: Status,
    message: &str,
) -> Bytes {
    // Messages are short; cut one that is not rather than fail to answer.
    let mut end = message.len().min(64 << 10);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let message = &message[..end];
    encode_frame::<()>(
        scratch,
        Kind::Response(status),
        serialization,
        request_id,
        usize::MAX,
        |out| {
            out.put_slice(message.as_bytes());
            Ok(())
        },
    )
    .expect("writing a message cannot fail")
    .expect("no limit")
}

/// Runs `method` on `args` and returns the response frame: the result with
/// [`Status::Ok`], or the failure's status and message; a result over
/// `max_body` is answered with [`Status::ServerError`].
pub(crate) fn call(
    scratch: &mut BytesMut,
    request_id: u64,
    serialization: Serialization,
    max_body: usize,
    method: &Method,
    args: &[u8],
) -> Bytes {
    response(scratch, request_id, serialization, max_body, |out| {
        method(serialization, args, out)
    })
}

/// The response frame whose body `write` appends: `Ok` with it, or the
/// failure it returns; a body over `max_body` is answered with
/// [`Status::ServerError`].
pub(crate) fn response(
    scratch: &mut BytesMut,
    request_id: u64,
    serialization: Serialization,
    max_body: usize,
    write: impl FnOnce(&mut BytesMut) -> Result<(), Failure>,
) -> Bytes {
    let ok = encode_frame(
        scratch,
        Kind::Response(Status::Ok),
        serialization,
        request_id,
        max_body,
        write,
    );
    match ok {
        Ok(Ok(frame)) => frame,
        Ok(Err(too_large)) => failure_frame(
            scratch,
            request_id,
            serialization,
            Status::ServerError,
            &format!("result too large: {too_large}"),
        ),
        Err(Failure { status, message }) => {
            failure_frame(scratch, request_id, serialization, status, &message)
        }
    }
}

/// [`call`] inside the provider's filters: a refusal answers at once; the
/// `after` side may replace the outcome (a timeout, say).
#[allow(clippy::too_many_arguments)]
pub(crate) fn filtered_call(
    scratch: &mut BytesMut,
    request_id: u64,
    serialization: Serialization,
    max_body: usize,
    entry: &MethodEntry,
    method: &Method,
    args: &[u8],
    filters: &[Arc<dyn Filter>],
    peer: Option<SocketAddr>,
) -> Bytes {
    if filters.is_empty() {
        return call(scratch, request_id, serialization, max_body, method, args);
    }
    if let Err(r) = run_before(filters, &info(entry, peer)) {
        return failure_frame(scratch, request_id, serialization, r.status, &r.message);
    }
    let started = Instant::now();
    let frame = call(scratch, request_id, serialization, max_body, method, args);
    finish_filtered(
        scratch,
        frame,
        request_id,
        serialization,
        entry,
        filters,
        peer,
        started,
    )
}

/// How the filters see a call of `entry`.
pub(crate) fn info(entry: &MethodEntry, peer: Option<SocketAddr>) -> CallInfo<'_> {
    CallInfo {
        side: Side::Provider,
        service: &entry.service,
        method: &entry.name,
        peer,
    }
}

/// The filters' after-phase on a call's response `frame`, which they may
/// replace (a call that ran too long, say).
#[allow(clippy::too_many_arguments)]
pub(crate) fn finish_filtered(
    scratch: &mut BytesMut,
    frame: Bytes,
    request_id: u64,
    serialization: Serialization,
    entry: &MethodEntry,
    filters: &[Arc<dyn Filter>],
    peer: Option<SocketAddr>,
    started: Instant,
) -> Bytes {
    if filters.is_empty() {
        return frame;
    }
    let status = match Header::decode(&frame).map(|h| h.kind) {
        Ok(Kind::Response(status)) => status,
        _ => Status::ServerError,
    };
    match run_after(filters, &info(entry, peer), status, started.elapsed()) {
        Some(r) => failure_frame(scratch, request_id, serialization, r.status, &r.message),
        None => frame,
    }
}
