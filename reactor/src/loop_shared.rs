//! What other threads share with a loop: the waker that rouses it, the
//! doorbell that rings it at most once per sleep, the inbox of channels
//! whose mailboxes have news, the queue of tasks for the loop itself
//! (generic here, so this knows nothing of the loop's state), and the
//! loop's epoll registry. Uses the mailbox's doorbell and mio's waker and
//! registry.

use crate::error::Error;
use crate::mailbox::Doorbell;
use crate::transport::Transport;
use crossbeam_queue::SegQueue;
use mio::{Token, Waker};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// How other threads wake a sleeping loop.
pub(crate) enum Wake {
    /// epoll: mio's waker.
    Mio(Waker),
    /// io_uring: an eventfd the ring keeps a read pending on.
    #[cfg(feature = "io-uring")]
    EventFd(std::os::fd::OwnedFd),
}

impl Wake {
    fn wake(&self) -> io::Result<()> {
        match self {
            Wake::Mio(w) => w.wake(),
            #[cfg(feature = "io-uring")]
            Wake::EventFd(fd) => crate::eventfd::signal(fd),
        }
    }
}

/// What other threads share with a loop.
pub(crate) struct LoopShared<T> {
    pub(crate) waker: Wake,
    pub(crate) doorbell: Doorbell,
    /// Channels whose handles' mailboxes have news.
    pub(crate) inbox: SegQueue<Token>,
    /// Work for the loop itself (its own type: the loop's state).
    pub(crate) tasks: SegQueue<T>,
    pub(crate) alive: AtomicBool,
    pub(crate) index: usize,
    pub(crate) transport: Transport,
    /// The loop's epoll registry (a descriptor of its own for the same
    /// epoll, so it lives as long as this does): the holder of a
    /// channel's input turns the channel's readable registration off and
    /// on through it (`crate::lend`). `None` on io_uring.
    pub(crate) registry: Option<mio::Registry>,
}

impl<T> LoopShared<T> {
    pub(crate) fn notify_channel(&self, token: Token) {
        self.inbox.push(token);
        self.ring();
    }

    /// Wakes the loop for what was just queued in its inbox or tasks,
    /// unless the loop's own thread queued it: that thread is awake, and
    /// the loop looks at both queues before it sleeps again (the poll's
    /// timeout is zero while either holds anything), which the push, made
    /// earlier on the same thread, is seen by. So a loop answering on its
    /// own channels (a future's answer, a handle used by a handler) makes
    /// no system call to wake itself, and leaves the doorbell to other
    /// threads.
    pub(crate) fn ring(&self) {
        if crate::loop_thread::runs(self.id()) {
            return;
        }
        self.doorbell.ring(|| {
            if let Err(e) = self.waker.wake() {
                tracing::error!(error = %e, "failed to wake event loop");
            }
        });
    }

    /// Called by the loop when it is about to sleep: answers the doorbell,
    /// then looks at the queues once more; whether it may sleep (nothing
    /// is queued). Until the answer the bell stayed rung, so threads
    /// queuing work for an awake loop (busy with a burst, or turning
    /// without sleeping) made no system call to wake it; from the answer
    /// on, the next one does. A push whose ring came before the answer is
    /// seen by the look (the mailbox module's argument: the swaps on the
    /// bell are ordered, and the answer's read of `true` synchronises with
    /// that ring), so nothing waits for a wake-up that was spared.
    pub(crate) fn may_sleep(&self) -> bool {
        self.doorbell.answer();
        !self.has_queued()
    }

    /// Whether tasks or channels' news wait in the loop's queues.
    pub(crate) fn has_queued(&self) -> bool {
        !self.tasks.is_empty() || !self.inbox.is_empty()
    }

    /// The address that names this loop to its thread
    /// (`crate::loop_thread`): where this shared state lives, for as long
    /// as the loop does.
    pub(crate) fn id(&self) -> usize {
        self as *const Self as usize
    }

    pub(crate) fn execute(&self, task: T) -> Result<(), Error> {
        if !self.alive.load(Ordering::Acquire) {
            return Err(Error::LoopShutDown);
        }
        self.tasks.push(task);
        self.ring();
        Ok(())
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::EventLoopGroup;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Work a loop's own thread queues for that loop costs no wake-up,
    /// and still runs at once: the loop looks at its queues before it
    /// sleeps (without that look, the test waits for good).
    #[test]
    fn a_loop_queuing_for_itself_does_not_wake_itself() {
        let group = EventLoopGroup::new(1).unwrap();
        let lp = group.next();
        let (tx, rx) = mpsc::channel();
        let (here, shared) = (lp.clone(), lp.shared.clone());
        lp.execute(move || {
            // As if the loop had been woken by a socket rather than the
            // bell, which this task's queuing rang: the bell is answered.
            shared.doorbell.answer();
            let before = shared.doorbell.wakes();
            for n in 0..3 {
                let tx = tx.clone();
                here.execute(move || tx.send(n).unwrap()).unwrap();
            }
            tx.send(100 + shared.doorbell.wakes() - before).unwrap();
        })
        .unwrap();
        let got: Vec<usize> = (0..4)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(5))
                    .expect("the loop ran its own tasks")
            })
            .collect();
        assert_eq!(got, [100, 0, 1, 2], "no wake-up, and every task in order");
        group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    }

    /// A loop that is awake (here, busy with a long task) is not woken by
    /// work queued meanwhile from other threads: the bell stays rung until
    /// the loop is about to sleep. The work runs after the busy task.
    #[test]
    fn an_awake_loop_is_not_woken() {
        let group = EventLoopGroup::new(1).unwrap();
        let lp = group.next();
        let shared = lp.shared.clone();
        let (started_tx, started) = mpsc::channel();
        let (finish, finish_rx) = mpsc::channel::<()>();
        lp.execute(move || {
            started_tx.send(()).unwrap();
            // Busy until told (a test's stand-in for a long burst).
            finish_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        })
        .unwrap();
        started.recv().unwrap();
        let before = shared.doorbell.wakes();
        let (tx, rx) = mpsc::channel();
        for n in 0..100 {
            let tx = tx.clone();
            lp.execute(move || tx.send(n).unwrap()).unwrap();
        }
        let woken = shared.doorbell.wakes() - before;
        finish.send(()).unwrap();
        let got: Vec<i32> = (0..100)
            .map(|_| {
                rx.recv_timeout(Duration::from_secs(5))
                    .expect("queued work ran")
            })
            .collect();
        assert_eq!(woken, 0, "an awake loop was woken");
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(1));
    }
}
