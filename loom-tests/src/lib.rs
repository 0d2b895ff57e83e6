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
//! per execution; [`model`] defaults it to 2 so the whole suite finishes in
//! minutes on two cores. Raise it for a deeper (much slower) search.

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
    builder.check(f);
}
