//! Client quotas, as Kafka enforces them (KIP-13, KIP-55, KIP-219;
//! configured through AlterClientQuotas and DescribeClientQuotas, KIP-546):
//! a produce byte rate (`producer_byte_rate`, the bytes of Produce
//! requests) and a fetch byte rate (`consumer_byte_rate`, the bytes of
//! Fetch responses) per user, per client id, or per user and client id,
//! each named or the default ([`entity`]). A connection's quota of a kind
//! is the most specific entity's that sets it; connections whose user and
//! client id share that entity's parts share one measured [`Rate`].
//!
//! A connection over its quota is throttled as Kafka's are since 2.0: the
//! answer says for how long (`throttle_time_ms`), and the broker reads
//! nothing more from the connection until then (the client, told, waits
//! too). A produce request's bytes are counted when it arrives and its
//! throttle computed then. A fetch is capped at what the quota allows in
//! the measured window (Kafka's `getMaxValueInQuotaWindow`); its response
//! is counted before it is sent and, when that would take the client over,
//! not counted and not sent: the client is answered empty with the
//! throttle time the response would have earned, and its connection muted
//! for it (Kafka's `unrecordQuotaSensor` and throttled response), so a
//! consumer is never sent more than its quota.
//!
//! An IP's `connection_creation_rate` (KIP-612; for a named address, or
//! the default for each address) counts the connections each address
//! opens, measured as the byte rates are. A connection that takes its
//! address over the quota is not counted and not served: it is held,
//! unread, for the time that brings the rate back to the quota (at most
//! one window, 1 s) and then closed, as Kafka's acceptor does, so a
//! client reconnecting in a loop is slowed rather than refused at once.
//!
//! A user's or client's `controller_mutation_rate` (KIP-599) counts the
//! partitions its CreateTopics, CreatePartitions and DeleteTopics create
//! or delete, in a token bucket ([`rate::TokenBucket`]). Once the bucket
//! is in debt, a topic asked for by a request version that knows the
//! error (CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+) is
//! refused with THROTTLING_QUOTA_EXCEEDED and the time to wait; an older
//! version's topics are all served. Either way the answer carries the
//! throttle time and the connection is muted for it, as for a byte rate.
//!
//! A user's or client's `request_percentage` (KIP-124) bounds the time
//! the broker's threads spend on its requests, as a percentage of one
//! thread over the measured window (200: two threads' worth). Kafka
//! counts its request-handler and network threads' time; here a request's
//! time is the event loop's, from the request read whole to its answer
//! written (decoding, the checks, and for what the loop answers, building
//! and encoding the answer), counted when the answer is written or, for
//! a request answered by the log writer, the coordinator or the admin
//! thread, when the loop hands it over. The writer's, the coordinator's
//! and the admin thread's share is not counted: each serves every
//! client's requests in batches, and a client's produce and fetch volume
//! is the byte rates' to bound. A connection over the quota gets the
//! throttle time in that answer, whichever thread writes it (the larger
//! of it and a byte or mutation quota's), and is muted for it, as for a
//! byte rate.
//!
//! Locks: the configs and the registry of rates sit behind one mutex,
//! taken when quotas change (only to copy and to swap the configs: the
//! file's write and fdatasync happen under a lock of their own, which no
//! loop takes), when a connection first needs its quotas or they changed
//! (a version counter it checks), when a connection opens while an IP
//! quota is set, and never on a connection without quotas; a rate has a
//! mutex of its own, taken once per request of a connection that has
//! that quota, shared only by the connections that share the rate.

pub mod entity;
pub mod rate;
mod store;

use crate::protocol::error_code as ec;
use entity::{Entity, Filter};
use kafka_protocol::messages::{
    alter_client_quotas_response, describe_client_quotas_response, AlterClientQuotasRequest,
    AlterClientQuotasResponse, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::protocol::StrBytes;
pub use rate::Rate;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{QuotaStore, Values};

/// The quota on the bytes of a client's Produce requests, per second.
pub const PRODUCER_BYTE_RATE: &str = "producer_byte_rate";
/// The quota on the bytes of a client's Fetch responses, per second.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
/// The quota on the connections an IP address opens, per second.
pub const CONNECTION_CREATION_RATE: &str = "connection_creation_rate";
/// The quota on the partitions a client's requests create or delete, per
/// second.
pub const CONTROLLER_MUTATION_RATE: &str = "controller_mutation_rate";
/// The quota on the event loops' time a client's requests take, as a
/// percentage of one thread.
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// A rate sensors' idle time after which it is forgotten (Kafka expires
/// its quota sensors after an hour).
const SENSOR_EXPIRY: Duration = Duration::from_secs(3600);

/// What a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Produce request bytes.
    Produce,
    /// Fetch response bytes.
    Fetch,
    /// Connections an IP address opens.
    Connections,
    /// Partitions created or deleted.
    Mutations,
    /// The loops' time on requests.
    Requests,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Produce => PRODUCER_BYTE_RATE,
            Kind::Fetch => CONSUMER_BYTE_RATE,
            Kind::Connections => CONNECTION_CREATION_RATE,
            Kind::Mutations => CONTROLLER_MUTATION_RATE,
            Kind::Requests => REQUEST_PERCENTAGE,
        }
    }
}

