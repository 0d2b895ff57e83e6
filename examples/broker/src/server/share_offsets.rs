//! The share groups' start-offset admin APIs (KIP-932):
//! DescribeShareGroupOffsets, AlterShareGroupOffsets and
//! DeleteShareGroupOffsets, read into the log writer's [`OffsetsJob`]
//! (topics named by name resolved to ids, each refused topic marked with
//! its error) and answered in the request's shape from the group
//! coordinator's verdicts on its groups (a group of another kind, one
//! with members) and the writer's [`OffsetsAnswer`]. Plain functions
//! over `kafka-protocol`'s messages and the share groups' job types.

use super::groups::GroupVerdicts;
use crate::protocol::error_code as ec;
use crate::share::job::{OffsetsAnswer, OffsetsJob, SharePart};
use kafka_protocol::messages::{
    alter_share_group_offsets_response as alter, delete_share_group_offsets_response as delete,
    describe_share_group_offsets_response as describe, AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponse, DescribeShareGroupOffsetsResponse, GroupId, RequestKind,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

/// A topic as the request named it: its name, its id (nil if unknown),
/// the error that refused it before the writer (0: none), and the
/// partitions asked (empty: the whole topic, for Delete).
#[derive(Clone, Debug)]
pub struct TopicAsked {
    name: TopicName,
    id: Uuid,
    early: i16,
    partitions: Vec<i32>,
}

/// What was asked, as far as the answer needs it.
#[derive(Debug)]
enum Asked {
    /// Per group: its id and, unless it asked for all, its topics.
    Describe(Vec<(GroupId, Option<Vec<TopicAsked>>)>),
    /// The topics altered.
    Alter(Vec<TopicAsked>),
    /// The topics deleted.
    Delete(Vec<TopicAsked>),
}

/// What an answer needs of its request: what it asked, and the group
/// coordinator's verdict on each of its groups.
#[derive(Debug)]
pub struct Layout {
    asked: Asked,
    /// Per group asked, in order, its refusal (`None`: the writer's
    /// answer stands); empty until the coordinator has spoken.
    verdicts: GroupVerdicts,
}

impl Layout {
    fn new(asked: Asked) -> Self {
        Layout {
            asked,
            verdicts: Vec::new(),
        }
    }

    /// Takes the coordinator's `verdicts` on the groups and leaves in
    /// `job` only the groups they let through; whether any are left for
    /// the writer.
    pub fn take_verdicts(&mut self, job: &mut OffsetsJob, verdicts: GroupVerdicts) -> bool {
        let passed = |i: usize| verdicts.get(i).is_none_or(Option::is_none);
        let left = match job {
            OffsetsJob::Describe(groups) => {
                let mut i = 0;
                groups.retain(|_| {
                    i += 1;
                    passed(i - 1)
                });
                !groups.is_empty()
            }
            OffsetsJob::Alter { .. } | OffsetsJob::Delete { .. } => passed(0),
        };
        self.verdicts = verdicts;
        left
    }

    /// The answer standing in for the writer's when every group was
    /// refused.
    pub fn nothing(&self) -> OffsetsAnswer {
        match self.asked {
            Asked::Describe(_) => OffsetsAnswer::Described(Vec::new()),
            Asked::Alter(_) => OffsetsAnswer::Altered(Ok(Vec::new())),
            Asked::Delete(_) => OffsetsAnswer::Deleted(Ok(Vec::new())),
        }
    }

    /// The refusal of group `i`, if the coordinator refused it.
    fn refusal(&self, i: usize) -> Option<(i16, StrBytes)> {
        let (code, message) = self.verdicts.get(i)?.as_ref()?;
        Some((*code, StrBytes::from_string(message.clone())))
    }
}

/// How the connection resolves what a request names: a topic's name to
/// its id (or the refusal's error code), and a topic id and index to the
/// partition (`None` in it: no such partition).
pub struct Resolve<'a> {
    /// A topic by name.
    pub topic: &'a dyn Fn(&str) -> Result<Uuid, i16>,
    /// A partition of a topic by id.
    pub part: &'a dyn Fn(Uuid, i32) -> SharePart,
}

fn asked(resolve: &Resolve<'_>, name: &TopicName, partitions: Vec<i32>) -> TopicAsked {
    let (id, early) = match (resolve.topic)(name.0.as_str()) {
        Ok(id) => (id, 0),
        Err(code) => (Uuid::nil(), code),
    };
    TopicAsked {
        name: name.clone(),
        id,
        early,
        partitions,
    }
}

