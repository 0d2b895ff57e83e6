//! This process's threads as the kernel accounts for them, read from
//! `/proc/self/task`: which threads carry a name, and how much CPU time
//! one has used. The busy-poll tests tell a loop that polls from one that
//! sleeps this way. Uses only `std`; Linux only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The `/proc/self/task/<tid>` directories of this process's threads whose
/// name starts with `prefix` (the kernel keeps the first 15 bytes of a
/// thread's name).
///
/// ```
/// let me = std::thread::Builder::new()
///     .name("testkit-doc".into())
///     .spawn(|| gyre_testkit::threads_named("testkit-doc").len())
///     .unwrap();
/// assert_eq!(me.join().unwrap(), 1);
/// ```
pub fn threads_named(prefix: &str) -> BTreeSet<PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .map(|t| t.path())
        .filter(|p| {
            std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim_end().starts_with(prefix))
        })
        .collect()
}

/// The user plus system CPU time the thread at `task` (a directory from
/// [`threads_named`]) has used, in clock ticks (10 ms each at the usual
/// 100 Hz).
///
/// ```
/// let me = gyre_testkit::threads_named("")
///     .into_iter()
///     .next()
///     .unwrap();
/// let before = gyre_testkit::thread_cpu_ticks(&me);
/// assert!(gyre_testkit::thread_cpu_ticks(&me) >= before);
/// ```
pub fn thread_cpu_ticks(task: &Path) -> u64 {
    let stat = std::fs::read_to_string(task.join("stat")).expect("task stat");
    // The name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("task stat name") + 2..]
        .split_whitespace()
        .collect();
    // After the name, state is field 3; utime and stime are fields 14 and 15.
    let field = |n: usize| fields[n - 3].parse::<u64>().expect("a tick count");
    field(14) + field(15)
}
