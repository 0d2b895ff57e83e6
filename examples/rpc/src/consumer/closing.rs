//! Graceful close: a connection that takes no new calls and closes once
//! the calls it has are answered, and the consumer's list of the
//! connections it opened, so that it can close them all that way (Dubbo's
//! consumer-side graceful shutdown). Uses the connection's [`Link`] only.
//!
//! The wait polls each connection's count of calls in flight every
//! millisecond on the closing thread (never a loop's); the loops go on
//! settling answers meanwhile. A call that starts as the close begins
//! either fails the `closing` check with `Closed`, or passes it and is
//! counted, and so waited for; one that passed the check but was not yet
//! counted when the wait saw none in flight goes out just before the
//! channel's close, which fails every call still pending on it with
//! `Closed`. None is lost or left waiting.

use super::link::Link;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// How often the wait looks at the counts.
const POLL: Duration = Duration::from_millis(1);

/// The connections a consumer opened, held weakly: a connection dropped
/// leaves its entry dead, and dead entries are dropped once the list has
/// doubled since it was last pruned (so an open costs amortized constant
/// time and the list stays within twice the live connections).
#[derive(Debug, Default)]
pub(crate) struct Opened {
    links: Mutex<(Vec<Weak<Link>>, usize)>,
}

impl Opened {
    /// Adds a connection just opened.
    pub(crate) fn add(&self, link: &Arc<Link>) {
        let mut guard = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let (links, pruned_at) = &mut *guard;
        if links.len() >= 2 * (*pruned_at).max(8) {
            links.retain(|l| l.strong_count() > 0);
            *pruned_at = links.len();
        }
        links.push(Arc::downgrade(link));
    }

    /// The connections still held by someone.
    pub(crate) fn live(&self) -> Vec<Arc<Link>> {
        let guard = self.links.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.iter().filter_map(Weak::upgrade).collect()
    }
}

/// Marks `links` closing (new calls on them fail with `Closed`), then
/// waits, sleeping on this thread, until none has a call in flight or
/// `deadline` passes; on an event loop's thread, whose sleep would hold
/// that loop, it does not wait. Whether none has a call in flight.
pub(crate) fn drain(links: &[Arc<Link>], deadline: Instant) -> bool {
    let deadline = if gyre_reactor::is_event_loop_thread() {
        Instant::now()
    } else {
        deadline
    };
    for link in links {
        link.closing.store(true, Ordering::SeqCst);
    }
    loop {
        if links.iter().all(|l| l.waiting.load(Ordering::SeqCst) == 0) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}
