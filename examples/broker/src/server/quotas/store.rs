//! The client quotas configured, in one append-only
//! [`crate::record_file`] (`<data>/client-quotas.log`): a
//! record per entity each time its quotas change (all of them, as set
//! after the change; none is a tombstone), written and fdatasynced before
//! AlterClientQuotas is answered. The newest record per entity wins at
//! start; the file is rewritten compactly when it holds many more records
//! than entities. Kafka keeps the same in its metadata log.

use super::entity::{Entity, Part};
use crate::record_file::{self, get_str, put_str, RecordFile};
use bytes::{Buf, BufMut};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;

/// An entity's quotas: each kind's name and its value.
pub type Values = BTreeMap<String, f64>;

/// The file.
#[derive(Debug)]
pub struct QuotaStore {
    file: RecordFile,
    records: usize,
}

impl QuotaStore {
    /// Opens (or creates) `<dir>/client-quotas.log`; returns it and every
    /// entity's quotas.
    pub fn open(dir: &Path) -> io::Result<(Self, HashMap<Entity, Values>)> {
        let path = dir.join("client-quotas.log");
        let (file, records, all) = record_file::open_keyed(&path, |payload| {
            let (entity, values) = decode(payload)?;
            Some((entity, (!values.is_empty()).then_some(values)))
        })?;
        let mut store = QuotaStore { file, records };
        if record_file::worth_compacting(store.records, all.len()) {
            store.rewrite(&all)?;
        }
        Ok((store, all))
    }

    /// Records `values` as `entity`'s quotas (none: it has no quota left):
    /// one write and an fdatasync. Rewrites the file once it is mostly
    /// superseded records (`all` is every entity's quotas after this).
    pub fn save(
        &mut self,
        entity: &Entity,
        values: &Values,
        all: &HashMap<Entity, Values>,
    ) -> io::Result<()> {
        if self.file.broken() {
            // Written whole again, `entity`'s new quotas with the rest.
            return self.rewrite(all);
        }
        let mut buf = Vec::new();
        encode(&mut buf, entity, values);
        self.file.append_synced(&buf)?;
        self.records += 1;
        if record_file::worth_compacting(self.records, all.len()) {
            self.rewrite(all)?;
        }
        Ok(())
    }

    fn rewrite(&mut self, all: &HashMap<Entity, Values>) -> io::Result<()> {
        let mut buf = Vec::new();
        for (entity, values) in all {
            encode(&mut buf, entity, values);
        }
        self.file.rewrite(&buf)?;
        self.records = all.len();
        Ok(())
    }
}

fn put_part(buf: &mut Vec<u8>, part: &Option<Part>) {
    match part {
        None => buf.put_u8(0),
        Some(Part::Default) => buf.put_u8(1),
        Some(Part::Named(n)) => {
            buf.put_u8(2);
            put_str(buf, Some(n));
        }
    }
}

fn get_part(p: &mut &[u8]) -> Option<Option<Part>> {
    if p.is_empty() {
        return None;
    }
    Some(match p.get_u8() {
        0 => None,
        1 => Some(Part::Default),
        2 => Some(Part::Named(get_str(p)??)),
        _ => return None,
    })
}

/// The first byte of an IP entity's record, where a user/client record
/// has its user part's tag (0 to 2): records written before IP quotas
/// read as they did.
const IP_RECORD: u8 = 3;

fn encode(buf: &mut Vec<u8>, entity: &Entity, values: &Values) {
    let start = record_file::begin(buf);
    if entity.is_ip() {
        buf.put_u8(IP_RECORD);
        put_part(buf, &entity.ip);
    } else {
        put_part(buf, &entity.user);
        put_part(buf, &entity.client);
    }
    buf.put_u32(values.len() as u32);
    for (key, value) in values {
        put_str(buf, Some(key));
        buf.put_f64(*value);
    }
    record_file::finish(buf, start);
}

fn decode(mut p: &[u8]) -> Option<(Entity, Values)> {
    let entity = if p.first() == Some(&IP_RECORD) {
        p.advance(1);
        Entity {
            ip: Some(get_part(&mut p)??),
            ..Entity::default()
        }
    } else {
        Entity {
            user: get_part(&mut p)?,
            client: get_part(&mut p)?,
            ip: None,
        }
    };
    if p.len() < 4 {
        return None;
    }
    let mut values = Values::new();
    for _ in 0..p.get_u32() {
        let key = get_str(&mut p)??;
        if p.len() < 8 {
            return None;
        }
        values.insert(key, p.get_f64());
    }
    p.is_empty().then_some((entity, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_survive_a_reopen_the_newest_wins_and_cuts_are_refused() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-quotas-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let alice = Entity {
            user: Some(Part::Named("alice".into())),
            client: Some(Part::Default),
            ip: None,
        };
        let clients = Entity {
            user: None,
            client: Some(Part::Default),
            ip: None,
        };
        let local = Entity {
            ip: Some(Part::Named("127.0.0.1".into())),
            ..Entity::default()
        };
        let values = |pairs: &[(&str, f64)]| -> Values {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        {
            let (mut store, all) = QuotaStore::open(&dir).unwrap();
            assert!(all.is_empty());
            let mut all = HashMap::new();
            for (e, v) in [
                (&alice, values(&[("producer_byte_rate", 1024.0)])),
                (&clients, values(&[("consumer_byte_rate", 2048.0)])),
                (
                    &alice,
                    values(&[("producer_byte_rate", 4096.0), ("consumer_byte_rate", 1.5)]),
                ),
                (&clients, values(&[])),
                (&local, values(&[("connection_creation_rate", 5.0)])),
            ] {
                if v.is_empty() {
                    all.remove(e);
                } else {
                    all.insert(e.clone(), v.clone());
                }
                store.save(e, &v, &all).unwrap();
            }
        }
        let (_, all) = QuotaStore::open(&dir).unwrap();
        assert_eq!(all.len(), 2, "the default's quotas were removed");
        assert_eq!(all[&local], values(&[("connection_creation_rate", 5.0)]));
        assert_eq!(
            all[&alice],
            values(&[("producer_byte_rate", 4096.0), ("consumer_byte_rate", 1.5)])
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let mut buf = Vec::new();
        encode(&mut buf, &alice, &all[&alice]);
        let payload = &buf[8..]; // past the record's length and CRC
        assert!(decode(payload).is_some());
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_none(), "cut at {cut}");
        }
        let mut buf = Vec::new();
        encode(&mut buf, &local, &all[&local]);
        let payload = &buf[8..];
        assert_eq!(decode(payload), Some((local.clone(), all[&local].clone())));
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_none(), "ip record cut at {cut}");
        }
    }
}
