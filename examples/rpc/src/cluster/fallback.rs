//! Fallbacks (Dubbo's mock): a method's stand-in result when its call
//! fails for want of a working provider (none available, a timeout, a
//! closed connection, a provider overloaded or failing: the failures
//! [`RpcError::is_retryable`] names, once the cluster's mode has tried
//! what it tries), or always while the method is degraded by hand
//! (Dubbo's `force:` mock). A method's own failure is its caller's to
//! see and is never replaced. Uses the consumer's errors and answers and
//! the protocol's serialization.

use crate::consumer::{Answer, RpcError};
use crate::protocol::{Serialization, Status};
use bytes::BytesMut;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// A fallback's result, as a provider's answer would carry it.
type Produce = dyn Fn(&RpcError, Serialization) -> Answer + Send + Sync;

/// One method's fallback.
pub(crate) struct Fallback {
    produce: Box<Produce>,
    /// Degraded by hand: the fallback answers without a call.
    forced: AtomicBool,
}

impl Fallback {
    /// Whether the method is degraded by hand.
    pub(crate) fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Relaxed)
    }

    /// The fallback's answer to a call that failed with `cause`, in the
    /// call's `serialization` (decoded as a provider's would be).
    pub(crate) fn answer(&self, cause: &RpcError, serialization: Serialization) -> Answer {
        (self.produce)(cause, serialization)
    }
}

/// The fallbacks of a cluster's methods, by method name.
#[derive(Default)]
pub(crate) struct Fallbacks(HashMap<String, Fallback>);

impl Fallbacks {
    /// Gives `method` the fallback `f`, replacing any it had.
    pub(crate) fn add<Resp, F>(&mut self, method: String, f: F)
    where
        Resp: Serialize,
        F: Fn(&RpcError) -> Result<Resp, RpcError> + Send + Sync + 'static,
    {
        let produce = move |cause: &RpcError, serialization: Serialization| -> Answer {
            let value = f(cause)?;
            let mut body = BytesMut::new();
            serialization
                .serialize(&value, &mut body)
                .map_err(|source| RpcError::Result {
                    call: "a fallback".to_owned(),
                    expected: std::any::type_name::<Resp>(),
                    source,
                })?;
            Ok((Status::Ok, body.freeze()))
        };
        let fallback = Fallback {
            produce: Box::new(produce),
            forced: AtomicBool::new(false),
        };
        self.0.insert(method, fallback);
    }

    /// `method`'s fallback; no lookup at all when no method has one.
    pub(crate) fn get(&self, method: &str) -> Option<&Fallback> {
        if self.0.is_empty() {
            None
        } else {
            self.0.get(method)
        }
    }

    /// Degrades `method` to its fallback (or restores its calls); whether
    /// it has one.
    pub(crate) fn force(&self, method: &str, on: bool) -> bool {
        match self.0.get(method) {
            Some(f) => {
                f.forced.store(on, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

impl std::fmt::Debug for Fallbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut methods: Vec<(&str, bool)> = self
            .0
            .iter()
            .map(|(m, fb)| (m.as_str(), fb.is_forced()))
            .collect();
        methods.sort_unstable();
        f.debug_map().entries(methods).finish()
    }
}

/// Whether a fallback stands in for a call that failed with `e`.
pub(crate) fn stands_in_for(e: &RpcError) -> bool {
    e.is_retryable()
}
