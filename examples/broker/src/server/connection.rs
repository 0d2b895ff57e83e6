//! One client connection: reads requests (length-framed by the pipeline's
//! decoder), answers the cheap ones on the loop, and sends the rest to the
//! log writer or the group coordinator with a [`Responder`] that brings
//! the answer back in order.
//!
//! A request the broker cannot parse, for an API or version it does not
//! speak (other than ApiVersions, which is answered with
//! `UNSUPPORTED_VERSION` and the supported ranges, as Kafka does), or
//! bigger than the request size limit closes this connection only.
//!
//! On a SASL listener a connection is served nothing but ApiVersions,
//! SaslHandshake and SaslAuthenticate until it has authenticated; any
//! other request, or a failed authentication, closes it (as Kafka does).
//!
//! A connection over a client quota (see [`quotas`]) is answered with the
//! throttle time and read no further until it has passed: requests read
//! meanwhile wait in the backlog, served by the throttle's timer. A
//! connection that takes its address over its connection creation rate
//! is read from not at all, and closed once its hold is over. A
//! connection past its address's connection limit is closed at once; one
//! idle past `connections.max.idle.ms` is closed.
//!
//! What a client can make the broker warn about at will (a refused or
//! malformed request, a failed login) is logged through one
//! [`LogLimit`]: twenty lines at once, then one a second, each saying how
//! many were held back, so a client doing it in a loop cannot fill the
//! log's disk.

use super::alter_configs::{self, AlterApi, Alteration};
use super::budget::Reservations;
use super::create_topics;
use super::features;
use super::fetch_session;
use super::groups::{GroupCall, ToWriter};
use super::quotas::{self, Kind, MutationCharge};
use super::refusals::{self, Refusal};
use super::responder::{Early, Pending, Responder, TopicLayout};
use super::sequencer::{encoded, Frame, Sequenced};
use super::share_offsets;
use super::share_requests;
use super::shared::Shared;
use super::{config_resources, metadata, node, replicas};
use crate::fetch::{FetchJob, FetchPart};
use crate::log::batch::Marker;
use crate::ops::{Answer, ClientMarker, ConfigTarget, LogJob, LogOp, LogReply, TopicSpec};
use crate::protocol::config_resource;
use crate::protocol::error_code as ec;
use crate::protocol::request::{self, RequestError};
use crate::protocol::throttle::ThrottleTime;
use crate::protocol::{header, versions};
use crate::security::acl::{op, resource};
use crate::security::sasl::{self, Reply, SaslSession};
use crate::share::job::SharePart;
use crate::topics::{self, Topic};
use crate::writer::{Full, Submitter};
use bytes::Bytes;
use gyre_reactor::{
    warn_limited, ChannelHandle, Error, InboundContext, InboundHandler, LogLimit, TimerId,
};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteRecordsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest,
    OffsetForLeaderEpochRequest, ProduceRequest, RequestKind, SaslAuthenticateRequest,
    SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
use std::cell::Cell;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The inbound handler of a client connection.
pub struct Connection {
    shared: Arc<Shared>,
    submitter: Submitter<Responder>,
    handle: Option<ChannelHandle<Sequenced>>,
    /// Sequence numbers given out, and responses sent (by the sequencer).
    issued: u64,
    sent: Rc<Cell<u64>>,
    /// Requests read while too many were in flight.
    backlog: VecDeque<Bytes>,
    /// A request the log writer's ring had no room for: retried on the
    /// resume timer, and nothing after it is served until it is in, so
    /// answers keep their order and the loop never blocks on the writer.
    stalled: Option<LogJob<Responder>>,
    resume_timer: Option<TimerId>,
    /// Over a client quota: nothing is read or served until this timer
    /// fires (Kafka mutes the channel for the throttle time it answered).
    throttle_timer: Option<TimerId>,
    /// When the running throttle ends (meaningful while `throttle_timer`
    /// is set).
    throttle_ends: Instant,
    /// The client quotas as this connection last looked them up.
    quota_cache: quotas::Cached,
    /// Under a `request_percentage` quota: when the request being served
    /// was taken up, and its rate and quota, until its time is counted
    /// (when its answer is written or it is handed over).
    request_clock: Option<(Instant, Arc<quotas::Sensor>, f64)>,
    /// Under a `request_percentage` quota: the time (ns) the coordinator
    /// and admin threads spent on this connection's requests, not yet
    /// counted; the next request's count takes it, so work done off the
    /// loop counts against the quota as in Kafka, where request handler
    /// threads do it. Made on the first such request.
    offloaded: Option<Arc<AtomicU64>>,
    /// This connection's place in its address's count, where a
    /// per-address limit is set (given back when the handler is dropped).
    ip_slot: Option<gyre_reactor::IpSlot>,
    /// A request was refused: the connection closes once the answers
    /// before it are out, and nothing after it is read.
    closing: bool,
    /// Gives each request its share of the server's request memory, held
    /// until the request's bytes are dropped.
    reservations: Reservations,
    /// On a SASL listener: where authentication stands (`None` on a
    /// listener without SASL, where everyone is in).
    sasl: Option<SaslSession>,
    /// The `host:port` this listener's clients are told, if configured.
    advertised: Option<(String, u16)>,
    /// The client's address as ACLs name hosts, made at the first check
    /// (not at every one: checks run per request and topic).
    host: std::cell::OnceCell<String>,
    /// Who the ACLs see: `User:<name>` once SASL has authenticated; on an
    /// SSL listener, `User:<subject>` of a verified client certificate;
    /// else `User:ANONYMOUS`.
    principal: String,
    /// This connection's incremental fetch session (KIP-227), if open.
    fetch_session: fetch_session::SessionSlot,
}

/// The cluster's resource name in ACLs, as Kafka names it.
const CLUSTER: &str = "kafka-cluster";

/// A topic refused for its client's controller mutation quota (KIP-599),
/// in Kafka's words.
fn quota_spent() -> (i16, String) {
    (
        ec::THROTTLING_QUOTA_EXCEEDED,
        "The throttling quota has been exceeded.".to_owned(),
    )
}

/// The largest request a SASL listener reads before the client is
/// authenticated (Kafka's `sasl.server.max.receive.size`, 512 KiB).
const SASL_MAX_RECEIVE: usize = 512 * 1024;

/// Warnings a client can cause at will, shared by every connection.
static PEER_WARNINGS: std::sync::LazyLock<LogLimit> =
    std::sync::LazyLock::new(|| LogLimit::new(20, 1));

/// The tag of the timer that ends a quota's throttle.
const THROTTLE_TAG: u64 = 1;
/// The tag of the timer that closes a connection over its address's
/// connection creation rate.
const REFUSED_TAG: u64 = 2;

/// One partition of a request as [`Connection::route_each`] routes it.
struct Routed {
    /// The partition's index.
    index: i32,
    /// What the writer is asked of it (an offset, a timestamp, an epoch).
    value: i64,
    /// The leader epoch the client knows the partition by (-1: none).
    current_leader_epoch: i32,
}

impl Connection {
    pub(crate) fn new(
        shared: Arc<Shared>,
        submitter: Submitter<Responder>,
        sent: Rc<Cell<u64>>,
        reservations: Reservations,
        sasl: bool,
        advertised: Option<(String, u16)>,
    ) -> Self {
        Connection {
            advertised,
            host: std::cell::OnceCell::new(),
            sasl: sasl.then(|| {
                SaslSession::with_lifetime(shared.sasl_lifetime)
                    .offering_oauthbearer(shared.oauthbearer.is_some())
            }),
            principal: "User:ANONYMOUS".to_owned(),
            fetch_session: Default::default(),
            reservations,
            shared,
            submitter,
            handle: None,
            issued: 0,
            sent,
            backlog: VecDeque::new(),
            stalled: None,
            resume_timer: None,
            throttle_timer: None,
            throttle_ends: Instant::now(),
            quota_cache: quotas::Cached::default(),
            request_clock: None,
            offloaded: None,
            ip_slot: None,
            closing: false,
        }
    }

    /// Whether this connection's principal may do `operation` to the
    /// resource `name` of `resource_type` (always, with the authorizer
    /// off).
    fn may(
        &self,
        ctx: &impl InboundContext<Self>,
        operation: i8,
        resource_type: i8,
        name: &str,
    ) -> bool {
        let acls = &self.shared.acls;
        if !acls.enabled() {
            return true;
        }
        let allowed = acls.allows(
            &self.principal,
            self.host(ctx),
            operation,
            resource_type,
            name,
        );
        if !allowed {
            tracing::debug!(principal = %self.principal, operation, resource_type, name, "denied by the ACLs");
        }
        allowed
    }

    /// The client's address as ACLs name hosts (`*` if unknown).
    fn host(&self, ctx: &impl InboundContext<Self>) -> &str {
        self.host.get_or_init(|| {
            ctx.channel()
                .peer_addr()
                .map_or_else(|| "*".to_owned(), |a| a.ip().to_string())
        })
    }

    fn in_flight(&self) -> usize {
        (self.issued - self.sent.get()) as usize
    }

    fn next_seq(&mut self) -> u64 {
        self.issued += 1;
        self.issued - 1
    }

    fn handle(&mut self, ctx: &mut impl InboundContext<Self>) -> ChannelHandle<Sequenced> {
        self.handle.get_or_insert_with(|| ctx.handle()).clone()
    }

    /// The `host:port` clients are told to use: the configured one, or the
    /// address this client reached the broker at (right for a wildcard
    /// listener, and known without a second bind for port 0).
    fn advertised(&self, ctx: &impl InboundContext<Self>) -> (String, u16) {
        if let Some(configured) = &self.advertised {
            return configured.clone();
        }
        let local = ctx.channel().local_addr();
        local.map_or_else(
            || ("127.0.0.1".to_owned(), 0),
            |a| (a.ip().to_string(), a.port()),
        )
    }

    fn responder(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        seq: u64,
        head: header::RequestHead,
        pending: Pending,
    ) -> Responder {
        // The meter first: counting the request's time ends its clock.
        let busy = self.offload_meter();
        Responder {
            throttle_ms: self.count_request_time(ctx),
            busy,
            handle: self.handle(ctx),
            seq,
            correlation_id: head.correlation_id,
            version: head.api_version,
            pending,
            shared: self.shared.clone(),
        }
    }