/// One measured rate, shared by the connections a quota groups: a
/// windowed rate for bytes and connections, a token bucket for mutations
/// (as Kafka measures each).
#[derive(Debug)]
pub struct Sensor {
    meter: Mutex<Meter>,
}

#[derive(Debug)]
enum Meter {
    /// Boxed: a rate's window is ten times a bucket's size.
    Rate(Box<Rate>),
    Tokens(rate::TokenBucket),
}

impl Sensor {
    /// A sensor for a quota of `kind`.
    pub fn new(kind: Kind) -> Sensor {
        let meter = match kind {
            Kind::Mutations => Meter::Tokens(rate::TokenBucket::default()),
            Kind::Produce | Kind::Fetch | Kind::Connections | Kind::Requests => {
                Meter::Rate(Box::default())
            }
        };
        Sensor {
            meter: Mutex::new(meter),
        }
    }

    fn meter(&self) -> std::sync::MutexGuard<'_, Meter> {
        self.meter.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `f` on a byte or connection rate's window; on a mutation sensor
    /// (a bug: sensors are made by kind) nothing is counted and there is
    /// no throttle.
    fn with_rate(&self, f: impl FnOnce(&mut Rate) -> Duration) -> Duration {
        match &mut *self.meter() {
            Meter::Rate(r) => f(r),
            Meter::Tokens(_) => {
                debug_assert!(false, "a byte rate asked of a mutation sensor");
                Duration::ZERO
            }
        }
    }

    /// `f` on a mutation quota's bucket; likewise nothing on a rate.
    fn with_tokens(&self, f: impl FnOnce(&mut rate::TokenBucket) -> Duration) -> Duration {
        match &mut *self.meter() {
            Meter::Tokens(t) => f(t),
            Meter::Rate(_) => {
                debug_assert!(false, "a mutation count asked of a byte rate's sensor");
                Duration::ZERO
            }
        }
    }

    /// Counts `bytes` now; the throttle time the rate then earns under
    /// `quota`.
    pub fn record_and_throttle(&self, bytes: usize, quota: f64) -> Duration {
        let now = Instant::now();
        self.with_rate(|r| {
            r.record(now, bytes as f64);
            r.throttle(now, quota)
        })
    }

    /// Counts `bytes` now unless they take the rate over `quota`: then
    /// counts nothing and gives the throttle time they would have earned.
    /// A fetch so refused is answered empty (Kafka "unrecords" the
    /// response it does not send), so the client is charged for what it
    /// was sent and nothing else.
    pub fn record_within(&self, bytes: usize, quota: f64) -> Duration {
        let now = Instant::now();
        self.with_rate(|r| {
            r.record(now, bytes as f64);
            let wait = r.throttle(now, quota);
            if !wait.is_zero() {
                r.record(now, -(bytes as f64));
            }
            wait
        })
    }

    /// Counts `busy`, a request's time on an event loop, now; the
    /// throttle time the rate then earns under `percent` of one thread.
    pub fn record_time_and_throttle(&self, busy: Duration, percent: f64) -> Duration {
        let now = Instant::now();
        self.with_rate(|r| {
            // Percent-seconds: their rate is the percentage of a thread.
            r.record(now, busy.as_secs_f64() * 100.0);
            r.throttle(now, percent)
        })
    }

    /// Whether a mutation quota of `quota` partitions/s is spent at `now`
    /// (the loop's clock, which its throttle timers keep), and for how
    /// long (zero: it is not).
    pub fn mutations_exceeded(&self, quota: f64, now: Instant) -> Duration {
        self.with_tokens(|t| t.exceeded(now, quota))
    }

