//! Filters around calls, on either side: they see each call before it runs
//! (and may refuse it) and after (and may turn its outcome into a failure).
//!
//! Built in, as Dubbo has them: [`TpsLimit`] (calls per second),
//! [`ConcurrencyLimit`] (calls at once; Dubbo's `executes` on a provider,
//! `actives` on a consumer), [`AccessLog`] (one `tracing` line per call,
//! target `gyre_rpc::access`) and [`Timeout`] (a provider answers
//! `ServerTimeout` for a call that ran past its limit). [`Filter`] is the
//! extension point. A provider or consumer with no filters pays nothing;
//! each filter costs one dynamic call before and one after a call.

use crate::protocol::Status;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Which side a filter runs on.
///
/// ```
/// use gyre_rpc::filter::{CallInfo, Filter, Side};
/// use std::time::Duration;
///
/// /// Logs slow calls, saying which end saw them.
/// #[derive(Debug)]
/// struct SlowCalls(Duration);
///
/// impl Filter for SlowCalls {
///     fn after(&self, call: &CallInfo<'_>, status: gyre_rpc::Status, took: Duration) -> Option<gyre_rpc::filter::Refusal> {
///         if took > self.0 {
///             let end = match call.side {
///                 Side::Consumer => "waited for",
///                 Side::Provider => "ran",
///             };
///             tracing::warn!(service = call.service, method = call.method, ?status, ?took, "{end} a slow call");
///         }
///         None
///     }
/// }
/// # let _ = SlowCalls(Duration::from_millis(100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// In the consumer, before the call is sent.
    Consumer,
    /// In the provider, before the method runs.
    Provider,
}

/// What a filter is told about a call.
///
/// ```
/// use gyre_rpc::filter::{CallInfo, Filter, Refusal, Side};
/// use gyre_rpc::Status;
///
/// /// Lets only loopback consumers call the `ops.` services.
/// #[derive(Debug)]
/// struct LocalOps;
///
/// impl Filter for LocalOps {
///     fn before(&self, call: &CallInfo<'_>) -> Result<(), Refusal> {
///         let local = call.peer.is_some_and(|p| p.ip().is_loopback());
///         if call.side == Side::Provider && call.service.starts_with("ops.") && !local {
///             return Err(Refusal { status: Status::ServiceError, message: format!("{} is local only", call.service) });
///         }
///         Ok(())
///     }
/// }
///
/// let from_afar = CallInfo {
///     side: Side::Provider,
///     service: "ops.Admin",
///     method: "restart",
///     peer: Some("203.0.113.9:40000".parse()?),
/// };
/// assert!(LocalOps.before(&from_afar).is_err());
/// assert!(LocalOps.before(&CallInfo { peer: Some("127.0.0.1:40000".parse()?), ..from_afar }).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CallInfo<'a> {
    /// The side it runs on.
    pub side: Side,
    /// Service name.
    pub service: &'a str,
    /// Method name.
    pub method: &'a str,
    /// The other end: the consumer on a provider, the provider on a
    /// consumer.
    pub peer: Option<SocketAddr>,
}

/// A filter's refusal or override: the status and message the call ends
/// with. The caller sees it as [`RpcError::Failed`](crate::consumer::RpcError::Failed)
/// with that status and message.
///
/// ```
/// use gyre_rpc::filter::{CallInfo, Filter, Refusal};
/// use gyre_rpc::Status;
/// use std::time::Duration;
///
/// /// Turns any answer that took over a second into a timeout, so callers
/// /// retry elsewhere rather than trust a stale result.
/// #[derive(Debug)]
/// struct Deadline;
///
/// impl Filter for Deadline {
///     fn after(&self, _: &CallInfo<'_>, status: Status, took: Duration) -> Option<Refusal> {
///         (status == Status::Ok && took > Duration::from_secs(1)).then(|| Refusal {
///             status: Status::ServerTimeout,
///             message: format!("answered after {took:?}"),
///         })
///     }
/// }
/// # let _ = Deadline;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The status.
    pub status: Status,
    /// Why.
    pub message: String,
}

