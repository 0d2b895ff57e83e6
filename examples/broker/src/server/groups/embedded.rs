//! The formats a classic consumer embeds in JoinGroup and SyncGroup: its
//! subscription (`ConsumerProtocolSubscription`: version, topics, user
//! data, and from v1 the partitions it owns) and its assignment
//! (`ConsumerProtocolAssignment`: version, partitions by topic, user
//! data). Read by hand, each count checked against the bytes left (a
//! member's metadata is a client's bytes), and written at version 0.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Partitions by topic name.
pub type NamedPartitions = Vec<(String, Vec<i32>)>;

/// A subscription: its topics and, from v1, what the member owns.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Subscribed topic names.
    pub topics: Vec<String>,
    /// Partitions the member says it owns (empty before v1).
    pub owned: NamedPartitions,
}

/// A cursor that refuses what the bytes left cannot hold.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn i16(&mut self) -> Option<i16> {
        (self.0.len() >= 2).then(|| self.0.get_i16())
    }

    fn i32(&mut self) -> Option<i32> {
        (self.0.len() >= 4).then(|| self.0.get_i32())
    }

    /// A count of elements of at least `each` bytes.
    fn count(&mut self, each: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        (n.checked_mul(each)? <= self.0.len()).then_some(n)
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        if self.0.len() < len {
            return None;
        }
        let s = String::from_utf8_lossy(&self.0[..len]).into_owned();
        self.0.advance(len);
        Some(s)
    }

    /// Nullable bytes, skipped.
    fn skip_bytes(&mut self) -> Option<()> {
        let len = self.i32()?;
        if len < 0 {
            return Some(());
        }
        let len = len as usize;
        (self.0.len() >= len).then(|| self.0.advance(len))
    }

    fn partitions(&mut self) -> Option<NamedPartitions> {
        let topics = self.count(2 + 4)?;
        let mut out = Vec::with_capacity(topics);
        for _ in 0..topics {
            let topic = self.string()?;
            let n = self.count(4)?;
            let parts = (0..n).map(|_| self.0.get_i32()).collect();
            out.push((topic, parts));
        }
        Some(out)
    }
}

/// The version and topics at the head of a subscription, read as far as
/// they parse; `complete` says whether every topic did.
fn head<'a>(md: &'a [u8]) -> (Reader<'a>, i16, Vec<String>, bool) {
    let mut r = Reader(md);
    let mut topics = Vec::new();
    let Some(version) = r.i16() else {
        return (r, 0, topics, false);
    };
    let Some(n) = r.count(2) else {
        return (r, version, topics, false);
    };
    for _ in 0..n {
        match r.string() {
            Some(t) => topics.push(t),
            None => return (r, version, topics, false),
        }
    }
    (r, version, topics, true)
}

/// The topics of a subscription, as many as parse (a group's topics for
/// OffsetDelete's check).
pub fn subscribed_topics(md: &[u8]) -> Vec<String> {
    head(md).2
}

/// A classic consumer's subscription; `None` if it does not parse.
pub fn subscription(md: &[u8]) -> Option<Subscription> {
    let (mut r, version, topics, complete) = head(md);
    if !complete {
        return None;
    }
    r.skip_bytes()?;
    let owned = if version >= 1 {
        r.partitions()?
    } else {
        Vec::new()
    };
    Some(Subscription { topics, owned })
}

/// A classic consumer's assignment; `None` if it does not parse.
pub fn assignment(bytes: &[u8]) -> Option<NamedPartitions> {
    let mut r = Reader(bytes);
    r.i16()?;
    r.partitions()
}

/// An assignment at version 0, no user data.
pub fn encode_assignment(parts: &NamedPartitions) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(0);
    b.put_i32(parts.len() as i32);
    for (topic, partitions) in parts {
        b.put_i16(topic.len() as i16);
        b.put_slice(topic.as_bytes());
        b.put_i32(partitions.len() as i32);
        for p in partitions {
            b.put_i32(*p);
        }
    }
    b.put_i32(-1);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
    use kafka_protocol::messages::{
        ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    #[test]
    fn reads_what_kafka_protocol_writes_at_every_version() {
        for version in 0..=3 {
            let mut s = ConsumerProtocolSubscription::default();
            s.topics = vec![
                StrBytes::from_static_str("a"),
                StrBytes::from_static_str("bc"),
            ];
            s.user_data = Some(Bytes::from_static(b"ud"));
            let mut tp = TopicPartition::default();
            tp.topic = TopicName(StrBytes::from_static_str("a"));
            tp.partitions = vec![0, 2];
            s.owned_partitions = vec![tp];
            s.rack_id = Some(StrBytes::from_static_str("r"));
            let mut b = BytesMut::new();
            b.put_i16(version);
            s.encode(&mut b, version).unwrap();
            let got = subscription(&b).unwrap();
            assert_eq!(got.topics, ["a", "bc"]);
            let owned: NamedPartitions = if version >= 1 {
                vec![("a".into(), vec![0, 2])]
            } else {
                Vec::new()
            };
            assert_eq!(got.owned, owned, "v{version}");
        }
        let parts = vec![("t".to_owned(), vec![1, 3]), ("u".to_owned(), vec![0])];
        let mut encoded = encode_assignment(&parts);
        assert_eq!(assignment(&encoded).unwrap(), parts);
        encoded.advance(2);
        let decoded = ConsumerProtocolAssignment::decode(&mut encoded, 0).unwrap();
        assert_eq!(decoded.assigned_partitions.len(), 2);
        assert_eq!(decoded.assigned_partitions[0].partitions, [1, 3]);
    }

    #[test]
    fn a_subscriptions_topics_are_read_as_far_as_they_parse() {
        let md = [0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0xff];
        assert_eq!(subscribed_topics(&md), vec!["a", "bc"]);
        assert_eq!(
            subscribed_topics(&[0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 5]),
            vec!["a"]
        );
        assert!(subscribed_topics(&[0, 1, 0, 0, 0, 9, 0, 5, b'x']).is_empty());
        assert!(subscribed_topics(&[]).is_empty());
    }

    #[test]
    fn damaged_or_impossible_bytes_are_refused_not_allocated() {
        assert!(subscription(&[]).is_none());
        assert!(subscription(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_none());
        assert!(subscription(&[0, 1, 0, 0, 0, 1, 0, 9, b'x']).is_none());
        assert!(assignment(&[0, 0, 0, 0, 0, 1, 0, 1, b't', 0x7f, 0, 0, 0]).is_none());
        // A subscription cut anywhere is refused, never a panic.
        let full = [
            0, 1, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0,
            1, 0, 0, 0, 4,
        ];
        assert!(subscription(&full).is_some());
        for cut in 0..full.len() {
            assert!(subscription(&full[..cut]).is_none(), "{cut}");
        }
    }
}