    /// Counts `partitions` created or deleted at `now`; the throttle time
    /// the mutation quota `quota` then earns.
    pub fn record_mutations(&self, partitions: usize, quota: f64, now: Instant) -> Duration {
        self.with_tokens(|t| t.take(now, quota, partitions as f64))
    }

    /// How long since it last counted anything.
    fn idle_since(&self, now: Instant) -> Duration {
        let last = match &*self.meter() {
            Meter::Rate(r) => r.last_recorded(),
            Meter::Tokens(t) => t.last_used(),
        };
        last.map_or(Duration::MAX, |t| now.saturating_duration_since(t))
    }
}

/// A quota that applies to a connection: its rate and its bytes/s.
pub type Applied = Option<(Arc<Sensor>, f64)>;

/// One CreateTopics, CreatePartitions or DeleteTopics request counted
/// against its client's `controller_mutation_rate`, topic by topic: a
/// topic asked for while the quota has tokens is served whole (the bucket
/// may go into debt); once in debt, a strict request's next topics are
/// refused.
#[derive(Debug)]
pub struct MutationCharge {
    applied: Applied,
    /// The request's version knows THROTTLING_QUOTA_EXCEEDED.
    strict: bool,
    /// The loop's clock at the request.
    now: Instant,
    throttle: Duration,
}

impl MutationCharge {
    /// A request under `applied` (none: nothing is counted) at `now`,
    /// the loop's clock; `strict` where its version can be refused a topic
    /// for the quota.
    pub fn new(applied: Applied, strict: bool, now: Instant) -> MutationCharge {
        MutationCharge {
            applied,
            strict,
            now,
            throttle: Duration::ZERO,
        }
    }

    /// Counts a topic's `partitions` created or deleted, or refuses it
    /// (`false`) when the quota is spent and the request is strict.
    pub fn admit(&mut self, partitions: usize) -> bool {
        let Some((sensor, quota)) = &self.applied else {
            return true;
        };
        if self.strict {
            let owed = sensor.mutations_exceeded(*quota, self.now);
            if !owed.is_zero() {
                self.throttle = self.throttle.max(owed);
                return false;
            }
        }
        let owed = sensor.record_mutations(partitions, *quota, self.now);
        self.throttle = self.throttle.max(owed);
        true
    }

    /// The throttle time the request earned: its answer carries it, and
    /// its connection reads nothing more for it.
    pub fn throttle(&self) -> Duration {
        self.throttle
    }
}

/// A fetch's `max_bytes` (0 or less: no limit of its own) capped at what
/// `bytes_per_s` allows over the measured window: a bigger response could
/// never be sent, as it alone would take the client over.
pub fn window_cap(max_bytes: i32, bytes_per_s: f64) -> i32 {
    let window = rate::WINDOW * (rate::SAMPLES as u32 - 1);
    let cap = (bytes_per_s * window.as_secs_f64()).clamp(1.0, f64::from(i32::MAX)) as i32;
    if max_bytes > 0 {
        max_bytes.min(cap)
    } else {
        cap
    }
}

/// A throttle time as responses carry it (ms).
pub fn throttle_ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

/// Sent by a fetch's responder to its connection (as a
/// [`UserEvent::Custom`](gyre_reactor::UserEvent::Custom)) when the fetch
/// was answered empty for its quota: the connection reads nothing more for
/// this long, as it does after a throttled produce.
#[derive(Debug)]
pub struct Throttled(pub Duration);

/// A connection's quotas as last looked up: the configs' version, the
/// client id, and each kind's quota.
#[derive(Debug, Default)]
pub struct Cached {
    version: u64,
    client: String,
    produce: Applied,
    fetch: Applied,
    mutations: Applied,
    requests: Applied,
}

/// Rates are keyed by kind and by the user and client id that share them.
type SensorKey = (Kind, String, String);

#[derive(Debug)]
struct Inner {
    configs: HashMap<Entity, Values>,
    sensors: HashMap<SensorKey, Arc<Sensor>>,
    /// When idle rates were last looked for.
    swept: Instant,
}

/// Every client quota configured, and the rates measured against them.
#[derive(Debug)]
pub struct ClientQuotas {
    inner: Mutex<Inner>,
    /// The file, locked by AlterClientQuotas for its write and fdatasync
    /// (and so one alteration at a time), apart from `inner`, which loops
    /// take: none of them waits on the disk behind an alteration.
    store: Mutex<QuotaStore>,
    /// Moves on at each change; 0 while none was ever looked up.
    version: AtomicU64,
    /// Whether any quota is configured.
    any: AtomicBool,
    /// Whether any IP quota is configured.
    any_ip: AtomicBool,
}

