//! Loom models of every lock-free protocol in the Gyre workspace.
//!
//! The models live in `tests/` and compile only under `--cfg loom`, where
//! `gyre-ringbuffer`'s `sync` module swaps every atomic, cell, lock and thread
//! for loom's: they check the crate's real code, never a copy of it.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release -p gyre-loom-tests
//! ```
//!
//! `LOOM_MAX_PREEMPTIONS` bounds how many forced context switches loom tries
//! per execution; `model` defaults it to 2 so the whole suite finishes in
//! minutes on two cores. Raise it for a deeper (much slower) search.

#[cfg(loom)]
pub mod event_loop;

/// Run `f` under loom's model checker, bounding preemptions (default 2,
/// overridable with `LOOM_MAX_PREEMPTIONS`).
#[cfg(loom)]
pub fn model<F>(f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    // Pollers and full-ring producers retry with a yield; each retry is a
    // branch, so allow more than loom's default of 1,000 per execution.
    builder.max_branches = std::env::var("GYRE_LOOM_MAX_BRANCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    builder.check(f);
}
