//! The tasks a loop runs on its timer wheel (`EventLoop::schedule` and
//! `schedule_at_fixed_rate`): their bodies by key, and their cancellation
//! flags. Plain data; the loop schedules the timers that name the keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A task body: run once, or at every period.
pub(crate) enum TaskFn {
    Once(Box<dyn FnOnce() + Send>),
    Repeat(Box<dyn FnMut() + Send>),
}

/// The scheduled tasks of one loop, by the key their timer carries.
#[derive(Default)]
pub(crate) struct TaskTable {
    tasks: HashMap<u64, (TaskFn, Arc<AtomicBool>)>,
    next: u64,
}

impl TaskTable {
    /// Keeps `f` until its timer fires; returns the key the timer carries.
    pub(crate) fn insert(&mut self, f: TaskFn, cancelled: Arc<AtomicBool>) -> u64 {
        let key = self.next;
        self.next += 1;
        self.tasks.insert(key, (f, cancelled));
        key
    }

    /// Runs task `key` whose timer fired. False if it is gone or cancelled:
    /// its timer must be cancelled too (a repeating timer would fire on).
    pub(crate) fn run(&mut self, key: u64) -> bool {
        let Some((f, cancelled)) = self.tasks.remove(&key) else {
            return false;
        };
        if cancelled.load(Ordering::Acquire) {
            return false;
        }
        match f {
            TaskFn::Once(f) => f(),
            TaskFn::Repeat(mut f) => {
                f();
                self.tasks.insert(key, (TaskFn::Repeat(f), cancelled));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn once_runs_once_repeat_runs_until_cancelled() {
        let mut table = TaskTable::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (r1, r2) = (runs.clone(), runs.clone());
        let once = table.insert(
            TaskFn::Once(Box::new(move || {
                r1.fetch_add(1, Ordering::Relaxed);
            })),
            Arc::default(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let repeat = table.insert(
            TaskFn::Repeat(Box::new(move || {
                r2.fetch_add(10, Ordering::Relaxed);
            })),
            stop.clone(),
        );
        assert!(table.run(once));
        assert!(!table.run(once), "a one-shot task is gone after it ran");
        assert!(table.run(repeat) && table.run(repeat));
        stop.store(true, Ordering::Release);
        assert!(!table.run(repeat), "a cancelled task does not run");
        assert_eq!(runs.load(Ordering::Relaxed), 21);
    }
}