/// A filter around calls.
///
/// ```
/// use gyre_rpc::consumer::{Consumer, RpcError};
/// use gyre_rpc::filter::{CallInfo, Filter, Refusal};
/// use gyre_rpc::provider::{Dispatch, Provider, Service, ServiceError};
/// use gyre_rpc::{ServiceKey, Status};
///
/// /// Refuses every call to methods whose names start with `admin_`.
/// #[derive(Debug)]
/// struct NoAdmin;
///
/// impl Filter for NoAdmin {
///     fn before(&self, call: &CallInfo<'_>) -> Result<(), Refusal> {
///         if call.method.starts_with("admin_") {
///             return Err(Refusal { status: Status::ServiceError, message: "not here".into() });
///         }
///         Ok(())
///     }
/// }
///
/// let key = ServiceKey::new("demo.Ops");
/// let provider = Provider::builder()
///     .listen("127.0.0.1:0".parse()?)
///     .filter(NoAdmin)
///     .service(Service::builder(key.clone()).dispatch(Dispatch::IoThread)
///         .method("status", |_: ()| Ok::<_, ServiceError>("up".to_string()))
///         .method("admin_wipe", |_: ()| Ok::<_, ServiceError>(()))
///         .build())
///     .start()?;
/// let conn = Consumer::builder().build()?.connect(provider.local_addr())?;
/// assert_eq!(conn.call::<_, String>(&key, "status", &())?, "up");
/// match conn.call::<_, ()>(&key, "admin_wipe", &()) {
///     Err(RpcError::Failed { message, .. }) => assert_eq!(message, "not here"),
///     other => panic!("{other:?}"),
/// }
/// provider.shutdown(std::time::Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Filter: Send + Sync + std::fmt::Debug {
    /// Before the call: `Err` refuses it with that status and message.
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Refusal> {
        let _ = call;
        Ok(())
    }

    /// After a call that `before` let through, with how it ended and how
    /// long it took; `Some` replaces the outcome with a failure.
    fn after(&self, call: &CallInfo<'_>, status: Status, elapsed: Duration) -> Option<Refusal> {
        let _ = (call, status, elapsed);
        None
    }
}

/// Runs `filters`' `before` in order; on a refusal, the `after` of those
/// that already passed, so their counts stay right.
pub(crate) fn run_before(
    filters: &[std::sync::Arc<dyn Filter>],
    call: &CallInfo<'_>,
) -> Result<(), Refusal> {
    for (i, f) in filters.iter().enumerate() {
        if let Err(r) = f.before(call) {
            for passed in filters[..i].iter().rev() {
                passed.after(call, r.status, Duration::ZERO);
            }
            return Err(r);
        }
    }
    Ok(())
}

/// Runs every filter's `after` in reverse order; the first override wins.
pub(crate) fn run_after(
    filters: &[std::sync::Arc<dyn Filter>],
    call: &CallInfo<'_>,
    status: Status,
    elapsed: Duration,
) -> Option<Refusal> {
    let mut replaced: Option<Refusal> = None;
    for f in filters.iter().rev() {
        let now = replaced.as_ref().map_or(status, |r| r.status);
        if let Some(r) = f.after(call, now, elapsed) {
            replaced.get_or_insert(r);
        }
    }
    replaced
}

fn applies(method: &Option<String>, call: &CallInfo<'_>) -> bool {
    method.as_deref().is_none_or(|m| m == call.method)
}

fn refused(call: &CallInfo<'_>, why: String) -> Refusal {
    Refusal {
        status: match call.side {
            Side::Provider => Status::ServerOverloaded,
            Side::Consumer => Status::ClientError,
        },
        message: why,
    }
}

/// At most `limit` calls per second (per fixed one-second window), for one
/// method or for all that pass through it.
///
/// ```
/// use gyre_rpc::filter::TpsLimit;
/// use gyre_rpc::provider::Provider;
///
/// // At most 1,000 calls a second to `search`; other methods are not counted.
/// let builder = Provider::builder().filter(TpsLimit::new(1000).method("search"));
/// # drop(builder);
/// ```
#[derive(Debug)]
pub struct TpsLimit {
    limit: u64,
    method: Option<String>,
    epoch: Instant,
    /// The current window's number (seconds since `epoch`) in the high 32
    /// bits, calls in it in the low 32: one atomic word, so a window change
    /// and its count reset are one step.
    window: AtomicU64,
}

