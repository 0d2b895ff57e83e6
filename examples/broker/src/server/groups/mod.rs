//! The group coordinator: one thread that owns every consumer group's
//! membership and the committed offsets, and runs the transaction
//! coordinator beside them (a transaction commits group offsets). Group
//! and transaction requests reach it from the loops through a channel
//! (they are rare next to produce and fetch) and it answers through each
//! connection's `ChannelHandle`; JoinGroup and SyncGroup answers wait here
//! until their rebalance phase completes. Groups of the classic protocol
//! (`group`) and of the consumer group protocol (`consumer_group`, KIP-848)
//! share the ids' namespace and the committed offsets. Share groups'
//! membership (`share_group`, KIP-932) is here too; their records'
//! delivery is on the log writer ([`crate::share`]), which hears from
//! here who joins and leaves, and checks the share-offsets requests the
//! coordinator hands on to it ([`ToWriter`]). Groups of all three kinds
//! are kept across restarts as Kafka keeps them (`group_store`), and
//! their own configs (sessions, heartbeats) are read from the writer's
//! published copy. Transaction markers go from here to the log writer,
//! and its word that they are written comes back on a channel of its own.

mod activity_file;
mod assignor;
mod call;
mod consumer_group;
mod consumer_heartbeat;
mod embedded;
mod group;
mod group_store;
mod mixed;
mod offset_fetch;
pub mod offsets;
pub mod share_group;
mod wall_clock;

use super::refusals::{self, Refusal};
use super::sequencer::{Frame, Sequenced};
use super::transactions::{OpenAtStart, Transactions};
use crate::config::ConsumerGroupSettings;
use crate::ops::MarkersWritten;
use crate::protocol::error_code as ec;
use crate::share::group_config::{GroupConfig, GroupDefaults};
use crate::writer::{LogReply, Submitter};
use bytes::Bytes;
pub use call::Call;
use consumer_group::ConsumerGroup;
use consumer_heartbeat::Beat;
use crossbeam_channel::{Receiver, Sender};
use group::{refuse_join, Client, Group, Member, State};
use group_store::GroupStore;
use gyre_reactor::ChannelHandle;
use gyre_ringbuffer::panic_message;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    EndTxnResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, RequestKind, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use offsets::{Committed, OffsetStore};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A group request on its way to the coordinator.
#[derive(Debug)]
pub struct GroupCall {
    /// Under its client's request quota, where the coordinator adds the
    /// time (ns) it spent on the request, for the quota to count.
    pub busy: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    /// The decoded request.
    pub request: RequestKind,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The request's version.
    pub version: i16,
    /// The connection.
    pub handle: ChannelHandle<Sequenced>,
    /// The request's place in the connection's order.
    pub seq: u64,
    /// The request header's client id (JoinGroup and ConsumerGroupHeartbeat
    /// only; empty otherwise).
    pub client_id: Bytes,
    /// The connection's peer, if the socket still knows it.
    pub peer: Option<std::net::SocketAddr>,
    /// Topics of an OffsetCommit or TxnOffsetCommit the principal may not
    /// read, or of an AddPartitionsToTxn it may not write, or of a
    /// ConsumerGroupHeartbeat's subscription it may not describe, or the
    /// transactional ids of a DescribeTransactions it may not describe
    /// (the ACLs' verdict): answered as refused, not committed, added or
    /// described.
    pub denied_topics: Vec<String>,
    /// For ListGroups and ListTransactions with the authorizer on: who
    /// asks, so only the groups or transactional ids they may describe
    /// are listed; for a group describe, so it can say what they may do
    /// to each group.
    pub visible: Option<GroupAccess>,
    /// The throttle (ms) the request's time on its loop earned under its
    /// client's request quota, for the answer to carry.
    pub throttle_ms: i32,
    /// For a request the log writer serves once the coordinator has
    /// checked its groups: how it goes on (the coordinator answers
    /// nothing itself).
    pub to_writer: Option<ToWriter>,
}

/// Who asks a request, as far as the coordinator needs to know: the
/// parts of a [`GroupCall`] beside the request and where its answer goes.
#[derive(Debug)]
struct Asker {
    client_id: Bytes,
    peer: Option<std::net::SocketAddr>,
    denied_topics: Vec<String>,
    visible: Option<GroupAccess>,
    to_writer: Option<ToWriter>,
}

/// The coordinator's word on each group a share-offsets request names,
/// in the request's order: `None` to go on to the log writer, which
/// holds the start offsets, or the refusal (error code and Kafka's
/// message).
pub type GroupVerdicts = Vec<Option<(i16, String)>>;

/// How a request the coordinator checks and the log writer serves goes
/// on (DescribeShareGroupOffsets, AlterShareGroupOffsets,
/// DeleteShareGroupOffsets): the connection's own submission of its job
/// and answer, given the coordinator's verdicts, which answers the
/// request in its place in the connection's order.
///
/// ```
/// use gyre_broker::server::groups::ToWriter;
///
/// let go_on = ToWriter::new(|verdicts| assert_eq!(verdicts, [None]));
/// go_on.run(vec![None]);
/// ```
pub struct ToWriter(Box<dyn FnOnce(GroupVerdicts) + Send>);

impl ToWriter {
    /// `go_on`, to be run with the coordinator's verdicts.
    pub fn new(go_on: impl FnOnce(GroupVerdicts) + Send + 'static) -> Self {
        ToWriter(Box::new(go_on))
    }

    /// Goes on with `verdicts`.
    pub fn run(self, verdicts: GroupVerdicts) {
        (self.0)(verdicts)
    }
}

impl std::fmt::Debug for ToWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToWriter")
    }
}

/// A principal and the ACLs that say which groups it may see.
#[derive(Debug)]
pub struct GroupAccess {
    /// The ACLs.
    pub acls: std::sync::Arc<crate::security::Authorizer>,
    /// `User:<name>`.
    pub principal: String,
    /// The client's address.
    pub host: String,
}

/// What a principal may do to group `name`, as Kafka's bit set of
/// operation codes (a describe's `authorized_operations`): the group
/// operations (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS)
/// `access` allows; all of them with the authorizer off (`None`).
pub fn group_operations(access: Option<&GroupAccess>, name: &str) -> i32 {
    use crate::security::acl::{op, resource};
    op::bits(&op::ON_GROUP, |o| {
        access.is_none_or(|a| {
            a.acls
                .allows(&a.principal, &a.host, o, resource::GROUP, name)
        })
    })
}

impl GroupAccess {
    /// Whether the principal may describe the `resource_type` resource
    /// `name` (a group, a transactional id).
    fn may_describe(&self, resource_type: i8, name: &str) -> bool {
        use crate::security::acl::op;
        self.acls.allows(
            &self.principal,
            &self.host,
            op::DESCRIBE,
            resource_type,
            name,
        )
    }
}

enum Msg {
    Call(Box<GroupCall>),
    /// These topics were deleted.
    TopicsDeleted(Vec<String>),
    Stop,
}

/// What the transaction coordinator needs from the rest of the broker
/// (`R`: the writer's reply type, which the coordinator never sends).
pub struct TxnWiring<R: LogReply> {
    /// The topics, to resolve a transaction's partitions.
    pub catalog: std::sync::Arc<crate::topics::Catalog>,
    /// Producer ids, shared with idempotent producers.
    pub producer_ids: std::sync::Arc<crate::producer_ids::ProducerIds>,
    /// Where markers are written.
    pub writer: Submitter<R>,
    /// Transactions the partitions found open at start.
    pub open_at_start: Vec<OpenAtStart>,
    /// When the transactions' decisions are synced: as the logs are.
    pub flush: crate::writer::FlushPolicy,
    /// Told if the thread fails outside a request (a request's panic
    /// only answers that request `UNKNOWN_SERVER_ERROR`).
    pub health: crate::health::BrokerHealth,
}

/// The coordinator has stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the group coordinator has stopped")]
pub struct Stopped;

/// Sends requests to the coordinator thread.
#[derive(Clone, Debug)]
pub struct Coordinator {
    tx: Sender<Msg>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Call(_) => "Call",
            Msg::TopicsDeleted(_) => "TopicsDeleted",
            Msg::Stop => "Stop",
        })
    }
}

