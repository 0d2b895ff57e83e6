//! The one door to the atomics the cross-thread protocols use.
//!
//! `std` in a normal build, `loom` under `RUSTFLAGS="--cfg loom"`, so
//! `gyre-loom-tests` model-checks the reactor's real mailbox and doorbell
//! code (see [`crate::mailbox`]). Everything else in the reactor is owned by
//! one loop thread and needs no atomics at all.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
