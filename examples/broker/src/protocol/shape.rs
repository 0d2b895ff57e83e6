//! A walk over a request body that checks every array count against the
//! bytes left, before `kafka-protocol` decodes it.
//!
//! `kafka-protocol` 0.18 sizes each array with `Vec::with_capacity(count)`
//! straight off the wire, so a 19-byte Metadata request claiming two billion
//! topics asks for an 88 GB allocation, and a failed allocation aborts the
//! process: one client could stop the broker (found by the `request` fuzz
//! target; upstream pull requests kafka-protocol-rs#152, #161 and #200 are
//! open). Every array element takes at least one byte on the wire, so a
//! count larger than what is left cannot be a real request; this walk
//! refuses it with a clear error first.
//!
//! The walk knows the layout of each API at the versions the broker
//! speaks, classic and flexible (compact lengths, tagged fields), from Kafka's message definitions; the unit tests check it
//! against `kafka-protocol`'s own encoding at every supported version. It
//! reads lengths and skips over values without copying or allocating.

use kafka_protocol::messages::ApiKey;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// The body ends inside a field.
    #[error("body ends at byte {at} inside a field")]
    Truncated {
        /// Where the field began.
        at: usize,
    },
    /// An array claims more elements than the bytes left could hold.
    #[error("array at byte {at} claims {count} elements with {left} bytes left")]
    ImpossibleCount {
        /// Where the count sits.
        at: usize,
        /// What it claims.
        count: i64,
        /// Bytes after it.
        left: usize,
    },
    /// A varint longer than five bytes or past 32 bits.
    #[error("malformed varint at byte {at}")]
    BadVarint {
        /// Where it begins.
        at: usize,
    },
    /// A length or count below -1.
    #[error("negative length {length} at byte {at}")]
    Negative {
        /// Where it sits.
        at: usize,
        /// Its value.
        length: i64,
    },
}

/// A cursor over the body. In a flexible version lengths and counts are
/// unsigned varints holding one more than the value (0 is null), and every
/// structure ends with its tagged fields.
struct Walk<'a> {
    body: &'a [u8],
    at: usize,
    flexible: bool,
}

impl Walk<'_> {
    fn left(&self) -> usize {
        self.body.len() - self.at
    }

    fn skip(&mut self, n: usize) -> Result<(), ShapeError> {
        if self.left() < n {
            return Err(ShapeError::Truncated { at: self.at });
        }
        self.at += n;
        Ok(())
    }

    fn i16(&mut self) -> Result<i16, ShapeError> {
        let at = self.at;
        self.skip(2)?;
        Ok(i16::from_be_bytes([self.body[at], self.body[at + 1]]))
    }

    fn i32(&mut self) -> Result<i32, ShapeError> {
        let at = self.at;
        self.skip(4)?;
        let b = &self.body[at..at + 4];
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An unsigned varint of at most five bytes (a `u32`).
    fn uvarint(&mut self) -> Result<u32, ShapeError> {
        let at = self.at;
        let mut value = 0u32;
        for i in 0..5 {
            let Some(&b) = self.body.get(self.at) else {
                return Err(ShapeError::Truncated { at });
            };
            self.at += 1;
            if i == 4 && b > 0x0f {
                return Err(ShapeError::BadVarint { at });
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ShapeError::BadVarint { at })
    }

    /// A length or count: `i16`/`i32` as `classic` says in a classic
    /// version, a varint less one in a flexible one (-1 is null).
    fn length(
        &mut self,
        classic: fn(&mut Self) -> Result<i64, ShapeError>,
    ) -> Result<i64, ShapeError> {
        if self.flexible {
            Ok(i64::from(self.uvarint()?) - 1)
        } else {
            classic(self)
        }
    }

    /// A length-prefixed value whose length is read by `len`; -1 is null
    /// when `nullable`.
    fn sized(&mut self, length: i64, nullable: bool, at: usize) -> Result<(), ShapeError> {
        match length {
            -1 if nullable => Ok(()),
            n if n < 0 => Err(ShapeError::Negative { at, length: n }),
            n => self.skip(n as usize),
        }
    }

    fn string_like(&mut self, nullable: bool, wide: bool) -> Result<(), ShapeError> {
        let at = self.at;
        let n = if wide {
            self.length(|w| w.i32().map(i64::from))?
        } else {
            self.length(|w| w.i16().map(i64::from))?
        };
        self.sized(n, nullable, at)
    }

    fn string(&mut self) -> Result<(), ShapeError> {
        self.string_like(false, false)
    }

    fn nullable_string(&mut self) -> Result<(), ShapeError> {
        self.string_like(true, false)
    }

    fn bytes(&mut self) -> Result<(), ShapeError> {
        self.string_like(false, true)
    }

    fn nullable_bytes(&mut self) -> Result<(), ShapeError> {
        self.string_like(true, true)
    }

    /// An array's count, checked against the bytes left; null (-1) reads
    /// as empty when `nullable`.
    fn count(&mut self, nullable: bool) -> Result<usize, ShapeError> {
        let at = self.at;
        let count = self.length(|w| w.i32().map(i64::from))?;
        match count {
            -1 if nullable => Ok(0),
            n if n < 0 => Err(ShapeError::Negative { at, length: n }),
            n if n as usize > self.left() => Err(ShapeError::ImpossibleCount {
                at,
                count: n,
                left: self.left(),
            }),
            n => Ok(n as usize),
        }
    }

    /// An array of plain values (numbers, strings) that `each` walks.
    fn array(
        &mut self,
        nullable: bool,
        mut each: impl FnMut(&mut Self) -> Result<(), ShapeError>,
    ) -> Result<(), ShapeError> {
        for _ in 0..self.count(nullable)? {
            each(self)?;
        }
        Ok(())
    }

    /// An array of structures that `each` walks; in a flexible version
    /// each ends with its tagged fields.
    fn structs(
        &mut self,
        nullable: bool,
        mut each: impl FnMut(&mut Self) -> Result<(), ShapeError>,
    ) -> Result<(), ShapeError> {
        self.array(nullable, |w| {
            each(w)?;
            w.tags()
        })
    }

    /// A structure's tagged fields (flexible versions only): a count, then
    /// each field's tag, size and bytes.
    fn tags(&mut self) -> Result<(), ShapeError> {
        if !self.flexible {
            return Ok(());
        }
        let at = self.at;
        let count = self.uvarint()? as usize;
        if count > self.left() {
            return Err(ShapeError::ImpossibleCount {
                at,
                count: count as i64,
                left: self.left(),
            });
        }
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(size as usize)?;
        }
        Ok(())
    }
}

/// An ACL filter (DescribeAcls, each of DeleteAcls's, v1+).
fn acl_filter(w: &mut Walk<'_>) -> Result<(), ShapeError> {
    w.skip(1)?; // resource type
    w.nullable_string()?; // name
    w.skip(1)?; // pattern type
    w.nullable_string()?; // principal
    w.nullable_string()?; // host
    w.skip(2) // operation, permission
}

/// Checks the body of `key` at `version` (a version the broker speaks).
/// APIs the walk does not know pass unchecked.
pub fn check(key: ApiKey, version: i16, body: &[u8]) -> Result<(), ShapeError> {
    walk(key, version, body).map(drop)
}

