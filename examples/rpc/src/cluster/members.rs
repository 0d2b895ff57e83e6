//! A cluster's providers as calls see them: each [`Member`] (its endpoint,
//! its connection and its reconnection back-off) and the [`Snapshot`] of
//! them all, replaced whole when the list changes. Uses the balancer's
//! endpoints and candidates and the consumer's connections.

use super::balance::{fingerprint, Candidates, Endpoint};
use crate::consumer::{Connection, Consumer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The first wait before connecting again to a provider that dropped.
pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest: the wait doubles up to this.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connection to the provider at `addr`, or `None` (logged) to be tried
/// again after a back-off.
pub(super) fn connect(
    consumer: &Consumer,
    addr: SocketAddr,
    token: &Option<Arc<str>>,
) -> Option<Arc<Connection>> {
    match consumer.connect_with_token(addr, token.clone()) {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot connect to provider; will retry");
            None
        }
    }
}

/// One provider of the cluster.
pub(super) struct Member {
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) conn: Option<Arc<Connection>>,
    /// The token the provider requires, as the registry published it.
    pub(super) token: Option<Arc<str>>,
    /// When to try connecting again, and the back-off after that.
    pub(super) retry_at: Instant,
    pub(super) backoff: Duration,
    /// In the last list given; a member that is not stays only while its
    /// connection is open.
    pub(super) listed: bool,
}

impl Member {
    pub(super) fn is_live(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_open())
    }

    /// Connected, and its provider is not shutting down.
    pub(super) fn is_available(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| c.is_available())
    }

    /// The same provider and connection, listed or not.
    pub(super) fn listed(&self, listed: bool) -> Arc<Member> {
        Arc::new(Member {
            endpoint: self.endpoint.clone(),
            conn: self.conn.clone(),
            token: self.token.clone(),
            retry_at: self.retry_at,
            backoff: self.backoff,
            listed,
        })
    }
}

/// The provider list as calls see it: replaced whole when it changes, read
/// on every call without a lock.
pub(super) struct Snapshot {
    pub(super) members: Vec<Arc<Member>>,
    /// The members' endpoints, in the same order, for the balancer.
    pub(super) endpoints: Vec<Arc<Endpoint>>,
    pub(super) fingerprint: u64,
}

impl Snapshot {
    pub(super) fn new(members: Vec<Arc<Member>>) -> Arc<Snapshot> {
        let endpoints: Vec<Arc<Endpoint>> = members.iter().map(|m| m.endpoint.clone()).collect();
        Arc::new(Snapshot {
            fingerprint: fingerprint(&endpoints),
            members,
            endpoints,
        })
    }

    /// The members a balancer chooses from: those connected whose
    /// providers are not shutting down, or, where every connected one is
    /// (Dubbo's reselection does the same), the connected ones: a
    /// provider shutting down still answers until it closes.
    pub(super) fn live(&self) -> Candidates<'_> {
        let available = Candidates::new(&self.endpoints, self.fingerprint, |i| {
            self.members[i].is_available()
        });
        if !available.is_empty() {
            return available;
        }
        Candidates::new(&self.endpoints, self.fingerprint, |i| {
            self.members[i].is_live()
        })
    }
}