impl TpsLimit {
    /// A limit of `limit` calls per second on every method.
    ///
    /// ```
    /// use gyre_rpc::filter::{CallInfo, Filter, Side, TpsLimit};
    /// let f = TpsLimit::new(2);
    /// let call = CallInfo { side: Side::Provider, service: "s", method: "m", peer: None };
    /// assert!(f.before(&call).is_ok() && f.before(&call).is_ok());
    /// assert!(f.before(&call).is_err());
    /// ```
    pub fn new(limit: u64) -> TpsLimit {
        TpsLimit {
            limit: limit.min(u64::from(u32::MAX)),
            method: None,
            epoch: Instant::now(),
            window: AtomicU64::new(0),
        }
    }

    /// The same limit on method `name` only.
    pub fn method(mut self, name: impl Into<String>) -> TpsLimit {
        self.method = Some(name.into());
        self
    }
}

impl Filter for TpsLimit {
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Refusal> {
        if !applies(&self.method, call) {
            return Ok(());
        }
        let now = self.epoch.elapsed().as_secs() & 0xffff_ffff;
        let mut cur = self.window.load(Ordering::Relaxed);
        loop {
            let (window, count) = (cur >> 32, cur & 0xffff_ffff);
            let next = if window == now {
                if count >= self.limit {
                    return Err(refused(
                        call,
                        format!(
                            "{}.{} is over its limit of {} calls per second",
                            call.service, call.method, self.limit
                        ),
                    ));
                }
                cur + 1
            } else {
                (now << 32) | 1
            };
            match self
                .window
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(seen) => cur = seen,
            }
        }
    }
}

/// At most `limit` calls at once, for one method or for all.
///
/// ```
/// use gyre_rpc::filter::ConcurrencyLimit;
/// use gyre_rpc::provider::Provider;
/// use std::sync::Arc;
///
/// // At most 16 calls running at once; the handle reads how many are.
/// let limit = Arc::new(ConcurrencyLimit::new(16));
/// let builder = Provider::builder().shared_filter(limit.clone());
/// assert_eq!(limit.active(), 0);
/// # drop(builder);
/// ```
#[derive(Debug)]
pub struct ConcurrencyLimit {
    limit: usize,
    method: Option<String>,
    active: AtomicUsize,
}

impl ConcurrencyLimit {
    /// A limit of `limit` calls at once on every method.
    pub fn new(limit: usize) -> ConcurrencyLimit {
        ConcurrencyLimit {
            limit,
            method: None,
            active: AtomicUsize::new(0),
        }
    }

    /// The same limit on method `name` only.
    pub fn method(mut self, name: impl Into<String>) -> ConcurrencyLimit {
        self.method = Some(name.into());
        self
    }

    /// Calls running now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }
}

impl Filter for ConcurrencyLimit {
    fn before(&self, call: &CallInfo<'_>) -> Result<(), Refusal> {
        if !applies(&self.method, call) {
            return Ok(());
        }
        if self.active.fetch_add(1, Ordering::AcqRel) >= self.limit {
            self.active.fetch_sub(1, Ordering::AcqRel);
            return Err(refused(
                call,
                format!(
                    "{}.{} already has {} calls running",
                    call.service, call.method, self.limit
                ),
            ));
        }
        Ok(())
    }

    fn after(&self, call: &CallInfo<'_>, _status: Status, _elapsed: Duration) -> Option<Refusal> {
        if applies(&self.method, call) {
            self.active.fetch_sub(1, Ordering::AcqRel);
        }
        None
    }
}

/// One `tracing` event per call at INFO, target `gyre_rpc::access`: side,
/// service, method, peer, status and microseconds.
///
/// ```
/// use gyre_rpc::consumer::Consumer;
/// use gyre_rpc::filter::AccessLog;
///
/// // One INFO event per call under the `gyre_rpc::access` target.
/// let consumer = Consumer::builder().filter(AccessLog).build()?;
/// # drop(consumer);
/// # Ok::<(), gyre_rpc::consumer::RpcError>(())
/// ```
#[derive(Debug, Default)]
pub struct AccessLog;