fn bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

impl ClientQuotas {
    /// Loads `<dir>/client-quotas.log`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let (store, configs) = QuotaStore::open(dir)?;
        if !configs.is_empty() {
            tracing::info!(entities = configs.len(), "client quotas restored");
        }
        Ok(ClientQuotas {
            any: AtomicBool::new(!configs.is_empty()),
            any_ip: AtomicBool::new(configs.keys().any(Entity::is_ip)),
            version: AtomicU64::new(1),
            store: Mutex::new(store),
            inner: Mutex::new(Inner {
                configs,
                sensors: HashMap::new(),
                swept: Instant::now(),
            }),
        })
    }

    /// Whether any quota is configured (one atomic load): a connection
    /// does no quota work at all while none is.
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The quota of `kind` for `user`'s connection with client id
    /// `client` (`cache` keeps what was looked up last: the lock is taken
    /// only when the quotas or the client id changed). `None`, at the cost
    /// of one atomic load, when no quota is configured at all.
    pub fn applied<'c>(
        &self,
        cache: &'c mut Cached,
        user: &str,
        client: &str,
        kind: Kind,
    ) -> &'c Applied {
        const NONE: &Applied = &None;
        if !self.any.load(Ordering::Acquire) {
            return NONE;
        }
        let version = self.version.load(Ordering::Acquire);
        if cache.version != version || cache.client != client {
            let mut inner = self.lock();
            let produce = inner.resolve(user, client, Kind::Produce);
            let fetch = inner.resolve(user, client, Kind::Fetch);
            let mutations = inner.resolve(user, client, Kind::Mutations);
            let requests = inner.resolve(user, client, Kind::Requests);
            inner.sweep(Instant::now());
            *cache = Cached {
                version,
                client: client.to_owned(),
                produce,
                fetch,
                mutations,
                requests,
            };
        }
        match kind {
            Kind::Produce => &cache.produce,
            Kind::Fetch => &cache.fetch,
            Kind::Mutations => &cache.mutations,
            Kind::Requests => &cache.requests,
            // Counted once per connection, by `connection_throttle`.
            Kind::Connections => NONE,
        }
    }

    /// AlterClientQuotas; `allowed` is the verdict on ALTER_CONFIGS of the
    /// cluster. Writes the file (call it off the event loops).
    pub fn alter(&self, r: &AlterClientQuotasRequest, allowed: bool) -> AlterClientQuotasResponse {
        let mut resp = AlterClientQuotasResponse::default();
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        for entry in &r.entries {
            let mut out = alter_client_quotas_response::EntryData::default();
            out.entity = entry
                .entity
                .iter()
                .map(|e| {
                    let mut d = alter_client_quotas_response::EntityData::default();
                    d.entity_type = e.entity_type.clone();
                    d.entity_name = e.entity_name.clone();
                    d
                })
                .collect();
            let outcome = if allowed {
                self.alter_one(&mut store, entry, r.validate_only)
            } else {
                Err((
                    ec::CLUSTER_AUTHORIZATION_FAILED,
                    "the principal may not alter the cluster's configs".into(),
                ))
            };
            if let Err((code, why)) = outcome {
                out.error_code = code;
                out.error_message = Some(StrBytes::from_string(why));
            }
            resp.entries.push(out);
        }
        let inner = self.lock();
        self.any.store(!inner.configs.is_empty(), Ordering::Release);
        self.any_ip
            .store(inner.configs.keys().any(Entity::is_ip), Ordering::Release);
        drop(inner);
        self.version.fetch_add(1, Ordering::AcqRel);
        resp
    }

    /// One entry of AlterClientQuotas: validated, written to the file
    /// (with `store`, which the caller holds), then applied.
    fn alter_one(
        &self,
        store: &mut QuotaStore,
        entry: &kafka_protocol::messages::alter_client_quotas_request::EntryData,
        validate_only: bool,
    ) -> Result<(), (i16, String)> {
        let invalid = |why: String| (ec::INVALID_REQUEST, why);
        let parts = entry
            .entity
            .iter()
            .map(|e| (e.entity_type.as_str(), e.entity_name.as_deref()));
        for e in &entry.entity {
            crate::failpoint::hit("admin", e.entity_name.as_deref().unwrap_or(""));
        }
        let entity = Entity::from_parts(parts).map_err(invalid)?;
        let for_ip = entity.is_ip();
        let mut values = self
            .lock()
            .configs
            .get(&entity)
            .cloned()
            .unwrap_or_default();
        let mut seen = Vec::new();
        for op in &entry.ops {
            let key = op.key.as_str();
            if seen.contains(&key) {
                return Err(invalid(format!("quota {key:?} named twice")));
            }
            seen.push(key);
            let known = [
                PRODUCER_BYTE_RATE,
                CONSUMER_BYTE_RATE,
                CONNECTION_CREATION_RATE,
                CONTROLLER_MUTATION_RATE,
                REQUEST_PERCENTAGE,
            ];
            if !known.contains(&key) {
                return Err(invalid(format!("unknown quota {key:?}")));
            }
            // As Kafka: an ip entity takes only a connection rate, and a
            // connection rate only an ip entity.
            if for_ip != (key == CONNECTION_CREATION_RATE) {
                return Err(invalid(if for_ip {
                    format!("{key} is not a quota of an ip entity")
                } else {
                    format!("{key} is a quota of an ip entity only")
                }));
            }
            if op.remove {
                values.remove(key);
            } else if for_ip {
                // Kafka's config is an integer count per second.
                if op.value.fract() != 0.0 || !(1.0..=f64::from(i32::MAX)).contains(&op.value) {
                    return Err(invalid(format!(
                        "{key} must be a whole number of connections per second from 1, not {}",
                        op.value
                    )));
                }
                values.insert(key.to_owned(), op.value);
            } else if op.value.is_finite() && op.value > 0.0 {
                values.insert(key.to_owned(), op.value);
            } else {
                let unit = match key {
                    CONTROLLER_MUTATION_RATE => "partitions per second",
                    REQUEST_PERCENTAGE => "percent of a thread's time",
                    _ => "bytes per second",
                };
                return Err(invalid(format!(
                    "{key} must be a positive number of {unit}, not {}",
                    op.value
                )));
            }
        }
        if validate_only {
            return Ok(());
        }
        // Written first, with no lock a loop takes held; applied once
        // durable. Only alterations change the configs, and they hold the
        // store's lock: nothing changes them between the copy and the swap.
        let mut all = self.lock().configs.clone();
        if values.is_empty() {
            all.remove(&entity);
        } else {
            all.insert(entity.clone(), values.clone());
        }
        if let Err(e) = store.save(&entity, &values, &all) {
            tracing::error!(error = %e, "cannot write the client quotas");
            return Err((
                ec::KAFKA_STORAGE_ERROR,
                format!("cannot write the quotas: {e}"),
            ));
        }
        self.lock().configs = all;
        Ok(())
    }

    /// Counts a new connection from `ip` against its address's connection
    /// creation rate: `None` when it may be served (at the cost of one
    /// atomic load when no IP quota is configured); otherwise it is not
    /// counted, and the time to hold it, unread, before closing it (the
    /// time that brings the rate back to the quota, at most one window).
    pub fn connection_throttle(&self, ip: IpAddr) -> Option<Duration> {
        if !self.any_ip.load(Ordering::Acquire) {
            return None;
        }
        // A dual-stack listener's IPv4 peer is counted as the IPv4 address.
        let ip = ip.to_canonical();
        let (sensor, quota) = {
            let mut inner = self.lock();
            inner.sweep(Instant::now());
            let quota = entity::ip_precedence(ip).into_iter().find_map(|e| {
                inner
                    .configs
                    .get(&e)?
                    .get(CONNECTION_CREATION_RATE)
                    .copied()
            })?;
            // Each address its own rate, under its own quota or the
            // default.
            let key = (Kind::Connections, ip.to_string(), String::new());
            let sensor = inner.sensors.entry(key);
            (
                sensor
                    .or_insert_with(|| Arc::new(Sensor::new(Kind::Connections)))
                    .clone(),
                quota,
            )
        };
        let wait = sensor.record_within(1, quota);
        (!wait.is_zero()).then(|| wait.min(rate::WINDOW))
    }

    /// DescribeClientQuotas; `allowed` is the verdict on DESCRIBE_CONFIGS
    /// of the cluster.
    pub fn describe(
        &self,
        r: &DescribeClientQuotasRequest,
        allowed: bool,
    ) -> DescribeClientQuotasResponse {
        let mut resp = DescribeClientQuotasResponse::default();
        if !allowed {
            resp.error_code = ec::CLUSTER_AUTHORIZATION_FAILED;
            resp.error_message = Some(bytes(
                "the principal may not describe the cluster's configs",
            ));
            return resp;
        }
        let components = r
            .components
            .iter()
            .map(|c| (c.entity_type.as_str(), c.match_type, c._match.as_deref()));
        let filter = match Filter::from_components(components, r.strict) {
            Ok(f) => f,
            Err(why) => {
                resp.error_code = ec::INVALID_REQUEST;
                resp.error_message = Some(StrBytes::from_string(why));
                return resp;
            }
        };
        let inner = self.lock();
        let mut found: Vec<(&Entity, &Values)> = inner
            .configs
            .iter()
            .filter(|(e, _)| filter.matches(e))
            .collect();
        found.sort_by(|a, b| a.0.cmp(b.0));
        resp.entries = Some(
            found
                .into_iter()
                .map(|(entity, values)| {
                    let mut out = describe_client_quotas_response::EntryData::default();
                    out.entity = entity
                        .parts()
                        .into_iter()
                        .map(|(kind, name)| {
                            let mut d = describe_client_quotas_response::EntityData::default();
                            d.entity_type = StrBytes::from_static_str(kind);
                            d.entity_name = name.map(bytes);
                            d
                        })
                        .collect();
                    out.values = values
                        .iter()
                        .map(|(key, value)| {
                            let mut v = describe_client_quotas_response::ValueData::default();
                            v.key = bytes(key);
                            v.value = *value;
                            v
                        })
                        .collect();
                    out
                })
                .collect(),
        );
        resp
    }
}

