//! Share fetches on the log writer: each ShareFetch and ShareAcknowledge
//! is begun (its member and session checked, its acknowledgements
//! applied), then a ShareFetch acquires records for its member and is
//! answered at once if it got any (or has no wait), and otherwise parked
//! until an append, an acknowledgement that gave records back, or a
//! lock that ran out could serve it, or its wait runs out: Kafka's long
//! poll, as [`crate::fetch`] parks fetches.
//!
//! Records go out as regions of the segment files, as a fetch's do. A
//! share fetch reads its batches' headers on the writer (to acquire by
//! batch) without the cache loader a fetch has: a share group reads near
//! the log's end as a rule, where the pages are cached.

use crate::ops::{Answer, LogReply};
use crate::share::job::{ShareAnswer, ShareFetchJob};
use crate::share::{Begun, Shares};
use crate::storage::Storage;
use std::time::Instant;

/// A share fetch waiting on the writer.
pub(crate) struct ShareParked<R> {
    id: u64,
    job: ShareFetchJob,
    begun: Begun,
    reply: R,
    deadline: Instant,
}

/// Answers `job` now if it can be, or parks it.
pub(crate) fn serve_or_park<R: LogReply>(
    shares: &mut Shares,
    storage: &Storage,
    parked: &mut Vec<ShareParked<R>>,
    id: u64,
    job: ShareFetchJob,
    reply: R,
) {
    let begun = match shares.begin(storage, &job) {
        Ok(begun) => begun,
        Err(refused) => return reply.answer(id, Answer::Shared(refused)),
    };
    let fetch = ShareParked {
        id,
        deadline: Instant::now() + job.max_wait,
        job,
        begun,
        reply,
    };
    if !fetch.job.fetch || fetch.job.session_epoch == -1 {
        return answer(shares, fetch, Vec::new());
    }
    let acquired = shares.acquire(storage, &fetch.job, &fetch.begun);
    if !acquired.is_empty() || fetch.job.max_wait.is_zero() {
        answer(shares, fetch, acquired);
    } else {
        parked.push(fetch);
    }
}

fn answer<R: LogReply>(
    shares: &Shares,
    fetch: ShareParked<R>,
    acquired: Vec<crate::share::job::SharePartAnswer>,
) {
    let mut parts = fetch.begun.into_acked();
    // A partition both acknowledged and fetched is answered once.
    for a in acquired {
        match parts
            .iter_mut()
            .find(|p| (p.topic_id, p.index) == (a.topic_id, a.index))
        {
            Some(p) => {
                p.error = a.error;
                p.records = a.records;
                p.acquired = a.acquired;
            }
            None => parts.push(a),
        }
    }
    let answer = ShareAnswer {
        error: 0,
        message: None,
        lock_ms: i32::try_from(shares.lock_ms_of(&fetch.job.group)).unwrap_or(i32::MAX),
        parts,
    };
    fetch.reply.answer(fetch.id, Answer::Shared(answer));
}

/// Looks at the parked share fetches again: answers those that now get
/// records and, given the time `now`, those whose wait is over.
pub(crate) fn wake<R: LogReply>(
    shares: &mut Shares,
    storage: &Storage,
    parked: &mut Vec<ShareParked<R>>,
    now: Option<Instant>,
) {
    let mut i = 0;
    while i < parked.len() {
        let acquired = shares.acquire(storage, &parked[i].job, &parked[i].begun);
        let expired = now.is_some_and(|now| now >= parked[i].deadline);
        if !acquired.is_empty() || expired {
            let fetch = parked.swap_remove(i);
            answer(shares, fetch, acquired);
        } else {
            i += 1;
        }
    }
}

/// Answers every parked share fetch with what it has: for the writer's
/// shutdown.
pub(crate) fn answer_all<R: LogReply>(shares: &Shares, parked: &mut Vec<ShareParked<R>>) {
    for fetch in parked.drain(..) {
        answer(shares, fetch, Vec::new());
    }
}
