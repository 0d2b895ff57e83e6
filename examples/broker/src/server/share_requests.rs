//! ShareFetch and ShareAcknowledge as the log writer takes them: each
//! request's partitions resolved (or refused) and its acknowledgement
//! batches read into [`ShareFetchJob`]. Plain functions over
//! `kafka-protocol`'s requests and the share groups' job types.

use crate::share::job::{PartAcks, ShareFetchJob, SharePart};
use crate::share::partition::Acknowledgement;
use kafka_protocol::messages::{share_acknowledge_request, share_fetch_request, RequestKind};
use std::time::Duration;
use uuid::Uuid;

/// A partition answered before the writer saw the request: topic id,
/// index, error code.
pub type Refused = (Uuid, i32, i16);

/// One acknowledgement batch's fields.
type Batch<'a> = (i64, i64, &'a [i8]);

/// One partition's acknowledgement batches (an unknown type refuses the
/// partition's acknowledgements).
fn acks<'a>(part: SharePart, batches: impl Iterator<Item = Batch<'a>>) -> PartAcks {
    let ranges = batches
        .map(|(first, last, types)| {
            let types = types
                .iter()
                .map(|&t| Acknowledgement::from_wire(t).ok_or(t))
                .collect::<Result<Vec<_>, i8>>()?;
            Ok((first, last, types))
        })
        .collect();
    PartAcks { part, ranges }
}

fn fetch_batch(b: &share_fetch_request::AcknowledgementBatch) -> Batch<'_> {
    (b.first_offset, b.last_offset, &b.acknowledge_types)
}

fn ack_batch(b: &share_acknowledge_request::AcknowledgementBatch) -> Batch<'_> {
    (b.first_offset, b.last_offset, &b.acknowledge_types)
}

/// The writer's job for a ShareFetch or ShareAcknowledge, with the
/// partitions `resolve` refused; `None` for any other request.
pub fn job(
    request: &RequestKind,
    resolve: impl Fn(Uuid, i32) -> Result<SharePart, i16>,
) -> Option<(ShareFetchJob, Vec<Refused>)> {
    let mut refused = Vec::new();
    let mut add = Vec::new();
    let mut part_acks = Vec::new();
    let mut take = |topic_id: Uuid, index: i32, fetched: bool| match resolve(topic_id, index) {
        Ok(part) => {
            if fetched {
                add.push(part);
            }
            Some(part)
        }
        Err(code) => {
            refused.push((topic_id, index, code));
            None
        }
    };
    let (group, member, epoch) = match request {
        RequestKind::ShareFetch(r) => {
            for t in &r.topics {
                for p in &t.partitions {
                    let Some(part) = take(t.topic_id, p.partition_index, true) else {
                        continue;
                    };
                    if !p.acknowledgement_batches.is_empty() {
                        part_acks.push(acks(
                            part,
                            p.acknowledgement_batches.iter().map(fetch_batch),
                        ));
                    }
                }
            }
            (&r.group_id, &r.member_id, r.share_session_epoch)
        }
        RequestKind::ShareAcknowledge(r) => {
            for t in &r.topics {
                for p in &t.partitions {
                    if let Some(part) = take(t.topic_id, p.partition_index, false) {
                        part_acks.push(acks(part, p.acknowledgement_batches.iter().map(ack_batch)));
                    }
                }
            }
            (&r.group_id, &r.member_id, r.share_session_epoch)
        }
        _ => return None,
    };
    let mut job = ShareFetchJob {
        group: group
            .as_ref()
            .map_or_else(String::new, |g| g.0.as_str().to_owned()),
        member: member
            .as_ref()
            .map_or_else(String::new, |m| m.as_str().to_owned()),
        session_epoch: epoch,
        add,
        forget: Vec::new(),
        acks: part_acks,
        fetch: false,
        max_records: 0,
        max_bytes: 0,
        max_wait: Duration::ZERO,
    };
    if let RequestKind::ShareFetch(r) = request {
        job.forget = r
            .forgotten_topics_data
            .iter()
            .flat_map(|t| t.partitions.iter().map(|&i| (t.topic_id, i)))
            .collect();
        job.fetch = r.max_records > 0;
        job.max_records = r.max_records.max(0) as usize;
        job.max_bytes = if r.max_bytes > 0 {
            r.max_bytes as u64
        } else {
            u64::MAX
        };
        job.max_wait = Duration::from_millis(r.max_wait_ms.max(0) as u64);
    }
    Some((job, refused))
}
