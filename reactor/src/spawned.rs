//! The futures spawned on the loop this thread runs, held weakly, so that
//! the loop drops those still waiting as it stops: a future waiting on a
//! wake-up keeps its waker where it waits (a promise's slot, say), the
//! waker keeps the task, and the task keeps the future, a cycle only the
//! loop can cut. A thread-local list, since only the loop's thread adds to
//! it or drops from it. Uses only `std`.

use std::cell::RefCell;
use std::sync::Weak;

/// A future spawned on a loop, as the loop holds it (`loop_task`).
pub(crate) trait Spawned {
    /// Drops the future now, on the loop's thread, with no poll under way
    /// (the loop is stopping), unless it has finished.
    fn drop_future(&self);
}

/// Weak links, pruned when the list has doubled since the last pruning.
struct SpawnedList {
    tasks: Vec<Weak<dyn Spawned>>,
    prune_at: usize,
}

const FIRST_PRUNE: usize = 64;

thread_local! {
    static SPAWNED: RefCell<SpawnedList> = const {
        RefCell::new(SpawnedList { tasks: Vec::new(), prune_at: FIRST_PRUNE })
    };
}

/// Keeps `task`, spawned on the loop this thread runs, to drop its future
/// when the loop stops.
pub(crate) fn add(task: Weak<dyn Spawned>) {
    SPAWNED.with(|list| {
        let mut list = list.borrow_mut();
        if list.tasks.len() >= list.prune_at {
            list.tasks.retain(|t| t.strong_count() > 0);
            list.prune_at = (list.tasks.len() * 2).max(FIRST_PRUNE);
        }
        list.tasks.push(task);
    });
}

/// Drops the future of every task still alive that this thread's loop
/// spawned; the loop calls it as it stops. The list is taken first, so a
/// future whose drop spawns another does not find it borrowed.
pub(crate) fn drop_all() {
    let tasks = SPAWNED.with(|list| std::mem::take(&mut list.borrow_mut().tasks));
    for task in tasks {
        if let Some(task) = task.upgrade() {
            task.drop_future();
        }
    }
}