impl Inner {
    /// The quota of `kind` that applies to (`user`, `client`), with the
    /// rate it is measured by.
    fn resolve(&mut self, user: &str, client: &str, kind: Kind) -> Applied {
        let (applying, quota) = entity::precedence(user, client).into_iter().find_map(|e| {
            let quota = *self.configs.get(&e)?.get(kind.key())?;
            Some((e, quota))
        })?;
        let (u, c) = entity::sharing(&applying, user, client);
        let sensor = self
            .sensors
            .entry((kind, u, c))
            .or_insert_with(|| Arc::new(Sensor::new(kind)))
            .clone();
        Some((sensor, quota))
    }

    /// Forgets rates idle for an hour, looking every ten minutes
    /// (bounding the registry under client-id churn; a rate a connection
    /// holds is never forgotten, so reconnecting does not reset one).
    fn sweep(&mut self, now: Instant) {
        if now.saturating_duration_since(self.swept) < SENSOR_EXPIRY / 6 {
            return;
        }
        self.swept = now;
        self.sensors
            .retain(|_, s| Arc::strong_count(s) > 1 || s.idle_since(now) < SENSOR_EXPIRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};

    fn entry(parts: &[(&str, Option<&str>)], ops: &[(&str, f64, bool)]) -> EntryData {
        let mut e = EntryData::default();
        e.entity = parts
            .iter()
            .map(|(t, n)| {
                let mut d = EntityData::default();
                d.entity_type = bytes(t);
                d.entity_name = n.map(bytes);
                d
            })
            .collect();
        e.ops = ops
            .iter()
            .map(|(k, v, remove)| {
                let mut o = OpData::default();
                o.key = bytes(k);
                o.value = *v;
                o.remove = *remove;
                o
            })
            .collect();
        e
    }

    /// What DescribeClientQuotas lists for one filter component.
    fn described(
        q: &ClientQuotas,
        entity_type: &str,
        match_type: i8,
    ) -> Vec<describe_client_quotas_response::EntryData> {
        let mut r = DescribeClientQuotasRequest::default();
        let mut c =
            kafka_protocol::messages::describe_client_quotas_request::ComponentData::default();
        c.entity_type = bytes(entity_type);
        c.match_type = match_type;
        r.components = vec![c];
        q.describe(&r, true).entries.unwrap()
    }

    fn alter(q: &ClientQuotas, entries: Vec<EntryData>) -> Vec<i16> {
        let mut r = AlterClientQuotasRequest::default();
        r.entries = entries;
        q.alter(&r, true)
            .entries
            .iter()
            .map(|e| e.error_code)
            .collect()
    }

    #[test]
    fn a_response_that_would_go_over_the_quota_is_not_counted_and_earns_its_throttle() {
        let s = Sensor::new(Kind::Fetch);
        // 100 kB/s: ten seconds' worth, 1 MB, may go at once.
        assert_eq!(s.record_within(900_000, 100_000.0), Duration::ZERO);
        assert_eq!(s.record_within(100_000, 100_000.0), Duration::ZERO);
        // One byte more would be 1,000,001 over ten seconds.
        let wait = s.record_within(100_000, 100_000.0);
        assert!(wait >= Duration::from_secs(1), "{wait:?}");
        // It was not counted: the next refusal is no longer than the first.
        assert_eq!(s.record_within(100_000, 100_000.0), wait);
        assert_eq!(s.record_within(0, 100_000.0), Duration::ZERO);
    }

    #[test]
    fn an_address_over_its_connection_rate_is_held_and_not_counted_and_others_are_not() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-cq-ip-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let q = ClientQuotas::open(&dir).unwrap();
        let (local, other): (IpAddr, IpAddr) =
            ("127.0.0.1".parse().unwrap(), "10.1.2.3".parse().unwrap());
        assert_eq!(q.connection_throttle(local), None, "no quota at all");
        let rate = |v| [(CONNECTION_CREATION_RATE, v, false)];
        let codes = alter(
            &q,
            vec![
                entry(&[("ip", Some("127.0.0.1"))], &rate(3.0)),
                entry(&[("ip", Some("127.0.0.2"))], &rate(2.5)),
                entry(&[("ip", Some("127.0.0.2"))], &rate(0.0)),
                entry(&[("ip", None)], &[(PRODUCER_BYTE_RATE, 10.0, false)]),
                entry(&[("user", None)], &rate(3.0)),
                entry(&[("ip", Some("localhost"))], &rate(3.0)),
            ],
        );
        let invalid = ec::INVALID_REQUEST;
        assert_eq!(
            codes,
            vec![ec::NONE, invalid, invalid, invalid, invalid, invalid]
        );
        // 3 a second, measured over ten windows: thirty at once pass.
        for i in 0..30 {
            assert_eq!(q.connection_throttle(local), None, "connection {i}");
        }
        let hold = q.connection_throttle(local).expect("the 31st is held");
        assert!(hold > Duration::ZERO && hold <= rate::WINDOW, "{hold:?}");
        // Not counted: the next is held no longer.
        assert_eq!(q.connection_throttle(local), Some(hold));
        assert_eq!(q.connection_throttle(other), None, "no quota for it");
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            q.connection_throttle(mapped),
            Some(hold),
            "the same address"
        );
        // The default holds each address to it on its own.
        assert_eq!(alter(&q, vec![entry(&[("ip", None)], &rate(1.0))]), vec![0]);
        for _ in 0..10 {
            assert_eq!(q.connection_throttle(other), None);
        }
        assert!(q.connection_throttle(other).is_some());
        assert!(q.connection_throttle("10.1.2.4".parse().unwrap()).is_none());
        // Kept, and described by an ip filter only.
        let q = ClientQuotas::open(&dir).unwrap();
        assert!(q.connection_throttle(other).is_none(), "rates start afresh");
        assert_eq!(described(&q, "ip", 2).len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_mutation_charge_serves_within_the_quota_and_refuses_in_debt() {
        // 1 partition a second: a burst of 11.
        let quota = Some((Arc::new(Sensor::new(Kind::Mutations)), 1.0));
        let now = Instant::now();
        let mut charge = MutationCharge::new(quota.clone(), true, now);
        assert!(charge.admit(10));
        assert!(
            charge.admit(10),
            "within the quota when asked: served whole"
        );
        assert!(!charge.admit(1), "in debt: refused");
        let owed = charge.throttle().as_secs_f64();
        assert!((8.9..=9.0).contains(&owed), "{owed}");
        // A request of a version without the error is served, and owes.
        let mut old = MutationCharge::new(quota, false, now);
        assert!(old.admit(5));
        assert!(old.throttle().as_secs_f64() > 13.0);
        // No quota: nothing counted.
        let mut free = MutationCharge::new(None, true, now);
        assert!(free.admit(1_000_000) && free.throttle().is_zero());
    }

    #[test]
    fn a_fetch_is_capped_at_the_quota_window() {
        assert_eq!(window_cap(0, 100_000.0), 1_000_000);
        assert_eq!(window_cap(-1, 100_000.0), 1_000_000);
        assert_eq!(window_cap(50_000, 100_000.0), 50_000);
        assert_eq!(window_cap(5_000_000, 100_000.0), 1_000_000);
        assert_eq!(window_cap(0, 1e15), i32::MAX);
        assert_eq!(window_cap(0, 0.0), 1);
    }

    #[test]
    fn the_most_specific_quota_applies_and_connections_share_rates_as_kafka_groups_them() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-cq-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let q = ClientQuotas::open(&dir).unwrap();
        let mut cache = Cached::default();
        assert!(q
            .applied(&mut cache, "alice", "app", Kind::Produce)
            .is_none());
        let codes = alter(
            &q,
            vec![
                entry(
                    &[("client-id", None)],
                    &[(PRODUCER_BYTE_RATE, 1000.0, false)],
                ),
                entry(
                    &[("user", Some("alice"))],
                    &[(PRODUCER_BYTE_RATE, 5000.0, false)],
                ),
                entry(&[("user", None)], &[(REQUEST_PERCENTAGE, 0.0, false)]),
                entry(
                    &[("client-id", Some("x"))],
                    &[(CONSUMER_BYTE_RATE, -1.0, false)],
                ),
                entry(&[("group", Some("g"))], &[(CONSUMER_BYTE_RATE, 1.0, false)]),
            ],
        );
        assert_eq!(
            codes,
            vec![
                ec::NONE,
                ec::NONE,
                ec::INVALID_REQUEST,
                ec::INVALID_REQUEST,
                ec::INVALID_REQUEST
            ]
        );
        // alice's user quota, shared by all her clients; bob gets the
        // client-id default, his own per client id.
        let quota = |cache: &mut Cached, user: &str, client: &str| {
            q.applied(cache, user, client, Kind::Produce).clone()
        };
        let (a1, v1) = quota(&mut cache, "alice", "app").unwrap();
        let mut other = Cached::default();
        let (a2, _) = quota(&mut other, "alice", "tool").unwrap();
        assert_eq!(v1, 5000.0);
        assert!(Arc::ptr_eq(&a1, &a2), "alice's clients share her rate");
        let (b1, bv) = quota(&mut Cached::default(), "bob", "app").unwrap();
        let (b2, _) = quota(&mut Cached::default(), "bob", "tool").unwrap();
        assert_eq!(bv, 1000.0);
        assert!(
            !Arc::ptr_eq(&b1, &b2),
            "a default client-id quota is each client's"
        );
        assert!(q.applied(&mut cache, "alice", "app", Kind::Fetch).is_none());
        // Removing alice's quota: the cache sees the change.
        alter(
            &q,
            vec![entry(
                &[("user", Some("alice"))],
                &[(PRODUCER_BYTE_RATE, 0.0, true)],
            )],
        );
        let (_, v) = quota(&mut cache, "alice", "app").unwrap();
        assert_eq!(v, 1000.0, "now the client-id default");
        // Kept across a restart.
        drop(q);
        let q = ClientQuotas::open(&dir).unwrap();
        let entries = described(&q, "client-id", 1);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].values[0].key.as_str(), PRODUCER_BYTE_RATE);
        assert_eq!(entries[0].values[0].value, 1000.0);
        assert_eq!(
            q.describe(&DescribeClientQuotasRequest::default(), false)
                .error_code,
            ec::CLUSTER_AUTHORIZATION_FAILED
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rates_idle_for_an_hour_are_forgotten_and_those_in_use_kept() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-cq-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let q = ClientQuotas::open(&dir).unwrap();
        let default = entry(
            &[("client-id", None)],
            &[(PRODUCER_BYTE_RATE, 1000.0, false)],
        );
        assert_eq!(alter(&q, vec![default]), vec![ec::NONE]);
        // 1,100 short-lived client ids, each counted once.
        for i in 0..1100 {
            let mut cache = Cached::default();
            let client = format!("c{i}");
            let applied = q.applied(&mut cache, "u", &client, Kind::Produce);
            applied.as_ref().unwrap().0.record_within(10, 1e9);
        }
        let mut held = Cached::default();
        let (live, _) = q
            .applied(&mut held, "u", "live", Kind::Produce)
            .clone()
            .unwrap();
        live.record_within(10, 1e9);
        let mut inner = q.lock();
        assert_eq!(inner.sensors.len(), 1101, "none idle yet");
        inner.sweep(Instant::now() + SENSOR_EXPIRY / 2);
        assert_eq!(inner.sensors.len(), 1101, "idle for less than an hour");
        inner.sweep(Instant::now() + SENSOR_EXPIRY + Duration::from_secs(1));
        assert_eq!(inner.sensors.len(), 1, "only the rate a connection holds");
        drop(inner);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