/// The walk; returns where it ended.
fn walk(key: ApiKey, version: i16, body: &[u8]) -> Result<usize, ShapeError> {
    let flexible = key.request_header_version(version) >= 2;
    let w = &mut Walk {
        body,
        at: 0,
        flexible,
    };
    let v = version;
    match key {
        ApiKey::Produce => {
            w.nullable_string()?; // transactional id (v3+)
            w.skip(2 + 4)?; // acks, timeout
            w.structs(false, |w| {
                w.string()?;
                w.structs(false, |w| {
                    w.skip(4)?;
                    w.nullable_bytes()
                })
            })?;
        }
        ApiKey::Fetch => {
            if v <= 14 {
                w.skip(4)?; // replica id (a tagged replica state from v15)
            }
            w.skip(4 + 4 + 4 + 1)?; // max wait, min bytes, max bytes, isolation
            if v >= 7 {
                w.skip(4 + 4)?; // session id, epoch
            }
            // A topic: its name, or from v13 its id.
            let topic = |w: &mut Walk<'_>| if v >= 13 { w.skip(16) } else { w.string() };
            w.structs(false, |w| {
                topic(w)?;
                w.structs(false, |w| {
                    w.skip(4)?;
                    if v >= 9 {
                        w.skip(4)?; // current leader epoch
                    }
                    w.skip(8)?;
                    if v >= 12 {
                        w.skip(4)?; // last fetched epoch
                    }
                    if v >= 5 {
                        w.skip(8)?; // log start offset
                    }
                    w.skip(4)
                })
            })?;
            if v >= 7 {
                w.structs(false, |w| {
                    topic(w)?;
                    w.array(false, |w| w.skip(4))
                })?;
            }
            if v >= 11 {
                w.string()?; // rack id
            }
        }
        ApiKey::ListOffsets => {
            w.skip(4)?;
            if v >= 2 {
                w.skip(1)?; // isolation level
            }
            w.structs(false, |w| {
                w.string()?;
                w.structs(false, |w| {
                    w.skip(4)?;
                    if v >= 4 {
                        w.skip(4)?; // current leader epoch
                    }
                    w.skip(8)
                })
            })?;
            if v >= 10 {
                w.skip(4)?; // timeout
            }
        }
        ApiKey::Metadata => {
            w.structs(v >= 1, |w| {
                if v >= 10 {
                    w.skip(16)?; // topic id
                    w.nullable_string()
                } else {
                    w.string()
                }
            })?;
            if v >= 4 {
                w.skip(1)?; // allow auto topic creation
            }
            if (8..=10).contains(&v) {
                w.skip(1)?; // include cluster authorized operations
            }
            if v >= 8 {
                w.skip(1)?; // include topic authorized operations
            }
        }
        ApiKey::OffsetCommit => {
            w.string()?;
            w.skip(4)?;
            w.string()?;
            if v >= 7 {
                w.nullable_string()?; // group instance id
            }
            if (2..=4).contains(&v) {
                w.skip(8)?; // retention time
            }
            w.structs(false, |w| {
                w.string()?;
                w.structs(false, |w| {
                    w.skip(4 + 8)?;
                    if v >= 6 {
                        w.skip(4)?; // committed leader epoch
                    }
                    w.nullable_string()
                })
            })?;
        }
        ApiKey::OffsetFetch => {
            let topics = |w: &mut Walk<'_>| {
                w.structs(v >= 2, |w| {
                    w.string()?;
                    w.array(false, |w| w.skip(4))
                })
            };
            if v >= 8 {
                w.structs(false, |w| {
                    w.string()?;
                    if v >= 9 {
                        w.nullable_string()?; // member id
                        w.skip(4)?; // member epoch
                    }
                    topics(w)
                })?;
            } else {
                w.string()?;
                topics(w)?;
            }
            if v >= 7 {
                w.skip(1)?; // require stable
            }
        }
        ApiKey::FindCoordinator => {
            if v <= 3 {
                w.string()?;
            }
            if v >= 1 {
                w.skip(1)?; // key type
            }
            if v >= 4 {
                w.array(false, |w| w.string())?; // coordinator keys
            }
        }
        ApiKey::JoinGroup => {
            w.string()?;
            w.skip(4)?;
            if v >= 1 {
                w.skip(4)?; // rebalance timeout
            }
            w.string()?;
            if v >= 5 {
                w.nullable_string()?; // group instance id
            }
            w.string()?;
            w.structs(false, |w| {
                w.string()?;
                w.bytes()
            })?;
            if v >= 8 {
                w.nullable_string()?; // reason
            }
        }
        ApiKey::Heartbeat => {
            w.string()?;
            w.skip(4)?;
            w.string()?;
            if v >= 3 {
                w.nullable_string()?;
            }
        }
        ApiKey::LeaveGroup => {
            w.string()?;
            if v >= 3 {
                w.structs(false, |w| {
                    w.string()?;
                    w.nullable_string()?;
                    if v >= 5 {
                        w.nullable_string()?; // reason
                    }
                    Ok(())
                })?;
            } else {
                w.string()?;
            }
        }
        ApiKey::SyncGroup => {
            w.string()?;
            w.skip(4)?;
            w.string()?;
            if v >= 3 {
                w.nullable_string()?;
            }
            if v >= 5 {
                w.nullable_string()?; // protocol type
                w.nullable_string()?; // protocol name
            }
            w.structs(false, |w| {
                w.string()?;
                w.bytes()
            })?;
        }
        ApiKey::CreateTopics => {
            w.structs(false, |w| {
                w.string()?;
                w.skip(4 + 2)?;
                w.structs(false, |w| {
                    w.skip(4)?;
                    w.array(false, |w| w.skip(4))
                })?;
                w.structs(false, |w| {
                    w.string()?;
                    w.nullable_string()
                })
            })?;
            w.skip(4 + 1)?; // timeout, validate only
        }
        ApiKey::DeleteTopics => {
            if v >= 6 {
                w.structs(false, |w| {
                    w.nullable_string()?;
                    w.skip(16) // topic id
                })?;
            } else {
                w.array(false, |w| w.string())?;
            }
            w.skip(4)?;
        }
        ApiKey::InitProducerId => {
            w.nullable_string()?;
            w.skip(4)?;
            if v >= 3 {
                w.skip(8 + 2)?; // producer id and epoch
            }
        }
        ApiKey::AddPartitionsToTxn => {
            w.string()?; // transactional id
            w.skip(8 + 2)?; // producer id and epoch
            w.structs(false, |w| {
                w.string()?;
                w.array(false, |w| w.skip(4))
            })?;
        }
        ApiKey::AddOffsetsToTxn => {
            w.string()?; // transactional id
            w.skip(8 + 2)?; // producer id and epoch
            w.string()?; // group
        }
        ApiKey::EndTxn => {
            w.string()?; // transactional id
            w.skip(8 + 2 + 1)?; // producer id and epoch, committed
        }
        ApiKey::TxnOffsetCommit => {
            w.string()?; // transactional id
            w.string()?; // group
            w.skip(8 + 2)?; // producer id and epoch
            if v >= 3 {
                w.skip(4)?; // generation
                w.string()?; // member id
                w.nullable_string()?; // group instance id
            }
            w.structs(false, |w| {
                w.string()?;
                w.structs(false, |w| {
                    w.skip(4 + 8)?; // partition, offset
                    if v >= 2 {
                        w.skip(4)?; // leader epoch
                    }
                    w.nullable_string() // metadata
                })
            })?;
        }
        ApiKey::ListTransactions => {
            w.array(false, |w| w.string())?; // state filters
            w.array(false, |w| w.skip(8))?; // producer id filters
            if v >= 1 {
                w.skip(8)?; // duration filter
            }
            if v >= 2 {
                w.nullable_string()?; // transactional id pattern
            }
        }
        ApiKey::DescribeTransactions => w.array(false, |w| w.string())?,
        ApiKey::DescribeProducers => w.structs(false, |w| {
            w.string()?;
            w.array(false, |w| w.skip(4))
        })?,
        ApiKey::WriteTxnMarkers => w.structs(false, |w| {
            w.skip(8 + 2 + 1)?; // producer id and epoch, commit or abort
            w.structs(false, |w| {
                w.string()?;
                w.array(false, |w| w.skip(4))
            })?;
            w.skip(4) // coordinator epoch
        })?,
        ApiKey::ConsumerGroupHeartbeat => {
            w.string()?; // group id
            w.string()?; // member id
            w.skip(4)?; // member epoch
            w.nullable_string()?; // instance id
            w.nullable_string()?; // rack id
            w.skip(4)?; // rebalance timeout
            w.array(true, |w| w.string())?; // subscribed topic names
            if v >= 1 {
                w.nullable_string()?; // subscribed topic regex
            }
            w.nullable_string()?; // server assignor
            w.structs(true, |w| {
                w.skip(16)?; // topic id
                w.array(false, |w| w.skip(4))
            })?;
        }
        ApiKey::ConsumerGroupDescribe => {
            w.array(false, |w| w.string())?;
            w.skip(1)?; // include authorized operations
        }
        ApiKey::ShareGroupHeartbeat => {
            w.string()?; // group id
            w.string()?; // member id
            w.skip(4)?; // member epoch
            w.nullable_string()?; // rack id
            w.array(true, |w| w.string())?; // subscribed topic names
        }
        ApiKey::ShareGroupDescribe => {
            w.array(false, |w| w.string())?;
            w.skip(1)?; // include authorized operations
        }
        ApiKey::DescribeShareGroupOffsets => w.structs(false, |w| {
            w.string()?; // group id
            w.structs(true, |w| {
                w.string()?; // topic name
                w.array(false, |w| w.skip(4))
            })
        })?,
        ApiKey::AlterShareGroupOffsets => {
            w.string()?; // group id
            w.structs(false, |w| {
                w.string()?; // topic name
                w.structs(false, |w| w.skip(4 + 8)) // partition, start offset
            })?;
        }
        ApiKey::DeleteShareGroupOffsets => {
            w.string()?; // group id
            w.structs(false, |w| w.string())?; // topic names
        }
        ApiKey::ShareFetch | ApiKey::ShareAcknowledge => {
            let fetch = key == ApiKey::ShareFetch;
            w.nullable_string()?; // group id
            w.nullable_string()?; // member id
            w.skip(4)?; // share session epoch
            if fetch {
                // Max wait, min bytes, max bytes, max records, batch size.
                w.skip(5 * 4)?;
            }
            w.structs(false, |w| {
                w.skip(16)?; // topic id
                w.structs(false, |w| {
                    w.skip(4)?; // partition index
                    w.structs(false, |w| {
                        w.skip(8 + 8)?; // first and last offset
                        w.array(false, |w| w.skip(1)) // acknowledge types
                    })
                })
            })?;
            if fetch {
                w.structs(false, |w| {
                    w.skip(16)?; // forgotten topic id
                    w.array(false, |w| w.skip(4))
                })?;
            }
        }
        ApiKey::DescribeGroups => {
            w.array(false, |w| w.string())?;
            if v >= 3 {
                w.skip(1)?; // include authorized operations
            }
        }
        ApiKey::ListGroups => {
            if v >= 4 {
                w.array(false, |w| w.string())?; // states filter
            }
            if v >= 5 {
                w.array(false, |w| w.string())?; // types filter
            }
        }
        ApiKey::DeleteRecords => {
            w.structs(false, |w| {
                w.string()?;
                w.structs(false, |w| w.skip(4 + 8))
            })?;
            w.skip(4)?; // timeout
        }
        ApiKey::DescribeTopicPartitions => {
            w.structs(false, |w| w.string())?;
            w.skip(4)?; // response partition limit
                        // The cursor: a nullable structure (-1 null, 1 present).
            let at = w.at;
            w.skip(1)?;
            match w.body[at] as i8 {
                -1 => {}
                1 => {
                    w.string()?;
                    w.skip(4)?;
                    w.tags()?;
                }
                marker => {
                    return Err(ShapeError::Negative {
                        at,
                        length: i64::from(marker),
                    })
                }
            }
        }
        ApiKey::OffsetForLeaderEpoch => {
            if v >= 3 {
                w.skip(4)?; // replica id
            }
            w.structs(false, |w| {
                w.string()?;
                // Partition, current leader epoch, leader epoch.
                w.structs(false, |w| w.skip(4 + 4 + 4))
            })?;
        }
        ApiKey::AlterConfigs => {
            w.structs(false, |w| {
                w.skip(1)?; // resource type
                w.string()?;
                w.structs(false, |w| {
                    w.string()?;
                    w.nullable_string()
                })
            })?;
            w.skip(1)?; // validate only
        }
        ApiKey::IncrementalAlterConfigs => {
            w.structs(false, |w| {
                w.skip(1)?; // resource type
                w.string()?;
                w.structs(false, |w| {
                    w.string()?;
                    w.skip(1)?; // operation
                    w.nullable_string()
                })
            })?;
            w.skip(1)?; // validate only
        }
        ApiKey::CreatePartitions => {
            w.structs(false, |w| {
                w.string()?;
                w.skip(4)?; // count
                w.structs(true, |w| w.array(false, |w| w.skip(4)))
            })?;
            w.skip(4 + 1)?; // timeout, validate only
        }
        ApiKey::DescribeConfigs => {
            w.structs(false, |w| {
                w.skip(1)?; // resource type
                w.string()?;
                w.array(true, |w| w.string())
            })?;
            w.skip(1)?; // include synonyms
            if v >= 3 {
                w.skip(1)?; // include documentation
            }
        }
        ApiKey::DeleteGroups => {
            w.array(false, |w| w.string())?;
        }
        ApiKey::OffsetDelete => {
            w.string()?;
            w.structs(false, |w| {
                w.string()?;
                w.structs(false, |w| w.skip(4))
            })?;
        }
        ApiKey::ListConfigResources => {
            if v >= 1 {
                w.array(false, |w| w.skip(1))?; // resource types
            }
        }
        ApiKey::DescribeCluster => {
            w.skip(1)?; // include cluster authorized operations
            if v >= 1 {
                w.skip(1)?; // endpoint type
            }
            if v >= 2 {
                w.skip(1)?; // include fenced brokers
            }
        }
        ApiKey::ApiVersions => {
            if v >= 3 {
                w.string()?; // client software name
                w.string()?; // and version
            }
        }
        ApiKey::SaslHandshake => w.string()?,   // mechanism
        ApiKey::SaslAuthenticate => w.bytes()?, // auth bytes
        ApiKey::DescribeUserScramCredentials => w.structs(true, |w| w.string())?,
        ApiKey::DescribeAcls => acl_filter(w)?,
        ApiKey::DeleteAcls => w.structs(false, acl_filter)?,
        ApiKey::CreateAcls => w.structs(false, |w| {
            w.skip(1)?; // resource type
            w.string()?; // name
            w.skip(1)?; // pattern type
            w.string()?; // principal
            w.string()?; // host
            w.skip(2) // operation, permission
        })?,
        ApiKey::AlterUserScramCredentials => {
            w.structs(false, |w| {
                w.string()?;
                w.skip(1) // mechanism
            })?;
            w.structs(false, |w| {
                w.string()?;
                w.skip(1 + 4)?; // mechanism, iterations
                w.bytes()?; // salt
                w.bytes() // salted password
            })?;
        }
        ApiKey::DescribeClientQuotas => {
            w.structs(false, |w| {
                w.string()?; // entity type
                w.skip(1)?; // match type
                w.nullable_string() // match
            })?;
            w.skip(1)?; // strict
        }
        ApiKey::AlterClientQuotas => {
            w.structs(false, |w| {
                w.structs(false, |w| {
                    w.string()?; // entity type
                    w.nullable_string() // entity name
                })?;
                w.structs(false, |w| {
                    w.string()?; // key
                    w.skip(8 + 1) // value, remove
                })
            })?;
            w.skip(1)?; // validate only
        }
        ApiKey::DescribeLogDirs => w.structs(true, |w| {
            w.string()?;
            w.array(false, |w| w.skip(4))
        })?,
        ApiKey::ElectLeaders => {
            if v >= 1 {
                w.skip(1)?; // election type
            }
            w.structs(true, |w| {
                w.string()?;
                w.array(false, |w| w.skip(4))
            })?;
            w.skip(4)?; // timeout
        }
        ApiKey::AlterReplicaLogDirs => w.structs(false, |w| {
            w.string()?; // path
            w.structs(false, |w| {
                w.string()?;
                w.array(false, |w| w.skip(4))
            })
        })?,
        ApiKey::ListPartitionReassignments => {
            w.skip(4)?; // timeout
            w.structs(true, |w| {
                w.string()?;
                w.array(false, |w| w.skip(4))
            })?;
        }
        ApiKey::AlterPartitionReassignments => {
            w.skip(4)?; // timeout
            if v >= 1 {
                w.skip(1)?; // allow replication factor change
            }
            w.structs(false, |w| {
                w.string()?;
                w.structs(false, |w| {
                    w.skip(4)?; // partition index
                    w.array(true, |w| w.skip(4)) // replicas
                })
            })?;
        }
        ApiKey::UpdateFeatures => {
            w.skip(4)?; // timeout
            w.structs(false, |w| {
                w.string()?; // feature
                w.skip(2 + 1) // level; allow downgrade (v0) or upgrade type (v1+)
            })?;
            if v >= 1 {
                w.skip(1)?; // validate only
            }
        }
        _ => return Ok(body.len()),
    }
    w.tags()?;
    Ok(w.at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::versions::SUPPORTED;
    use bytes::BytesMut;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn name(s: &str) -> StrBytes {
        StrBytes::from_string(s.to_string())
    }

    /// A request of `key` at `v` with two elements in every array (nested
    /// ones too) the version has, and values in the variable-length fields.
    fn populated(key: ApiKey, v: i16) -> RequestKind {
        match key {
            ApiKey::Produce => {
                let mut p = produce_request::PartitionProduceData::default();
                p.records = Some(bytes::Bytes::from_static(b"not-a-batch"));
                let mut t = produce_request::TopicProduceData::default();
                t.name = TopicName(name("t"));
                t.partition_data = vec![p.clone(), p];
                let mut r = ProduceRequest::default();
                r.transactional_id = Some(TransactionalId(name("tx")));
                r.topic_data = vec![t.clone(), t];
                RequestKind::Produce(r)
            }
            ApiKey::Fetch => {
                let mut p = fetch_request::FetchPartition::default();
                if v >= 18 {
                    p.high_watermark = 42; // a tagged field, set
                }
                let mut t = fetch_request::FetchTopic::default();
                if v >= 13 {
                    t.topic_id = uuid::Uuid::from_u128(7);
                } else {
                    t.topic = TopicName(name("t"));
                }
                t.partitions = vec![p.clone(), p];
                let mut r = FetchRequest::default();
                r.topics = vec![t.clone(), t];
                if v >= 7 {
                    let mut f = fetch_request::ForgottenTopic::default();
                    if v >= 13 {
                        f.topic_id = uuid::Uuid::from_u128(8);
                    } else {
                        f.topic = TopicName(name("gone"));
                    }
                    f.partitions = vec![1, 2];
                    r.forgotten_topics_data = vec![f.clone(), f];
                }
                if v >= 11 {
                    r.rack_id = name("rack");
                }
                RequestKind::Fetch(r)
            }
            ApiKey::ListOffsets => {
                let p = list_offsets_request::ListOffsetsPartition::default();
                let mut t = list_offsets_request::ListOffsetsTopic::default();
                t.name = TopicName(name("t"));
                t.partitions = vec![p.clone(), p];
                let mut r = ListOffsetsRequest::default();
                r.topics = vec![t.clone(), t];
                r.timeout_ms = if v >= 10 { 30_000 } else { 0 };
                RequestKind::ListOffsets(r)
            }
            ApiKey::Metadata => {
                let mut t = metadata_request::MetadataRequestTopic::default();
                t.name = Some(TopicName(name("t")));
                let mut by_id = t.clone();
                if v >= 10 {
                    by_id.name = None;
                    by_id.topic_id = uuid::Uuid::from_u128(9);
                }
                let mut r = MetadataRequest::default();
                r.topics = Some(vec![t, by_id]);
                RequestKind::Metadata(r)
            }
            ApiKey::OffsetCommit => {
                let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
                p.committed_metadata = Some(name("meta"));
                let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
                t.name = TopicName(name("t"));
                t.partitions = vec![p.clone(), p];
                let mut r = OffsetCommitRequest::default();
                r.group_id = GroupId(name("g"));
                r.member_id = name("m");
                if v >= 7 {
                    r.group_instance_id = Some(name("i"));
                }
                r.topics = vec![t.clone(), t];
                RequestKind::OffsetCommit(r)
            }
            ApiKey::OffsetFetch => {
                let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
                t.name = TopicName(name("t"));
                t.partition_indexes = vec![0, 1];
                let mut r = OffsetFetchRequest::default();
                if v >= 8 {
                    let mut ts = offset_fetch_request::OffsetFetchRequestTopics::default();
                    ts.name = TopicName(name("t"));
                    ts.partition_indexes = vec![0, 1];
                    let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
                    g.group_id = GroupId(name("g"));
                    if v >= 9 {
                        g.member_id = Some(name("m"));
                        g.member_epoch = 3;
                    }
                    g.topics = Some(vec![ts.clone(), ts]);
                    let mut all = g.clone();
                    all.topics = None;
                    r.groups = vec![g, all];
                } else {
                    r.group_id = GroupId(name("g"));
                    r.topics = Some(vec![t.clone(), t]);
                }
                RequestKind::OffsetFetch(r)
            }
            ApiKey::FindCoordinator => {
                let mut r = FindCoordinatorRequest::default();
                if v >= 6 {
                    r.key_type = 2;
                    r.coordinator_keys = vec![name("g:AAAAAAAAAAAAAAAAAAAAAA:0"), name("h")];
                } else if v >= 4 {
                    r.coordinator_keys = vec![name("g"), name("h")];
                } else {
                    r.key = name("g");
                }
                RequestKind::FindCoordinator(r)
            }
            ApiKey::JoinGroup => {
                let mut p = join_group_request::JoinGroupRequestProtocol::default();
                p.name = name("range");
                p.metadata = bytes::Bytes::from_static(b"meta");
                let mut r = JoinGroupRequest::default();
                r.group_id = GroupId(name("g"));
                r.member_id = name("m");
                r.protocol_type = name("consumer");
                if v >= 5 {
                    r.group_instance_id = Some(name("i"));
                }
                r.protocols = vec![p.clone(), p];
                if v >= 8 {
                    r.reason = Some(name("because"));
                }
                RequestKind::JoinGroup(r)
            }
            ApiKey::Heartbeat => {
                let mut r = HeartbeatRequest::default();
                r.group_id = GroupId(name("g"));
                r.member_id = name("m");
                if v >= 3 {
                    r.group_instance_id = Some(name("i"));
                }
                RequestKind::Heartbeat(r)
            }
            ApiKey::LeaveGroup => {
                let mut r = LeaveGroupRequest::default();
                r.group_id = GroupId(name("g"));
                if v >= 3 {
                    let mut m = leave_group_request::MemberIdentity::default();
                    m.member_id = name("m");
                    if v >= 5 {
                        m.reason = Some(name("because"));
                    }
                    r.members = vec![m.clone(), m];
                } else {
                    r.member_id = name("m");
                }
                RequestKind::LeaveGroup(r)
            }
            ApiKey::SyncGroup => {
                let mut a = sync_group_request::SyncGroupRequestAssignment::default();
                a.member_id = name("m");
                a.assignment = bytes::Bytes::from_static(b"plan");
                let mut r = SyncGroupRequest::default();
                r.group_id = GroupId(name("g"));
                r.member_id = name("m");
                if v >= 3 {
                    r.group_instance_id = Some(name("i"));
                }
                r.assignments = vec![a.clone(), a];
                if v >= 5 {
                    r.protocol_type = Some(name("consumer"));
                    r.protocol_name = Some(name("range"));
                }
                RequestKind::SyncGroup(r)
            }
            ApiKey::CreateTopics => {
                let mut a = create_topics_request::CreatableReplicaAssignment::default();
                a.broker_ids = vec![BrokerId(0), BrokerId(1)];
                let mut c = create_topics_request::CreatableTopicConfig::default();
                c.name = name("retention.ms");
                c.value = Some(name("1000"));
                let mut t = create_topics_request::CreatableTopic::default();
                t.name = TopicName(name("t"));
                t.assignments = vec![a.clone(), a];
                t.configs = vec![c.clone(), c];
                let mut r = CreateTopicsRequest::default();
                r.topics = vec![t.clone(), t];
                RequestKind::CreateTopics(r)
            }
            ApiKey::DeleteTopics => {
                let mut r = DeleteTopicsRequest::default();
                if v >= 6 {
                    let mut by_name = delete_topics_request::DeleteTopicState::default();
                    by_name.name = Some(TopicName(name("a")));
                    let mut by_id = delete_topics_request::DeleteTopicState::default();
                    by_id.name = None;
                    by_id.topic_id = uuid::Uuid::from_u128(3);
                    r.topics = vec![by_name, by_id];
                } else {
                    r.topic_names = vec![TopicName(name("a")), TopicName(name("b"))];
                }
                RequestKind::DeleteTopics(r)
            }
            ApiKey::InitProducerId => {
                let mut r = InitProducerIdRequest::default();
                r.transactional_id = Some(TransactionalId(name("tx")));
                if v >= 3 {
                    r.producer_id = ProducerId(7);
                    r.producer_epoch = 3;
                }
                RequestKind::InitProducerId(r)
            }
            ApiKey::AddPartitionsToTxn => {
                let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
                t.name = TopicName(name("t"));
                t.partitions = vec![0, 2];
                let mut r = AddPartitionsToTxnRequest::default();
                r.v3_and_below_transactional_id = TransactionalId(name("tx"));
                r.v3_and_below_producer_id = ProducerId(7);
                r.v3_and_below_producer_epoch = 3;
                r.v3_and_below_topics = vec![t.clone(), t];
                RequestKind::AddPartitionsToTxn(r)
            }
            ApiKey::AddOffsetsToTxn => {
                let mut r = AddOffsetsToTxnRequest::default();
                r.transactional_id = TransactionalId(name("tx"));
                r.producer_id = ProducerId(7);
                r.group_id = GroupId(name("g"));
                RequestKind::AddOffsetsToTxn(r)
            }
            ApiKey::EndTxn => {
                let mut r = EndTxnRequest::default();
                r.transactional_id = TransactionalId(name("tx"));
                r.producer_id = ProducerId(7);
                r.committed = true;
                RequestKind::EndTxn(r)
            }
            ApiKey::TxnOffsetCommit => {
                let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
                p.partition_index = 1;
                p.committed_offset = 9;
                p.committed_metadata = Some(name("m"));
                let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
                t.name = TopicName(name("t"));
                t.partitions = vec![p.clone(), p];
                let mut r = TxnOffsetCommitRequest::default();
                r.transactional_id = TransactionalId(name("tx"));
                r.group_id = GroupId(name("g"));
                r.producer_id = ProducerId(7);
                if v >= 3 {
                    r.generation_id = 4;
                    r.member_id = name("m-1");
                    r.group_instance_id = Some(name("i"));
                }
                r.topics = vec![t.clone(), t];
                RequestKind::TxnOffsetCommit(r)
            }
            ApiKey::ListTransactions => {
                let mut r = ListTransactionsRequest::default();
                r.state_filters = vec![name("Ongoing"), name("Empty")];
                r.producer_id_filters = vec![ProducerId(7), ProducerId(8)];
                r.duration_filter = if v >= 1 { 1000 } else { -1 };
                if v >= 2 {
                    r.transactional_id_pattern = Some(name("tx-.*"));
                }
                RequestKind::ListTransactions(r)
            }
            ApiKey::DescribeProducers => {
                let mut t = describe_producers_request::TopicRequest::default();
                t.name = TopicName(name("t"));
                t.partition_indexes = vec![0, 3];
                let mut r = DescribeProducersRequest::default();
                r.topics = vec![t.clone(), t];
                RequestKind::DescribeProducers(r)
            }
            ApiKey::WriteTxnMarkers => {
                let mut t = write_txn_markers_request::WritableTxnMarkerTopic::default();
                t.name = TopicName(name("t"));
                t.partition_indexes = vec![0, 3];
                let mut m = write_txn_markers_request::WritableTxnMarker::default();
                m.producer_id = ProducerId(7);
                m.producer_epoch = 2;
                m.coordinator_epoch = -1;
                m.topics = vec![t.clone(), t];
                let mut r = WriteTxnMarkersRequest::default();
                r.markers = vec![m.clone(), m];
                RequestKind::WriteTxnMarkers(r)
            }
            ApiKey::DescribeTransactions => {
                let mut r = DescribeTransactionsRequest::default();
                r.transactional_ids = vec![TransactionalId(name("a")), TransactionalId(name("b"))];
                RequestKind::DescribeTransactions(r)
            }
            ApiKey::DescribeGroups => {
                let mut r = DescribeGroupsRequest::default();
                r.groups = vec![GroupId(name("a")), GroupId(name("b"))];
                r.include_authorized_operations = v >= 3;
                RequestKind::DescribeGroups(r)
            }
            ApiKey::ListGroups => {
                let mut r = ListGroupsRequest::default();
                if v >= 4 {
                    r.states_filter = vec![name("Stable"), name("Empty")];
                }
                if v >= 5 {
                    r.types_filter = vec![name("classic")];
                }
                RequestKind::ListGroups(r)
            }
            ApiKey::DescribeClientQuotas => {
                let mut c = describe_client_quotas_request::ComponentData::default();
                c.entity_type = name("user");
                c._match = Some(name("alice"));
                let mut r = DescribeClientQuotasRequest::default();
                r.components = vec![c.clone(), c];
                r.strict = true;
                RequestKind::DescribeClientQuotas(r)
            }
            ApiKey::AlterClientQuotas => {
                use alter_client_quotas_request::{EntityData, EntryData, OpData};
                let mut e = EntityData::default();
                e.entity_type = name("client-id");
                e.entity_name = Some(name("app"));
                let mut o = OpData::default();
                o.key = name("producer_byte_rate");
                o.value = 1024.0;
                let mut entry = EntryData::default();
                entry.entity = vec![e.clone(), e];
                entry.ops = vec![o.clone(), o];
                let mut r = AlterClientQuotasRequest::default();
                r.entries = vec![entry.clone(), entry];
                RequestKind::AlterClientQuotas(r)
            }
            ApiKey::DescribeLogDirs => {
                let mut t = describe_log_dirs_request::DescribableLogDirTopic::default();
                t.topic = TopicName(name("t"));
                t.partitions = vec![0, 3];
                let mut r = DescribeLogDirsRequest::default();
                r.topics = Some(vec![t.clone(), t]);
                RequestKind::DescribeLogDirs(r)
            }
            ApiKey::ElectLeaders => {
                let mut t = elect_leaders_request::TopicPartitions::default();
                t.topic = TopicName(name("t"));
                t.partitions = vec![0, 3];
                let mut r = ElectLeadersRequest::default();
                r.election_type = if v >= 1 { 1 } else { 0 };
                r.topic_partitions = Some(vec![t.clone(), t]);
                r.timeout_ms = 60_000;
                RequestKind::ElectLeaders(r)
            }
            ApiKey::AlterReplicaLogDirs => {
                let mut t = alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default();
                t.name = TopicName(name("t"));
                t.partitions = vec![0, 3];
                let mut d = alter_replica_log_dirs_request::AlterReplicaLogDir::default();
                d.path = name("/data");
                d.topics = vec![t.clone(), t];
                let mut r = AlterReplicaLogDirsRequest::default();
                r.dirs = vec![d.clone(), d];
                RequestKind::AlterReplicaLogDirs(r)
            }
            ApiKey::ListPartitionReassignments => {
                let mut t =
                    list_partition_reassignments_request::ListPartitionReassignmentsTopics::default(
                    );
                t.name = TopicName(name("t"));
                t.partition_indexes = vec![0, 3];
                let mut r = ListPartitionReassignmentsRequest::default();
                r.timeout_ms = 60_000;
                r.topics = Some(vec![t.clone(), t]);
                RequestKind::ListPartitionReassignments(r)
            }
            ApiKey::AlterPartitionReassignments => {
                use alter_partition_reassignments_request::{
                    ReassignablePartition, ReassignableTopic,
                };
                let mut p = ReassignablePartition::default();
                p.partition_index = 2;
                p.replicas = Some(vec![BrokerId(0), BrokerId(1)]);
                let mut t = ReassignableTopic::default();
                t.name = TopicName(name("t"));
                t.partitions = vec![p, ReassignablePartition::default()];
                let mut r = AlterPartitionReassignmentsRequest::default();
                r.timeout_ms = 60_000;
                r.allow_replication_factor_change = v < 1; // its default before v1
                r.topics = vec![t.clone(), t];
                RequestKind::AlterPartitionReassignments(r)
            }
            ApiKey::UpdateFeatures => {
                let mut u = update_features_request::FeatureUpdateKey::default();
                u.feature = name("group.version");
                u.max_version_level = 1;
                let mut r = UpdateFeaturesRequest::default();
                r.timeout_ms = 60_000;
                r.feature_updates = vec![u.clone(), u];
                r.validate_only = v >= 1;
                RequestKind::UpdateFeatures(r)
            }
            ApiKey::ListConfigResources => {
                let mut r = ListConfigResourcesRequest::default();
                if v >= 1 {
                    r.resource_types = vec![2, 32];
                }
                RequestKind::ListConfigResources(r)
            }
            ApiKey::DescribeCluster => {
                let mut r = DescribeClusterRequest::default();
                r.include_cluster_authorized_operations = true;
                if v >= 1 {
                    r.endpoint_type = 1;
                }
                r.include_fenced_brokers = v >= 2;
                RequestKind::DescribeCluster(r)
            }
            ApiKey::DescribeTopicPartitions => {
                use describe_topic_partitions_request::*;
                let mut t = TopicRequest::default();
                t.name = TopicName(name("t"));
                let mut c = Cursor::default();
                c.topic_name = TopicName(name("t"));
                c.partition_index = 3;
                let mut r = DescribeTopicPartitionsRequest::default();
                r.topics = vec![t.clone(), t];
                r.cursor = Some(c);
                RequestKind::DescribeTopicPartitions(r)
            }
            ApiKey::OffsetForLeaderEpoch => {
                use offset_for_leader_epoch_request::*;
                let mut t = OffsetForLeaderTopic::default();
                t.topic = TopicName(name("t"));
                t.partitions = vec![Default::default(), Default::default()];
                let mut r = OffsetForLeaderEpochRequest::default();
                r.topics = vec![t.clone(), t];
                RequestKind::OffsetForLeaderEpoch(r)
            }
            ApiKey::DeleteRecords => {
                let mut t = delete_records_request::DeleteRecordsTopic::default();
                t.name = TopicName(name("t"));
                t.partitions = vec![Default::default(), Default::default()];
                let mut r = DeleteRecordsRequest::default();
                r.topics = vec![t.clone(), t];
                RequestKind::DeleteRecords(r)
            }
            ApiKey::AlterConfigs => {
                use alter_configs_request::{AlterConfigsResource, AlterableConfig};
                let mut c = AlterableConfig::default();
                c.name = name("retention.ms");
                c.value = Some(name("1000"));
                let mut res = AlterConfigsResource::default();
                res.resource_type = 2;
                res.resource_name = name("t");
                res.configs = vec![c.clone(), AlterableConfig::default()];
                let mut r = AlterConfigsRequest::default();
                r.resources = vec![res.clone(), res];
                RequestKind::AlterConfigs(r)
            }
            ApiKey::IncrementalAlterConfigs => {
                use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
                let mut c = AlterableConfig::default();
                c.name = name("retention.ms");
                c.value = Some(name("1000"));
                let mut res = AlterConfigsResource::default();
                res.resource_type = 2;
                res.resource_name = name("t");
                res.configs = vec![c.clone(), c];
                let mut r = IncrementalAlterConfigsRequest::default();
                r.resources = vec![res.clone(), res];
                RequestKind::IncrementalAlterConfigs(r)
            }
            ApiKey::CreatePartitions => {
                let mut a = create_partitions_request::CreatePartitionsAssignment::default();
                a.broker_ids = vec![BrokerId(0), BrokerId(0)];
                let mut t = create_partitions_request::CreatePartitionsTopic::default();
                t.name = TopicName(name("t"));
                t.count = 4;
                t.assignments = Some(vec![a.clone(), a]);
                let mut r = CreatePartitionsRequest::default();
                r.topics = vec![t.clone(), t];
                RequestKind::CreatePartitions(r)
            }
            ApiKey::DescribeConfigs => {
                let mut res = describe_configs_request::DescribeConfigsResource::default();
                res.resource_type = 2;
                res.resource_name = name("t");
                res.configuration_keys = Some(vec![name("a"), name("b")]);
                let mut r = DescribeConfigsRequest::default();
                r.resources = vec![res.clone(), res];
                RequestKind::DescribeConfigs(r)
            }
            ApiKey::DeleteGroups => {
                let mut r = DeleteGroupsRequest::default();
                r.groups_names = vec![GroupId(name("a")), GroupId(name("b"))];
                RequestKind::DeleteGroups(r)
            }
            ApiKey::OffsetDelete => {
                let mut t = offset_delete_request::OffsetDeleteRequestTopic::default();
                t.name = TopicName(name("t"));
                t.partitions = vec![Default::default(), Default::default()];
                let mut r = OffsetDeleteRequest::default();
                r.group_id = GroupId(name("g"));
                r.topics = vec![t.clone(), t];
                RequestKind::OffsetDelete(r)
            }
            ApiKey::ApiVersions => {
                let mut r = ApiVersionsRequest::default();
                if v >= 3 {
                    r.client_software_name = name("gyre-test");
                    r.client_software_version = name("1.0");
                }
                RequestKind::ApiVersions(r)
            }
            ApiKey::SaslHandshake => {
                let mut r = SaslHandshakeRequest::default();
                r.mechanism = name("SCRAM-SHA-256");
                RequestKind::SaslHandshake(r)
            }
            ApiKey::SaslAuthenticate => {
                let mut r = SaslAuthenticateRequest::default();
                r.auth_bytes = bytes::Bytes::from_static(b"n,,n=user,r=nonce");
                RequestKind::SaslAuthenticate(r)
            }
            ApiKey::DescribeUserScramCredentials => {
                let mut u = describe_user_scram_credentials_request::UserName::default();
                u.name = name("alice");
                let mut r = DescribeUserScramCredentialsRequest::default();
                r.users = Some(vec![u.clone(), u]);
                RequestKind::DescribeUserScramCredentials(r)
            }
            ApiKey::AlterUserScramCredentials => {
                let mut d =
                    alter_user_scram_credentials_request::ScramCredentialDeletion::default();
                d.name = name("bob");
                d.mechanism = 1;
                let mut u =
                    alter_user_scram_credentials_request::ScramCredentialUpsertion::default();
                u.name = name("alice");
                u.mechanism = 2;
                u.iterations = 4096;
                u.salt = bytes::Bytes::from_static(b"salt");
                u.salted_password = bytes::Bytes::from_static(b"salted");
                let mut r = AlterUserScramCredentialsRequest::default();
                r.deletions = vec![d.clone(), d];
                r.upsertions = vec![u.clone(), u];
                RequestKind::AlterUserScramCredentials(r)
            }
            ApiKey::ConsumerGroupHeartbeat => {
                let mut tp = consumer_group_heartbeat_request::TopicPartitions::default();
                tp.topic_id = uuid::Uuid::from_u128(5);
                tp.partitions = vec![0, 1];
                let mut r = ConsumerGroupHeartbeatRequest::default();
                r.group_id = GroupId(name("g"));
                r.member_id = name("m");
                r.instance_id = Some(name("i"));
                r.rack_id = Some(name("r"));
                r.subscribed_topic_names = Some(vec![TopicName(name("t")), TopicName(name("u"))]);
                if v >= 1 {
                    r.subscribed_topic_regex = Some(name("t.*"));
                }
                r.server_assignor = Some(name("uniform"));
                r.topic_partitions = Some(vec![tp.clone(), tp]);
                RequestKind::ConsumerGroupHeartbeat(r)
            }
            ApiKey::ConsumerGroupDescribe => {
                let mut r = ConsumerGroupDescribeRequest::default();
                r.group_ids = vec![GroupId(name("g")), GroupId(name("h"))];
                RequestKind::ConsumerGroupDescribe(r)
            }
            ApiKey::ShareGroupHeartbeat => {
                let mut r = ShareGroupHeartbeatRequest::default();
                r.group_id = GroupId(name("g"));
                r.member_id = name("m");
                r.rack_id = Some(name("r"));
                r.subscribed_topic_names = Some(vec![TopicName(name("t")), TopicName(name("u"))]);
                RequestKind::ShareGroupHeartbeat(r)
            }
            ApiKey::ShareGroupDescribe => {
                let mut r = ShareGroupDescribeRequest::default();
                r.group_ids = vec![GroupId(name("g")), GroupId(name("h"))];
                RequestKind::ShareGroupDescribe(r)
            }
            ApiKey::ShareFetch => {
                let mut b = share_fetch_request::AcknowledgementBatch::default();
                b.acknowledge_types = vec![1, 2, 3];
                let mut p = share_fetch_request::FetchPartition::default();
                p.acknowledgement_batches = vec![b.clone(), b];
                let mut t = share_fetch_request::FetchTopic::default();
                t.partitions = vec![p.clone(), p];
                let mut f = share_fetch_request::ForgottenTopic::default();
                f.partitions = vec![1, 2];
                let mut r = ShareFetchRequest::default();
                r.group_id = Some(GroupId(name("g")));
                r.member_id = Some(name("m"));
                r.topics = vec![t.clone(), t];
                r.forgotten_topics_data = vec![f.clone(), f];
                RequestKind::ShareFetch(r)
            }
            ApiKey::ShareAcknowledge => {
                let mut b = share_acknowledge_request::AcknowledgementBatch::default();
                b.acknowledge_types = vec![1];
                let mut p = share_acknowledge_request::AcknowledgePartition::default();
                p.acknowledgement_batches = vec![b.clone(), b];
                let mut t = share_acknowledge_request::AcknowledgeTopic::default();
                t.partitions = vec![p.clone(), p];
                let mut r = ShareAcknowledgeRequest::default();
                r.group_id = Some(GroupId(name("g")));
                r.member_id = Some(name("m"));
                r.topics = vec![t.clone(), t];
                RequestKind::ShareAcknowledge(r)
            }
            ApiKey::DescribeShareGroupOffsets => {
                let mut t = describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestTopic::default();
                t.topic_name = TopicName(name("t"));
                t.partitions = vec![0, 1];
                let mut g = describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup::default();
                g.group_id = GroupId(name("g"));
                g.topics = Some(vec![t.clone(), t]);
                let mut all = g.clone();
                all.topics = None;
                let mut r = DescribeShareGroupOffsetsRequest::default();
                r.groups = vec![g, all];
                RequestKind::DescribeShareGroupOffsets(r)
            }
            ApiKey::AlterShareGroupOffsets => {
                let p = alter_share_group_offsets_request::AlterShareGroupOffsetsRequestPartition::default();
                let mut t =
                    alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic::default(
                    );
                t.topic_name = TopicName(name("t"));
                t.partitions = vec![p.clone(), p];
                let mut r = AlterShareGroupOffsetsRequest::default();
                r.group_id = GroupId(name("g"));
                r.topics = vec![t.clone(), t];
                RequestKind::AlterShareGroupOffsets(r)
            }
            ApiKey::DeleteShareGroupOffsets => {
                let mut t = delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic::default();
                t.topic_name = TopicName(name("t"));
                let mut r = DeleteShareGroupOffsetsRequest::default();
                r.group_id = GroupId(name("g"));
                r.topics = vec![t.clone(), t];
                RequestKind::DeleteShareGroupOffsets(r)
            }
            ApiKey::DescribeAcls => {
                let mut r = DescribeAclsRequest::default();
                r.resource_name_filter = Some(name("t"));
                r.principal_filter = Some(name("User:a"));
                r.host_filter = Some(name("*"));
                RequestKind::DescribeAcls(r)
            }
            ApiKey::CreateAcls => {
                let mut c = create_acls_request::AclCreation::default();
                c.resource_name = name("t");
                c.principal = name("User:a");
                c.host = name("*");
                let mut r = CreateAclsRequest::default();
                r.creations = vec![c.clone(), c];
                RequestKind::CreateAcls(r)
            }
            ApiKey::DeleteAcls => {
                let mut f = delete_acls_request::DeleteAclsFilter::default();
                f.resource_name_filter = Some(name("t"));
                f.principal_filter = Some(name("User:a"));
                let mut r = DeleteAclsRequest::default();
                r.filters = vec![f.clone(), f];
                RequestKind::DeleteAcls(r)
            }
            other => panic!("no sample for {other:?}"),
        }
    }

    fn encode(request: &RequestKind, v: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        macro_rules! enc {
            ($($variant:ident),*) => {
                match request {
                    $(RequestKind::$variant(r) => r
                        .encode(&mut buf, v)
                        .unwrap_or_else(|e| panic!("{} v{v}: {e}", stringify!($variant))),)*
                    _ => unreachable!(),
                }
            };
        }
        enc!(
            Produce,
            Fetch,
            ListOffsets,
            Metadata,
            OffsetCommit,
            OffsetFetch,
            FindCoordinator,
            JoinGroup,
            Heartbeat,
            LeaveGroup,
            SyncGroup,
            CreateTopics,
            DeleteTopics,
            InitProducerId,
            AddPartitionsToTxn,
            AddOffsetsToTxn,
            EndTxn,
            TxnOffsetCommit,
            ListTransactions,
            DescribeTransactions,
            DescribeProducers,
            WriteTxnMarkers,
            DescribeGroups,
            ListGroups,
            DeleteGroups,
            OffsetDelete,
            DescribeConfigs,
            CreatePartitions,
            AlterConfigs,
            IncrementalAlterConfigs,
            DeleteRecords,
            OffsetForLeaderEpoch,
            DescribeTopicPartitions,
            DescribeCluster,
            ListConfigResources,
            ApiVersions,
            SaslHandshake,
            SaslAuthenticate,
            DescribeUserScramCredentials,
            AlterUserScramCredentials,
            DescribeAcls,
            CreateAcls,
            DeleteAcls,
            ConsumerGroupHeartbeat,
            ConsumerGroupDescribe,
            ShareGroupHeartbeat,
            ShareGroupDescribe,
            ShareFetch,
            ShareAcknowledge,
            DescribeShareGroupOffsets,
            AlterShareGroupOffsets,
            DeleteShareGroupOffsets,
            DescribeLogDirs,
            DescribeClientQuotas,
            AlterClientQuotas,
            ElectLeaders,
            UpdateFeatures,
            AlterReplicaLogDirs,
            ListPartitionReassignments,
            AlterPartitionReassignments
        );
        buf.to_vec()
    }

    /// A walk that agrees with the encoder ends exactly at the body's end.
    #[test]
    fn walks_every_supported_version_as_kafka_protocol_encodes_it() {
        for r in SUPPORTED {
            for v in r.min..=r.max {
                let body = encode(&populated(r.key, v), v);
                let end = walk(r.key, v, &body).unwrap_or_else(|e| panic!("{:?} v{v}: {e}", r.key));
                assert_eq!(end, body.len(), "{:?} v{v}: the walk ended early", r.key);
            }
        }
    }

    #[test]
    fn refuses_counts_the_bytes_left_cannot_hold() {
        // The fuzzer's find: Metadata v0 claiming 0x80004900 topics.
        let body = [0x80, 0x00, 0x49, 0x00, 0, 0, 0, 0x80, 0x00, 0x49, 0x00];
        assert_eq!(
            check(ApiKey::Metadata, 0, &body),
            Err(ShapeError::Negative {
                at: 0,
                length: i64::from(i32::from_be_bytes([0x80, 0, 0x49, 0]))
            })
        );
        let body = [0x10, 0, 0, 0, 0, 0];
        assert_eq!(
            check(ApiKey::Metadata, 1, &body),
            Err(ShapeError::ImpossibleCount {
                at: 0,
                count: 0x1000_0000,
                left: 2
            })
        );
        // A nested count: one topic named "t" with a billion partitions.
        let mut body = vec![0xff, 0xff, 0, 1, 0, 0, 0, 0]; // no tx id, acks 1, timeout 0
        body.extend_from_slice(&[0, 0, 0, 1, 0, 1, b't', 0x3b, 0x9a, 0xca, 0x00]);
        assert!(matches!(
            check(ApiKey::Produce, 3, &body),
            Err(ShapeError::ImpossibleCount {
                count: 1_000_000_000,
                ..
            })
        ));
        // The same in a flexible version: a compact count of 2^28 topics,
        // then a tagged-field count no body could hold.
        let body = [0x81, 0x80, 0x80, 0x80, 0x01, 0, 0];
        assert!(matches!(
            check(ApiKey::Metadata, 9, &body),
            Err(ShapeError::ImpossibleCount {
                count: 0x1000_0000,
                ..
            })
        ));
        assert!(matches!(
            check(
                ApiKey::Heartbeat,
                4,
                &[2, b'g', 0, 0, 0, 1, 2, b'm', 1, 0x7f]
            ),
            Err(ShapeError::Truncated { .. }) | Err(ShapeError::ImpossibleCount { .. })
        ));
        assert_eq!(
            check(ApiKey::Metadata, 9, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(ShapeError::BadVarint { at: 0 })
        );
    }
}