    /// Gives the request the next place in the answer order and sends
    /// `op` to the log writer with a responder for `pending`; without an
    /// `op` (nothing routed to the writer: every partition failed already)
    /// the responder answers at once with `nothing`.
    fn send_to_writer(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        pending: Pending,
        op: Option<LogOp>,
        nothing: Answer<'_>,
    ) {
        let seq = self.next_seq();
        let reply = self.responder(ctx, seq, head, pending);
        match op {
            Some(op) => self.submit(ctx, op, Some(reply)),
            None => reply.answer(0, nothing),
        }
    }

    fn submit(&mut self, ctx: &mut impl InboundContext<Self>, op: LogOp, reply: Option<Responder>) {
        let sent = self.submitter.try_submit(0, op, reply);
        self.submitted(ctx, sent);
    }

    fn submitted(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        sent: Result<(), Option<Full<Responder>>>,
    ) {
        match sent {
            Ok(()) => {}
            Err(Some(full)) => {
                // The writer is behind (a slow disk under every-batch, say).
                // Blocking here would stall every connection of this loop;
                // instead this one stops reading and retries.
                self.shared.ring_stalls.fetch_add(1, Ordering::Relaxed);
                self.stalled = Some(full.job);
                self.pause(ctx);
            }
            Err(None) => {
                tracing::warn!("log writer stopped; closing connection");
                ctx.close();
            }
        }
    }

    /// Stops reading and looks again every millisecond.
    fn pause(&mut self, ctx: &mut impl InboundContext<Self>) {
        if self.resume_timer.is_none() {
            ctx.set_auto_read(false);
            let period = Duration::from_millis(1);
            self.resume_timer = Some(ctx.schedule_repeating(period, period, 0));
        }
    }

