//! The one door to the atomics the cross-thread protocols use.
//!
//! `std` in a normal build, `loom` under `RUSTFLAGS="--cfg loom"`, so
//! `gyre-loom-tests` model-checks the reactor's real mailbox, doorbell and
//! promise and wake-relay code (see [`crate::mailbox`], [`crate::promise`],
//! [`crate::wake_relay`]). Everything else in the reactor is owned by
//! one loop thread and needs no atomics at all.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering},
    Arc, Mutex, MutexGuard,
};

/// A cell whose every access goes through a closure, as loom's does, so
/// loom can check each access for a data race; in a normal build the
/// closure gets the raw pointer and costs nothing.
pub(crate) struct UnsafeCell<T>(
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        let cell = std::cell::UnsafeCell::new(value);
        #[cfg(loom)]
        let cell = loom::cell::UnsafeCell::new(value);
        UnsafeCell(cell)
    }

    /// `f` with a pointer for reading.
    ///
    /// # Safety
    /// No write to the value may overlap this call.
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.0.get());
        #[cfg(loom)]
        return self.0.with(f);
    }

    /// `f` with a pointer for writing.
    ///
    /// # Safety
    /// No other access to the value may overlap this call.
    pub(crate) unsafe fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        return f(self.0.get());
        #[cfg(loom)]
        return self.0.with_mut(f);
    }
}
