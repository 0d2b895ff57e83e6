//! The per-connection HTTP handler: parses pipelined request heads, answers
//! each with a head in memory and the file body as a `FileRegion`, in
//! order; a request whose file an opener thread opens holds the ones
//! behind it until its answer comes back.

use crate::conditional::{self, Validators, Verdict};
use crate::date::{current_year, imf_fixdate, write_imf_fixdate};
use crate::encoding::{self, Encoding};
use crate::limits::ConnectionSlot;
use crate::open::{OpenAnswer, OpenNow, Opened, ServedFiles};
use crate::range::{self, ByteRange, Ranges};
use crate::request::{self, Method, RequestHead, MAX_HEAD};
use crate::status::Status;
use bytes::{Buf, Bytes, BytesMut};
use gyre_reactor::{InboundContext, InboundHandler, Outbound, TimerId, UserEvent};
use gyre_zerocopy::{FileRegion, SharedFile};
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The tag of the head-deadline timer.
const HEAD_TIMER: u64 = 1;

/// Serves files under one root to one connection.
///
/// Requests are answered in order. While the channel is over its high
/// watermark (a big file still going out) the handler stops reading and
/// leaves later pipelined requests unparsed, so a client cannot make it
/// open files faster than it downloads them.
///
/// A request head must be complete within its server's head deadline from
/// its first byte (see [`ConnectionLimits`](crate::ConnectionLimits)), or
/// the connection gets 408 and closes; a connection over the server's cap
/// gets 503 and closes at once.
pub struct HttpHandler {
    files: Arc<ServedFiles>,
    slot: ConnectionSlot,
    /// A request whose file an opener thread is opening: answered when
    /// the opener's answer comes back, before any request behind it.
    pending: Option<Pending>,
    /// When the first byte of the head still incomplete arrived.
    head_started: Option<Instant>,
    head_timer: Option<TimerId>,
    input: BytesMut,
    /// Request body bytes still to discard.
    skip: u64,
    closing: bool,
    heads: BytesMut,
    date: (u64, String),
}

/// A request waiting for its file: its head, parsed again when the file
/// comes (it parsed once, so it parses the same).
struct Pending {
    head: Bytes,
}

impl HttpHandler {
    /// A handler serving `files`, in the connection `slot` its server's
    /// limits gave it.
    pub fn new(files: Arc<ServedFiles>, slot: ConnectionSlot) -> Self {
        HttpHandler {
            files,
            slot,
            pending: None,
            head_started: None,
            head_timer: None,
            input: BytesMut::new(),
            skip: 0,
            closing: false,
            heads: BytesMut::new(),
            date: (u64::MAX, String::new()),
        }
    }

    /// Answers every complete request in the input, while the channel is
    /// writable.
    fn serve(&mut self, ctx: &mut impl InboundContext<Self>) {
        let mut wrote = false;
        while !self.closing && self.pending.is_none() && ctx.channel().is_writable() {
            if self.skip > 0 {
                let n = self.skip.min(self.input.len() as u64);
                self.input.advance(n as usize);
                self.skip -= n;
                if self.skip > 0 {
                    break;
                }
                continue;
            }
            let Some(end) = request::head_end(&self.input).filter(|&e| e <= MAX_HEAD) else {
                if self.input.len() > MAX_HEAD {
                    self.error(ctx, Status::HeadTooLarge, true);
                    wrote = true;
                } else if !self.input.is_empty() {
                    self.start_head_clock(ctx);
                }
                break;
            };
            self.head_started = None;
            let head = self.input.split_to(end).freeze();
            match request::parse(&head) {
                Ok(req) => {
                    self.skip = req.body_len;
                    self.respond(ctx, &req, &head);
                }
                Err(status) => self.error(ctx, status, true),
            }
            wrote = true;
        }
        if wrote {
            ctx.flush();
        }
        // A pending answer goes out first; its arrival closes.
        if self.closing && self.pending.is_none() {
            self.input = BytesMut::new();
            ctx.close();
        }
    }

