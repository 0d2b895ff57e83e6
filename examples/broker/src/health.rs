//! The broker's health: whether a thread the broker cannot serve without
//! (the log writer, the group coordinator) has failed.
//!
//! A broker whose writer has stopped would go on accepting connections
//! and answering metadata while every produce fails and every long poll
//! hangs; a supervisor watching the process would see nothing wrong. So a
//! failure is recorded here, once, and whoever runs the broker is told:
//! the binary stops at once, unclean (exit status 1, and the next start
//! checks every batch), as Kafka halts on a failure of its log; an
//! embedding program waits on [`BrokerHealth::wait_for_failure`] or asks
//! [`BrokerHealth::failure`]. Plain `std` synchronisation; uses nothing
//! else in the crate.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Whether the broker has failed, and why; cloned from
/// [`Broker::health`](crate::Broker::health).
///
/// ```no_run
/// use gyre_broker::{Broker, BrokerConfig};
/// use std::time::Duration;
///
/// let broker = Broker::start(&BrokerConfig::default())?;
/// let health = broker.health();
/// // Serve until one of the broker's own threads fails, then stop.
/// let why = health.wait_for_failure();
/// eprintln!("broker failed: {why}");
/// broker.shutdown(Duration::from_secs(10));
/// std::process::exit(1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct BrokerHealth {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    failure: Mutex<Option<String>>,
    failed: Condvar,
}

impl BrokerHealth {
    /// A healthy broker's.
    pub(crate) fn new() -> BrokerHealth {
        BrokerHealth::default()
    }

    /// Records `why` as the broker's failure (only the first is kept: the
    /// later ones are its consequences) and logs it.
    pub(crate) fn fail(&self, why: String) {
        tracing::error!("the broker cannot go on: {why}");
        let mut failure = self.inner.failure.lock().unwrap_or_else(|e| e.into_inner());
        if failure.is_none() {
            *failure = Some(why);
            self.inner.failed.notify_all();
        }
    }

    /// Why the broker failed, if it has.
    pub fn failure(&self) -> Option<String> {
        self.inner
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the broker fails, and says why.
    pub fn wait_for_failure(&self) -> String {
        let failure = self.inner.failure.lock().unwrap_or_else(|e| e.into_inner());
        let failure = self
            .inner
            .failed
            .wait_while(failure, |f| f.is_none())
            .unwrap_or_else(|e| e.into_inner());
        failure.clone().unwrap_or_default()
    }

    /// Waits at most `timeout` for the broker to fail: why it did, or
    /// `None` if it is still healthy.
    pub fn wait_for_failure_timeout(&self, timeout: Duration) -> Option<String> {
        let failure = self.inner.failure.lock().unwrap_or_else(|e| e.into_inner());
        let (failure, _) = self
            .inner
            .failed
            .wait_timeout_while(failure, timeout, |f| f.is_none())
            .unwrap_or_else(|e| e.into_inner());
        failure.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_kept_and_wakes_every_waiter() {
        let health = BrokerHealth::new();
        assert_eq!(health.failure(), None);
        assert_eq!(
            health.wait_for_failure_timeout(Duration::from_millis(10)),
            None
        );
        let waiter = {
            let health = health.clone();
            std::thread::spawn(move || health.wait_for_failure())
        };
        health.fail("the log writer panicked".into());
        health.fail("a consequence".into());
        assert_eq!(waiter.join().unwrap(), "the log writer panicked");
        assert_eq!(health.failure().as_deref(), Some("the log writer panicked"));
    }
}
