//! The one door to atomics, cells, locks and threads.
//!
//! Every shared-memory primitive the crate uses comes from here: `std` in a
//! normal build, `loom` when built with `RUSTFLAGS="--cfg loom"`. That is what
//! lets `gyre-loom-tests` model-check the crate's real code rather than a copy
//! of it. Nothing outside this module names `std::sync::atomic`, `std::cell`
//! or `std::thread` directly for shared state.

#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicI32, AtomicI64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicI32, AtomicI64, AtomicUsize, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};

/// Hint that we are spinning. Under loom a spin must yield, or the model
/// would explore an unbounded loop.
#[inline(always)]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Give up the rest of this thread's time slice.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(not(loom))]
    std::thread::yield_now();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Sleep for `d`; under loom a sleep is a yield (loom has no clock).
#[inline]
pub(crate) fn sleep(d: std::time::Duration) {
    #[cfg(not(loom))]
    std::thread::sleep(d);
    #[cfg(loom)]
    {
        let _ = d;
        loom::thread::yield_now();
    }
}

/// Wait on `cv` for at most `timeout`. Loom has no clock, so under loom this
/// is a plain wait: a timeout that never fires is one of the executions a real
/// clock allows, so the model stays sound.
pub(crate) fn wait_timeout<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: std::time::Duration,
) -> MutexGuard<'a, T> {
    #[cfg(not(loom))]
    {
        cv.wait_timeout(guard, timeout)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
    }
    #[cfg(loom)]
    {
        let _ = timeout;
        cv.wait(guard).unwrap()
    }
}

/// Lock `m`, ignoring poison: the data behind our mutexes is `()`, so a
/// panic while holding one leaves nothing inconsistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
}

/// Wait on `cv`, ignoring poison (see [`lock`]).
pub(crate) fn wait<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    #[cfg(not(loom))]
    {
        cv.wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    #[cfg(loom)]
    {
        cv.wait(guard).unwrap()
    }
}

/// An `UnsafeCell` with loom's closure-based access API, so that loom can
/// check every slot access for data races.
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(
    #[cfg(not(loom))] std::cell::UnsafeCell<T>,
    #[cfg(loom)] loom::cell::UnsafeCell<T>,
);

impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        {
            Self(std::cell::UnsafeCell::new(value))
        }
        #[cfg(loom)]
        {
            Self(loom::cell::UnsafeCell::new(value))
        }
    }

    /// Run `f` with a shared pointer to the value.
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(loom))]
        {
            f(self.0.get())
        }
        #[cfg(loom)]
        {
            self.0.with(f)
        }
    }

    /// Run `f` with an exclusive pointer to the value.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        {
            f(self.0.get())
        }
        #[cfg(loom)]
        {
            self.0.with_mut(f)
        }
    }
}

/// Spawn a named thread.
pub(crate) fn spawn<F>(name: String, f: F) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    #[cfg(not(loom))]
    {
        std::thread::Builder::new().name(name).spawn(f)
    }
    #[cfg(loom)]
    {
        loom::thread::Builder::new().name(name).spawn(f)
    }
}

#[cfg(not(loom))]
pub(crate) use std::thread::JoinHandle;

#[cfg(loom)]
pub(crate) use loom::thread::JoinHandle;