    /// A head has begun but is not complete: its deadline runs from now
    /// (if it was not already running).
    fn start_head_clock(&mut self, ctx: &mut impl InboundContext<Self>) {
        if self.head_started.is_none() {
            self.head_started = Some(ctx.now());
        }
        if self.head_timer.is_none() {
            let check = self.next_check(Duration::ZERO);
            self.head_timer = Some(ctx.schedule(check, HEAD_TIMER));
        }
    }

    /// When to look at a pending head again, `waited` into it: at its
    /// deadline, but at least every tight deadline, since the deadline
    /// tightens as the server fills.
    fn next_check(&self, waited: Duration) -> Duration {
        let limits = self.slot.limits();
        (limits.head_timeout().saturating_sub(waited)).min(limits.head_timeout_under_load())
    }

    /// The head timer fired: 408 if the head is overdue by the deadline
    /// that applies now, another look later if it is still coming.
    fn check_head(&mut self, ctx: &mut impl InboundContext<Self>) {
        self.head_timer = None;
        let Some(started) = self.head_started else {
            return;
        };
        if self.closing {
            return;
        }
        let deadline = self.slot.limits().head_timeout();
        let waited = ctx.now().saturating_duration_since(started);
        if waited >= deadline {
            self.head_started = None;
            self.input = BytesMut::new();
            self.error(ctx, Status::RequestTimeout, true);
            ctx.flush();
            ctx.close();
        } else {
            self.head_timer = Some(ctx.schedule(self.next_check(waited), HEAD_TIMER));
        }
    }

    fn respond(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        req: &RequestHead<'_>,
        head: &Bytes,
    ) {
        self.closing |= !req.keep_alive;
        if req.method == Method::Other {
            return self.error(ctx, Status::MethodNotAllowed, false);
        }
        let accepted = encoding::accepted(head, self.files.precompressed());
        match self.files.open_now(req.path, accepted) {
            OpenNow::Done(Ok(opened)) => self.answer(ctx, req, head, opened),
            OpenNow::Done(Err(status)) => self.error(ctx, status, false),
            OpenNow::Later(rel, accepted) => match self.files.ask(rel, accepted, ctx.handle()) {
                Ok(()) => {
                    // The requests behind this one wait, unread, for its
                    // answer (`opened`).
                    self.pending = Some(Pending { head: head.clone() });
                    ctx.set_auto_read(false);
                }
                Err(status) => self.error(ctx, status, false),
            },
        }
    }

