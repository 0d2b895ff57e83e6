//! A cluster's upkeep: taking a new provider list, and the background
//! thread that reconnects dropped providers and retries failback calls.
//! Uses the cluster's shared state, members, mode and calls, and the
//! registry's provider entries.

use super::balance::{hash_key, Endpoint};
use super::calling::{attempt, block_on, Way};
use super::members::{connect, Member, Snapshot, FIRST_BACKOFF, MAX_BACKOFF};
use super::mode::ClusterMode;
use super::shared::{Retry, Shared};
use crate::consumer::RpcError;
use crate::registry::contract::ProviderEntry;
use crate::Status;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// What happens to members missing from a new list.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    /// Closed and dropped (the list is exact).
    Close,
    /// Kept, unlisted, while their connection is open (the list comes from
    /// a registry, which may be empty for a moment).
    KeepWhileConnected,
}

/// Replaces the member list with `providers`: known ones keep their
/// connection and balancer state, new ones are connected, and `missing`
/// says what happens to the rest.
pub(super) fn set_providers(
    shared: &Shared,
    providers: impl IntoIterator<Item = ProviderEntry>,
    missing: Missing,
) {
    let old = shared.members.load_full();
    let mut next: Vec<Arc<Member>> = Vec::new();
    for ProviderEntry {
        addr,
        weight,
        token,
    } in providers
    {
        if next.iter().any(|m| m.endpoint.addr == addr) {
            continue;
        }
        let token: Option<Arc<str>> = token.map(Arc::from);
        match old
            .members
            .iter()
            .find(|m| m.endpoint.addr == addr && m.endpoint.weight == weight && m.token == token)
        {
            Some(m) if m.listed => next.push(m.clone()),
            // Kept through an absence: listed again, same connection.
            Some(m) => next.push(m.listed(true)),
            None => next.push(Arc::new(Member {
                endpoint: Arc::new(Endpoint::new(addr, weight)),
                conn: connect(&shared.consumer, addr, &token),
                token,
                retry_at: Instant::now() + FIRST_BACKOFF,
                backoff: FIRST_BACKOFF,
                listed: true,
            })),
        }
    }
    for m in old.members.iter() {
        if next.iter().any(|n| n.endpoint.addr == m.endpoint.addr) {
            continue;
        }
        if missing == Missing::KeepWhileConnected && m.is_live() {
            if m.listed {
                tracing::info!(provider = %m.endpoint.addr, "unlisted by the registry; kept while it answers");
            }
            next.push(m.listed(false));
        } else if let Some(c) = &m.conn {
            c.close();
        }
    }
    shared.store(Snapshot::new(next));
}

/// The cluster's background work, every 20 ms while the cluster lives:
/// reconnect dropped providers whose back-off has passed, and run failback
/// retries that are due.
pub(super) fn maintain(cluster: Weak<Shared>) {
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let Some(shared) = cluster.upgrade() else {
            return;
        };
        reconnect(&shared);
        retry_failed(&shared);
    }
}

fn reconnect(shared: &Shared) {
    let current = shared.members.load_full();
    // Every 20 ms: nothing to build while every provider is up.
    if current.members.iter().all(|m| m.is_live()) {
        return;
    }
    let now = Instant::now();
    let mut changed = false;
    let mut next: Vec<Arc<Member>> = Vec::with_capacity(current.members.len());
    for m in current.members.iter() {
        let down = !m.is_live();
        if down && !m.listed {
            // Unlisted and gone: it has left.
            changed = true;
            continue;
        }
        if down && now >= m.retry_at {
            let conn = connect(&shared.consumer, m.endpoint.addr, &m.token);
            let backoff = if conn.is_some() {
                FIRST_BACKOFF
            } else {
                (m.backoff * 2).min(MAX_BACKOFF)
            };
            next.push(Arc::new(Member {
                endpoint: m.endpoint.clone(),
                conn,
                token: m.token.clone(),
                retry_at: now + backoff,
                backoff,
                listed: true,
            }));
            changed = true;
        } else {
            next.push(m.clone());
        }
    }
    if changed {
        // Only if nobody replaced the list meanwhile (a registry update
        // wins; the connections made here then close as they drop).
        shared
            .members
            .compare_and_swap(&current, Snapshot::new(next));
        shared.notify_list_changed();
    }
}

fn retry_failed(shared: &Shared) {
    let ClusterMode::Failback { every, max_retries } = shared.mode else {
        return;
    };
    let now = Instant::now();
    let due: Vec<Retry> = {
        let mut retries = shared.retries.lock().unwrap_or_else(|e| e.into_inner());
        let (due, later) = std::mem::take(&mut *retries)
            .into_iter()
            .partition(|r| r.due <= now);
        *retries = later;
        due
    };
    if due.is_empty() {
        return;
    }
    let snapshot = shared.members.load_full();
    let live = snapshot.live();
    for mut r in due {
        let answer = match shared.balancer.select(&live, hash_key(&r.args[..])) {
            Some(i) => block_on(attempt(
                shared,
                Way::Blocking,
                &snapshot.members[i],
                &r.method,
                &r.args,
                &shared.options,
            )),
            None => Err(RpcError::NoProvider(shared.service.to_string())),
        };
        let ok = matches!(answer, Ok((Status::Ok, _)));
        r.attempts += 1;
        if ok {
            tracing::info!(service = %shared.service, method = %r.method, attempts = r.attempts, "failback retry succeeded");
        } else if r.attempts >= max_retries {
            tracing::error!(service = %shared.service, method = %r.method, "failback call dropped after {max_retries} retries");
        } else {
            r.due = Instant::now() + every;
            shared
                .retries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(r);
        }
    }
}