impl Filter for AccessLog {
    fn after(&self, call: &CallInfo<'_>, status: Status, elapsed: Duration) -> Option<Refusal> {
        tracing::info!(
            target: "gyre_rpc::access",
            side = ?call.side,
            service = call.service,
            method = call.method,
            peer = ?call.peer,
            status = ?status,
            micros = elapsed.as_micros() as u64,
        );
        None
    }
}

/// On a provider: a call whose method ran longer than `limit` is answered
/// with [`Status::ServerTimeout`] instead of its result (the consumer has
/// most likely given up on it; a late result could mislead one that has
/// not). Methods are not interrupted: Rust cannot stop a thread safely.
///
/// ```
/// use gyre_rpc::filter::Timeout;
/// use gyre_rpc::provider::Provider;
/// use std::time::Duration;
///
/// // A method that ran past 500 ms is answered ServerTimeout.
/// let builder = Provider::builder().filter(Timeout::new(Duration::from_millis(500)));
/// # drop(builder);
/// ```
#[derive(Debug)]
pub struct Timeout {
    limit: Duration,
}

impl Timeout {
    /// Calls longer than `limit` end in `ServerTimeout`.
    pub fn new(limit: Duration) -> Timeout {
        Timeout { limit }
    }
}

impl Filter for Timeout {
    fn after(&self, call: &CallInfo<'_>, _status: Status, elapsed: Duration) -> Option<Refusal> {
        (call.side == Side::Provider && elapsed > self.limit).then(|| Refusal {
            status: Status::ServerTimeout,
            message: format!(
                "{}.{} took {elapsed:?}, over the provider's {:?} limit",
                call.service, call.method, self.limit
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn call(method: &str) -> CallInfo<'_> {
        CallInfo {
            side: Side::Provider,
            service: "s",
            method,
            peer: None,
        }
    }

    #[test]
    fn concurrency_limit_counts_in_and_out_per_method() {
        let f = ConcurrencyLimit::new(2).method("m");
        assert!(f.before(&call("m")).is_ok());
        assert!(f.before(&call("m")).is_ok());
        let r = f.before(&call("m")).unwrap_err();
        assert_eq!(r.status, Status::ServerOverloaded);
        assert!(
            f.before(&call("other")).is_ok(),
            "other methods are not limited"
        );
        f.after(&call("m"), Status::Ok, Duration::ZERO);
        assert!(f.before(&call("m")).is_ok());
        assert_eq!(f.active(), 2);
    }

    #[test]
    fn a_refusal_undoes_the_filters_that_passed() {
        let limit = Arc::new(ConcurrencyLimit::new(10));
        let filters: Vec<Arc<dyn Filter>> = vec![limit.clone(), Arc::new(TpsLimit::new(0))];
        assert!(run_before(&filters, &call("m")).is_err());
        assert_eq!(limit.active(), 0);
    }

    #[test]
    fn timeout_overrides_a_slow_call_on_the_provider_only() {
        let filters: Vec<Arc<dyn Filter>> = vec![Arc::new(Timeout::new(Duration::from_millis(10)))];
        assert_eq!(
            run_after(&filters, &call("m"), Status::Ok, Duration::from_millis(5)),
            None
        );
        let r = run_after(&filters, &call("m"), Status::Ok, Duration::from_millis(50)).unwrap();
        assert_eq!(r.status, Status::ServerTimeout);
        let consumer = CallInfo {
            side: Side::Consumer,
            ..call("m")
        };
        assert_eq!(
            run_after(&filters, &consumer, Status::Ok, Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn tps_limit_resets_each_second() {
        let f = TpsLimit::new(3);
        let passed = (0..10).filter(|_| f.before(&call("m")).is_ok()).count();
        assert_eq!(passed, 3);
        std::thread::sleep(Duration::from_millis(1100));
        assert!(f.before(&call("m")).is_ok());
    }
}
