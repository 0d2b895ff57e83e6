//! A cluster call in its mode ([`ClusterMode`]), written once for both
//! ways of calling: blocking on the caller's thread and as a future.
//!
//! The mode is an `async` function over the [`Way`]. A blocking call runs
//! it on its own thread with [`block_on`]: its single attempts wait for
//! their answers where they are made (sent from the thread, which then
//! reads its own answer when the connection lends it its input, as a
//! blocking [`Connection::call`] does), so the function finishes in its
//! first poll, with no waker made, unless it fans out. A fan-out (forking,
//! broadcast) sends every call before it waits for any, so its attempts
//! are asynchronous in both ways, and a blocking caller parks its thread
//! until an answer wakes it. An asynchronous call awaits every attempt.
//!
//! Uses the cluster's shared state, members, mode, balancer and
//! fallbacks, and the consumer's calls and answers.
//!
//! [`Connection::call`]: crate::consumer::Connection::call

use super::balance::hash_key;
use super::fallback;
use super::members::Member;
use super::mode::ClusterMode;
use super::shared::{Retry, Shared};
use crate::consumer::{call_name, decode_answer, Answer, CallOptions, RpcError};
use crate::Status;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

/// How a call's single attempts wait for their answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Way {
    /// On the calling thread, inside the attempt (under [`block_on`]).
    Blocking,
    /// Awaited.
    Async,
}

/// `method` called with `args` (serialized in `options.serialization`) in
/// the cluster's mode, answered by its fallback where it has one and the
/// providers could not answer. `args` is a result so that a degraded
/// call, which sends nothing, does not fail for arguments it never sends.
pub(super) async fn call<Resp: DeserializeOwned>(
    shared: &Shared,
    way: Way,
    method: &str,
    args: Result<Bytes, RpcError>,
    options: &CallOptions,
) -> Result<Resp, RpcError> {
    let Some(fallback) = shared.fallbacks.get(method) else {
        return call_providers(shared, way, method, args?, options).await;
    };
    let service = &shared.service;
    let name = || call_name(service, method);
    let failure = if fallback.is_forced() {
        RpcError::Degraded { call: name() }
    } else {
        let answered = match args {
            Ok(args) => call_providers(shared, way, method, args, options).await,
            Err(e) => Err(e),
        };
        match answered {
            Err(e) if fallback::stands_in_for(&e) => e,
            done => return done,
        }
    };
    tracing::debug!(service = %service, method, failure = %failure, "answered by its fallback");
    let ser = options.serialization;
    decode_answer(fallback.answer(&failure, ser), ser, name)
}