    fn refuse(&mut self, ctx: &mut impl InboundContext<Self>, why: std::fmt::Arguments<'_>) {
        warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), "closing connection: {why}");
        self.closing = true;
        self.backlog.clear();
        let seq = self.next_seq();
        ctx.write(Sequenced {
            seq,
            frame: Frame::Close,
        });
    }

    /// Serves one request; under a request quota, its time on the loop
    /// is counted by then (see [`quotas`]).
    fn serve(&mut self, ctx: &mut impl InboundContext<Self>, frame: Bytes) {
        self.serve_frame(ctx, frame);
        // Answered by the coordinator, or refused: counted now.
        self.count_request_time(ctx);
    }

    /// Counts the time of the request being served against its client's
    /// request quota, if it has one and it was not counted yet, and mutes
    /// the connection for the throttle that earns; the throttle (ms) for
    /// its answer to carry.
    fn count_request_time(&mut self, ctx: &mut impl InboundContext<Self>) -> i32 {
        let Some((started, sensor, percent)) = self.request_clock.take() else {
            return 0;
        };
        let elsewhere = self
            .offloaded
            .as_ref()
            .map_or(0, |ns| ns.swap(0, Ordering::Relaxed));
        let busy = started.elapsed() + Duration::from_nanos(elsewhere);
        let wait = sensor.record_time_and_throttle(busy, percent);
        self.throttle(ctx, wait);
        quotas::throttle_ms(wait)
    }

    fn serve_frame(&mut self, ctx: &mut impl InboundContext<Self>, frame: Bytes) {
        // A joining member's client id is kept for DescribeGroups and
        // ConsumerGroupDescribe (a slice of the frame: no copy).
        let client_id = match header::peek(&frame) {
            Ok(h)
                if h.api_key == ApiKey::JoinGroup as i16
                    || h.api_key == ApiKey::ConsumerGroupHeartbeat as i16
                    || h.api_key == ApiKey::ShareGroupHeartbeat as i16 =>
            {
                header::client_id(&frame)
            }
            _ => Bytes::new(),
        };
        if let Some(session) = &mut self.sasl {
            if session.principal().is_none() && frame.len() > SASL_MAX_RECEIVE {
                // Kafka's sasl.server.max.receive.size: before a client is
                // in, nothing it sends is worth parsing at this size (a
                // token or a SCRAM message is a few KiB).
                let size = frame.len();
                return self.refuse(
                    ctx,
                    format_args!("a {size}-byte request before SASL authentication"),
                );
            }
            if session.ends() && session.expired(std::time::Instant::now()) {
                // KIP-368: past its session's end a connection may only
                // re-authenticate; anything else closes it, as Kafka does.
                let key = header::peek(&frame).ok().map(|h| h.api_key);
                if key != Some(ApiKey::SaslHandshake as i16) {
                    tracing::info!(peer = ?ctx.channel().peer_addr(), "SASL session expired without re-authentication; closing");
                    return self.refuse(ctx, format_args!("SASL session expired"));
                }
            }
            if session.expects_raw_token() {
                // After a v0 handshake: a bare token, answered bare (a
                // refusal just closes, as v0 has no error to carry).
                return match session.authenticate(&frame, self.shared.sasl_verifiers()) {
                    Reply::Continue(token) | Reply::Authenticated { last: token, .. } => {
                        if let Some(user) = session.principal() {
                            tracing::info!(peer = ?ctx.channel().peer_addr(), %user, "authenticated");
                            self.principal = format!("User:{user}");
                        }
                        let mut raw = bytes::BytesMut::with_capacity(4 + token.len());
                        raw.extend_from_slice(&(token.len() as u32).to_be_bytes());
                        raw.extend_from_slice(&token);
                        let seq = self.next_seq();
                        ctx.write(Sequenced {
                            seq,
                            frame: Frame::Bytes(raw.freeze()),
                        });
                    }
                    Reply::Refused(why) => {
                        warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), reason = %why, "SASL authentication failed");
                        self.refuse(ctx, format_args!("SASL authentication failed"))
                    }
                };
            }
            if session.principal().is_none() {
                let key = header::peek(&frame).ok().map(|h| h.api_key);
                let allowed = [
                    ApiKey::ApiVersions as i16,
                    ApiKey::SaslHandshake as i16,
                    ApiKey::SaslAuthenticate as i16,
                ];
                if !key.is_some_and(|k| allowed.contains(&k)) {
                    let what = match key.map(|k| (k, ApiKey::try_from(k))) {
                        None => "a request without a whole header".to_owned(),
                        Some((_, Ok(name))) => format!("{name:?}"),
                        Some((k, Err(()))) => format!("a request of unknown API key {k}"),
                    };
                    return self.refuse(ctx, format_args!("{what} before SASL authentication"));
                }
            }
        }
        // What a client quota counts of a produce request (its size) and
        // whose it is (the client id); nothing when no quota is set.
        let quota_ask = self
            .shared
            .quotas
            .any()
            .then(|| (frame.len(), header::client_id(&frame)));
        if let Some((sensor, percent)) = self.quota(Kind::Requests, &quota_ask) {
            self.request_clock = Some((Instant::now(), sensor, percent));
        }
        let (head, request) = match request::decode(frame) {
            Ok(decoded) => decoded,
            Err(RequestError::UnsupportedVersion {
                key: ApiKey::ApiVersions,
                head,
                ..
            }) => return self.api_versions(ctx, head, ec::UNSUPPORTED_VERSION),
            Err(e) => return self.refuse(ctx, format_args!("{e}")),
        };
        // A feature turned off (KIP-584) turns its requests away before
        // anything else looks at them, as Kafka's handlers do.
        if let Some(feature) = features::needed_by(&request) {
            if !self.shared.features.levels().is_on(feature) {
                let to = self.refusal(ctx, head);
                if let Some(frame) = refusals::group_request(&request, to, ec::UNSUPPORTED_VERSION)
                {
                    let seq = self.next_seq();
                    ctx.write(Sequenced { seq, frame });
                    return;
                }
            }
        }
        if let Some((groups, operation)) = refusals::groups_of(&request) {
            if groups
                .iter()
                .any(|g| !self.may(ctx, operation, resource::GROUP, g))
            {
                let to = self.refusal(ctx, head);
                if let Some(frame) =
                    refusals::group_request(&request, to, ec::GROUP_AUTHORIZATION_FAILED)
                {
                    let seq = self.next_seq();
                    ctx.write(Sequenced { seq, frame });
                    return;
                }
            }
        }
        if let Some(id) = refusals::transactional_id_of(&request) {
            if !self.may(ctx, op::WRITE, resource::TRANSACTIONAL_ID, id) {
                let refused = ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
                let to = self.refusal(ctx, head);
                if let Some(frame) = refusals::txn_request(&request, to, refused) {
                    let seq = self.next_seq();
                    ctx.write(Sequenced { seq, frame });
                    return;
                }
            }
        }
        let cluster_op = match &request {
            RequestKind::DescribeAcls(_) | RequestKind::DescribeUserScramCredentials(_) => {
                Some(op::DESCRIBE)
            }
            RequestKind::CreateAcls(_)
            | RequestKind::DeleteAcls(_)
            | RequestKind::AlterUserScramCredentials(_) => Some(op::ALTER),
            _ => None,
        };
        if cluster_op.is_some_and(|o| !self.may(ctx, o, resource::CLUSTER, CLUSTER)) {
            let to = self.refusal(ctx, head);
            if let Some(frame) = refusals::cluster_request(
                &request,
                to,
                ec::CLUSTER_AUTHORIZATION_FAILED,
                refusals::NOT_THE_CLUSTERS,
            ) {
                let seq = self.next_seq();
                ctx.write(Sequenced { seq, frame });
                return;
            }
        }
        match request {
            RequestKind::ApiVersions(_) => self.api_versions(ctx, head, ec::NONE),
            RequestKind::Metadata(r) => self.metadata(ctx, head, r),
            RequestKind::Produce(r) => {
                let throttle = match self.quota(Kind::Produce, &quota_ask) {
                    Some((sensor, quota)) => {
                        let size = quota_ask.as_ref().map_or(0, |(size, _)| *size);
                        sensor.record_and_throttle(size, quota)
                    }
                    None => Duration::ZERO,
                };
                self.produce(ctx, head, r, throttle)
            }
            RequestKind::Fetch(r) => {
                let quota = self.quota(Kind::Fetch, &quota_ask);
                self.fetch(ctx, head, r, quota)
            }
            share @ (RequestKind::ShareFetch(_) | RequestKind::ShareAcknowledge(_)) => {
                let quota = match share {
                    RequestKind::ShareFetch(_) => self.quota(Kind::Fetch, &quota_ask),
                    _ => None,
                };
                self.share_request(ctx, head, &share, quota)
            }
            offsets @ (RequestKind::DescribeShareGroupOffsets(_)
            | RequestKind::AlterShareGroupOffsets(_)
            | RequestKind::DeleteShareGroupOffsets(_)) => self.share_offsets(ctx, head, offsets),
            RequestKind::ListOffsets(r) => self.list_offsets(ctx, head, r),
            RequestKind::OffsetForLeaderEpoch(r) => self.epoch_ends(ctx, head, r),
            RequestKind::DescribeTopicPartitions(r) => {
                let seq = self.next_seq();
                let may = |op, name: &str| self.may(ctx, op, resource::TOPIC, name);
                let mut body = super::topic_partitions::response(
                    &self.shared.catalog,
                    &r,
                    |name| may(op::DESCRIBE, name),
                    |name| super::topic_partitions::operations(|op| may(op, name)),
                );
                body.throttle_at_least(self.count_request_time(ctx));
                ctx.write(Sequenced {
                    seq,
                    frame: encoded(head.correlation_id, head.api_version, &body),
                });
            }
            RequestKind::CreateTopics(r) => {
                let quota = self.quota(Kind::Mutations, &quota_ask);
                self.create_topics(ctx, head, r, quota)
            }
            RequestKind::DeleteTopics(r) => {
                // KIP-599: v5 and later can be refused a topic for the
                // mutation quota.
                let mut charge = MutationCharge::new(
                    self.quota(Kind::Mutations, &quota_ask),
                    head.api_version >= 5,
                    ctx.now(),
                );
                // By name (v0-5), or (v6) by name or id; each answered with
                // both where the topic is known, and looked up once (its
                // partitions are what the mutation quota counts).
                let catalog = &self.shared.catalog;
                let by_name = |name: StrBytes| match catalog.get(&name) {
                    Some(found) => (Some(name), found.id, found.partitions.len()),
                    None => (Some(name), Uuid::nil(), 0),
                };
                let topics: Vec<(Option<StrBytes>, Uuid, usize)> = r
                    .topic_names
                    .into_iter()
                    .map(|n| by_name(n.0))
                    .chain(r.topics.into_iter().map(|t| match t.name {
                        Some(name) => by_name(name.0),
                        None => match catalog.by_id(&t.topic_id) {
                            Some(found) => (
                                Some(StrBytes::from_string(found.name.clone())),
                                t.topic_id,
                                found.partitions.len(),
                            ),
                            None => (None, t.topic_id, 0),
                        },
                    }))
                    .collect();
                // A topic the principal may not delete, or past the
                // mutation quota, is answered so and goes to the writer as
                // no name, as an unknown id does: the writer refuses it.
                let topics: Vec<(Option<StrBytes>, Uuid, Early)> = topics
                    .into_iter()
                    .map(|(n, id, partitions)| {
                        let refused = match &n {
                            Some(n) if !self.may(ctx, op::DELETE, resource::TOPIC, n) => Some((
                                ec::TOPIC_AUTHORIZATION_FAILED,
                                "the principal may not delete this topic".to_owned(),
                            )),
                            Some(_) => {
                                (partitions > 0 && !charge.admit(partitions)).then(quota_spent)
                            }
                            None => None,
                        };
                        (n, id, refused)
                    })
                    .collect();
                let names = topics
                    .iter()
                    .map(|(n, _, refused)| match n {
                        Some(n) if refused.is_none() => n.as_str().to_owned(),
                        _ => String::new(),
                    })
                    .collect();
                let op = LogOp::DeleteTopics(names);
                let nothing = Answer::Deleted(Vec::new());
                let throttle = charge.throttle();
                let pending = Pending::DeleteTopics(topics, quotas::throttle_ms(throttle));
                self.send_to_writer(ctx, head, pending, Some(op), nothing);
                self.throttle(ctx, throttle);
            }
            RequestKind::InitProducerId(req) if req.transactional_id.is_some() => {
                // The transaction coordinator's, on the group thread.
                let request = RequestKind::InitProducerId(req);
                self.send_to_coordinator(ctx, head, request, client_id, Vec::new(), None);
            }
            RequestKind::AddPartitionsToTxn(req) => {
                // Partitions of topics the principal may not write are
                // refused (and so, as in Kafka, the whole request).
                let names = req.v3_and_below_topics.iter().map(|t| t.name.0.as_str());
                let denied = self.denied(ctx, op::WRITE, resource::TOPIC, names);
                let request = RequestKind::AddPartitionsToTxn(req);
                self.send_to_coordinator(ctx, head, request, client_id, denied, None);
            }
            RequestKind::TxnOffsetCommit(req) => {
                // Offsets of topics the principal may not read are
                // refused, as with OffsetCommit.
                let names = req.topics.iter().map(|t| t.name.0.as_str());
                let denied = self.denied(ctx, op::READ, resource::TOPIC, names);
                let request = RequestKind::TxnOffsetCommit(req);
                self.send_to_coordinator(ctx, head, request, client_id, denied, None);
            }
            RequestKind::DescribeProducers(r) => {
                // READ on each topic, as in Kafka.
                let (layout, asked) = self.route_each(
                    ctx,
                    op::READ,
                    r.topics
                        .into_iter()
                        .map(|t| (t.name.0, t.partition_indexes)),
                    |&index| Routed {
                        index,
                        value: 0,
                        current_leader_epoch: -1,
                    },
                );
                let partitions: Vec<u32> = asked.into_iter().map(|(id, _)| id).collect();
                let op = (!partitions.is_empty()).then(|| LogOp::DescribeProducers(partitions));
                let nothing = Answer::Producers(Vec::new());
                self.send_to_writer(ctx, head, Pending::DescribeProducers(layout), op, nothing);
            }
            RequestKind::WriteTxnMarkers(r) => {
                // CLUSTER_ACTION on the cluster, the brokers' own, or ALTER
                // (KIP-1037, Kafka 3.8), an operator's; each partition is
                // refused CLUSTER_AUTHORIZATION_FAILED otherwise, as in
                // Kafka. A coordinator epoch below -1 is older than any a
                // producer's marker can carry: fenced.
                let allowed = self.may(ctx, op::CLUSTER_ACTION, resource::CLUSTER, CLUSTER)
                    || self.may(ctx, op::ALTER, resource::CLUSTER, CLUSTER);
                let (mut layout, mut asked) = (Vec::new(), Vec::new());
                for m in r.markers {
                    let marker = ClientMarker {
                        producer_id: m.producer_id.0,
                        producer_epoch: m.producer_epoch,
                        marker: if m.transaction_result {
                            Marker::Commit
                        } else {
                            Marker::Abort
                        },
                        coordinator_epoch: m.coordinator_epoch,
                    };
                    let refused = if !allowed {
                        Some(ec::CLUSTER_AUTHORIZATION_FAILED)
                    } else {
                        (m.coordinator_epoch < -1).then_some(ec::TRANSACTION_COORDINATOR_FENCED)
                    };
                    let topics = m.topics.into_iter().map(|t| {
                        // A refused marker's partitions all get its code.
                        let (found, missing) = match refused {
                            Some(code) => (None, code),
                            None => (
                                self.shared.catalog.get(&t.name),
                                ec::UNKNOWN_TOPIC_OR_PARTITION,
                            ),
                        };
                        let indexes = &t.partition_indexes;
                        self.route_found(
                            t.name.0,
                            found,
                            missing,
                            indexes,
                            |&i| (i, -1),
                            |id, _| {
                                asked.push((id, marker));
                            },
                        )
                    });
                    layout.push((marker.producer_id, topics.collect()));
                }
                let op = (!asked.is_empty()).then(|| LogOp::ClientMarkers(asked));
                let pending = Pending::WriteTxnMarkers(layout);
                self.send_to_writer(ctx, head, pending, op, Answer::Appended(&[]));
            }
            RequestKind::DescribeTransactions(req) => {
                let ids = req.transactional_ids.iter().map(|id| id.0.as_str());
                let denied = self.denied(ctx, op::DESCRIBE, resource::TRANSACTIONAL_ID, ids);
                let request = RequestKind::DescribeTransactions(req);
                self.send_to_coordinator(ctx, head, request, client_id, denied, None);
            }
            RequestKind::ListTransactions(req) => {
                let visible = self.acl_view(ctx);
                let request = RequestKind::ListTransactions(req);
                self.send_to_coordinator(ctx, head, request, client_id, Vec::new(), visible);
            }
            txn @ (RequestKind::AddOffsetsToTxn(_) | RequestKind::EndTxn(_)) => {
                self.send_to_coordinator(ctx, head, txn, client_id, Vec::new(), None);
            }
            RequestKind::InitProducerId(req) => {
                let mut r = node::init_producer_id(&self.shared, &req);
                // Idempotent producers need IDEMPOTENT_WRITE on the
                // cluster or, as in Kafka 3, WRITE on some topic.
                if r.error_code == ec::NONE
                    && self.shared.acls.enabled()
                    && !self.may(ctx, op::IDEMPOTENT_WRITE, resource::CLUSTER, CLUSTER)
                    && !self
                        .shared
                        .catalog
                        .all()
                        .iter()
                        .any(|t| self.may(ctx, op::WRITE, resource::TOPIC, &t.name))
                {
                    r.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
                    r.producer_id = kafka_protocol::messages::ProducerId(-1);
                }
                self.reply(ctx, head, r);
            }
            RequestKind::DescribeCluster(req) => {
                let ops =
                    node::cluster_operations(|o| self.may(ctx, o, resource::CLUSTER, CLUSTER));
                let r = node::describe_cluster(&req, head.api_version, self.advertised(ctx), ops);
                self.reply(ctx, head, r);
            }
            RequestKind::ListConfigResources(req) => {
                let allowed = self.may(ctx, op::DESCRIBE_CONFIGS, resource::CLUSTER, CLUSTER);
                let topics = self.shared.catalog.all();
                let names = topics.iter().map(|t| t.name.as_str());
                let groups = &self.shared.share_configs;
                let groups = groups.lock().unwrap_or_else(|p| p.into_inner());
                let r = config_resources::list(&req, head.api_version, allowed, names, &groups);
                drop(groups);
                self.reply(ctx, head, r);
            }
            RequestKind::DescribeLogDirs(req) => {
                if !self.may(ctx, op::DESCRIBE, resource::CLUSTER, CLUSTER) {
                    self.reply(ctx, head, replicas::log_dirs_refused());
                    return;
                }
                // Sizes come from the writer, which owns the logs.
                let layout = replicas::log_dirs_asked(&self.shared.catalog, &req);
                let ids = layout
                    .iter()
                    .flat_map(|(_, parts)| parts.iter().map(|&(_, id)| id))
                    .collect();
                let op = LogOp::LogDirSizes(ids);
                let nothing = Answer::LogDirSizes(Vec::new(), None);
                self.send_to_writer(
                    ctx,
                    head,
                    Pending::DescribeLogDirs(layout),
                    Some(op),
                    nothing,
                );
            }
            RequestKind::AlterReplicaLogDirs(req) => {
                let allowed = self.may(ctx, op::ALTER, resource::CLUSTER, CLUSTER);
                let log_dir = &self.shared.log_dir;
                let r = replicas::alter_log_dirs(&self.shared.catalog, &req, allowed, log_dir);
                self.reply(ctx, head, r);
            }
            RequestKind::AlterClientQuotas(req) => {
                // The file is written and synced: off the event loop.
                let allowed = self.may(ctx, op::ALTER_CONFIGS, resource::CLUSTER, CLUSTER);
                let work = move |shared: &Shared, r: &_| shared.quotas.alter(r, allowed);
                self.off_loop(ctx, head, req, work, refusals::alter_client_quotas)
            }
            RequestKind::DescribeClientQuotas(req) => {
                let allowed = self.may(ctx, op::DESCRIBE_CONFIGS, resource::CLUSTER, CLUSTER);
                let resp = self.shared.quotas.describe(&req, allowed);
                self.reply(ctx, head, resp);
            }
            RequestKind::UpdateFeatures(req) => {
                // The file is written and synced: off the event loop.
                let allowed = self.may(ctx, op::ALTER, resource::CLUSTER, CLUSTER);
                let version = head.api_version;
                let work =
                    move |shared: &Shared, r: &_| shared.features.update(r, version, allowed);
                self.off_loop(ctx, head, req, work, refusals::update_features)
            }
            RequestKind::ElectLeaders(req) => {
                let allowed = self.may(ctx, op::ALTER, resource::CLUSTER, CLUSTER);
                let r = replicas::elect_leaders(&self.shared.catalog, &req, allowed);
                self.reply(ctx, head, r);
            }
            RequestKind::ListPartitionReassignments(req) => {
                let allowed = self.may(ctx, op::DESCRIBE, resource::CLUSTER, CLUSTER);
                self.reply(ctx, head, replicas::list_reassignments(&req, allowed));
            }
            RequestKind::AlterPartitionReassignments(req) => {
                let allowed = self.may(ctx, op::ALTER, resource::CLUSTER, CLUSTER);
                let r = replicas::alter_reassignments(&self.shared.catalog, &req, allowed);
                self.reply(ctx, head, r);
            }
            RequestKind::SaslHandshake(r) => {
                let mut resp = SaslHandshakeResponse::default();
                match &mut self.sasl {
                    Some(session) => {
                        resp.mechanisms = session
                            .mechanisms()
                            .iter()
                            .map(|m| StrBytes::from_static_str(m))
                            .collect();
                        resp.error_code =
                            match session.handshake(r.mechanism.as_str(), head.api_version) {
                                sasl::Handshake::Accepted => ec::NONE,
                                sasl::Handshake::Unsupported => ec::UNSUPPORTED_SASL_MECHANISM,
                                sasl::Handshake::IllegalState => ec::ILLEGAL_SASL_STATE,
                            };
                    }
                    None => resp.error_code = ec::ILLEGAL_SASL_STATE,
                }
                let refused = resp.error_code != ec::NONE;
                self.reply(ctx, head, resp);
                if refused {
                    let mechanism = r.mechanism.as_str().to_owned();
                    self.refuse(
                        ctx,
                        format_args!("SASL handshake for {mechanism:?} refused"),
                    );
                }
            }
            RequestKind::SaslAuthenticate(r) => self.sasl_authenticate(ctx, head, r),
            RequestKind::DescribeUserScramCredentials(r) => {
                let resp = super::users::describe(&self.shared.credentials, &r);
                self.reply(ctx, head, resp);
            }
            RequestKind::AlterUserScramCredentials(r) => self.off_loop(
                ctx,
                head,
                r,
                |shared, r| super::users::alter(&shared.credentials, r),
                refusals::alter_scram_users,
            ),
            RequestKind::DescribeAcls(r) => {
                let resp = super::acls::describe(&self.shared.acls, &r);
                self.reply(ctx, head, resp);
            }
            RequestKind::CreateAcls(r) => self.off_loop(
                ctx,
                head,
                r,
                |shared, r| super::acls::create(&shared.acls, r),
                refusals::create_acls,
            ),
            RequestKind::DeleteAcls(r) => self.off_loop(
                ctx,
                head,
                r,
                |shared, r| super::acls::delete(&shared.acls, r),
                refusals::delete_acls,
            ),
            RequestKind::CreatePartitions(r) => {
                let quota = self.quota(Kind::Mutations, &quota_ask);
                self.create_partitions(ctx, head, r, quota)
            }
            RequestKind::DeleteRecords(r) => self.delete_records(ctx, head, r),
            RequestKind::IncrementalAlterConfigs(r) => self.alter_configs(
                ctx,
                head,
                AlterApi::Incremental,
                alter_configs::incremental(r),
            ),
            RequestKind::AlterConfigs(r) => {
                self.alter_configs(ctx, head, AlterApi::Replacing, alter_configs::replacing(r))
            }
            RequestKind::DescribeConfigs(r) => {
                let mut resp = super::configs::describe(&self.shared, &r, head.api_version);
                for result in &mut resp.results {
                    let (acl_type, refused) = match result.resource_type {
                        config_resource::TOPIC => (resource::TOPIC, ec::TOPIC_AUTHORIZATION_FAILED),
                        config_resource::GROUP => (resource::GROUP, ec::GROUP_AUTHORIZATION_FAILED),
                        _ => continue,
                    };
                    let name = result.resource_name.as_str();
                    if !self.may(ctx, op::DESCRIBE_CONFIGS, acl_type, name) {
                        result.error_code = refused;
                        result.error_message = None;
                        result.configs.clear();
                    }
                }
                self.reply(ctx, head, resp);
            }
            RequestKind::FindCoordinator(req) => {
                // As in Kafka: DESCRIBE on the group or the transactional
                // id; a share partition's coordinator (v6) is the brokers'
                // own business, CLUSTER_ACTION on the cluster.
                let advertised = self.advertised(ctx);
                let refused = |kind, key: &str| match kind {
                    node::key_type::GROUP if !self.may(ctx, op::DESCRIBE, resource::GROUP, key) => {
                        ec::GROUP_AUTHORIZATION_FAILED
                    }
                    node::key_type::TRANSACTION
                        if !self.may(ctx, op::DESCRIBE, resource::TRANSACTIONAL_ID, key) =>
                    {
                        ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                    }
                    node::key_type::SHARE
                        if !self.may(ctx, op::CLUSTER_ACTION, resource::CLUSTER, CLUSTER) =>
                    {
                        ec::CLUSTER_AUTHORIZATION_FAILED
                    }
                    _ => ec::NONE,
                };
                let r = node::find_coordinator(req, head.api_version, advertised, refused);
                self.reply(ctx, head, r);
            }
            group @ (RequestKind::JoinGroup(_)
            | RequestKind::SyncGroup(_)
            | RequestKind::Heartbeat(_)
            | RequestKind::LeaveGroup(_)
            | RequestKind::OffsetCommit(_)
            | RequestKind::OffsetFetch(_)
            | RequestKind::DescribeGroups(_)
            | RequestKind::ConsumerGroupHeartbeat(_)
            | RequestKind::ConsumerGroupDescribe(_)
            | RequestKind::ShareGroupHeartbeat(_)
            | RequestKind::ShareGroupDescribe(_)
            | RequestKind::ListGroups(_)
            | RequestKind::DeleteGroups(_)
            | RequestKind::OffsetDelete(_)) => {
                // An offset commit commits only the topics the principal
                // may read; a consumer group member may subscribe only to
                // topics it may describe.
                let denied_topics = match &group {
                    RequestKind::OffsetCommit(r) => {
                        let names = r.topics.iter().map(|t| t.name.0.as_str());
                        self.denied(ctx, op::READ, resource::TOPIC, names)
                    }
                    RequestKind::ConsumerGroupHeartbeat(r) => {
                        let names = r.subscribed_topic_names.iter().flatten();
                        let names = names.map(|t| t.0.as_str());
                        self.denied(ctx, op::DESCRIBE, resource::TOPIC, names)
                    }
                    RequestKind::ShareGroupHeartbeat(r) => {
                        let names = r.subscribed_topic_names.iter().flatten();
                        let names = names.map(|t| t.0.as_str());
                        self.denied(ctx, op::DESCRIBE, resource::TOPIC, names)
                    }
                    _ => Vec::new(),
                };
                // ListGroups lists only the groups the principal may
                // describe, a regular expression subscribes only to
                // topics it may describe, and a describe says what it may
                // do to each group (with the authorizer on).
                let visible = match &group {
                    RequestKind::ListGroups(_)
                    | RequestKind::ConsumerGroupHeartbeat(_)
                    | RequestKind::DescribeGroups(_)
                    | RequestKind::ConsumerGroupDescribe(_)
                    | RequestKind::ShareGroupDescribe(_) => self.acl_view(ctx),
                    _ => None,
                };
                self.send_to_coordinator(ctx, head, group, client_id, denied_topics, visible);
            }
            other => {
                let name = format!("{:?}", ApiKey::try_from(head.api_key));
                drop(other);
                self.refuse(ctx, format_args!("{name} is not handled"));
            }
        }
    }

    /// Who asks and the ACLs, for a listing the coordinator filters by
    /// what the principal may describe; `None` with the authorizer off.
    fn acl_view(&self, ctx: &impl InboundContext<Self>) -> Option<super::groups::GroupAccess> {
        self.shared
            .acls
            .enabled()
            .then(|| super::groups::GroupAccess {
                acls: self.shared.acls.clone(),
                principal: self.principal.clone(),
                host: self.host(ctx).to_owned(),
            })
    }

    /// The `resource_type` resources among `names` the principal may not
    /// `operation`.
    fn denied<'n>(
        &self,
        ctx: &impl InboundContext<Self>,
        operation: i8,
        resource_type: i8,
        names: impl Iterator<Item = &'n str>,
    ) -> Vec<String> {
        names
            .filter(|name| !self.may(ctx, operation, resource_type, name))
            .map(str::to_owned)
            .collect()
    }

    /// Where a thread that serves this request off the loop adds its
    /// time, when a request quota counts it (see `offloaded`); taken
    /// before the request's own time is counted.
    fn offload_meter(&mut self) -> Option<Arc<AtomicU64>> {
        self.request_clock.as_ref()?;
        Some(self.offloaded.get_or_insert_with(Arc::default).clone())
    }

    /// Sends a group or transaction request to the coordinator thread,
    /// which answers in the request's place in the order, with the
    /// throttle its request quota earned on the loop.
    fn send_to_coordinator(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        request: RequestKind,
        client_id: Bytes,
        denied_topics: Vec<String>,
        visible: Option<super::groups::GroupAccess>,
    ) {
        let busy = self.offload_meter();
        let call = GroupCall {
            busy,
            request,
            correlation_id: head.correlation_id,
            version: head.api_version,
            handle: self.handle(ctx),
            seq: self.next_seq(),
            client_id,
            peer: ctx.channel().peer_addr(),
            denied_topics,
            visible,
            throttle_ms: self.count_request_time(ctx),
            to_writer: None,
        };
        if self.shared.groups.send(call).is_err() {
            tracing::warn!("group coordinator stopped; closing connection");
            ctx.close();
        }
    }

    /// Answers a request whose work writes a file (the credentials, the
    /// ACLs, the quotas) on the broker's admin thread, so no loop waits on
    /// the disk; the answer comes back through the handle, in its place in
    /// the order, with the throttle its request quota earned on the loop.
    /// A panic in `work` (a bug of the broker's) is answered as Kafka
    /// answers a handler's exception: `refused` gives the request's
    /// answer with `UNKNOWN_SERVER_ERROR` in every result, and the
    /// connection stays open.
    fn off_loop<Q, M>(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        request: Q,
        work: impl FnOnce(&Shared, &Q) -> M + Send + 'static,
        refused: fn(&Q, Refusal, i16, &'static str) -> Frame,
    ) where
        Q: Send + 'static,
        M: Encodable + HeaderVersion + ThrottleTime,
    {
        let seq = self.next_seq();
        let handle = self.handle(ctx);
        let shared = self.shared.clone();
        let busy = self.offload_meter();
        let throttle_ms = self.count_request_time(ctx);
        let queued = self.shared.admin.submit(move || {
            let started = Instant::now();
            // A panic must still answer: every later answer on the
            // connection waits for this one.
            let worked = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let mut body = work(&shared, &request);
                body.throttle_at_least(throttle_ms);
                encoded(head.correlation_id, head.api_version, &body)
            }));
            crate::ops::charge_busy(busy.as_deref(), started);
            let frame = worked.unwrap_or_else(|panic| {
                tracing::error!(
                    "an admin request panicked; answered UNKNOWN_SERVER_ERROR: {}",
                    gyre_ringbuffer::panic_message(&*panic)
                );
                let to = Refusal {
                    correlation_id: head.correlation_id,
                    version: head.api_version,
                    throttle_ms,
                };
                refused(&request, to, ec::UNKNOWN_SERVER_ERROR, refusals::UNEXPECTED)
            });
            let _ = handle.write_and_flush(Sequenced { seq, frame });
        });
        if !queued {
            tracing::warn!("the admin thread has stopped; closing");
            ctx.write(Sequenced {
                seq,
                frame: Frame::Close,
            });
        }
    }

    fn sasl_authenticate(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        r: SaslAuthenticateRequest,
    ) {
        let mut resp = SaslAuthenticateResponse::default();
        let reply = match &mut self.sasl {
            Some(session) => session.authenticate(&r.auth_bytes, self.shared.sasl_verifiers()),
            None => Reply::Refused("SaslAuthenticate on a listener without SASL".into()),
        };
        let peer = ctx.channel().peer_addr();
        let refused = match reply {
            Reply::Continue(bytes) => {
                resp.auth_bytes = bytes.into();
                None
            }
            Reply::Authenticated {
                principal,
                last,
                again,
                lifetime,
            } => {
                if again {
                    self.shared
                        .sasl_reauthentications
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(?peer, user = %principal, "re-authenticated");
                } else {
                    tracing::info!(?peer, user = %principal, "authenticated");
                }
                self.principal = format!("User:{principal}");
                resp.auth_bytes = last.into();
                // KIP-368: the client re-authenticates before this ends
                // (the field is in v1 and later).
                if let (Some(l), true) = (lifetime, head.api_version >= 1) {
                    resp.session_lifetime_ms = l.as_millis().min(i64::MAX as u128) as i64;
                }
                None
            }
            Reply::Refused(why) => {
                resp.error_code = ec::SASL_AUTHENTICATION_FAILED;
                resp.error_message = Some(StrBytes::from_static_str(
                    "Authentication failed: invalid credentials",
                ));
                Some(why)
            }
        };
        self.reply(ctx, head, resp);
        if let Some(why) = refused {
            warn_limited!(PEER_WARNINGS, ?peer, reason = %why, "SASL authentication failed");
            self.refuse(ctx, format_args!("SASL authentication failed"));
        }
    }

    /// Where an ACL refusal of the request being served goes, with the
    /// throttle its request quota earned (counted now).
    fn refusal(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
    ) -> Refusal {
        Refusal {
            correlation_id: head.correlation_id,
            version: head.api_version,
            throttle_ms: self.count_request_time(ctx),
        }
    }

    /// Answers the request being served on the loop, with the throttle
    /// time its request quota earned.
    fn reply<M: Encodable + HeaderVersion + ThrottleTime>(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        mut body: M,
    ) {
        body.throttle_at_least(self.count_request_time(ctx));
        let seq = self.next_seq();
        ctx.write(Sequenced {
            seq,
            frame: encoded(head.correlation_id, head.api_version, &body),
        });
    }

    fn api_versions(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        error: i16,
    ) {
        let mut r = ApiVersionsResponse::default();
        r.error_code = error;
        for range in versions::SUPPORTED {
            let mut v = ApiVersion::default();
            v.api_key = range.key as i16;
            v.min_version = range.min;
            v.max_version = range.max;
            r.api_keys.push(v);
        }
        // An unsupported version is answered at v0, which every client
        // can read, so it can retry with a version listed.
        let version = if error == ec::NONE {
            head.api_version
        } else {
            0
        };
        self.shared.features.report(version, &mut r);
        r.throttle_at_least(self.count_request_time(ctx));
        let seq = self.next_seq();
        ctx.write(Sequenced {
            seq,
            frame: encoded(head.correlation_id, version, &r),
        });
    }

    fn metadata(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        r: MetadataRequest,
    ) {
        let seq = self.next_seq();
        let allowed = head.api_version < 4 || r.allow_auto_topic_creation;
        // Created on first use only where the principal may create it (on
        // the cluster, or that topic).
        let may_create_any = self.may(ctx, op::CREATE, resource::CLUSTER, CLUSTER);
        let missing: Vec<String> = if self.shared.auto_create_topics && allowed {
            metadata::missing(&self.shared, &r, head.api_version)
                .into_iter()
                .filter(|name| may_create_any || self.may(ctx, op::CREATE, resource::TOPIC, name))
                .collect()
        } else {
            Vec::new()
        };
        let advertised = self.advertised(ctx);
        let visible = |name: &str| self.may(ctx, op::DESCRIBE, resource::TOPIC, name);
        let operations = |name: &str| {
            super::topic_partitions::operations(|o| self.may(ctx, o, resource::TOPIC, name))
        };
        let cluster_operations =
            node::cluster_operations(|o| self.may(ctx, o, resource::CLUSTER, CLUSTER));
        if missing.is_empty() {
            let seen = metadata::Seen {
                visible: &visible,
                topic_operations: &operations,
                cluster_operations,
            };
            let mut body =
                metadata::response(&self.shared, &advertised, &r, head.api_version, seen);
            body.throttle_at_least(self.count_request_time(ctx));
            ctx.write(Sequenced {
                seq,
                frame: encoded(head.correlation_id, head.api_version, &body),
            });
            return;
        }
        let asked = metadata::requested(&r, head.api_version).unwrap_or_default();
        let asked = asked.iter().map(|n| n.as_str());
        let asker = metadata::Asker {
            hidden: asked
                .clone()
                .filter(|n| !visible(n))
                .map(str::to_owned)
                .collect(),
            topic_operations: if head.api_version >= 8 && r.include_topic_authorized_operations {
                asked.map(|n| (n.to_owned(), operations(n))).collect()
            } else {
                Vec::new()
            },
            cluster_operations,
        };
        let specs = missing
            .into_iter()
            .map(|name| TopicSpec {
                name,
                partitions: -1,
                configs: Vec::new(),
            })
            .collect();
        let reply = self.responder(ctx, seq, head, Pending::Metadata(r, advertised, asker));
        self.submit(ctx, LogOp::CreateTopics(specs), Some(reply));
    }

    /// The quota of `kind` that applies to this connection's principal
    /// and the client id of `ask` (none when no quota is set).
    fn quota(&mut self, kind: Kind, ask: &Option<(usize, Bytes)>) -> quotas::Applied {
        let (_, client) = ask.as_ref()?;
        let client = std::str::from_utf8(client).unwrap_or("");
        let user = self
            .principal
            .strip_prefix("User:")
            .unwrap_or(&self.principal);
        self.shared
            .quotas
            .applied(&mut self.quota_cache, user, client, kind)
            .clone()
    }

    /// The partitions creating topic `name` with `asked` (-1: the
    /// default) would create: none if it exists (its creation fails).
    fn partitions_created(&self, name: &str, asked: i32) -> usize {
        if self.shared.catalog.get(name).is_some() {
            return 0;
        }
        let n = if asked > 0 {
            asked
        } else {
            self.shared.default_partitions
        };
        usize::try_from(n).unwrap_or(0)
    }

    /// Reads and serves nothing more for `wait` (a client quota's
    /// throttle; a longer one already running stands).
    fn throttle(&mut self, ctx: &mut impl InboundContext<Self>, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        // One request may earn two (a byte rate's and the request
        // quota's): the later end stands.
        let ends = Instant::now() + wait;
        if self.throttle_timer.is_some() && ends <= self.throttle_ends {
            return;
        }
        self.throttle_ends = ends;
        if let Some(t) = self.throttle_timer.take() {
            ctx.cancel_timer(t);
        }
        ctx.set_auto_read(false);
        self.throttle_timer = Some(ctx.schedule(wait, THROTTLE_TAG));
    }

    fn produce(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        r: ProduceRequest,
        throttle: Duration,
    ) {
        let mut entries = Vec::new();
        let mut layout = Vec::with_capacity(r.topic_data.len());
        // A transactional producer's records also need WRITE on its
        // transactional id, as in Kafka.
        let id_denied = r
            .transactional_id
            .as_ref()
            .is_some_and(|id| !self.may(ctx, op::WRITE, resource::TRANSACTIONAL_ID, id.0.as_str()));
        for topic in r.topic_data {
            let found = self.shared.catalog.get(&topic.name.0);
            let denied = !self.may(ctx, op::WRITE, resource::TOPIC, topic.name.0.as_str());
            let mut partitions = Vec::with_capacity(topic.partition_data.len());
            for p in topic.partition_data {
                let routed = match (&found, p.records) {
                    _ if id_denied => Err(ec::TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
                    _ if denied => Err(ec::TOPIC_AUTHORIZATION_FAILED),
                    (None, _) => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                    (Some(t), records) => match (t.partition(p.index), records) {
                        (None, _) => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                        (Some(_), None) => Err(ec::CORRUPT_MESSAGE),
                        (Some(id), Some(records)) => {
                            entries.push((id, records));
                            Ok(id)
                        }
                    },
                };
                partitions.push((p.index, routed));
            }
            layout.push(TopicLayout {
                name: topic.name.0,
                partitions,
            });
        }
        if r.acks == 0 {
            if !entries.is_empty() {
                self.submit(ctx, LogOp::Produce(entries), None);
            }
            return self.throttle(ctx, throttle);
        }
        let op = (!entries.is_empty()).then(|| LogOp::Produce(entries));
        self.send_to_writer(
            ctx,
            head,
            Pending::Produce(layout, quotas::throttle_ms(throttle)),
            op,
            Answer::Appended(&[]),
        );
        self.throttle(ctx, throttle);
    }

    fn fetch(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        mut r: FetchRequest,
        quota: quotas::Applied,
    ) {
        // A client with a fetch quota gets no more than the quota allows in
        // the measured window (Kafka's `getMaxValueInQuotaWindow`); its
        // responder counts the response's bytes, or answers empty with the
        // throttle time when they would take the client over.
        if let Some((_, bytes_per_s)) = &quota {
            r.max_bytes = quotas::window_cap(r.max_bytes, *bytes_per_s);
        }
        // An incremental fetch (KIP-227) stands for its whole session from
        // here on: `plan` puts the session's partitions in the request.
        let session = fetch_session::plan(
            &self.fetch_session,
            &self.shared.fetch_sessions,
            head.api_version,
            &mut r,
        );
        if let fetch_session::SessionStep::Refused(_) = session {
            r.topics.clear();
        }
        let mut parts = Vec::new();
        // From v13 topics are named by id; the response names them so too.
        let by_id = head.api_version >= 13;
        let mut ids = Vec::new();
        let reader = &*ctx;
        let layout = r
            .topics
            .into_iter()
            .map(|topic| {
                let (name, found, missing) = if by_id {
                    ids.push(topic.topic_id);
                    // The response names the topic by id: no name needed.
                    let found = self.shared.catalog.by_id(&topic.topic_id);
                    (StrBytes::default(), found, ec::UNKNOWN_TOPIC_ID)
                } else {
                    let found = self.shared.catalog.get(&topic.topic.0);
                    (topic.topic.0, found, ec::UNKNOWN_TOPIC_OR_PARTITION)
                };
                let (found, missing) = match found {
                    Some(t) if !self.may(reader, op::READ, resource::TOPIC, &t.name) => {
                        (None, ec::TOPIC_AUTHORIZATION_FAILED)
                    }
                    other => (other, missing),
                };
                self.route_found(
                    name,
                    found,
                    missing,
                    &topic.partitions,
                    |p| (p.partition, p.current_leader_epoch),
                    |id, p| {
                        parts.push(FetchPart {
                            partition: id,
                            offset: p.fetch_offset,
                            max_bytes: p.partition_max_bytes.max(0) as u64,
                            last_fetched_epoch: p.last_fetched_epoch,
                        })
                    },
                )
            })
            .collect();
        let job = (!parts.is_empty()).then(|| FetchJob {
            parts,
            min_bytes: r.min_bytes.max(0) as u64,
            max_bytes: if r.max_bytes > 0 {
                r.max_bytes as u64
            } else {
                u64::MAX
            },
            max_wait: Duration::from_millis(r.max_wait_ms.max(0) as u64),
            read_committed: r.isolation_level == 1,
        });
        let nothing = Answer::Fetched(Vec::new());
        self.send_to_writer(
            ctx,
            head,
            Pending::Fetch(layout, ids, quota, session),
            job.map(LogOp::Fetch),
            nothing,
        );
    }

    /// The partition a share request names, as the catalog has it and
    /// the principal may read it: the part for the writer, or the error
    /// the answer carries for it.
    fn share_part(
        &self,
        ctx: &impl InboundContext<Self>,
        topic_id: uuid::Uuid,
        index: i32,
    ) -> Result<SharePart, i16> {
        let found = self.shared.catalog.by_id(&topic_id);
        match found {
            None => Err(ec::UNKNOWN_TOPIC_ID),
            Some(t) if !self.may(ctx, op::READ, resource::TOPIC, &t.name) => {
                Err(ec::TOPIC_AUTHORIZATION_FAILED)
            }
            Some(t) => Ok(SharePart {
                topic_id,
                index,
                partition: t.partition(index),
            }),
        }
    }

    /// A ShareFetch or ShareAcknowledge (KIP-932): routed to the log
    /// writer, which holds the share groups' delivery state.
    fn share_request(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        request: &RequestKind,
        quota: quotas::Applied,
    ) {
        let resolve = |topic_id: Uuid, index: i32| self.share_part(ctx, topic_id, index);
        let Some((mut job, refused)) = share_requests::job(request, resolve) else {
            return;
        };
        // As a fetch: no more than the quota allows in its window.
        if let Some((_, bytes_per_s)) = &quota {
            let asked = i32::try_from(job.max_bytes).unwrap_or(i32::MAX);
            job.max_bytes = quotas::window_cap(asked, *bytes_per_s) as u64;
        }
        let fetch = matches!(request, RequestKind::ShareFetch(_));
        self.send_to_writer(
            ctx,
            head,
            Pending::Share(fetch, refused, quota),
            Some(LogOp::ShareFetch(Box::new(job))),
            Answer::Fetched(Vec::new()),
        );
    }

    /// A share group's start offsets described, altered or deleted: the
    /// group coordinator checks the groups (their kind, their members)
    /// and hands the request on to the log writer, which holds the
    /// offsets and answers it. Describing needs DESCRIBE on each topic,
    /// the others READ, as in Kafka.
    fn share_offsets(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        request: RequestKind,
    ) {
        let operation = match request {
            RequestKind::DescribeShareGroupOffsets(_) => op::DESCRIBE,
            _ => op::READ,
        };
        let planned = {
            let reader = &*ctx;
            let catalog = &self.shared.catalog;
            let topic = |name: &str| match catalog.get(name) {
                None => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                Some(_) if !self.may(reader, operation, resource::TOPIC, name) => {
                    Err(ec::TOPIC_AUTHORIZATION_FAILED)
                }
                Some(t) => Ok(t.id),
            };
            let part = |topic_id: Uuid, index: i32| SharePart {
                topic_id,
                index,
                partition: catalog.by_id(&topic_id).and_then(|t| t.partition(index)),
            };
            share_offsets::job(
                &request,
                &share_offsets::Resolve {
                    topic: &topic,
                    part: &part,
                },
            )
        };
        let Some((mut job, layout)) = planned else {
            return;
        };
        let seq = self.next_seq();
        let mut reply = self.responder(ctx, seq, head, Pending::ShareOffsets(layout));
        let mut writer = self.submitter.clone();
        let (handle, throttle_ms, busy) =
            (reply.handle.clone(), reply.throttle_ms, reply.busy.clone());
        // Run on the coordinator's thread, which may wait for room in the
        // writer's ring (it runs no event loop).
        let go_on = ToWriter::new(move |verdicts| {
            let Pending::ShareOffsets(layout) = &mut reply.pending else {
                unreachable!("built as a share-offsets answer")
            };
            if !layout.take_verdicts(&mut job, verdicts) {
                let nothing = layout.nothing();
                return reply.answer(0, Answer::ShareOffsets(nothing));
            }
            let op = LogOp::ShareOffsets(job);
            if writer.submit(0, op, Some(reply)).is_err() {
                tracing::warn!("log writer stopped; a share-offsets request not answered");
            }
        });
        let call = GroupCall {
            busy,
            request,
            correlation_id: head.correlation_id,
            version: head.api_version,
            handle,
            seq,
            client_id: Bytes::new(),
            peer: ctx.channel().peer_addr(),
            denied_topics: Vec::new(),
            visible: None,
            throttle_ms,
            to_writer: Some(go_on),
        };
        if self.shared.groups.send(call).is_err() {
            tracing::warn!("group coordinator stopped; closing connection");
            ctx.close();
        }
    }

    fn delete_records(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        r: DeleteRecordsRequest,
    ) {
        let (layout, cuts) = self.route_each(
            ctx,
            op::DELETE,
            r.topics.into_iter().map(|t| (t.name.0, t.partitions)),
            |p| Routed {
                index: p.partition_index,
                value: p.offset,
                current_leader_epoch: -1,
            },
        );
        let op = (!cuts.is_empty()).then(|| LogOp::DeleteRecords(cuts));
        self.send_to_writer(
            ctx,
            head,
            Pending::DeleteRecords(layout),
            op,
            Answer::RecordsDeleted(Vec::new()),
        );
    }

    fn list_offsets(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        r: ListOffsetsRequest,
    ) {
        let (layout, queries) = self.route_each(
            ctx,
            op::DESCRIBE,
            r.topics.into_iter().map(|t| (t.name.0, t.partitions)),
            |p| Routed {
                index: p.partition_index,
                value: p.timestamp,
                current_leader_epoch: p.current_leader_epoch,
            },
        );
        let read_committed = r.isolation_level == 1;
        let op = (!queries.is_empty()).then(|| LogOp::ListOffsets(queries, read_committed));
        self.send_to_writer(
            ctx,
            head,
            Pending::ListOffsets(layout),
            op,
            Answer::Offsets(Vec::new()),
        );
    }

    /// OffsetForLeaderEpoch, as a consumer asks it (KIP-320): where the
    /// records of the epoch it last read in end. DESCRIBE on each topic,
    /// as in Kafka for consumers (this broker has no followers).
    fn epoch_ends(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        r: OffsetForLeaderEpochRequest,
    ) {
        let (layout, asked) = self.route_each(
            ctx,
            op::DESCRIBE,
            r.topics.into_iter().map(|t| (t.topic.0, t.partitions)),
            |p| Routed {
                index: p.partition,
                value: i64::from(p.leader_epoch),
                current_leader_epoch: p.current_leader_epoch,
            },
        );
        // Each value came from an i32 above.
        let asked: Vec<(u32, i32)> = asked.into_iter().map(|(id, e)| (id, e as i32)).collect();
        let op = (!asked.is_empty()).then(|| LogOp::EpochEnds(asked));
        self.send_to_writer(
            ctx,
            head,
            Pending::EpochEnds(layout),
            op,
            Answer::EpochEnds(Vec::new()),
        );
    }

    fn create_topics(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        r: CreateTopicsRequest,
        mutations: quotas::Applied,
    ) {
        // KIP-599: v6 and later can be refused a topic for the quota.
        let mut charge = MutationCharge::new(mutations, head.api_version >= 6, ctx.now());
        let twice = create_topics::duplicated(&r.topics);
        let mut answers = Vec::with_capacity(r.topics.len());
        let mut specs = Vec::new();
        let may_create_any = self.may(ctx, op::CREATE, resource::CLUSTER, CLUSTER);
        for t in r.topics {
            let name = t.name.0.clone();
            let refused = if twice.contains(&name) {
                Some((
                    ec::INVALID_REQUEST,
                    format!("topic {name:?} is named twice"),
                ))
            } else if !may_create_any && !self.may(ctx, op::CREATE, resource::TOPIC, &name) {
                Some((
                    ec::TOPIC_AUTHORIZATION_FAILED,
                    format!("{} may not create topic {name:?}", self.principal),
                ))
            } else if t.replication_factor != -1 && t.replication_factor != 1 {
                Some((
                    ec::INVALID_REPLICATION_FACTOR,
                    "this broker keeps one replica".to_owned(),
                ))
            } else if !t.assignments.is_empty() {
                Some((
                    ec::INVALID_REQUEST,
                    "manual replica assignment is not supported".to_owned(),
                ))
            } else if let Err(e) = topics::validate_name(&name) {
                Some((ec::INVALID_TOPIC_EXCEPTION, e.to_string()))
            } else {
                None
            };
            let configs = || {
                t.configs
                    .iter()
                    .map(|c| {
                        let value = c.value.as_ref().map_or("", |v| v.as_str());
                        (c.name.as_str().to_owned(), value.to_owned())
                    })
                    .collect::<Vec<_>>()
            };
            let asked = match refused {
                Some((code, message)) => create_topics::Asked::Refused(code, message),
                // Nothing is created: checked here as the writer would.
                None if r.validate_only => create_topics::validated(
                    &name,
                    t.num_partitions,
                    &configs(),
                    &self.shared.default_log,
                    self.shared.default_partitions,
                    self.shared.catalog.get(&name).is_some(),
                ),
                None if !charge.admit(self.partitions_created(&name, t.num_partitions)) => {
                    let (code, message) = quota_spent();
                    create_topics::Asked::Refused(code, message)
                }
                None => {
                    specs.push(TopicSpec {
                        name: name.as_str().to_owned(),
                        partitions: t.num_partitions,
                        configs: configs(),
                    });
                    create_topics::Asked::Create
                }
            };
            let describable = !matches!(asked, create_topics::Asked::Refused(..))
                && self.may(ctx, op::DESCRIBE_CONFIGS, resource::TOPIC, &name);
            answers.push(create_topics::AskedTopic {
                name,
                asked,
                describable,
            });
        }
        let op = (!specs.is_empty()).then(|| LogOp::CreateTopics(specs));
        let throttle = charge.throttle();
        self.throttle(ctx, throttle);
        self.send_to_writer(
            ctx,
            head,
            Pending::CreateTopics(answers, quotas::throttle_ms(throttle)),
            op,
            Answer::Created(Vec::new()),
        );
    }

    fn create_partitions(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        r: CreatePartitionsRequest,
        mutations: quotas::Applied,
    ) {
        // KIP-599: v3 and later can be refused a topic for the quota.
        let mut charge = MutationCharge::new(mutations, head.api_version >= 3, ctx.now());
        let mut answers = Vec::with_capacity(r.topics.len());
        let mut grow = Vec::new();
        for t in r.topics {
            let name = t.name.0.clone();
            // One broker: an assignment can only name broker 0.
            let elsewhere = t.assignments.as_ref().is_some_and(|a| {
                a.iter()
                    .any(|p| p.broker_ids.iter().any(|b| b.0 != 0) || p.broker_ids.len() > 1)
            });
            let early = if !self.may(ctx, op::ALTER, resource::TOPIC, &name) {
                Some((
                    ec::TOPIC_AUTHORIZATION_FAILED,
                    format!("{} may not alter topic {name:?}", self.principal),
                ))
            } else if elsewhere {
                Some((
                    ec::INVALID_REPLICA_ASSIGNMENT,
                    "this broker (id 0) keeps the only replica".to_owned(),
                ))
            } else if r.validate_only {
                // Nothing changes; report what growing would say.
                Some(match self.shared.catalog.get(&name) {
                    None => (
                        ec::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("topic {name:?} does not exist"),
                    ),
                    Some(topic) if t.count <= topic.partitions.len() as i32 => (
                        ec::INVALID_PARTITIONS,
                        format!(
                            "topic {name:?} has {} partitions: it can only grow, not to {}",
                            topic.partitions.len(),
                            t.count
                        ),
                    ),
                    Some(_) => (ec::NONE, String::new()),
                })
            } else {
                let now = self
                    .shared
                    .catalog
                    .get(&name)
                    .map_or(0, |t| t.partitions.len());
                let added = usize::try_from(t.count).unwrap_or(0).saturating_sub(now);
                if added > 0 && !charge.admit(added) {
                    Some(quota_spent())
                } else {
                    grow.push((name.as_str().to_owned(), t.count));
                    None
                }
            };
            answers.push((name, early));
        }
        let op = (!grow.is_empty()).then(|| LogOp::CreatePartitions(grow));
        let throttle = charge.throttle();
        self.throttle(ctx, throttle);
        self.send_to_writer(
            ctx,
            head,
            Pending::CreatePartitions(answers, quotas::throttle_ms(throttle)),
            op,
            Answer::Grown(Vec::new()),
        );
    }

    /// AlterConfigs and IncrementalAlterConfigs, read by
    /// [`alter_configs`](super::alter_configs) into one form: topics
    /// the principal may alter go to the writer, the rest are answered
    /// with their refusal in their place.
    fn alter_configs(
        &mut self,
        ctx: &mut impl InboundContext<Self>,
        head: header::RequestHead,
        api: AlterApi,
        (resources, validate_only): (Vec<Alteration>, bool),
    ) {
        let mut answers = Vec::with_capacity(resources.len());
        let mut changes = Vec::new();
        for res in resources {
            let name = res.resource_name.as_str();
            let early = match res.resource_type {
                config_resource::TOPIC
                    if !self.may(ctx, op::ALTER_CONFIGS, resource::TOPIC, name) =>
                {
                    Some((
                        ec::TOPIC_AUTHORIZATION_FAILED,
                        format!(
                            "{} may not alter the configs of topic {name:?}",
                            self.principal
                        ),
                    ))
                }
                config_resource::TOPIC => match res.changes {
                    Ok(list) => {
                        changes.push((ConfigTarget::Topic(name.to_owned()), list));
                        None
                    }
                    Err(refused) => Some(refused),
                },
                config_resource::GROUP if api == AlterApi::Replacing => Some((
                    ec::INVALID_REQUEST,
                    "group configs are changed with IncrementalAlterConfigs".to_owned(),
                )),
                config_resource::GROUP
                    if !self.may(ctx, op::ALTER_CONFIGS, resource::GROUP, name) =>
                {
                    Some((
                        ec::GROUP_AUTHORIZATION_FAILED,
                        format!(
                            "{} may not alter the configs of group {name:?}",
                            self.principal
                        ),
                    ))
                }
                config_resource::GROUP => match res.changes {
                    Ok(list) => {
                        changes.push((ConfigTarget::Group(name.to_owned()), list));
                        None
                    }
                    Err(refused) => Some(refused),
                },
                config_resource::BROKER => Some((
                    ec::INVALID_REQUEST,
                    "broker configs are set on the command line at start".to_owned(),
                )),
                other => Some((
                    ec::INVALID_REQUEST,
                    format!("resource type {other} has no configs here"),
                )),
            };
            answers.push((res.resource_type, res.resource_name, early));
        }
        let op = (!changes.is_empty()).then(|| LogOp::AlterConfigs(changes, validate_only));
        self.send_to_writer(
            ctx,
            head,
            Pending::AlterConfigs(api, answers),
            op,
            Answer::Altered(Vec::new()),
        );
    }

    /// Routes every topic's partitions (each with its index and one
    /// number: an offset, a timestamp) by the catalog: the layout for the
    /// response, and (writer id, number) for each partition that exists
    /// and the principal may do `operation` to.
    fn route_each<P>(
        &self,
        ctx: &impl InboundContext<Self>,
        operation: i8,
        topics: impl Iterator<Item = (StrBytes, Vec<P>)>,
        fields: impl Fn(&P) -> Routed,
    ) -> (Vec<TopicLayout>, Vec<(u32, i64)>) {
        let mut routed = Vec::new();
        let layout = topics
            .map(|(name, partitions)| {
                self.route(
                    ctx,
                    operation,
                    name,
                    &partitions,
                    |p| (fields(p).index, fields(p).current_leader_epoch),
                    |id, p| routed.push((id, fields(p).value)),
                )
            })
            .collect();
        (layout, routed)
    }

    /// Routes one topic's partitions by the catalog: `routed` gets each
    /// partition that exists, with its writer id; the rest are answered
    /// `UNKNOWN_TOPIC_OR_PARTITION`, or all `TOPIC_AUTHORIZATION_FAILED`
    /// where the principal may not do `operation` to the topic. `index`
    /// gives a partition's index and the leader epoch the client knows
    /// (-1: none), which is fenced as in [`route_found`](Self::route_found).
    fn route<P>(
        &self,
        ctx: &impl InboundContext<Self>,
        operation: i8,
        name: StrBytes,
        partitions: &[P],
        index: impl Fn(&P) -> (i32, i32),
        routed: impl FnMut(u32, &P),
    ) -> TopicLayout {
        let (found, missing) = if self.may(ctx, operation, resource::TOPIC, &name) {
            (
                self.shared.catalog.get(&name),
                ec::UNKNOWN_TOPIC_OR_PARTITION,
            )
        } else {
            (None, ec::TOPIC_AUTHORIZATION_FAILED)
        };
        self.route_found(name, found, missing, partitions, index, routed)
    }

    /// [`route`](Self::route) for a topic already looked up (by name or
    /// by id); partitions of a topic not `found` get `missing`. A
    /// partition asked for under a leader epoch other than the broker's is
    /// answered as Kafka answers it: an older one `FENCED_LEADER_EPOCH`
    /// (the client's metadata predates a restart: it refreshes and asks
    /// again), a newer one `UNKNOWN_LEADER_EPOCH`.
    fn route_found<P>(
        &self,
        name: StrBytes,
        found: Option<Arc<Topic>>,
        missing: i16,
        partitions: &[P],
        index: impl Fn(&P) -> (i32, i32),
        mut routed: impl FnMut(u32, &P),
    ) -> TopicLayout {
        let leader_epoch = self.shared.catalog.leader_epoch();
        let partitions = partitions
            .iter()
            .map(|p| {
                let (index, known_epoch) = index(p);
                let id = match &found {
                    None => Err(missing),
                    Some(t) => match t.partition(index) {
                        None => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                        Some(_) if known_epoch >= 0 && known_epoch < leader_epoch => {
                            Err(ec::FENCED_LEADER_EPOCH)
                        }
                        Some(_) if known_epoch > leader_epoch => Err(ec::UNKNOWN_LEADER_EPOCH),
                        Some(id) => Ok(id),
                    },
                };
                if let Ok(id) = id {
                    routed(id, p);
                }
                (index, id)
            })
            .collect();
        TopicLayout { name, partitions }
    }

    /// Serves backlogged requests while there is room.
    fn drain_backlog(&mut self, ctx: &mut impl InboundContext<Self>) {
        if let Some(job) = self.stalled.take() {
            let sent = self.submitter.try_resubmit(job);
            self.submitted(ctx, sent);
        }
        while self.stalled.is_none()
            && self.throttle_timer.is_none()
            && self.in_flight() < self.shared.max_in_flight
        {
            let Some(frame) = self.backlog.pop_front() else {
                break;
            };
            self.serve(ctx, frame);
        }
        if self.throttle_timer.is_some() && self.stalled.is_none() {
            // The throttle's timer takes it from here: nothing to retry
            // every millisecond meanwhile.
            if let Some(timer) = self.resume_timer.take() {
                ctx.cancel_timer(timer);
            }
        } else if (self.backlog.is_empty() && self.stalled.is_none()) || self.closing {
            if let Some(timer) = self.resume_timer.take() {
                ctx.cancel_timer(timer);
                ctx.set_auto_read(true);
            }
        }
        ctx.flush();
    }
}

