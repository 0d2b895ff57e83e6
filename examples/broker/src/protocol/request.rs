//! Decoding one request frame (the bytes after the size prefix): header,
//! then body, for the APIs and versions the broker speaks.

use super::header::{self, HeaderError, RequestHead};
use super::{shape, versions};
use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};

/// Why a request frame was not decoded.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The header is short or malformed.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// A known API at a version the broker does not speak.
    #[error("{key:?} v{version} is not supported")]
    UnsupportedVersion {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
        /// Its header, to answer ApiVersions by.
        head: RequestHead,
    },
    /// The body does not parse.
    #[error("malformed {key:?} v{version}: {reason}")]
    Malformed {
        /// The API.
        key: ApiKey,
        /// Its version.
        version: i16,
        /// What the decoder said.
        reason: String,
    },
}

/// Decodes a request frame.
///
/// ```
/// use gyre_broker::protocol::request::{decode, RequestError};
/// let unknown = bytes::Bytes::from_static(&[0x7f, 0, 0, 0, 0, 0, 0, 1, 0, 0]);
/// assert!(matches!(decode(unknown), Err(RequestError::UnknownApi(0x7f00))));
/// ```
pub fn decode(mut frame: Bytes) -> Result<(RequestHead, RequestKind), RequestError> {
    let head = header::peek(&frame)?;
    let key = ApiKey::try_from(head.api_key).map_err(|_| RequestError::UnknownApi(head.api_key))?;
    if !versions::supports(key, head.api_version) {
        return Err(RequestError::UnsupportedVersion {
            key,
            version: head.api_version,
            head,
        });
    }
    if key.request_header_version(head.api_version) >= 2 {
        header::split_v2(&mut frame)?;
    } else {
        header::split_v1(&mut frame)?;
    }
    let malformed = |reason: String| RequestError::Malformed {
        key,
        version: head.api_version,
        reason,
    };
    // kafka-protocol allocates each array's count up front: impossible
    // counts must not reach it (see `shape`).
    shape::check(key, head.api_version, &frame).map_err(|e| malformed(e.to_string()))?;
    let request = RequestKind::decode(key, &mut frame, head.api_version)
        .map_err(|e| malformed(e.to_string()))?;
    // Kafka reads a request's fields and ignores whatever follows them,
    // and clients depend on it: librdkafka 2.16's admin client ends its
    // all-topics Metadata v12 with three bytes more than the body (so
    // `list_topics()` failed here while refused), and librdkafka 2.x ends
    // AlterUserScramCredentials with one more empty tagged-field section.
    // The body itself was read whole and checked above.
    if !frame.is_empty() {
        tracing::debug!(
            ?key,
            version = head.api_version,
            bytes = frame.len(),
            "ignored bytes after a request's body, as Kafka does"
        );
    }
    Ok((head, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `AdminClient.list_topics()` of confluent-kafka 2.16.1 (librdkafka
    /// 2.16.0), as captured: Metadata v12, correlation id 3, client id
    /// "rdkafka", all topics, and three bytes after the body.
    const LIBRDKAFKA_LIST_TOPICS: &str = "0003000c00000003000772646b61666b610000000000010000";

    #[test]
    fn bytes_after_a_whole_body_are_ignored_as_kafka_ignores_them() {
        let frame: Vec<u8> = (0..LIBRDKAFKA_LIST_TOPICS.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&LIBRDKAFKA_LIST_TOPICS[i..i + 2], 16).unwrap())
            .collect();
        let (head, request) = decode(Bytes::from(frame.clone())).expect("served");
        assert_eq!((head.api_version, head.correlation_id), (12, 3));
        let RequestKind::Metadata(m) = request else {
            panic!("{request:?}")
        };
        assert!(m.topics.is_none(), "all topics");
        // A body cut short is still refused.
        let short = Bytes::from(frame[..frame.len() - 6].to_vec());
        assert!(matches!(decode(short), Err(RequestError::Malformed { .. })));
    }
}
