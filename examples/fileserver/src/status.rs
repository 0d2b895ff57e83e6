//! The response statuses the server sends.

/// An HTTP status the server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// 200: the whole file.
    Ok,
    /// 206: the requested byte range.
    PartialContent,
    /// 304: the client's copy is current (`If-None-Match`,
    /// `If-Modified-Since`); no body.
    NotModified,
    /// 400: a malformed request; the connection closes.
    BadRequest,
    /// 403: a path outside the root, or a file we may not read.
    Forbidden,
    /// 404: no such file.
    NotFound,
    /// 405: a method other than GET or HEAD.
    MethodNotAllowed,
    /// 408: the request head did not arrive whole within its deadline; the
    /// connection closes.
    RequestTimeout,
    /// 412: an `If-Match` or `If-Unmodified-Since` did not hold.
    PreconditionFailed,
    /// 416: a range that starts past the end of the file.
    RangeNotSatisfiable,
    /// 431: a request head longer than the limit; the connection closes.
    HeadTooLarge,
    /// 500: the file could not be read.
    InternalError,
    /// 501: a request body in a transfer coding; the connection closes.
    NotImplemented,
    /// 503: the server is out of descriptors or memory for now; sent with
    /// `Retry-After`.
    ServiceUnavailable,
    /// 505: an HTTP version other than 1.0 and 1.1.
    VersionNotSupported,
}

impl Status {
    /// The status line's code and reason.
    pub fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::PartialContent => "206 Partial Content",
            Status::NotModified => "304 Not Modified",
            Status::BadRequest => "400 Bad Request",
            Status::Forbidden => "403 Forbidden",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::RequestTimeout => "408 Request Timeout",
            Status::PreconditionFailed => "412 Precondition Failed",
            Status::RangeNotSatisfiable => "416 Range Not Satisfiable",
            Status::HeadTooLarge => "431 Request Header Fields Too Large",
            Status::InternalError => "500 Internal Server Error",
            Status::NotImplemented => "501 Not Implemented",
            Status::ServiceUnavailable => "503 Service Unavailable",
            Status::VersionNotSupported => "505 HTTP Version Not Supported",
        }
    }

    /// Whether the request stream can no longer be trusted, so the
    /// connection must close after this answer.
    pub fn closes(self) -> bool {
        matches!(
            self,
            Status::BadRequest
                | Status::RequestTimeout
                | Status::HeadTooLarge
                | Status::NotImplemented
                | Status::VersionNotSupported
        )
    }
}