impl InboundHandler for Connection {
    type Read = Bytes;
    type Pass = ();
    type Write = Sequenced;

    fn active(&mut self, ctx: &mut impl InboundContext<Self>) {
        let peer = ctx.channel().peer_addr();
        if let (Some(counts), Some(peer)) = (&self.shared.ip_connections, peer) {
            match counts.admit(peer.ip()) {
                Ok(slot) => self.ip_slot = Some(slot),
                Err(max) => {
                    // As Kafka's acceptor: closed at once, nothing read.
                    tracing::info!(
                        %peer,
                        max,
                        "connection refused: its address already has the configured maximum of connections"
                    );
                    self.closing = true;
                    return ctx.close();
                }
            }
        }
        if let Some(hold) = peer.and_then(|p| self.shared.quotas.connection_throttle(p.ip())) {
            tracing::debug!(
                ?peer,
                ?hold,
                "over its address's connection creation rate: held, then closed"
            );
            self.closing = true;
            ctx.set_auto_read(false);
            ctx.schedule(hold, REFUSED_TAG);
        }
        ctx.fire_active();
    }

    fn read(&mut self, ctx: &mut impl InboundContext<Self>, frame: Bytes) {
        let frame = self.reservations.attach(frame);
        if self.closing {
            return;
        }
        if self.backlog.is_empty()
            && self.stalled.is_none()
            && self.throttle_timer.is_none()
            && self.in_flight() < self.shared.max_in_flight
        {
            return self.serve(ctx, frame);
        }
        // Too many answers outstanding, or the writer's ring full: stop
        // reading (TCP pushes back on the client) and look again soon.
        // (Throttled: reading stopped already, and the throttle's timer
        // serves what waits.)
        self.backlog.push_back(frame);
        if self.throttle_timer.is_none() {
            self.pause(ctx);
        }
    }