    /// An opener thread's answer for the pending request: its response,
    /// then the requests behind it.
    fn opened(&mut self, ctx: &mut impl InboundContext<Self>, answer: Result<Opened, Status>) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        match (answer, request::parse(&pending.head)) {
            (Ok(opened), Ok(req)) => self.answer(ctx, &req, &pending.head, opened),
            (Err(status), _) | (_, Err(status)) => self.error(ctx, status, false),
        }
        ctx.flush();
        ctx.set_auto_read(ctx.channel().is_writable());
        self.serve(ctx);
    }

    /// The response to a request (whose head is `head`) whose file is
    /// open: 304 or 412 where its preconditions say so, else the file or
    /// the range asked for.
    fn answer(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        req: &RequestHead<'_>,
        head: &[u8],
        opened: Opened,
    ) {
        let Opened {
            file,
            len,
            modified,
            name,
            encoding,
        } = opened;
        let (method, keep_alive) = (req.method, req.keep_alive);
        let validators = Validators {
            modified,
            len,
            encoding,
        };
        let verdict = match req.conditional {
            true => conditional::evaluate(
                head,
                method,
                req.range.is_some(),
                &validators,
                current_year(),
            ),
            false => Verdict::Proceed { use_range: true },
        };
        let range = match verdict {
            Verdict::Proceed { use_range } => req.range.filter(|_| use_range),
            Verdict::PreconditionFailed => {
                return self.error(ctx, Status::PreconditionFailed, false);
            }
            Verdict::NotModified => {
                // No body, and no Content-Length: the headers a 200 would
                // have sent that a cache updates from.
                self.begin_head(Status::NotModified, keep_alive);
                self.file_headers(&validators);
                self.heads.extend_from_slice(b"\r\n");
                ctx.write(Outbound::Bytes(self.heads.split().freeze()));
                return;
            }
        };
        let (status, start, count) = match range::parse(range, len) {
            ByteRange::Whole => (Status::Ok, 0, len),
            ByteRange::Part { start, end } => (Status::PartialContent, start, end - start + 1),
            ByteRange::Parts(ranges) => {
                let get = method == Method::Get;
                let kind = content_type(&name);
                return self.answer_ranges(ctx, (get, keep_alive), file, kind, &validators, ranges);
            }
            ByteRange::Unsatisfiable => {
                let extra = format!("Content-Range: bytes */{len}\r\n");
                return self.error_with(ctx, Status::RangeNotSatisfiable, &extra, false);
            }
        };
        // Made before the head is written: if the file shrank since we
        // measured it, the client gets a clean 500, not a short body.
        let body = if method == Method::Get && count > 0 {
            match FileRegion::new(file, start, count) {
                Ok(region) => Some(region),
                Err(_) => return self.error(ctx, Status::InternalError, false),
            }
        } else {
            None
        };
        self.begin_head(status, keep_alive);
        let _ = write!(
            self.heads,
            "Content-Type: {}\r\nContent-Length: {count}\r\nAccept-Ranges: bytes\r\n",
            content_type(&name)
        );
        self.file_headers(&validators);
        if status == Status::PartialContent {
            let _ = write!(
                self.heads,
                "Content-Range: bytes {start}-{}/{len}\r\n",
                start + count - 1
            );
        }
        self.heads.extend_from_slice(b"\r\n");
        ctx.write(Outbound::Bytes(self.heads.split().freeze()));
        if let Some(region) = body {
            ctx.write(Outbound::File(region));
        }
    }

    /// 206 of several ranges, `multipart/byteranges` (RFC 9110 §14.6):
    /// each range of `file` (`kind` its content type) behind a part head
    /// of its own, in the order asked, every body still a file region.
    /// `get` false (HEAD): the head alone, with the body's length.
    fn answer_ranges(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        (get, keep_alive): (bool, bool),
        file: SharedFile,
        kind: &str,
        validators: &Validators,
        ranges: Ranges,
    ) {
        let len = validators.len;
        let boundary = boundary();
        // The parts' heads, each after the line end closing the part
        // before it, and the regions: all made before the head is written
        // (a file that shrank meanwhile gets a clean 500).
        let mut parts = Vec::with_capacity(ranges.as_slice().len());
        let mut total = 0;
        for (i, &(start, end)) in ranges.as_slice().iter().enumerate() {
            let before = if i == 0 { "" } else { "\r\n" };
            let _ = write!(
                self.heads,
                "{before}--{boundary}\r\nContent-Type: {kind}\r\nContent-Range: bytes {start}-{end}/{len}\r\n\r\n"
            );
            let part_head = self.heads.split().freeze();
            total += part_head.len() as u64 + (end - start + 1);
            let region = match get.then(|| FileRegion::new(file.clone(), start, end - start + 1)) {
                Some(Ok(region)) => Some(region),
                Some(Err(_)) => return self.error(ctx, Status::InternalError, false),
                None => None,
            };
            parts.push((part_head, region));
        }
        let _ = write!(self.heads, "\r\n--{boundary}--\r\n");
        let closing = self.heads.split().freeze();
        total += closing.len() as u64;
        self.begin_head(Status::PartialContent, keep_alive);
        let _ = write!(
            self.heads,
            "Content-Type: multipart/byteranges; boundary={boundary}\r\nContent-Length: {total}\r\nAccept-Ranges: bytes\r\n"
        );
        self.file_headers(validators);
        self.heads.extend_from_slice(b"\r\n");
        ctx.write(Outbound::Bytes(self.heads.split().freeze()));
        if !get {
            return;
        }
        for (part_head, region) in parts {
            ctx.write(Outbound::Bytes(part_head));
            if let Some(region) = region {
                ctx.write(Outbound::File(region));
            }
        }
        ctx.write(Outbound::Bytes(closing));
    }

    /// What every answer about a file says of it: its validators, its
    /// coding and `Vary` where siblings may be sent, and how long it may
    /// be kept.
    fn file_headers(&mut self, validators: &Validators) {
        write_validators(&mut self.heads, validators);
        // Where siblings may be sent, every answer varies by the request's
        // Accept-Encoding, this file's too (it may gain a sibling).
        let vary = !self.files.precompressed().is_empty();
        write_coding(&mut self.heads, validators.encoding, vary);
        if let Some(expires) = self.files.expires() {
            expires.write_headers(&mut self.heads, self.date.0, validators.modified);
        }
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, status: Status, close: bool) {
        let extra = match status {
            Status::MethodNotAllowed => "Allow: GET, HEAD\r\n",
            // Descriptors or memory come back as other requests finish.
            Status::ServiceUnavailable => "Retry-After: 1\r\n",
            _ => "",
        };
        self.error_with(ctx, status, extra, close);
    }

    /// A short text answer; `close` (or a status that leaves the request
    /// stream unreadable) ends the connection after it.
    fn error_with(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        status: Status,
        extra: &str,
        close: bool,
    ) {
        self.closing |= close || status.closes();
        let keep_alive = !self.closing;
        self.begin_head(status, keep_alive);
        let body = status.line();
        let _ = write!(
            self.heads,
            "{extra}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}\n",
            body.len() + 1
        );
        ctx.write(Outbound::Bytes(self.heads.split().freeze()));
    }

    /// Starts a response head in the reused buffer: status line, date,
    /// server and connection headers.
    fn begin_head(&mut self, status: Status, keep_alive: bool) {
        let now = SystemTime::now();
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if secs != self.date.0 {
            self.date = (secs, imf_fixdate(now));
        }
        self.heads.reserve(512);
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let _ = write!(
            self.heads,
            "HTTP/1.1 {}\r\nDate: {}\r\nServer: gyre-fileserver\r\nConnection: {connection}\r\n",
            status.line(),
            self.date.1
        );
    }
}

