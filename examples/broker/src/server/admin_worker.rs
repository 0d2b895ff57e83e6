//! The broker's admin worker: one thread that does the work of the admin
//! requests that write and sync a file (SCRAM credentials, ACLs, client
//! quotas), so no event loop waits on the disk. Uses `std` only; the
//! connection hands it a job that answers through the channel's handle.
//!
//! One thread for the broker, not one per request: these writes share a
//! file each and take its lock in turn anyway (Kafka likewise applies them
//! one at a time), and a thread per request let a client pipelining admin
//! requests over many connections start as many threads as it had
//! requests in flight (128 a connection). Their queue is bounded by the
//! same count: a connection reads no more once that many answers are
//! owed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Sender};

/// One admin request's work: it answers its connection itself.
type Job = Box<dyn FnOnce() + Send>;

/// The handle to the admin thread; the thread ends when the last handle
/// (and with it the broker's shared state) is dropped and its queue is
/// done.
#[derive(Debug)]
pub(crate) struct AdminWorker {
    jobs: Sender<Job>,
}

impl AdminWorker {
    /// Starts the thread.
    pub(crate) fn start() -> std::io::Result<AdminWorker> {
        let (jobs, queue) = channel::<Job>();
        std::thread::Builder::new()
            .name("gyre-broker-admin".into())
            .spawn(move || {
                for job in queue {
                    // A job answers even when its work panics (it closes
                    // its connection); this guards the thread against a
                    // panic in the answering itself.
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(job)) {
                        tracing::error!(
                            "an admin job panicked: {}",
                            gyre_ringbuffer::panic_message(&*panic)
                        );
                    }
                }
            })?;
        Ok(AdminWorker { jobs })
    }

    /// Queues `job`: false (and `job` dropped) if the thread has ended,
    /// which it does only with the broker.
    pub(crate) fn submit(&self, job: impl FnOnce() + Send + 'static) -> bool {
        self.jobs.send(Box::new(job)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn jobs_run_in_order_on_one_thread_and_a_panic_does_not_end_it() {
        let worker = AdminWorker::start().unwrap();
        let (done, results) = mpsc::channel();
        for i in 0..3 {
            let done = done.clone();
            assert!(worker.submit(move || {
                let name = std::thread::current().name().map(str::to_owned);
                done.send((i, name)).unwrap();
            }));
            if i == 1 {
                assert!(worker.submit(|| panic!("an admin job's bug")));
            }
        }
        let got: Vec<_> = (0..3)
            .map(|_| results.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        let admin = Some("gyre-broker-admin".to_owned());
        assert_eq!(
            got,
            vec![(0, admin.clone()), (1, admin.clone()), (2, admin)],
            "in order, on the admin thread, the job after the panic too"
        );
    }
}