    fn read_complete(&mut self, ctx: &mut impl InboundContext<Self>) {
        ctx.flush();
    }

    fn timer(&mut self, ctx: &mut impl InboundContext<Self>, tag: u64) {
        if tag == REFUSED_TAG {
            return ctx.close();
        }
        if tag == THROTTLE_TAG {
            self.throttle_timer = None;
            if self.resume_timer.is_none() {
                if self.backlog.is_empty() && self.stalled.is_none() {
                    ctx.set_auto_read(true);
                } else {
                    self.pause(ctx);
                }
            }
        }
        self.drain_backlog(ctx);
    }

    fn user_event(&mut self, ctx: &mut impl InboundContext<Self>, event: gyre_reactor::UserEvent) {
        if let gyre_reactor::UserEvent::Idle(idle) = &event {
            // Kafka's connections.max.idle.ms: nothing read or sent for
            // that long. A connection waiting for the answer to its own
            // request (a fetch's long poll, a join waiting for its group)
            // is not idle to its client; the idle handler looks again a
            // period later.
            if idle.state == gyre_reactor::IdleState::AllIdle && self.in_flight() == 0 {
                tracing::debug!(peer = ?ctx.channel().peer_addr(), "idle past connections.max.idle.ms; closing");
                return ctx.close();
            }
        }
        if let gyre_reactor::UserEvent::Custom(any) = &event {
            if let Some(quotas::Throttled(wait)) = any.downcast_ref::<quotas::Throttled>() {
                return self.throttle(ctx, *wait);
            }
        }
        // On an SSL listener (no SASL) a verified client certificate names
        // the principal, as Kafka's default SSL principal builder does.
        if let gyre_reactor::UserEvent::TlsHandshake(session) = &event {
            let subject = session
                .peer_certificates
                .as_ref()
                .and_then(|chain| chain.first())
                .and_then(|leaf| crate::security::principal::subject_of(leaf));
            if let (None, Some(subject)) = (&self.sasl, subject) {
                match self.shared.acls.principal_mapping().map(&subject) {
                    Some(name) => {
                        tracing::debug!(peer = ?ctx.channel().peer_addr(), %subject, %name, "TLS client certificate");
                        self.principal = format!("User:{name}");
                    }
                    None => {
                        // As Kafka: a subject no mapping rule takes has no
                        // principal, and its connection fails.
                        tracing::info!(peer = ?ctx.channel().peer_addr(), %subject, "no ssl.principal.mapping.rules rule matches the client certificate; closing");
                        ctx.close();
                        return;
                    }
                }
            }
        }
        ctx.fire_user_event(event);
    }

    fn error(&mut self, ctx: &mut impl InboundContext<Self>, error: Error) {
        // A frame over the size limit, or a socket error: this connection
        // only.
        warn_limited!(PEER_WARNINGS, peer = ?ctx.channel().peer_addr(), %error, "closing connection");
        ctx.close();
    }
}