/// A multipart boundary: `gyre` and 20 hex digits, different for each answer of the
/// thread (a counter from the clock, scrambled), so no file's bytes are
/// likely to hold it (RFC 2046 asks no more of a boundary).
fn boundary() -> String {
    thread_local! {
        static NEXT: std::cell::Cell<u64> = std::cell::Cell::new(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        );
    }
    let n = NEXT.with(|c| {
        let n = c.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        c.set(n);
        n
    });
    // splitmix64's finaliser.
    let mut z = n;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    format!("gyre{z:016x}{:04x}", (n >> 48) as u16)
}

/// `ETag` and `Last-Modified`, written into the head without allocating.
fn write_validators(heads: &mut BytesMut, v: &Validators) {
    let _ = write!(heads, "ETag: {}\r\nLast-Modified: ", v.etag());
    let _ = write_imf_fixdate(heads, v.modified);
    heads.extend_from_slice(b"\r\n");
}

/// `Content-Encoding` for a precompressed sibling, and `Vary` where the
/// server sends siblings.
fn write_coding(heads: &mut BytesMut, encoding: Option<Encoding>, vary: bool) {
    if let Some(encoding) = encoding {
        let _ = write!(heads, "Content-Encoding: {}\r\n", encoding.token());
    }
    if vary {
        heads.extend_from_slice(b"Vary: Accept-Encoding\r\n");
    }
}

