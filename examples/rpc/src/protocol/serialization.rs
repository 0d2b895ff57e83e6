//! How bodies are serialized: serde into postcard's compact binary format
//! (the default) or JSON, chosen per call and named by the header's 5-bit
//! serialization id, so one provider answers consumers of either kind.

use bytes::{BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A serialization a frame's body can use.
///
/// ```
/// use gyre_rpc::consumer::CallOptions;
/// use gyre_rpc::Serialization;
///
/// // Per call: JSON is readable in a capture and by any language.
/// let json = CallOptions::default().serialization(Serialization::Json);
/// assert_eq!(Serialization::from_id(json.serialization.id()), Some(Serialization::Json));
/// assert_eq!(Serialization::default(), Serialization::Binary);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Serialization {
    /// postcard: varint integers, length-prefixed strings, no field names.
    #[default]
    Binary,
    /// JSON (`serde_json`): larger and slower, but readable in a capture and
    /// by any language.
    Json,
}

/// A value that did not serialize or deserialize.
///
/// ```
/// use gyre_rpc::protocol::{Serialization, SerializationError};
///
/// // A caller sent a string where the method takes a number.
/// let err: SerializationError = Serialization::Json.deserialize::<u64>(b"\"seven\"").unwrap_err();
/// assert_eq!(err.serialization, Serialization::Json);
/// assert!(err.to_string().starts_with("Json serialization failed"));
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{serialization:?} serialization failed: {message}")]
pub struct SerializationError {
    /// Which serialization.
    pub serialization: Serialization,
    /// What it said.
    pub message: String,
}

impl Serialization {
    /// The id in the header's low 5 bits.
    pub fn id(self) -> u8 {
        match self {
            Serialization::Binary => 1,
            Serialization::Json => 2,
        }
    }

    /// The serialization with header id `id`.
    pub fn from_id(id: u8) -> Option<Serialization> {
        match id {
            1 => Some(Serialization::Binary),
            2 => Some(Serialization::Json),
            _ => None,
        }
    }

    fn error(self, message: impl ToString) -> SerializationError {
        SerializationError {
            serialization: self,
            message: message.to_string(),
        }
    }

    /// Appends `value` to `out`.
    ///
    /// ```
    /// use gyre_rpc::Serialization;
    /// let mut out = bytes::BytesMut::new();
    /// Serialization::Json.serialize(&(1, "a"), &mut out).unwrap();
    /// assert_eq!(&out[..], b"[1,\"a\"]");
    /// let back: (u32, String) = Serialization::Json.deserialize(&out).unwrap();
    /// assert_eq!(back, (1, "a".to_string()));
    /// ```
    pub fn serialize<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut BytesMut,
    ) -> Result<(), SerializationError> {
        let writer = out.writer();
        match self {
            Serialization::Binary => postcard::to_io(value, writer)
                .map(drop)
                .map_err(|e| self.error(e)),
            Serialization::Json => serde_json::to_writer(writer, value).map_err(|e| self.error(e)),
        }
    }

    /// Reads a `T` that must fill `bytes` exactly.
    pub fn deserialize<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, SerializationError> {
        match self {
            Serialization::Binary => match postcard::take_from_bytes::<T>(bytes) {
                Ok((value, [])) => Ok(value),
                Ok((_, rest)) => Err(self.error(format!("{} bytes after the value", rest.len()))),
                Err(e) => Err(self.error(e)),
            },
            Serialization::Json => serde_json::from_slice(bytes).map_err(|e| self.error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Order {
        id: u64,
        items: Vec<String>,
        note: Option<String>,
    }

    #[test]
    fn both_round_trip_and_refuse_garbage() {
        let order = Order {
            id: 7,
            items: vec!["a".into(), "b".into()],
            note: None,
        };
        for s in [Serialization::Binary, Serialization::Json] {
            let mut out = BytesMut::new();
            s.serialize(&order, &mut out).unwrap();
            assert_eq!(s.deserialize::<Order>(&out).unwrap(), order);
            assert!(s.deserialize::<Order>(&out[..out.len() - 1]).is_err());
            let mut longer = out.to_vec();
            longer.push(b'x');
            assert!(
                s.deserialize::<Order>(&longer).is_err(),
                "{s:?} trailing byte"
            );
        }
        let mut binary = BytesMut::new();
        Serialization::Binary
            .serialize(&order, &mut binary)
            .unwrap();
        // id 1, count 1, "a" 2, "b" 2, None 1: no field names, varints.
        assert_eq!(binary.len(), 7);
    }
}