/// A call sent to providers in the cluster's mode.
async fn call_providers<Resp: DeserializeOwned>(
    shared: &Shared,
    way: Way,
    method: &str,
    args: Bytes,
    options: &CallOptions,
) -> Result<Resp, RpcError> {
    let service = &shared.service;
    let name = || call_name(service, method);
    let key = match options.hash_key {
        Some(key) => key,
        None if shared.balancer.uses_key() => hash_key(&args[..]),
        None => 0,
    };
    let ser = options.serialization;
    // No lock and, up to 256 providers, no allocation to choose one: the
    // list is a snapshot swapped whole when it changes, and the choice is
    // a bit set over it.
    let snapshot = shared.members.load();
    let live = snapshot.live();
    let balancer = &shared.balancer;
    let member = |i: usize| &snapshot.members[i];
    let no_provider = || RpcError::NoProvider(service.to_string());
    match shared.mode {
        ClusterMode::Failfast => {
            let m = balancer.select(&live, key).ok_or_else(no_provider)?;
            decode_answer(
                attempt(shared, way, member(m), method, &args, options).await,
                ser,
                name,
            )
        }
        ClusterMode::Failover { retries } => {
            let mut untried = live.clone();
            // The last failure, made only if one happens: a call that
            // succeeds builds no error.
            let mut last = None;
            for _ in 0..=retries {
                // Another provider while there is one; after that, any.
                let Some(i) = balancer
                    .select(&untried, key)
                    .or_else(|| balancer.select(&live, key))
                else {
                    break;
                };
                untried.exclude(i);
                let m = member(i);
                match decode_answer(
                    attempt(shared, way, m, method, &args, options).await,
                    ser,
                    name,
                ) {
                    Ok(r) => return Ok(r),
                    Err(e) if e.is_retryable() => {
                        tracing::debug!(provider = %m.endpoint.addr, error = %e, "failing over");
                        last = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(last.unwrap_or_else(no_provider))
        }
        ClusterMode::Failsafe => {
            let answer = match balancer.select(&live, key) {
                Some(i) => attempt(shared, way, member(i), method, &args, options).await,
                None => Err(no_provider()),
            };
            decode_answer(answer, ser, name).map_err(|e| {
                tracing::warn!(service = %service, method, error = %e, "failsafe call failed; it has no result");
                RpcError::Absorbed {
                    mode: "failsafe",
                    call: name(),
                    cause: Box::new(e),
                }
            })
        }
        ClusterMode::Failback { every, .. } => {
            let answer = match balancer.select(&live, key) {
                Some(i) => attempt(shared, way, member(i), method, &args, options).await,
                None => Err(no_provider()),
            };
            match decode_answer(answer, ser, name) {
                Ok(r) => Ok(r),
                Err(e) if e.is_retryable() => {
                    tracing::info!(service = %service, method, error = %e, "call failed; retrying in the background");
                    shared
                        .retries
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Retry {
                            method: method.to_string(),
                            args: args.clone(),
                            attempts: 0,
                            due: Instant::now() + every,
                        });
                    Err(RpcError::Absorbed {
                        mode: "failback",
                        call: name(),
                        cause: Box::new(e),
                    })
                }
                Err(e) => Err(e),
            }
        }
        ClusterMode::Forking { parallel } => {
            let mut untried = live.clone();
            let mut chosen: Vec<&Arc<Member>> = Vec::new();
            while chosen.len() < parallel.max(1) {
                match balancer.select(&untried, key) {
                    Some(i) => {
                        untried.exclude(i);
                        chosen.push(member(i));
                    }
                    None => break,
                }
            }
            if chosen.is_empty() {
                return Err(no_provider());
            }
            // The calls still out when one succeeds are dropped with the
            // fan-out: their answers, when they come, go nowhere.
            let mut answers = FanOut::new(
                chosen
                    .iter()
                    .map(|m| attempt(shared, Way::Async, m, method, &args, options)),
            );
            let mut last = None;
            while let Some((_, answer)) = answers.next().await {
                match decode_answer(answer, ser, name) {
                    Ok(r) => return Ok(r),
                    Err(e) => last = Some(e),
                }
            }
            Err(last.unwrap_or_else(no_provider))
        }
        ClusterMode::Broadcast => {
            if snapshot.members.is_empty() {
                return Err(no_provider());
            }
            // Every provider, connected or not: a broadcast that misses
            // one has failed.
            let all = &snapshot.members;
            let mut answers = FanOut::new(
                all.iter()
                    .map(|m| attempt(shared, Way::Async, m, method, &args, options)),
            );
            let mut answered: Vec<(usize, Answer)> = Vec::with_capacity(all.len());
            while let Some(answer) = answers.next().await {
                answered.push(answer);
            }
            answered.sort_by_key(|(i, _)| *i);
            let mut result = Err(no_provider());
            for (i, answer) in answered {
                match decode_answer(answer, ser, name) {
                    Ok(r) => result = Ok(r),
                    Err(e) => {
                        tracing::warn!(provider = %all[i].endpoint.addr, error = %e, "broadcast failed");
                        return Err(e);
                    }
                }
            }
            result
        }
    }
}

/// One call to one provider, counted as active while it runs (and while
/// its future lives), and timed for a balancer that reads the times.
pub(super) async fn attempt(
    shared: &Shared,
    way: Way,
    m: &Member,
    method: &str,
    args: &[u8],
    options: &CallOptions,
) -> Answer {
    let Some(conn) = m.conn.as_ref() else {
        return Err(RpcError::Closed);
    };
    let _active = m.endpoint.begin_call();
    let started = shared.timed.then(Instant::now);
    let answer = match way {
        Way::Blocking => conn.wait(options.timeout, |done| {
            conn.start_raw(&shared.service, method, args, options, done)
        }),
        Way::Async => {
            conn.call_raw_async(&shared.service, method, args, options)
                .await
        }
    };
    if let Some(started) = started {
        let took = match &answer {
            // Answered: the method's own error is an answer too.
            Ok((Status::Ok | Status::ServiceError, _)) => started.elapsed(),
            // A provider that failed the call counts as one that took its
            // whole timeout: quick to refuse is not fast.
            _ => options.timeout.max(started.elapsed()),
        };
        m.endpoint.record_response(took);
    }
    answer
}

/// Calls made at once, their answers taken in the order they come, each
/// tagged with its call's index. Every call is sent at the first poll;
/// calls still out when the fan-out drops are abandoned.
struct FanOut<F> {
    calls: Vec<Option<Pin<Box<F>>>>,
    left: usize,
}

impl<F: Future<Output = Answer>> FanOut<F> {
    fn new(calls: impl Iterator<Item = F>) -> FanOut<F> {
        let calls: Vec<_> = calls.map(|c| Some(Box::pin(c))).collect();
        FanOut {
            left: calls.len(),
            calls,
        }
    }

    /// The next answer to come, `None` once every call has answered. Each
    /// call reports once (its answer, its timeout or its connection's
    /// close), so this ends.
    async fn next(&mut self) -> Option<(usize, Answer)> {
        if self.left == 0 {
            return None;
        }
        // A handful of calls: each wake-up polls those still out.
        poll_fn(|cx| {
            for (index, slot) in self.calls.iter_mut().enumerate() {
                let Some(call) = slot else { continue };
                if let Poll::Ready(answer) = call.as_mut().poll(cx) {
                    *slot = None;
                    self.left -= 1;
                    return Poll::Ready(Some((index, answer)));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// An asynchronous cluster call, polled once as it is made so that it is
/// sent then, as a connection's asynchronous call is: that first poll
/// chooses the provider and sends (to each provider, for a fan-out), and
/// the caller's polls do the rest. Futures made one after another and
/// awaited in turn are so in flight together, whichever invoker made them.
pub(super) enum SentNow<F: Future> {
    Waiting(Pin<Box<F>>),
    Done(Option<F::Output>),
}

// The output is only ever moved, never pinned; the call is boxed.
impl<F: Future> Unpin for SentNow<F> {}

impl<F: Future> SentNow<F> {
    pub(super) fn new(call: F) -> SentNow<F> {
        let mut call = Box::pin(call);
        match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => SentNow::Done(Some(out)),
            Poll::Pending => SentNow::Waiting(call),
        }
    }
}

impl<F: Future> Future for SentNow<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.get_mut() {
            SentNow::Waiting(call) => call.as_mut().poll(cx),
            SentNow::Done(out) => {
                Poll::Ready(out.take().expect("a call polled after it was ready"))
            }
        }
    }
}

/// A method's name owned by an asynchronous call: kept in the call's own
/// state when it is short (every name a service is likely to have), so
/// that holding it allocates nothing.
pub(super) enum MethodName {
    Inline { len: u8, bytes: [u8; INLINE_NAME] },
    Heap(Box<str>),
}

/// The longest name kept inline.
const INLINE_NAME: usize = 46;

impl MethodName {
    pub(super) fn new(name: &str) -> MethodName {
        if name.len() <= INLINE_NAME {
            let mut bytes = [0; INLINE_NAME];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            MethodName::Inline {
                len: name.len() as u8,
                bytes,
            }
        } else {
            MethodName::Heap(name.into())
        }
    }

    pub(super) fn as_str(&self) -> &str {
        match self {
            MethodName::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).expect("copied from a str")
            }
            MethodName::Heap(name) => name,
        }
    }
}

/// Runs `call` to its end on this thread, parking it while the call waits
/// for a fan-out's answers. Not for an event loop's thread (the callers
/// refuse it there first).
pub(super) fn block_on<F: Future>(call: F) -> F::Output {
    let mut call = pin!(call);
    // Most blocking calls end in their first poll (their attempts wait
    // where they are made): no waker is made for them.
    if let Poll::Ready(out) = call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        return out;
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match call.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            // A wake-up between the poll and the park is kept by the
            // thread's token: the park returns at once.
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Wakes a thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn block_on_returns_what_is_ready_at_once_and_waits_for_a_wake_up() {
        assert_eq!(block_on(async { 7 }), 7);
        // Pending twice, woken from another thread each time.
        let set = Arc::new(AtomicBool::new(false));
        let mut polls = 0;
        let got = block_on(poll_fn(|cx| {
            polls += 1;
            if set.swap(false, Ordering::AcqRel) && polls > 2 {
                return Poll::Ready(polls);
            }
            let (set, waker) = (set.clone(), cx.waker().clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(5));
                set.store(true, Ordering::Release);
                waker.wake();
            });
            Poll::Pending
        }));
        assert!(got >= 3, "{got}");
    }

    #[test]
    fn a_method_name_is_kept_whole_inline_or_not() {
        for name in ["", "add", &"m".repeat(INLINE_NAME), &"long".repeat(20)] {
            assert_eq!(MethodName::new(name).as_str(), name);
        }
        assert!(matches!(
            MethodName::new("quote"),
            MethodName::Inline { .. }
        ));
    }

    #[test]
    fn a_fan_out_gives_answers_in_the_order_they_come() {
        let (first, wait_first) = gyre_reactor::promise::PromisePool::<Answer>::new(4).promise();
        let (second, wait_second) = gyre_reactor::promise::PromisePool::<Answer>::new(4).promise();
        let waits = [wait_first, wait_second]
            .into_iter()
            .map(|w| async move { w.await.unwrap_or(Err(RpcError::Closed)) });
        let mut fan = FanOut::new(waits);
        let later = std::thread::spawn(move || {
            second.complete(Ok((Status::Ok, Bytes::from_static(b"2"))));
            std::thread::sleep(Duration::from_millis(20));
            drop(first);
        });
        let got = block_on(async {
            let mut got = Vec::new();
            while let Some((i, answer)) = fan.next().await {
                got.push((i, answer.is_ok()));
            }
            got
        });
        later.join().unwrap();
        assert_eq!(got, [(1, true), (0, false)]);
    }
}