impl Coordinator {
    /// Loads the committed offsets, the groups and the transactions'
    /// state from `data_dir`, finishes what a stop left of the
    /// transactions (see [`Transactions::recover`]), and starts the
    /// thread.
    pub fn start<R: LogReply>(
        data_dir: &Path,
        wiring: TxnWiring<R>,
        consumer_settings: ConsumerGroupSettings,
        share_settings: crate::config::ShareGroupSettings,
        (group_configs, group_defaults): (crate::share::GroupConfigs, GroupDefaults),
    ) -> std::io::Result<(Self, JoinHandle<()>)> {
        let mut offsets = OffsetStore::open(data_dir)?;
        let catalog = wiring.catalog.clone();
        // Offsets a folder kept for topics deleted before they were
        // dropped with them.
        let stale = offsets.keys_of_topics(|t| catalog.get(t).is_none());
        if offsets.delete(&stale)? > 0 {
            tracing::info!(
                offsets = stale.len(),
                "deleted committed offsets of topics that no longer exist"
            );
        }
        let topics = consumer_heartbeat::catalog_topics(&catalog);
        let (store, restored) = GroupStore::open(data_dir, &topics, Instant::now())?;
        let (consumer, classic, share) = (
            restored.consumer.len(),
            restored.classic.len(),
            restored.share.len(),
        );
        if consumer + classic + share > 0 {
            tracing::info!(consumer, classic, share, "groups restored");
        }
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let mut txns = Transactions::open(
            data_dir,
            wiring.flush,
            wiring.catalog,
            wiring.producer_ids,
            done_tx,
        )?;
        txns.recover(wiring.open_at_start, &mut offsets);
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut st = State_ {
            groups: restored
                .classic
                .into_iter()
                .map(|g| (g.id.clone(), g))
                .collect(),
            consumer: restored
                .consumer
                .into_iter()
                .map(|g| (g.id.clone(), g))
                .collect(),
            share: HashMap::new(),
            share_settings,
            group_configs,
            group_defaults,
            store,
            consumer_settings,
            catalog,
            topics_cache: Default::default(),
            offsets,
            txns,
            writer: wiring.writer,
            ending: HashMap::new(),
            last_expiry: None,
            requests_handled: 0,
        };
        let health = wiring.health;
        // A group over its bound (lowered since) rebalances, so that the
        // members that rejoin last are left out, as Kafka does.
        let now = Instant::now();
        let max = consumer_settings.classic_max_size as usize;
        for g in st.groups.values_mut().filter(|g| g.members.len() > max) {
            tracing::info!(
                group = g.id,
                members = g.members.len(),
                max,
                "group over group.max.size: rebalancing"
            );
            g.prepare_rebalance(now, Duration::ZERO);
        }
        // What the recovery asks of the writer (partitions added again to
        // the transactions kept open, markers) goes into its ring now,
        // ahead of any batch a connection could bring.
        st.submit_to_writer();
        for (id, g) in restored.share {
            let session = st.share_settings_of(&id).session_timeout;
            st.share.insert(id, g.restored(now, session));
        }
        // The share groups' members, restored, may fetch again: the
        // writer hears of them before any connection's ShareFetch.
        let members: Vec<_> = st.share.iter().flat_map(|(id, g)| g.joined(id)).collect();
        st.tell_writer(members);
        let thread = std::thread::Builder::new()
            .name("gyre-groups".into())
            .spawn(move || {
                let ran = std::panic::catch_unwind(AssertUnwindSafe(|| run(rx, done_rx, st)));
                if let Err(panic) = ran {
                    health.fail(format!(
                        "the group coordinator panicked: {}",
                        panic_message(&*panic)
                    ));
                }
            })?;
        Ok((Coordinator { tx }, thread))
    }

    /// Queues `call`; fails once the coordinator has stopped.
    pub fn send(&self, call: GroupCall) -> Result<(), Stopped> {
        self.tx.send(Msg::Call(Box::new(call))).map_err(|_| Stopped)
    }

    /// Tells the thread that `topics` were deleted: every group's offsets
    /// for them are deleted (a topic made again under a name starts with
    /// none, as in Kafka).
    pub fn topics_deleted(&self, topics: Vec<String>) {
        let _ = self.tx.send(Msg::TopicsDeleted(topics));
    }

    /// Asks the thread to stop after the calls queued before.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// How often sessions and rebalance deadlines are checked.
const TICK: Duration = Duration::from_millis(50);
/// How long a group forming from nothing waits for more members.
const INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(300);
const MIN_SESSION: Duration = Duration::from_millis(1000);
const MAX_SESSION: Duration = Duration::from_secs(3600);

struct State_<R: LogReply> {
    /// Classic groups.
    groups: HashMap<String, Group>,
    /// Consumer groups (KIP-848).
    consumer: HashMap<String, ConsumerGroup>,
    /// Share groups (KIP-932): their membership; the log writer delivers
    /// their records.
    share: HashMap<String, share_group::ShareGroup>,
    share_settings: crate::config::ShareGroupSettings,
    /// Groups' own configs (session timeouts and heartbeats among them),
    /// kept and published by the log writer, and the broker's settings
    /// they fall back to.
    group_configs: crate::share::GroupConfigs,
    group_defaults: GroupDefaults,
    /// Where groups are kept across restarts.
    store: GroupStore,
    consumer_settings: ConsumerGroupSettings,
    /// The topics, for consumer groups' assignments.
    catalog: std::sync::Arc<crate::topics::Catalog>,
    topics_cache: consumer_heartbeat::TopicsCache,
    offsets: OffsetStore,
    txns: Transactions,
    writer: Submitter<R>,
    /// EndTxn answers waiting for their markers, by transactional id.
    ending: HashMap<String, (Call, EndTxnResponse)>,
    /// When offsets were last checked for expiry (`None`: not yet, so the
    /// first check comes at once, as Kafka's does).
    last_expiry: Option<Instant>,
    /// How many requests have been handled: the number of the one in
    /// hand, which its [`Call`] carries.
    requests_handled: u64,
}

fn run<R: LogReply>(rx: Receiver<Msg>, done: Receiver<MarkersWritten>, mut st: State_<R>) {
    let mut last_tick = Instant::now();
    loop {
        crossbeam_channel::select! {
            recv(rx) -> msg => match msg {
                Ok(Msg::Call(call)) => st.handle_isolated(*call),
                Ok(Msg::TopicsDeleted(topics)) => st.forget_topics(|t| topics.iter().any(|d| d == t)),
                Ok(Msg::Stop) | Err(_) => break,
            },
            recv(done) -> written => {
                if let Ok(written) = written {
                    let completed = st.txns.markers_written(written);
                    if let Some((call, resp)) = completed.and_then(|id| st.ending.remove(&id)) {
                        call.send(resp);
                    }
                }
            },
            default(TICK) => {}
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            st.tick(last_tick);
            st.txns.tick(last_tick, &mut st.offsets);
        }
        st.submit_to_writer();
    }
}

fn s(b: &StrBytes) -> String {
    b.as_str().to_owned()
}

/// Whether a committed offset's `metadata` is longer than `max` (Kafka's
/// `offset.metadata.max.bytes`, which Kafka compares with the length of
/// the decoded Java string: UTF-16 units, which are never more than the
/// UTF-8 bytes, so a string within `max` bytes is not counted).
fn metadata_too_large(metadata: Option<&StrBytes>, max: usize) -> bool {
    metadata.is_some_and(|m| m.len() > max && m.as_str().encode_utf16().count() > max)
}

impl<R: LogReply> State_<R> {
    /// Keeps the offsets of groups with members from expiring and, every
    /// `offsets_retention_check` (and at once after a start), deletes
    /// each offset of a group with none that has not been committed, nor
    /// had the group's members beside it, for `offsets_retention`
    /// (Kafka's KIP-211 rule; both times are kept across restarts), and,
    /// in groups with members, each offset of a topic no member
    /// subscribes to that was not committed for as long.
    fn expire_offsets(&mut self, now: Instant) {
        let (classic, consumer) = (&self.groups, &self.consumer);
        let in_use = |g: &str| {
            classic.get(g).is_some_and(|g| !g.members.is_empty())
                || consumer.get(g).is_some_and(|g| !g.members.is_empty())
        };
        let mut in_use_now = Vec::new();
        for id in classic.keys().chain(consumer.keys()) {
            if in_use(id) {
                self.offsets.touch(id, now);
                in_use_now.push(id.as_str());
            }
        }
        let settings = &self.consumer_settings;
        let check_due = self
            .last_expiry
            .is_none_or(|at| now.saturating_duration_since(at) >= settings.offsets_retention_check);
        // Groups in use count as in use on disk too, until two checks from
        // now: renewed at each check, and written at once for a group
        // without such a mark (newly in use, or with its first offsets),
        // so a restart at any moment ages no group from before its members
        // left.
        let to_mark = if check_due {
            in_use_now
        } else {
            self.offsets.unmarked(in_use_now, now)
        };
        if !to_mark.is_empty() {
            let until = now + 2 * settings.offsets_retention_check;
            if let Err(e) = self.offsets.keep_in_use(to_mark, until) {
                tracing::error!(error = %e, "cannot record which groups are in use; after a restart their offsets age from their last commit");
            }
        }
        if !check_due {
            return;
        }
        self.last_expiry = Some(now);
        // A group with members expires the offsets of the topics they do
        // not subscribe to, where the subscriptions are known: a classic
        // group of the consumer protocol type while stable (Kafka's
        // condition), a consumer-protocol group always.
        let unsubscribed = |g: &str, topic: &str| match (classic.get(g), consumer.get(g)) {
            (Some(group), _) => {
                group.state == State::Stable
                    && group.protocol_type == "consumer"
                    && group.protocol.is_some()
                    && !group.subscribed_topics().iter().any(|t| t == topic)
            }
            (None, Some(group)) => !group.subscribes_to(topic),
            (None, None) => false,
        };
        match self
            .offsets
            .expire(now, settings.offsets_retention, in_use, unsubscribed)
        {
            Ok(gone) if gone.is_empty() => {}
            Ok(gone) => tracing::info!(
                groups = gone.len(),
                first = %gone[0],
                "deleted the committed offsets of groups idle past offsets.retention.minutes"
            ),
            Err(e) => tracing::error!(error = %e, "cannot delete expired committed offsets"),
        }
    }