/// A refused topic's partitions go to the writer as unknown ones.
fn parts(resolve: &Resolve<'_>, t: &TopicAsked) -> Vec<SharePart> {
    t.partitions
        .iter()
        .map(|&index| match t.early {
            0 => (resolve.part)(t.id, index),
            _ => SharePart {
                topic_id: t.id,
                index,
                partition: None,
            },
        })
        .collect()
}

/// The writer's job and the answer's layout for a share-offsets request;
/// `None` for any other request.
pub fn job(request: &RequestKind, resolve: &Resolve<'_>) -> Option<(OffsetsJob, Layout)> {
    Some(match request {
        RequestKind::DescribeShareGroupOffsets(r) => {
            let mut groups = Vec::new();
            let mut layout = Vec::new();
            for g in &r.groups {
                let topics = g.topics.as_ref().map(|topics| {
                    topics
                        .iter()
                        .map(|t| asked(resolve, &t.topic_name, t.partitions.clone()))
                        .collect::<Vec<_>>()
                });
                let wanted = topics
                    .as_ref()
                    .map(|ts| ts.iter().flat_map(|t| parts(resolve, t)).collect());
                groups.push((g.group_id.0.as_str().to_owned(), wanted));
                layout.push((g.group_id.clone(), topics));
            }
            (
                OffsetsJob::Describe(groups),
                Layout::new(Asked::Describe(layout)),
            )
        }
        RequestKind::AlterShareGroupOffsets(r) => {
            let topics: Vec<TopicAsked> = r
                .topics
                .iter()
                .map(|t| {
                    let indexes = t.partitions.iter().map(|p| p.partition_index).collect();
                    asked(resolve, &t.topic_name, indexes)
                })
                .collect();
            let mut all = Vec::new();
            for (t, asked) in r.topics.iter().zip(&topics) {
                let offsets = t.partitions.iter().map(|p| p.start_offset);
                all.extend(parts(resolve, asked).into_iter().zip(offsets));
            }
            let job = OffsetsJob::Alter {
                group: r.group_id.0.as_str().to_owned(),
                parts: all,
            };
            (job, Layout::new(Asked::Alter(topics)))
        }
        RequestKind::DeleteShareGroupOffsets(r) => {
            let topics: Vec<TopicAsked> = r
                .topics
                .iter()
                .map(|t| asked(resolve, &t.topic_name, Vec::new()))
                .collect();
            let job = OffsetsJob::Delete {
                group: r.group_id.0.as_str().to_owned(),
                topics: topics
                    .iter()
                    .filter(|t| t.early == 0)
                    .map(|t| t.id)
                    .collect(),
            };
            (job, Layout::new(Asked::Delete(topics)))
        }
        _ => return None,
    })
}

fn message(code: i16) -> Option<StrBytes> {
    (code != 0).then(|| {
        StrBytes::from_static_str(match code {
            ec::NON_EMPTY_GROUP => "The group is not empty.",
            ec::KAFKA_STORAGE_ERROR => "The share group's state could not be written.",
            ec::OFFSET_OUT_OF_RANGE => "The offset is outside the partition's log.",
            ec::UNKNOWN_TOPIC_OR_PARTITION => "The topic or partition does not exist.",
            ec::TOPIC_AUTHORIZATION_FAILED => "Not authorized on the topic.",
            _ => "The request failed.",
        })
    })
}

/// The name of the topic of an id, by the catalog (`None`: deleted).
pub type NameOf<'a> = &'a dyn Fn(Uuid) -> Option<String>;

