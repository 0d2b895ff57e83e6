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
//! batch); where what it would read is not in the page cache (a group
//! starting at the earliest record of a long log, records released far
//! behind the end), the cache loader reads it in first, off the writer,
//! and sends the fetch back, as [`crate::fetch`] does, so the writer
//! that every produce waits on never waits on the disk for it.

use crate::cache_loader::CacheLoader;
use crate::ops::{Answer, LogReply};
use crate::share::job::{ShareAnswer, ShareFetchJob};
use crate::share::{Begun, Shares};
use crate::storage::Storage;
use crossbeam_channel::Sender;
use gyre_ringbuffer::TimeoutNudger;
use std::time::Instant;

/// A share fetch waiting on the writer.
pub(crate) struct ShareParked<R> {
    id: u64,
    job: ShareFetchJob,
    begun: Begun,
    reply: R,
    deadline: Instant,
    /// What it reads has been read into the page cache once: it is
    /// served now whatever the cache holds, so it cannot go round.
    loaded: bool,
}

/// The way back to the writer for a share fetch whose records the
/// loader has read in, and the nudge that ends the writer's wait.
pub(crate) struct ShareReload<R> {
    pub(crate) tx: Sender<ShareParked<R>>,
    pub(crate) nudger: TimeoutNudger,
}

/// Where a begun share fetch goes.
pub(crate) struct Serving<'a, R> {
    pub(crate) shares: &'a mut Shares,
    pub(crate) storage: &'a Storage,
    pub(crate) loader: Option<&'a CacheLoader>,
    pub(crate) reload: &'a ShareReload<R>,
    pub(crate) parked: &'a mut Vec<ShareParked<R>>,
    /// Acknowledgements are synced before they are answered (the broker
    /// syncs each batch); otherwise written, and synced as the logs are.
    pub(crate) sync: bool,
}

impl<R> Serving<'_, R> {
    fn reborrow(&mut self) -> Serving<'_, R> {
        Serving {
            shares: &mut *self.shares,
            storage: self.storage,
            loader: self.loader,
            reload: self.reload,
            parked: &mut *self.parked,
            sync: self.sync,
        }
    }
}

/// Begins `job` (its member, session and acknowledgements) and answers
/// it now if it can be, or has its records read in, or parks it; then
/// looks at the parked ones again, which its acknowledgements may have
/// given records back to.
pub(crate) fn begin<R: LogReply>(mut at: Serving<'_, R>, id: u64, job: ShareFetchJob, reply: R) {
    serve_new(at.reborrow(), id, job, reply);
    wake(at, None);
}

fn serve_new<R: LogReply>(at: Serving<'_, R>, id: u64, job: ShareFetchJob, reply: R) {
    let mut begun = match at.shares.begin(at.storage, &job) {
        Ok(begun) => begun,
        Err(refused) => return reply.answer(id, Answer::Shared(refused)),
    };
    at.shares.persist_acks(&mut begun, at.sync);
    let fetch = ShareParked {
        id,
        deadline: Instant::now() + job.max_wait,
        job,
        begun,
        reply,
        loaded: false,
    };
    if !fetch.job.fetch || fetch.job.session_epoch == -1 {
        return answer(at.shares, fetch, Vec::new());
    }
    serve_or_park(at, fetch);
}

/// Serves a begun share fetch: acquires and answers, or parks it; one
/// whose records are not in the page cache goes to the loader first.
pub(crate) fn serve_or_park<R: LogReply>(at: Serving<'_, R>, mut fetch: ShareParked<R>) {
    let Serving {
        shares,
        storage,
        loader,
        reload,
        parked,
        ..
    } = at;
    if let (Some(loader), false) = (loader, fetch.loaded) {
        let cold: Vec<_> = shares
            .next_reads(storage, &fetch.job)
            .into_iter()
            .filter_map(|(id, from)| {
                let window = storage.log(id)?.fetch_window(from, fetch.job.max_bytes)?;
                loader.must_load(&window).then_some(window)
            })
            .collect();
        if !cold.is_empty() {
            fetch.loaded = true;
            let back = ShareReload {
                tx: reload.tx.clone(),
                nudger: reload.nudger.clone(),
            };
            // Sent back whatever happens: an unanswered fetch would hold
            // every later answer on its connection.
            loader.load_then(cold, move || match back.tx.send(fetch) {
                Ok(()) => back.nudger.nudge(),
                Err(unsent) => {
                    let fetch = unsent.into_inner();
                    fetch
                        .reply
                        .answer(fetch.id, Answer::Shared(ShareAnswer::default()));
                }
            });
            return;
        }
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
pub(crate) fn wake<R: LogReply>(at: Serving<'_, R>, now: Option<Instant>) {
    let Serving {
        shares,
        storage,
        parked,
        ..
    } = at;
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