    /// Deletes every group's committed offsets for the topics `gone`
    /// names.
    fn forget_topics(&mut self, gone: impl Fn(&str) -> bool) {
        let keys = self.offsets.keys_of_topics(gone);
        match self.offsets.delete(&keys) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                offsets = n,
                "deleted the committed offsets of deleted topics"
            ),
            Err(e) => {
                tracing::error!(error = %e, "cannot delete the committed offsets of deleted topics")
            }
        }
    }

    /// Hands the transaction coordinator's requests to the log writer
    /// (waiting while its ring is full: this thread runs no event loop).
    /// Sends the log writer the share groups' member changes.
    fn tell_writer(&mut self, changes: Vec<crate::share::job::MemberChange>) {
        for change in changes {
            let op = crate::ops::LogOp::ShareMembers(change);
            if self.writer.submit(0, op, None).is_err() {
                tracing::warn!("log writer stopped; a share group's member change not told");
            }
        }
    }

    fn submit_to_writer(&mut self) {
        for op in self.txns.take_log_ops() {
            if self.writer.submit(0, op, None).is_err() {
                tracing::warn!("log writer stopped; a transaction's request not written");
            }
        }
    }

    /// Handles `call`, outliving its panic as Kafka's request threads
    /// outlive an exception: the panic is logged, the request answered
    /// `UNKNOWN_SERVER_ERROR` (in its own shape, as Kafka's
    /// `getErrorResponse` answers), and every other group and
    /// transaction goes on. What the request had changed of its own
    /// group before the panic stays changed. Other calls the panic drops
    /// unanswered (taken from state to be answered) close their
    /// connections, as a [`Call`] dropped unanswered does.
    fn handle_isolated(&mut self, call: GroupCall) {
        let GroupCall {
            busy,
            request,
            correlation_id,
            version,
            handle,
            seq,
            client_id,
            peer,
            denied_topics,
            visible,
            throttle_ms,
            to_writer,
        } = call;
        self.requests_handled += 1;
        let no = self.requests_handled;
        let to = Call {
            correlation_id,
            version,
            handle: Some(handle.clone()),
            seq,
            throttle_ms,
            request_no: no,
        };
        let asker = Asker {
            client_id,
            peer,
            denied_topics,
            visible,
            to_writer,
        };
        let started = Instant::now();
        let (handled, left_to_us) = call::isolated(no, || {
            std::panic::catch_unwind(AssertUnwindSafe(|| self.handle(&request, to, asker)))
        });
        crate::ops::charge_busy(busy.as_deref(), started);
        if let Err(panic) = handled {
            tracing::error!(
                peer = ?peer,
                correlation_id,
                answered = left_to_us,
                "the group coordinator panicked on a request (answered UNKNOWN_SERVER_ERROR unless its answer was sent or is kept): {}",
                panic_message(&*panic)
            );
            if left_to_us {
                let to = Refusal {
                    correlation_id,
                    version,
                    throttle_ms,
                };
                let frame = refusals::coordinator_request(&request, to, ec::UNKNOWN_SERVER_ERROR)
                    .unwrap_or(Frame::Close);
                // A closed connection has nobody left to answer.
                let _ = handle.write_and_flush(Sequenced { seq, frame });
            }
        }
    }

    fn handle(&mut self, request: &RequestKind, to: Call, asker: Asker) {
        let Asker {
            client_id,
            peer,
            denied_topics,
            visible,
            to_writer,
        } = asker;
        match request {
            RequestKind::DescribeShareGroupOffsets(_)
            | RequestKind::AlterShareGroupOffsets(_)
            | RequestKind::DeleteShareGroupOffsets(_) => {
                if let Some(go_on) = to_writer {
                    let verdicts = self.share_offsets_verdicts(request);
                    to.handed_on();
                    go_on.run(verdicts);
                }
            }
            RequestKind::JoinGroup(r) => {
                crate::failpoint::hit("coordinator", r.group_id.as_str());
                let client = Client {
                    id: String::from_utf8_lossy(&client_id).into_owned(),
                    // Kafka's form: the address with a leading slash.
                    host: peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
                };
                self.join(to, r, client)
            }
            RequestKind::ConsumerGroupHeartbeat(r) => {
                let client = Client {
                    id: String::from_utf8_lossy(&client_id).into_owned(),
                    host: peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
                };
                if !denied_topics.is_empty() {
                    let mut resp =
                        kafka_protocol::messages::ConsumerGroupHeartbeatResponse::default();
                    resp.error_code = ec::TOPIC_AUTHORIZATION_FAILED;
                    resp.error_message = Some(StrBytes::from_string(format!(
                        "Not authorized to describe topics {}.",
                        denied_topics.join(", ")
                    )));
                    return to.send(resp);
                }
                let group_id = r.group_id.0.as_str().to_owned();
                if self.share.contains_key(&group_id) {
                    let mut resp =
                        kafka_protocol::messages::ConsumerGroupHeartbeatResponse::default();
                    resp.error_code = ec::GROUP_ID_NOT_FOUND;
                    resp.error_message = Some(StrBytes::from_string(format!(
                        "Group {group_id} is not a consumer group."
                    )));
                    return to.send(resp);
                }
                let now = Instant::now();
                let catalog = self.topics_cache.get(&self.catalog);
                let refused = self.upgrade(&group_id, r.member_epoch, &catalog.topics, now);
                let visible = visible.map(|access| {
                    let access = std::sync::Arc::new(access);
                    consumer_group::Visible(std::sync::Arc::new(move |topic: &str| {
                        access.may_describe(crate::security::acl::resource::TOPIC, topic)
                    }))
                });
                let beat = Beat {
                    version: to.version,
                    client,
                    catalog: &catalog,
                    settings: self.consumer_settings_of(&group_id),
                    now,
                    refused,
                    visible,
                };
                let resp = consumer_heartbeat::heartbeat(&mut self.consumer, r, beat);
                self.downgrade_if_classic(&group_id, &catalog.topics, now);
                self.persist(&group_id);
                to.send(resp);
            }
            RequestKind::ConsumerGroupDescribe(r) => {
                let mut resp = consumer_heartbeat::describe(&self.consumer, r);
                if r.include_authorized_operations {
                    for d in &mut resp.groups {
                        d.authorized_operations = group_operations(visible.as_ref(), &d.group_id);
                    }
                }
                to.send(resp);
            }
            RequestKind::ShareGroupHeartbeat(r) => {
                let group_id = r.group_id.0.as_str();
                if self.of_another_kind(group_id) {
                    let mut resp = kafka_protocol::messages::ShareGroupHeartbeatResponse::default();
                    resp.error_code = ec::GROUP_ID_NOT_FOUND;
                    resp.error_message = Some(StrBytes::from_string(format!(
                        "Group {group_id} is not a share group."
                    )));
                    return to.send(resp);
                }
                if !denied_topics.is_empty() {
                    let mut resp = kafka_protocol::messages::ShareGroupHeartbeatResponse::default();
                    resp.error_code = ec::TOPIC_AUTHORIZATION_FAILED;
                    resp.error_message = Some(StrBytes::from_string(format!(
                        "Not authorized to describe topics {}.",
                        denied_topics.join(", ")
                    )));
                    return to.send(resp);
                }
                let client = Client {
                    id: String::from_utf8_lossy(&client_id).into_owned(),
                    host: peer.map_or_else(String::new, |p| format!("/{}", p.ip())),
                };
                let catalog = self.topics_cache.get(&self.catalog);
                let mut changes = Vec::new();
                let settings = self.share_settings_of(group_id);
                let resp = share_group::heartbeat(
                    &mut self.share,
                    r,
                    client,
                    &catalog,
                    settings,
                    Instant::now(),
                    &mut changes,
                );
                // The writer hears of a member before the member hears it
                // is one: its first ShareFetch comes through the ring after.
                self.tell_writer(changes);
                self.persist(group_id);
                to.send(resp);
            }
            RequestKind::ShareGroupDescribe(r) => {
                let catalog = self.topics_cache.get(&self.catalog);
                let mut resp = share_group::describe(&self.share, r, &catalog);
                for d in &mut resp.groups {
                    let id = d.group_id.0.as_str();
                    if self.of_another_kind(id) {
                        let message = format!("Group {id} is not a share group.");
                        d.error_message = Some(StrBytes::from_string(message));
                    }
                    if r.include_authorized_operations {
                        d.authorized_operations = group_operations(visible.as_ref(), id);
                    }
                }
                to.send(resp);
            }
            RequestKind::DescribeGroups(r) => self.describe(to, r, visible.as_ref()),
            RequestKind::ListGroups(r) => self.list(to, r, visible),
            RequestKind::DeleteGroups(r) => self.delete_groups(to, r),
            RequestKind::OffsetDelete(r) => self.delete_offsets(to, r),
            RequestKind::SyncGroup(r) => self.sync(to, r),
            RequestKind::Heartbeat(r) => self.heartbeat(to, r),
            RequestKind::LeaveGroup(r) => self.leave(to, r),
            RequestKind::OffsetCommit(r) => self.commit(to, r, &denied_topics),
            RequestKind::OffsetFetch(r) => self.fetch_offsets(to, r),
            RequestKind::InitProducerId(r) => {
                let resp = self.txns.init_producer_id(r, to.version, &mut self.offsets);
                self.submit_to_writer();
                to.send(resp);
            }
            RequestKind::AddPartitionsToTxn(r) => {
                let resp = self.txns.add_partitions(r, to.version, &denied_topics);
                // The partitions hear they were added before the producer
                // does: its batches come through the ring after this.
                self.submit_to_writer();
                to.send(resp);
            }
            RequestKind::AddOffsetsToTxn(r) => {
                let resp = self.txns.add_offsets(r, to.version);
                to.send(resp);
            }
            RequestKind::TxnOffsetCommit(r) => {
                // Before v3 there is no member to check (generation -1).
                let consumer = self.consumer.get(r.group_id.0.as_str());
                let refused = if let Some(g) = consumer {
                    consumer_heartbeat::commit_check(
                        g,
                        r.member_id.as_str(),
                        r.generation_id,
                        to.version,
                        true,
                    )
                } else if r.generation_id < 0 {
                    ec::NONE
                } else {
                    let group = self.groups.get_mut(r.group_id.0.as_str());
                    let instance = r.group_instance_id.as_deref();
                    commit_check(group, &r.member_id, instance, r.generation_id)
                };
                let resp = self
                    .txns
                    .commit_offsets(r, to.version, refused, &denied_topics, |m| {
                        metadata_too_large(m, self.consumer_settings.offset_metadata_max_bytes)
                    });
                to.send(resp);
            }
            RequestKind::ListTransactions(r) => {
                let visible = |id: &str| {
                    visible.as_ref().is_none_or(|v| {
                        v.may_describe(crate::security::acl::resource::TRANSACTIONAL_ID, id)
                    })
                };
                to.send(self.txns.list(r, visible));
            }
            RequestKind::DescribeTransactions(r) => {
                to.send(self.txns.describe(r, &denied_topics));
            }
            RequestKind::EndTxn(r) => {
                let resp = self.txns.end_txn(r, to.version, &mut self.offsets);
                self.submit_to_writer();
                let id = r.transactional_id.0.as_str();
                if resp.error_code == ec::NONE && self.txns.is_ending(id) {
                    // Answered once the markers are written.
                    self.ending.insert(id.to_owned(), (to, resp));
                } else {
                    to.send(resp);
                }
            }
            other => tracing::error!(?other, "not a group or transaction request"),
        }
    }

    /// Before a consumer-protocol heartbeat: a classic group with members
    /// is converted when a member joins (epoch 0), whatever its state;
    /// otherwise the refusal. A member with an epoch is told it is
    /// unknown (it joins again, and converts the group); a group that is
    /// not a consumer group is GROUP_ID_NOT_FOUND, as Kafka answers.
    fn upgrade(
        &mut self,
        group_id: &str,
        epoch: i32,
        catalog: &[(uuid::Uuid, String, i32)],
        now: Instant,
    ) -> Option<(i16, String)> {
        if self
            .groups
            .get(group_id)
            .is_some_and(|g| g.members.is_empty())
        {
            // An empty classic group (a rebalance's leftover) just goes.
            self.groups.remove(group_id);
        }
        let group = self.groups.get(group_id)?;
        if let Some(why) = mixed::upgrade_refused(group) {
            let message = format!("Group {group_id} is not a consumer group: {why}.");
            return Some((ec::GROUP_ID_NOT_FOUND, message));
        }
        if epoch != 0 {
            let message = format!("Group {group_id} is a classic group; join it with epoch 0.");
            return Some((ec::UNKNOWN_MEMBER_ID, message));
        }
        let group = self.groups.remove(group_id).expect("looked up");
        self.consumer
            .insert(group_id.to_owned(), mixed::upgrade(group, catalog, now));
        None
    }

    /// After members left a consumer group: if only classic members
    /// remain, it goes back to being a classic group.
    fn downgrade_if_classic(
        &mut self,
        group_id: &str,
        catalog: &[(uuid::Uuid, String, i32)],
        now: Instant,
    ) {
        if self
            .consumer
            .get(group_id)
            .is_some_and(ConsumerGroup::all_classic)
        {
            let cg = self.consumer.remove(group_id).expect("looked up");
            let group = mixed::downgrade(cg, catalog, now, INITIAL_REBALANCE_DELAY);
            self.groups.insert(group_id.to_owned(), group);
        }
    }

    fn join(&mut self, to: Call, r: &JoinGroupRequest, client: Client) {
        let now = Instant::now();
        let group_id = s(&r.group_id.0);
        if group_id.is_empty() {
            return refuse_join(to, ec::INVALID_GROUP_ID, r.member_id.as_str());
        }
        // A share group's id is not a classic group's (Kafka's answer).
        if self.share.contains_key(&group_id) {
            return refuse_join(to, ec::INCONSISTENT_GROUP_PROTOCOL, r.member_id.as_str());
        }
        let session = Duration::from_millis(r.session_timeout_ms.max(0) as u64);
        if !(MIN_SESSION..=MAX_SESSION).contains(&session) {
            return refuse_join(to, ec::INVALID_SESSION_TIMEOUT, r.member_id.as_str());
        }
        // Before v1 there is no rebalance timeout: it is the session's.
        let rebalance = if to.version >= 1 {
            Duration::from_millis(r.rebalance_timeout_ms.max(0) as u64)
        } else {
            session
        };
        // Copies, not views of the request: a view keeps the whole
        // request, and its share of the server's request memory
        // (`server::budget`), for as long as the member lasts.
        let protocols: Vec<(String, Bytes)> = r
            .protocols
            .iter()
            .map(|p| (s(&p.name), Bytes::copy_from_slice(&p.metadata)))
            .collect();
        // A consumer group with members takes classic members too; the
        // broker assigns them (Kafka's online migration).
        if let Some(cg) = self
            .consumer
            .get_mut(&group_id)
            .filter(|g| !g.members.is_empty())
        {
            let join = mixed::ClassicJoin {
                member_id: r.member_id.as_str(),
                new_id: group::new_member_id(&client.id),
                protocol_type: r.protocol_type.as_str(),
                protocols,
                session_timeout: session,
                rebalance_timeout: rebalance,
                client,
                max_size: self.consumer_settings.consumer_max_size,
                instance_id: r.group_instance_id.as_ref().map(s),
                requires_member_id: to.version >= 4,
            };
            let catalog = self.topics_cache.get(&self.catalog);
            let resp = mixed::join(cg, join, &catalog, now);
            self.persist(&group_id);
            return to.send(resp);
        }
        if self.consumer.remove(&group_id).is_some() {
            self.persist(&group_id);
        }
        let group = self
            .groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(group_id.clone()));
        let protocol_type = s(&r.protocol_type);
        // From v5 a member may be static (KIP-345).
        let instance_id = r.group_instance_id.as_ref().map(s);
        let max = self.consumer_settings.classic_max_size;
        if !group.accepts(&r.member_id, instance_id.as_deref(), max as usize) {
            // As Kafka: a member left out is removed (when a lowered bound
            // or a full rejoin leaves no room for it).
            if group.remove_member(&r.member_id).is_some() {
                maybe_complete_join(group, now);
            }
            self.persist(&group_id);
            return refuse_join(to, ec::GROUP_MAX_SIZE_REACHED, "");
        }
        let member_id = if r.member_id.is_empty() {
            let new_id = group::new_member_id(&client.id);
            let known = instance_id.as_deref().and_then(|i| group.static_member(i));
            if let Some(old_id) = known.map(str::to_owned) {
                if !group.compatible(&protocol_type, &protocols, &old_id) {
                    return refuse_join(to, ec::INCONSISTENT_GROUP_PROTOCOL, "");
                }
                let member = Member {
                    protocols,
                    session_timeout: session,
                    rebalance_timeout: rebalance,
                    last_seen: now,
                    join: None,
                    sync: None,
                    assignment: Bytes::new(),
                    client,
                    instance_id,
                };
                return self.rejoin_static(to, &group_id, &old_id, new_id, member, now);
            }
            if instance_id.is_none() && to.version >= 4 {
                if !group.compatible(&protocol_type, &protocols, "") {
                    return refuse_join(to, ec::INCONSISTENT_GROUP_PROTOCOL, "");
                }
                group.pending.insert(new_id.clone(), now + session);
                return refuse_join(to, ec::MEMBER_ID_REQUIRED, &new_id);
            }
            new_id
        } else if group.pending.remove(r.member_id.as_str()).is_some() {
            s(&r.member_id)
        } else {
            let known = s(&r.member_id);
            let code = group.check_member(&known, instance_id.as_deref());
            if code != ec::NONE {
                return refuse_join(to, code, r.member_id.as_str());
            }
            known
        };
        let others_compatible = group.compatible(&protocol_type, &protocols, &member_id);
        if !others_compatible {
            return refuse_join(to, ec::INCONSISTENT_GROUP_PROTOCOL, r.member_id.as_str());
        }
        if group.members.is_empty() {
            group.protocol_type = protocol_type;
        }
        // As Kafka: a member rejoining with what it joined with (it missed
        // the answer) hears the current generation again, with no
        // rebalance; so does a follower of a stable group. A leader's
        // rejoin in a stable group rebalances it (it saw a change in the
        // topics).
        let leads = group.leader.as_deref() == Some(member_id.as_str());
        if let Some(known) = group.members.get_mut(&member_id) {
            let unchanged = known.protocols == protocols;
            let again = match group.state {
                State::CompletingRebalance => unchanged,
                State::Stable => unchanged && !leads,
                State::Empty | State::PreparingRebalance => false,
            };
            if again {
                known.last_seen = now;
                return to.send(group.join_answer(&member_id));
            }
        }
        let kept = group.members.get(&member_id);
        let member = Member {
            protocols,
            session_timeout: session,
            rebalance_timeout: rebalance,
            last_seen: now,
            join: Some(to),
            sync: None,
            assignment: kept.map(|m| m.assignment.clone()).unwrap_or_default(),
            client,
            // A member's instance id is its own for as long as it is one
            // (a rejoin may omit it, below v5).
            instance_id: kept.and_then(|m| m.instance_id.clone()).or(instance_id),
        };
        if let Some(old) = group.members.insert(member_id, member) {
            // A join repeated while the first waits: the first is answered
            // as Kafka does, by telling it to rejoin.
            if let Some(earlier) = old.join {
                refuse_join(earlier, ec::REBALANCE_IN_PROGRESS, "");
            }
        }
        group.prepare_rebalance(now, INITIAL_REBALANCE_DELAY);
        maybe_complete_join(group, now);
    }

    /// A static member's client, restarted, joins with no member id: it
    /// takes its old place under `new_id`. A stable group whose protocol
    /// it does not change answers at once with the current generation (no
    /// rebalance; its SyncGroup gets the assignment it had), the group kept
    /// first as Kafka writes it; otherwise the group rebalances. Below v9
    /// the answer names the leader as it was, so a returning leader does
    /// not assign again; from v9 it is told it leads with
    /// `skip_assignment` (KIP-814).
    fn rejoin_static(
        &mut self,
        to: Call,
        group_id: &str,
        old_id: &str,
        new_id: String,
        mut member: Member,
        now: Instant,
    ) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return;
        };
        let old_leader = group.leader.clone();
        let stable = group.state == State::Stable;
        tracing::info!(
            group = group_id,
            instance = member.instance_id.as_deref().unwrap_or_default(),
            old = old_id,
            new = new_id.as_str(),
            "static member rejoined"
        );
        if stable {
            group.replace_static(old_id, &new_id, member);
            if group.choose_protocol() == group.protocol {
                if let Err(e) = self.store.save_classic(group) {
                    tracing::error!(group = group.id, error = %e, "storing a group failed; its members are kept in memory only");
                }
                let protocol = group.protocol.clone().unwrap_or_default();
                let mut resp = JoinGroupResponse::default();
                resp.generation_id = group.generation;
                resp.protocol_name = Some(StrBytes::from_string(protocol.clone()));
                resp.protocol_type = Some(StrBytes::from_string(group.protocol_type.clone()));
                resp.member_id = StrBytes::from_string(new_id.clone());
                let leads = group.leader.as_deref() == Some(new_id.as_str());
                let leader = if to.version >= 9 {
                    resp.skip_assignment = leads;
                    if leads {
                        resp.members = group.subscriptions(&protocol);
                    }
                    group.leader.clone()
                } else {
                    old_leader
                };
                resp.leader = StrBytes::from_string(leader.unwrap_or_default());
                return to.send(resp);
            }
            if let Some(m) = group.members.get_mut(&new_id) {
                m.join = Some(to);
            }
        } else {
            member.join = Some(to);
            group.replace_static(old_id, &new_id, member);
        }
        group.prepare_rebalance(now, INITIAL_REBALANCE_DELAY);
        maybe_complete_join(group, now);
    }

    fn sync(&mut self, to: Call, r: &SyncGroupRequest) {
        let member_id = s(&r.member_id);
        if let Some(cg) = self.consumer.get_mut(r.group_id.0.as_str()) {
            let catalog = self.topics_cache.get(&self.catalog);
            let who = (member_id.as_str(), r.group_instance_id.as_deref());
            return to.send(mixed::sync(cg, who, r.generation_id, &catalog.topics));
        }
        let Some(group) = self.groups.get_mut(r.group_id.0.as_str()) else {
            return sync_reply(to, ec::UNKNOWN_MEMBER_ID, Bytes::new(), None);
        };
        // From v5 the member says which protocol it synced for; one that
        // differs from the group's is refused, as Kafka does.
        let protocol = group
            .protocol
            .as_ref()
            .map(|name| (group.protocol_type.as_str(), name.as_str()));
        let named = |asked: &Option<StrBytes>, ours: Option<&str>| {
            asked.as_ref().is_none_or(|a| Some(a.as_str()) == ours)
        };
        if !named(&r.protocol_type, protocol.map(|p| p.0))
            || !named(&r.protocol_name, protocol.map(|p| p.1))
        {
            return sync_reply(to, ec::INCONSISTENT_GROUP_PROTOCOL, Bytes::new(), None);
        }
        let protocol = protocol.map(|(t, n)| {
            (
                StrBytes::from_string(t.to_owned()),
                StrBytes::from_string(n.to_owned()),
            )
        });
        let reply = |to: Call, code: i16, assignment: Bytes| {
            let named = (code == ec::NONE).then(|| protocol.clone()).flatten();
            sync_reply(to, code, assignment, named);
        };
        let known = group.check_member(&member_id, r.group_instance_id.as_deref());
        if known != ec::NONE {
            return reply(to, known, Bytes::new());
        }
        if let Some(member) = group.members.get_mut(&member_id) {
            member.last_seen = Instant::now();
        }
        if r.generation_id != group.generation {
            return reply(to, ec::ILLEGAL_GENERATION, Bytes::new());
        }
        if matches!(group.state, State::CompletingRebalance | State::Stable) {
            group.synced(&member_id);
        }
        let Some(member) = group.members.get_mut(&member_id) else {
            return reply(to, ec::UNKNOWN_MEMBER_ID, Bytes::new());
        };
        match group.state {
            State::Empty | State::PreparingRebalance => {
                reply(to, ec::REBALANCE_IN_PROGRESS, Bytes::new())
            }
            State::Stable => reply(to, ec::NONE, member.assignment.clone()),
            State::CompletingRebalance => {
                member.sync = Some(to);
                if group.leader.as_deref() == Some(member_id.as_str()) {
                    for a in &r.assignments {
                        if let Some(m) = group.members.get_mut(a.member_id.as_str()) {
                            // A copy, as a member's protocols are.
                            m.assignment = Bytes::copy_from_slice(&a.assignment);
                        }
                    }
                    group.state = State::Stable;
                    // Kept before anyone hears of it, as Kafka writes the
                    // group before it answers.
                    if let Err(e) = self.store.save_classic(group) {
                        tracing::error!(group = group.id, error = %e, "storing a group failed; its members are kept in memory only");
                    }
                    for m in group.members.values_mut() {
                        if let Some(waiting) = m.sync.take() {
                            reply(waiting, ec::NONE, m.assignment.clone());
                        }
                    }
                }
            }
        }
    }

    fn heartbeat(&mut self, to: Call, r: &HeartbeatRequest) {
        let instance = r.group_instance_id.as_deref();
        let consumer = self.consumer.get_mut(r.group_id.0.as_str());
        let code = match (consumer, self.groups.get_mut(r.group_id.0.as_str())) {
            (Some(cg), _) => {
                let who = (r.member_id.as_str(), instance);
                mixed::heartbeat(cg, who, r.generation_id, Instant::now())
            }
            (None, None) => ec::UNKNOWN_MEMBER_ID,
            (None, Some(group)) => match group.check_member(&r.member_id, instance) {
                ec::NONE => {
                    if let Some(member) = group.members.get_mut(r.member_id.as_str()) {
                        member.last_seen = Instant::now();
                    }
                    if r.generation_id != group.generation {
                        ec::ILLEGAL_GENERATION
                    } else if group.state == State::PreparingRebalance {
                        ec::REBALANCE_IN_PROGRESS
                    } else {
                        ec::NONE
                    }
                }
                refused => refused,
            },
        };
        let mut resp = HeartbeatResponse::default();
        resp.error_code = code;
        to.send(resp);
    }

    /// LeaveGroup: from v3 a batch of members, each named by member id
    /// or, for a static member (an administrator removing it), by its
    /// instance id alone, as Kafka removes them.
    fn leave(&mut self, to: Call, r: &LeaveGroupRequest) {
        let now = Instant::now();
        let who: Vec<(StrBytes, Option<StrBytes>)> = if to.version >= 3 {
            r.members
                .iter()
                .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
                .collect()
        } else {
            vec![(r.member_id.clone(), None)]
        };
        let mut resp = LeaveGroupResponse::default();
        let group_id = r.group_id.0.as_str();
        let group = self.groups.get_mut(group_id);
        let mut codes = Vec::with_capacity(who.len());
        match (self.consumer.get_mut(group_id), group) {
            (Some(cg), _) => {
                for (id, instance) in &who {
                    let instance = instance.as_deref();
                    let id = match (id.is_empty(), instance) {
                        (true, Some(i)) => mixed::static_holder(cg, i).unwrap_or_default(),
                        _ => match mixed::instance_check(cg, id, instance) {
                            ec::NONE => id.as_str(),
                            fenced => {
                                codes.push(fenced);
                                continue;
                            }
                        },
                    }
                    .to_owned();
                    let classic = cg
                        .members
                        .get(id.as_str())
                        .is_some_and(|m| m.classic.is_some());
                    codes.push(if classic && cg.remove(id.as_str()).is_some() {
                        tracing::info!(
                            group = group_id,
                            member = id.as_str(),
                            "classic member left"
                        );
                        ec::NONE
                    } else {
                        ec::UNKNOWN_MEMBER_ID
                    });
                }
                let catalog = self.topics_cache.get(&self.catalog);
                if let Some(cg) = self.consumer.get_mut(group_id) {
                    cg.refresh(&catalog, false);
                }
                self.downgrade_if_classic(group_id, &catalog.topics, now);
                self.persist(group_id);
            }
            (None, None) => codes.resize(who.len(), ec::UNKNOWN_MEMBER_ID),
            (None, Some(group)) => {
                for (id, instance) in &who {
                    let instance = instance.as_deref();
                    if group.pending.remove(id.as_str()).is_some() {
                        codes.push(ec::NONE);
                        continue;
                    }
                    let target = match (id.is_empty(), instance) {
                        (true, Some(i)) => group
                            .static_member(i)
                            .map(str::to_owned)
                            .ok_or(ec::UNKNOWN_MEMBER_ID),
                        _ => match group.check_member(id, instance) {
                            ec::NONE => Ok(id.to_string()),
                            refused => Err(refused),
                        },
                    };
                    codes.push(match target {
                        Ok(member) => {
                            group.remove_member(&member);
                            ec::NONE
                        }
                        Err(code) => code,
                    });
                }
                if codes.contains(&ec::NONE) {
                    after_departure(group, now);
                }
            }
        }
        // A group the last member left is forgotten.
        self.persist(group_id);
        if to.version >= 3 {
            for ((id, instance), code) in who.into_iter().zip(&codes) {
                let mut m = MemberResponse::default();
                m.member_id = id;
                m.group_instance_id = instance;
                m.error_code = *code;
                resp.members.push(m);
            }
        } else {
            resp.error_code = codes[0];
        }
        to.send(resp);
    }

    fn commit(&mut self, to: Call, r: &OffsetCommitRequest, denied: &[String]) {
        crate::failpoint::hit("coordinator", r.group_id.0.as_str());
        // Each partition's refusal, decided once, so the offsets kept and
        // the answer agree even if a topic goes meanwhile: a topic the
        // principal may not read, (as Kafka) a partition that does not
        // exist, whose offset is not kept for a topic that may come back
        // under its name, and metadata past `offset.metadata.max.bytes`
        // (which a refusal of the whole commit takes precedence over).
        let catalog = &self.catalog;
        let metadata_max = self.consumer_settings.offset_metadata_max_bytes;
        let refusals: Vec<Option<i16>> = r
            .topics
            .iter()
            .flat_map(|t| {
                let name = t.name.0.as_str();
                let denied = denied.iter().any(|d| d == name);
                t.partitions.iter().map(move |p| {
                    if denied {
                        Some(ec::TOPIC_AUTHORIZATION_FAILED)
                    } else if !catalog.has_partition(name, p.partition_index) {
                        Some(ec::UNKNOWN_TOPIC_OR_PARTITION)
                    } else if metadata_too_large(p.committed_metadata.as_ref(), metadata_max) {
                        Some(ec::OFFSET_METADATA_TOO_LARGE)
                    } else {
                        None
                    }
                })
            })
            .collect();
        let group_id = s(&r.group_id.0);
        let check = if group_id.is_empty() {
            ec::INVALID_GROUP_ID
        } else if let Some(g) = self.consumer.get(&group_id) {
            let (member, epoch) = (r.member_id.as_str(), r.generation_id_or_member_epoch);
            consumer_heartbeat::commit_check(g, member, epoch, to.version, false)
        } else {
            let group = self.groups.get_mut(&group_id);
            let instance = r.group_instance_id.as_deref();
            commit_check(
                group,
                &r.member_id,
                instance,
                r.generation_id_or_member_epoch,
            )
        };
        let mut code = check;
        if check == ec::NONE {
            let mut refused = refusals.iter();
            let commits = r
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
                .filter(|_| refused.next().is_some_and(Option::is_none))
                .map(|(t, p)| {
                    (
                        (group_id.clone(), s(&t.name.0), p.partition_index),
                        Committed {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p.committed_metadata.as_ref().map(s),
                        },
                    )
                })
                .collect();
            if let Err(e) = self.offsets.commit(commits) {
                tracing::error!(group = group_id, error = %e, "storing committed offsets failed");
                code = ec::KAFKA_STORAGE_ERROR;
            }
        }
        let mut resp = OffsetCommitResponse::default();
        let mut refused = refusals.into_iter();
        for t in &r.topics {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = t.name.clone();
            for p in &t.partitions {
                let mut part = OffsetCommitResponsePartition::default();
                part.partition_index = p.partition_index;
                part.error_code = match refused.next().flatten() {
                    Some(ec::OFFSET_METADATA_TOO_LARGE) if code != ec::NONE => code,
                    Some(refusal) => refusal,
                    None => code,
                };
                topic.partitions.push(part);
            }
            resp.topics.push(topic);
        }
        to.send(resp);
    }

    fn fetch_offsets(&mut self, to: Call, r: &OffsetFetchRequest) {
        // From v9 a consumer group's member names itself and its epoch,
        // and must be current (KIP-848).
        let refused: Vec<(String, i16)> = r
            .groups
            .iter()
            .filter_map(|g| {
                let member = g.member_id.as_ref()?;
                let group = self.consumer.get(g.group_id.0.as_str())?;
                let code = consumer_heartbeat::fetch_check(group, member.as_str(), g.member_epoch);
                (code != ec::NONE).then(|| (g.group_id.0.as_str().to_owned(), code))
            })
            .collect();
        let txns = &self.txns;
        let pending = |g: &str, t: &str, p: i32| txns.has_pending_offset(g, t, p);
        let mut resp = offset_fetch::answer(&self.offsets, r, to.version, pending);
        for g in &mut resp.groups {
            if let Some((_, code)) = refused.iter().find(|(id, _)| id == g.group_id.0.as_str()) {
                g.error_code = *code;
                g.topics.clear();
            }
        }
        to.send(resp);
    }

    /// DescribeGroups: each group's state, protocol and members (with
    /// their client ids, hosts, subscriptions and assignments). A group
    /// with committed offsets and no members is `Empty`; one the broker
    /// has never heard of is `Dead`, or from v6 GROUP_ID_NOT_FOUND, as
    /// Kafka answers. From v3, what the principal may do to each group,
    /// if asked (`access`: its ACLs, `None` with the authorizer off).
    fn describe(&mut self, to: Call, r: &DescribeGroupsRequest, access: Option<&GroupAccess>) {
        let mut resp = DescribeGroupsResponse::default();
        for id in &r.groups {
            let mut d = DescribedGroup::default();
            d.group_id = id.clone();
            d.authorized_operations = if r.include_authorized_operations {
                group_operations(access, id)
            } else {
                i32::MIN // not asked for
            };
            match self.groups.get(id.0.as_str()) {
                Some(group) => {
                    d.group_state = StrBytes::from_static_str(group.state.name());
                    d.protocol_type = StrBytes::from_string(group.protocol_type.clone());
                    // As Kafka: every member with its client; the protocol,
                    // subscriptions and assignments only once stable.
                    let stable = group.state == State::Stable;
                    let protocol = group.protocol.as_deref().filter(|_| stable);
                    d.protocol_data =
                        StrBytes::from_string(protocol.unwrap_or_default().to_owned());
                    for (member_id, m) in &group.members {
                        let mut dm = DescribedGroupMember::default();
                        dm.member_id = StrBytes::from_string(member_id.clone());
                        dm.client_id = StrBytes::from_string(m.client.id.clone());
                        dm.client_host = StrBytes::from_string(m.client.host.clone());
                        dm.group_instance_id = m.instance_id.clone().map(StrBytes::from_string);
                        if let Some(protocol) = protocol {
                            dm.member_metadata = m
                                .protocols
                                .iter()
                                .find(|(n, _)| n == protocol)
                                .map(|(_, md)| md.clone())
                                .unwrap_or_default();
                            dm.member_assignment = m.assignment.clone();
                        }
                        d.members.push(dm);
                    }
                }
                // A consumer or share group is not a classic group: Kafka
                // answers DescribeGroups up to v5 with Dead, from v6 with
                // GROUP_ID_NOT_FOUND (ConsumerGroupDescribe and
                // ShareGroupDescribe describe them).
                None if self.consumer.contains_key(id.0.as_str())
                    || self.share.contains_key(id.0.as_str()) =>
                {
                    not_found(&mut d, to.version, "is not a classic group")
                }
                None if self.offsets.has_group(id.0.as_str()) => {
                    d.group_state = StrBytes::from_static_str(State::Empty.name());
                    d.protocol_type = StrBytes::from_static_str("consumer");
                }
                None => not_found(&mut d, to.version, "not found"),
            }
            resp.groups.push(d);
        }
        to.send(resp);
    }

    /// ListGroups: every group with members or committed offsets, of the
    /// states (v4+) and types (v5+) asked for, if any were (matched
    /// without regard to case, as Kafka does): classic groups, and consumer
    /// groups of the consumer group protocol as type `consumer`.
    fn list(&mut self, to: Call, r: &ListGroupsRequest, visible: Option<GroupAccess>) {
        let visible = |id: &str| {
            visible
                .as_ref()
                .is_none_or(|v| v.may_describe(crate::security::acl::resource::GROUP, id))
        };
        let wanted = |filter: &[StrBytes], value: &str| {
            filter.is_empty()
                || filter
                    .iter()
                    .any(|f| f.as_str().eq_ignore_ascii_case(value))
        };
        let mut resp = ListGroupsResponse::default();
        let mut listed =
            |id: &str, protocol_type: &str, state: &'static str, kind: &'static str| {
                if wanted(&r.types_filter, kind) && wanted(&r.states_filter, state) && visible(id) {
                    let mut g = ListedGroup::default();
                    g.group_id = GroupId(StrBytes::from_string(id.to_owned()));
                    g.protocol_type = StrBytes::from_string(protocol_type.to_owned());
                    g.group_state = StrBytes::from_static_str(state);
                    g.group_type = StrBytes::from_static_str(kind);
                    resp.groups.push(g);
                }
            };
        for (id, group) in &self.groups {
            listed(id, &group.protocol_type, group.state.name(), "classic");
        }
        for (id, group) in &self.consumer {
            listed(id, "consumer", group.state(), "consumer");
        }
        for (id, group) in &self.share {
            listed(id, "share", group.state(), "share");
        }
        for id in self.offsets.groups() {
            if !self.groups.contains_key(id) && !self.consumer.contains_key(id) {
                listed(id, "consumer", State::Empty.name(), "classic");
            }
        }
        to.send(resp);
    }

    /// DeleteGroups: a group with no members loses its committed offsets
    /// (NON_EMPTY_GROUP while it has members, GROUP_ID_NOT_FOUND if it has
    /// neither), as Kafka deletes.
    fn delete_groups(&mut self, to: Call, r: &DeleteGroupsRequest) {
        let mut resp = DeleteGroupsResponse::default();
        for id in &r.groups_names {
            let name = id.0.as_str();
            let members = self.groups.get(name).is_some_and(|g| !g.members.is_empty())
                || self
                    .consumer
                    .get(name)
                    .is_some_and(|g| !g.members.is_empty());
            let keys = self.offsets.keys_of(name);
            let known = self.groups.contains_key(name) || self.consumer.contains_key(name);
            let code = if let Some(share) = self.share.get(name) {
                if share.is_empty() {
                    self.share.remove(name);
                    self.tell_writer(vec![crate::share::job::MemberChange::GroupDeleted(
                        name.to_owned(),
                    )]);
                    self.persist(name);
                    tracing::info!(group = name, "share group deleted");
                    ec::NONE
                } else {
                    ec::NON_EMPTY_GROUP
                }
            } else if members {
                ec::NON_EMPTY_GROUP
            } else if keys.is_empty() && !known {
                ec::GROUP_ID_NOT_FOUND
            } else {
                match self.offsets.delete(&keys) {
                    Ok(_) => {
                        self.groups.remove(name);
                        self.consumer.remove(name);
                        self.persist(name);
                        tracing::info!(group = name, offsets = keys.len(), "group deleted");
                        ec::NONE
                    }
                    Err(e) => {
                        tracing::error!(group = name, error = %e, "deleting a group's offsets failed");
                        ec::KAFKA_STORAGE_ERROR
                    }
                }
            };
            let mut result = DeletableGroupResult::default();
            result.group_id = id.clone();
            result.error_code = code;
            resp.results.push(result);
        }
        to.send(resp);
    }

    /// OffsetDelete: removes a group's committed offsets for the given
    /// partitions, refused per partition (GROUP_SUBSCRIBED_TO_TOPIC) for a
    /// topic a current member subscribes to, as Kafka does.
    fn delete_offsets(&mut self, to: Call, r: &OffsetDeleteRequest) {
        let group_id = s(&r.group_id.0);
        let mut resp = OffsetDeleteResponse::default();
        let exists = self.groups.contains_key(&group_id)
            || self.consumer.contains_key(&group_id)
            || self.offsets.has_group(&group_id);
        if !exists {
            resp.error_code = ec::GROUP_ID_NOT_FOUND;
            return to.send(resp);
        }
        let subscribed = self
            .groups
            .get(&group_id)
            .map(Group::subscribed_topics)
            .unwrap_or_default();
        let mut keys = Vec::new();
        let mut results = Vec::new();
        for t in &r.topics {
            let topic = s(&t.name.0);
            let busy = subscribed.contains(&topic)
                || self
                    .consumer
                    .get(&group_id)
                    .is_some_and(|g| g.subscribes_to(&topic));
            for p in &t.partitions {
                if !busy {
                    keys.push((group_id.clone(), topic.clone(), p.partition_index));
                }
                results.push((t.name.clone(), p.partition_index, busy));
            }
        }
        let stored = self.offsets.delete(&keys);
        if let Err(e) = &stored {
            tracing::error!(group = group_id, error = %e, "deleting offsets failed");
        }
        for (name, index, busy) in results {
            if resp.topics.last().is_none_or(|t| t.name != name) {
                let mut topic = OffsetDeleteResponseTopic::default();
                topic.name = name;
                resp.topics.push(topic);
            }
            let mut part = OffsetDeleteResponsePartition::default();
            part.partition_index = index;
            part.error_code = match (&stored, busy) {
                (_, true) => ec::GROUP_SUBSCRIBED_TO_TOPIC,
                (Err(_), false) => ec::KAFKA_STORAGE_ERROR,
                (Ok(_), false) => ec::NONE,
            };
            resp.topics
                .last_mut()
                .expect("pushed")
                .partitions
                .push(part);
        }
        to.send(resp);
    }

    /// Group `id`'s own configs (each key it did not set: the broker's).
    fn group_config(&self, id: &str) -> GroupConfig {
        let configs = self.group_configs.lock().unwrap_or_else(|p| p.into_inner());
        configs.get(id).copied().unwrap_or_default()
    }

    /// The consumer group settings of group `id`: its own session timeout
    /// and heartbeat interval, if it set them.
    fn consumer_settings_of(&self, id: &str) -> ConsumerGroupSettings {
        let (session, heartbeat) = self.group_config(id).consumer_timing(&self.group_defaults);
        ConsumerGroupSettings {
            session_timeout: session,
            heartbeat_interval: heartbeat,
            ..self.consumer_settings
        }
    }

    /// The share group settings of group `id`: its own session timeout
    /// and heartbeat interval, if it set them.
    fn share_settings_of(&self, id: &str) -> crate::config::ShareGroupSettings {
        let (session, heartbeat) = self.group_config(id).share_timing(&self.group_defaults);
        crate::config::ShareGroupSettings {
            session_timeout: session,
            heartbeat_interval: heartbeat,
            ..self.share_settings
        }
    }

    /// Whether group `id` is a classic or consumer group, or has
    /// committed offsets: not a share group, nor may it become one.
    fn of_another_kind(&self, id: &str) -> bool {
        self.groups.contains_key(id) || self.consumer.contains_key(id) || self.offsets.has_group(id)
    }

    /// Each group of a share-offsets request checked as Kafka's
    /// coordinator checks it before the start offsets are touched: a
    /// group of another kind is `GROUP_ID_NOT_FOUND` ("… is not a share
    /// group."), and one with members `NON_EMPTY_GROUP` for an
    /// alteration or deletion. A group that does not exist is described
    /// as holding no state, made (empty) by an alteration, as Kafka 4.1
    /// makes it, and not found by a deletion.
    fn share_offsets_verdicts(&mut self, request: &RequestKind) -> GroupVerdicts {
        let (ids, change) = match request {
            RequestKind::DescribeShareGroupOffsets(r) => (
                r.groups.iter().map(|g| g.group_id.0.as_str()).collect(),
                None,
            ),
            RequestKind::AlterShareGroupOffsets(r) => (vec![r.group_id.0.as_str()], Some(true)),
            RequestKind::DeleteShareGroupOffsets(r) => (vec![r.group_id.0.as_str()], Some(false)),
            _ => return Vec::new(),
        };
        ids.into_iter()
            .map(|id| {
                if self.of_another_kind(id) {
                    let message = format!("Group {id} is not a share group.");
                    return Some((ec::GROUP_ID_NOT_FOUND, message));
                }
                match (self.share.get(id), change) {
                    (Some(g), Some(_)) if !g.is_empty() => {
                        Some((ec::NON_EMPTY_GROUP, "The group is not empty.".to_owned()))
                    }
                    (Some(_), _) | (None, None) => None,
                    (None, Some(true)) => {
                        self.share.insert(id.to_owned(), Default::default());
                        self.persist(id);
                        None
                    }
                    (None, Some(false)) => {
                        Some((ec::GROUP_ID_NOT_FOUND, format!("Group {id} not found.")))
                    }
                }
            })
            .collect()
    }

    fn tick(&mut self, now: Instant) {
        self.expire_offsets(now);
        if !self.share.is_empty() {
            let catalog = self.topics_cache.get(&self.catalog);
            let mut changes = Vec::new();
            share_group::expire(&mut self.share, &catalog, now, &mut changes);
            let mut changed: Vec<String> = changes
                .iter()
                .filter_map(|c| match c {
                    crate::share::job::MemberChange::Dropped { group, .. } => Some(group.clone()),
                    _ => None,
                })
                .collect();
            changed.dedup();
            self.tell_writer(changes);
            for id in changed {
                self.persist(&id);
            }
        }
        for group in self.groups.values_mut() {
            group.pending.retain(|_, expires| *expires > now);
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| m.join.is_none() && now - m.last_seen > m.session_timeout)
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                tracing::info!(group = group.id, member = id, "member session expired");
                group.remove_member(id);
            }
            if !expired.is_empty() {
                after_departure(group, now);
            }
            // Kafka's pending-sync expiry: members of this generation that
            // never sent their SyncGroup are removed, and the rest rejoin.
            let late = group.sync_expired(now);
            for id in &late {
                tracing::info!(
                    group = group.id,
                    member = id,
                    generation = group.generation,
                    "member removed: no SyncGroup within the rebalance timeout"
                );
                group.remove_member(id);
            }
            if !late.is_empty() {
                after_departure(group, now);
            }
            maybe_complete_join(group, now);
        }
        let emptied: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| {
                g.state == State::Empty && g.members.is_empty() && g.pending.is_empty()
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in emptied {
            self.groups.remove(&id);
            self.persist(&id);
        }
        let mut changed = Vec::new();
        let configs = self.group_configs.lock().unwrap_or_else(|p| p.into_inner());
        for group in self.consumer.values_mut() {
            let own = configs.get(&group.id).copied().unwrap_or_default();
            let (session, _) = own.consumer_timing(&self.group_defaults);
            let expired = group.expired(now, session);
            for (id, why) in &expired {
                tracing::info!(
                    group = group.id,
                    member = id,
                    "consumer group member removed: {why}"
                );
                group.remove(id);
            }
            if !expired.is_empty() {
                changed.push(group.id.clone());
            }
        }
        drop(configs);
        if !changed.is_empty() {
            let catalog = self.topics_cache.get(&self.catalog);
            for id in changed {
                if let Some(group) = self.consumer.get_mut(&id) {
                    group.refresh(&catalog, false);
                }
                self.downgrade_if_classic(&id, &catalog.topics, now);
                self.persist(&id);
            }
        }
        // An empty consumer group stays while it has committed offsets
        // (it is listed and described as Kafka keeps it).
        let offsets = &self.offsets;
        let dropped: Vec<String> = self
            .consumer
            .iter()
            .filter(|(id, g)| g.members.is_empty() && !offsets.has_group(id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in dropped {
            self.consumer.remove(&id);
            self.persist(&id);
        }
    }

    /// Writes group `group_id` if it changed, before the answer that
    /// changed it goes out: a consumer or share group as it is; a classic
    /// group once stable (while it rebalances its last stable record
    /// stands); a tombstone for a group gone or a classic group left
    /// without members.
    fn persist(&mut self, group_id: &str) {
        let found = (
            self.consumer.get(group_id),
            self.groups.get(group_id),
            self.share.get(group_id),
        );
        let stored = match found {
            (Some(g), _, _) => self.store.save(g),
            (None, Some(g), _) if g.members.is_empty() => self.store.delete(group_id),
            (None, Some(g), _) if g.state == State::Stable => self.store.save_classic(g),
            // Rebalancing: its last stable record stands, unless that is
            // of the consumer group it was (converted back, it has none).
            (None, Some(_), _) if self.store.is_consumer(group_id) => self.store.delete(group_id),
            (None, Some(_), _) => Ok(()),
            (None, None, Some(g)) => self.store.save_share(group_id, g),
            (None, None, None) => self.store.delete(group_id),
        };
        if let Err(e) = stored {
            tracing::error!(group = group_id, error = %e, "storing a group failed; its members are kept in memory only");
        }
    }
}

/// A described group that is not a classic group the coordinator knows:
/// Dead up to DescribeGroups v5; from v6 GROUP_ID_NOT_FOUND with Kafka's
/// message ("Group g not found.", "Group g is not a classic group.").
fn not_found(d: &mut DescribedGroup, version: i16, why: &str) {
    if version >= 6 {
        d.error_code = ec::GROUP_ID_NOT_FOUND;
        let message = format!("Group {} {why}.", d.group_id.0.as_str());
        d.error_message = Some(StrBytes::from_string(message));
    } else {
        d.group_state = StrBytes::from_static_str("Dead");
    }
}

/// Whether a group accepts an offset commit from `member` of `generation`,
/// by Kafka's group coordinator rules. Offsets for a group nobody manages
/// (generation -1, no members) are stored as they come. A member of the
/// current generation may commit while the group is stable and while it
/// prepares a rebalance: librdkafka and the Java client commit their
/// revoked partitions exactly then, and refusing would hand those
/// partitions to the next owner at an older offset (read twice). Between
/// the join and the sync answers (CompletingRebalance) the member must
/// wait for its assignment: REBALANCE_IN_PROGRESS. A static member's
/// instance id must still be its own (FENCED_INSTANCE_ID).
fn commit_check(
    group: Option<&mut Group>,
    member: &StrBytes,
    instance_id: Option<&str>,
    generation: i32,
) -> i16 {
    let Some(group) = group else {
        return if generation < 0 {
            ec::NONE
        } else {
            // A generation of a group that no longer exists.
            ec::ILLEGAL_GENERATION
        };
    };
    if generation < 0 && group.state == State::Empty {
        return ec::NONE;
    }
    if group.state == State::CompletingRebalance {
        return ec::REBALANCE_IN_PROGRESS;
    }
    let known = group.check_member(member, instance_id);
    if known != ec::NONE {
        return known;
    }
    let Some(m) = group.members.get_mut(member.as_str()) else {
        return ec::UNKNOWN_MEMBER_ID;
    };
    if generation != group.generation {
        return ec::ILLEGAL_GENERATION;
    }
    m.last_seen = Instant::now();
    ec::NONE
}

/// Answers a SyncGroup; on success from v5 with the group's protocol
/// type and name.
fn sync_reply(to: Call, code: i16, assignment: Bytes, protocol: Option<(StrBytes, StrBytes)>) {
    let mut resp = SyncGroupResponse::default();
    resp.error_code = code;
    resp.assignment = assignment;
    if let Some((protocol_type, name)) = protocol {
        resp.protocol_type = Some(protocol_type);
        resp.protocol_name = Some(name);
    }
    to.send(resp);
}

/// After members left: the rest rebalance, or the group is empty.
fn after_departure(group: &mut Group, now: Instant) {
    if group.members.is_empty() {
        group.state = State::Empty;
        group.leader = None;
        group.protocol = None;
        group.rebalance_deadline = None;
    } else {
        group.prepare_rebalance(now, INITIAL_REBALANCE_DELAY);
        maybe_complete_join(group, now);
    }
}

/// Ends the join phase when every member has rejoined or time is up:
/// members that did not rejoin are dropped, the generation moves on, and
/// every waiting JoinGroup is answered (the leader with the members'
/// subscriptions).
fn maybe_complete_join(group: &mut Group, now: Instant) {
    if group.state != State::PreparingRebalance {
        return;
    }
    let deadline = group.rebalance_deadline.unwrap_or(now);
    let initial = group.generation == 0 || group.leader.is_none();
    if !(now >= deadline || (group.all_joined() && !initial)) {
        return;
    }
    // Dynamic members that did not rejoin are gone; static ones keep their
    // place (and are assigned) until their session expires (KIP-345).
    group
        .members
        .retain(|_, m| m.join.is_some() || m.instance_id.is_some());
    if group.members.is_empty() {
        after_departure(group, now);
        return;
    }
    if group.members.values().all(|m| m.join.is_none()) {
        // Only absent static members: wait for them or their sessions.
        let wait = group.members.values().map(|m| m.rebalance_timeout).max();
        group.rebalance_deadline = Some(now + wait.unwrap_or_default());
        return;
    }
    group.generation += 1;
    group.protocol = group.choose_protocol();
    let leader_joined = group
        .leader
        .as_ref()
        .and_then(|l| group.members.get(l))
        .is_some_and(|m| m.join.is_some());
    if !leader_joined {
        group.leader = group
            .members
            .iter()
            .find(|(_, m)| m.join.is_some())
            .map(|(id, _)| id.clone());
    }
    group.state = State::CompletingRebalance;
    group.rebalance_deadline = None;
    group.await_syncs(now);
    let waiting: Vec<(String, Call)> = group
        .members
        .iter_mut()
        .filter_map(|(id, m)| {
            m.last_seen = now;
            m.join.take().map(|to| (id.clone(), to))
        })
        .collect();
    for (id, to) in waiting {
        to.send(group.join_answer(&id));
    }
    tracing::info!(
        group = group.id,
        generation = group.generation,
        members = group.members.len(),
        "group rebalanced"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(state: State, generation: i32, member: &str) -> Group {
        let mut g = Group::new("g".into());
        g.state = state;
        g.generation = generation;
        g.members.insert(
            member.into(),
            Member {
                protocols: Vec::new(),
                session_timeout: MIN_SESSION,
                rebalance_timeout: MIN_SESSION,
                last_seen: Instant::now(),
                join: None,
                sync: None,
                assignment: Bytes::new(),
                client: Client::default(),
                instance_id: None,
            },
        );
        g
    }

    fn check(g: Option<&mut Group>, member: &str, generation: i32) -> i16 {
        commit_check(g, &StrBytes::from_string(member.into()), None, generation)
    }

    #[test]
    fn commits_follow_kafkas_group_coordinator_rules() {
        // No group: offsets of a group nobody manages are stored; a
        // generation of a group that is gone is refused.
        assert_eq!(check(None, "", -1), ec::NONE);
        assert_eq!(check(None, "m", 3), ec::ILLEGAL_GENERATION);
        // A member of the current generation commits while the group is
        // stable and while it prepares a rebalance (revoked partitions).
        let mut stable = group(State::Stable, 3, "m");
        assert_eq!(check(Some(&mut stable), "m", 3), ec::NONE);
        let mut preparing = group(State::PreparingRebalance, 3, "m");
        assert_eq!(check(Some(&mut preparing), "m", 3), ec::NONE);
        assert_eq!(
            check(Some(&mut preparing), "m", 2),
            ec::ILLEGAL_GENERATION,
            "an older generation's commit"
        );
        assert_eq!(check(Some(&mut preparing), "x", 3), ec::UNKNOWN_MEMBER_ID);
        // Waiting for assignments: not yet.
        let mut completing = group(State::CompletingRebalance, 4, "m");
        assert_eq!(
            check(Some(&mut completing), "m", 4),
            ec::REBALANCE_IN_PROGRESS
        );
        // A standalone commit into a group with members is not a member's.
        assert_eq!(check(Some(&mut stable), "", -1), ec::UNKNOWN_MEMBER_ID);
    }
}