/// The answer to a share-offsets request laid out as `layout`; `None`
/// if the writer's answer is of another kind.
pub fn answer(layout: &Layout, answer: OffsetsAnswer, name_of: NameOf<'_>) -> Option<Answered> {
    Some(match (&layout.asked, answer) {
        (Asked::Describe(groups), OffsetsAnswer::Described(results)) => {
            let mut r = DescribeShareGroupOffsetsResponse::default();
            let mut results = results.into_iter();
            for (i, (group_id, topics)) in groups.iter().enumerate() {
                let mut g = describe::DescribeShareGroupOffsetsResponseGroup::default();
                g.group_id = group_id.clone();
                match layout.refusal(i) {
                    Some((code, why)) => (g.error_code, g.error_message) = (code, Some(why)),
                    None => g.topics = described(topics.as_deref(), results.next()?, name_of),
                }
                r.groups.push(g);
            }
            Answered::Describe(r)
        }
        (Asked::Alter(_), _) | (Asked::Delete(_), _) if layout.refusal(0).is_some() => {
            let (code, why) = layout.refusal(0)?;
            match layout.asked {
                Asked::Alter(_) => {
                    let mut r = AlterShareGroupOffsetsResponse::default();
                    (r.error_code, r.error_message) = (code, Some(why));
                    Answered::Alter(r)
                }
                _ => {
                    let mut r = DeleteShareGroupOffsetsResponse::default();
                    (r.error_code, r.error_message) = (code, Some(why));
                    Answered::Delete(r)
                }
            }
        }
        (Asked::Alter(topics), OffsetsAnswer::Altered(result)) => {
            let mut r = AlterShareGroupOffsetsResponse::default();
            match result {
                Err(code) => {
                    r.error_code = code;
                    r.error_message = message(code);
                }
                Ok(found) => {
                    let mut found = found.into_iter();
                    for t in topics {
                        let mut rt = alter::AlterShareGroupOffsetsResponseTopic::default();
                        rt.topic_name = t.name.clone();
                        rt.topic_id = t.id;
                        for _ in &t.partitions {
                            let Some((_, index, code)) = found.next() else {
                                break;
                            };
                            let code = if t.early != 0 { t.early } else { code };
                            let mut p = alter::AlterShareGroupOffsetsResponsePartition::default();
                            p.partition_index = index;
                            p.error_code = code;
                            p.error_message = message(code);
                            rt.partitions.push(p);
                        }
                        r.responses.push(rt);
                    }
                }
            }
            Answered::Alter(r)
        }
        (Asked::Delete(topics), OffsetsAnswer::Deleted(result)) => {
            let mut r = DeleteShareGroupOffsetsResponse::default();
            match result {
                Err(code) => {
                    r.error_code = code;
                    r.error_message = message(code);
                }
                Ok(found) => {
                    let mut found = found.into_iter();
                    for t in topics {
                        let code = match t.early {
                            0 => found.next().map_or(ec::NONE, |(_, code)| code),
                            early => early,
                        };
                        let mut rt = delete::DeleteShareGroupOffsetsResponseTopic::default();
                        rt.topic_name = t.name.clone();
                        rt.topic_id = t.id;
                        rt.error_code = code;
                        rt.error_message = message(code);
                        r.responses.push(rt);
                    }
                }
            }
            Answered::Delete(r)
        }
        _ => return None,
    })
}

/// A group's described topics: those asked, in order, or every one it
/// has state for, named by the catalog.
fn described(
    asked: Option<&[TopicAsked]>,
    found: Vec<crate::share::job::PartStart>,
    name_of: NameOf<'_>,
) -> Vec<describe::DescribeShareGroupOffsetsResponseTopic> {
    let partition = |index: i32, start: Result<i64, i16>, early: i16| {
        let mut p = describe::DescribeShareGroupOffsetsResponsePartition::default();
        p.partition_index = index;
        p.leader_epoch = -1;
        let code = if early != 0 {
            early
        } else {
            start.err().unwrap_or(0)
        };
        p.start_offset = if code == 0 { start.unwrap_or(-1) } else { -1 };
        p.error_code = code;
        p.error_message = message(code);
        p
    };
    let mut out: Vec<describe::DescribeShareGroupOffsetsResponseTopic> = Vec::new();
    match asked {
        Some(topics) => {
            let mut found = found.into_iter();
            for t in topics {
                let mut rt = describe::DescribeShareGroupOffsetsResponseTopic::default();
                rt.topic_name = t.name.clone();
                rt.topic_id = t.id;
                for _ in &t.partitions {
                    if let Some((_, index, start)) = found.next() {
                        rt.partitions.push(partition(index, start, t.early));
                    }
                }
                out.push(rt);
            }
        }
        None => {
            for (id, index, start) in found {
                // A topic deleted since: its state is left out.
                let Some(name) = name_of(id) else { continue };
                match out.iter_mut().find(|t| t.topic_id == id) {
                    Some(t) => t.partitions.push(partition(index, start, 0)),
                    None => {
                        let mut rt = describe::DescribeShareGroupOffsetsResponseTopic::default();
                        rt.topic_name = TopicName(StrBytes::from_string(name));
                        rt.topic_id = id;
                        rt.partitions.push(partition(index, start, 0));
                        out.push(rt);
                    }
                }
            }
        }
    }
    out
}

/// An encoded-to-be answer of one of the three APIs.
#[derive(Debug)]
pub enum Answered {
    /// DescribeShareGroupOffsets.
    Describe(DescribeShareGroupOffsetsResponse),
    /// AlterShareGroupOffsets.
    Alter(AlterShareGroupOffsetsResponse),
    /// DeleteShareGroupOffsets.
    Delete(DeleteShareGroupOffsetsResponse),
}