/// The `Content-Type` of a file, by its extension (the common types of
/// nginx's `mime.types`); `application/octet-stream` for the rest.
fn content_type(path: &Path) -> &'static str {
    const TYPES: [(&str, &str); 40] = [
        ("html", "text/html; charset=utf-8"),
        ("htm", "text/html; charset=utf-8"),
        ("txt", "text/plain; charset=utf-8"),
        ("md", "text/plain; charset=utf-8"),
        ("css", "text/css"),
        ("csv", "text/csv; charset=utf-8"),
        ("xml", "text/xml"),
        ("js", "text/javascript"),
        ("mjs", "text/javascript"),
        ("json", "application/json"),
        ("map", "application/json"),
        ("wasm", "application/wasm"),
        ("pdf", "application/pdf"),
        ("zip", "application/zip"),
        ("gz", "application/gzip"),
        ("tgz", "application/gzip"),
        ("tar", "application/x-tar"),
        ("zst", "application/zstd"),
        ("7z", "application/x-7z-compressed"),
        ("iso", "application/x-iso9660-image"),
        ("svg", "image/svg+xml"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
        ("avif", "image/avif"),
        ("ico", "image/x-icon"),
        ("woff", "font/woff"),
        ("woff2", "font/woff2"),
        ("ttf", "font/ttf"),
        ("otf", "font/otf"),
        ("mp3", "audio/mpeg"),
        ("ogg", "audio/ogg"),
        ("wav", "audio/wav"),
        ("flac", "audio/flac"),
        ("mp4", "video/mp4"),
        ("webm", "video/webm"),
        ("mkv", "video/x-matroska"),
        ("m3u8", "application/vnd.apple.mpegurl"),
    ];
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    // Compared without case folding into a new string: no allocation per
    // request.
    TYPES
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or("application/octet-stream", |&(_, t)| t)
}

impl InboundHandler for HttpHandler {
    type Read = BytesMut;
    type Pass = ();
    type Write = Outbound;

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, chunk: BytesMut) {
        if self.closing {
            return;
        }
        if self.input.is_empty() {
            self.input = chunk;
        } else {
            self.input.unsplit(chunk);
        }
        self.serve(ctx);
    }

    fn writability_changed(&mut self, ctx: &mut impl InboundContext<Self>, writable: bool) {
        ctx.set_auto_read(writable && self.pending.is_none());
        if writable {
            self.serve(ctx);
        }
    }

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        if !self.slot.admitted() {
            // Refused clearly, before any request, so no descriptor or
            // buffer is spent on it beyond this answer.
            self.error(ctx, Status::ServiceUnavailable, true);
            ctx.flush();
            ctx.close();
        }
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, tag: u64) {
        if tag == HEAD_TIMER {
            self.check_head(ctx);
        }
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: UserEvent) {
        match event {
            // Neither input nor output progress for the idle time: a
            // keep-alive connection left open, or a reader that stopped.
            UserEvent::Idle(_) => ctx.close(),
            UserEvent::Custom(any) => match any.downcast::<OpenAnswer>() {
                Ok(answer) => self.opened(ctx, answer.0),
                Err(other) => ctx.fire_user_event(UserEvent::Custom(other)),
            },
            other => ctx.fire_user_event(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::content_type;
    use std::path::Path;

    #[test]
    fn types_by_extension_in_any_case_and_octets_for_the_rest() {
        let t = |name: &str| content_type(Path::new(name));
        assert_eq!(t("/a/index.HTML"), "text/html; charset=utf-8");
        assert_eq!(t("font.woff2"), "font/woff2");
        assert_eq!(t("clip.mp4"), "video/mp4");
        assert_eq!(t("favicon.ico"), "image/x-icon");
        assert_eq!(t("archive.tar.gz"), "application/gzip");
        assert_eq!(t("noext"), "application/octet-stream");
        assert_eq!(t("weird.xyz"), "application/octet-stream");
    }
}
