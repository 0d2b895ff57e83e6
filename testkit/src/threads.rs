//! Threads and processes as the kernel accounts for them, read from
//! `/proc`: which of this process's threads carry a name, how much CPU
//! time a thread or a process has used, how often it slept, and how much
//! it has read from storage. The busy-poll tests tell a loop that polls from one that
//! sleeps this way, and the cold-file tests a loop that waited on the disk
//! from one that did not. Uses only `std`; Linux only.

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

/// The user plus system CPU time, in clock ticks (10 ms each at the usual
/// 100 Hz), of the process or thread whose `/proc` directory `dir` is
/// (`/proc/<pid>`, or one from [`threads_named`]); `None` once it is gone.
///
/// ```
/// let me = gyre_testkit::threads_named("")
///     .into_iter()
///     .next()
///     .unwrap();
/// let before = gyre_testkit::cpu_ticks(&me).unwrap();
/// assert!(gyre_testkit::cpu_ticks(&me).unwrap() >= before);
/// assert!(gyre_testkit::cpu_ticks(std::path::Path::new("/proc/self")).is_some());
/// ```
pub fn cpu_ticks(dir: &Path) -> Option<u64> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // The name, in parentheses, may hold spaces: count fields after it.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
    // After the name, state is field 3; utime and stime are fields 14 and 15.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

/// How many times the thread (or process) whose `/proc` directory `dir`
/// is has gone to sleep and been woken (`voluntary_ctxt_switches` of its
/// `status`): a loop that polls on a timer counts up while idle, one that
/// sleeps until it is woken does not. `None` once it is gone.
///
/// ```
/// let me = std::path::Path::new("/proc/thread-self");
/// let before = gyre_testkit::sleeps(me).unwrap();
/// std::thread::sleep(std::time::Duration::from_millis(1));
/// assert!(gyre_testkit::sleeps(me).unwrap() > before);
/// ```
pub fn sleeps(dir: &Path) -> Option<u64> {
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bytes the process or thread whose `/proc` directory `dir` is has
/// had read from storage for it (`read_bytes` of its `io`: reads it
/// started, page-cache hits not counted); `None` without the kernel's I/O
/// accounting or once it is gone.
///
/// ```
/// let me = std::path::Path::new("/proc/self");
/// if let Some(before) = gyre_testkit::storage_read_bytes(me) {
///     assert!(gyre_testkit::storage_read_bytes(me).unwrap() >= before);
/// }
/// ```
pub fn storage_read_bytes(dir: &Path) -> Option<u64> {
    let io = std::fs::read_to_string(dir.join("io")).ok()?;
    let line = io.lines().find(|l| l.starts_with("read_bytes:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bytes read from storage for all of this process's threads whose
/// name starts with `prefix` ([`threads_named`], [`storage_read_bytes`];
/// a thread the kernel cannot say about counts 0).
///
/// ```
/// let before = gyre_testkit::storage_read_bytes_of_threads("testkit-none");
/// assert_eq!(before, 0, "no such threads");
/// ```
pub fn storage_read_bytes_of_threads(prefix: &str) -> u64 {
    threads_named(prefix)
        .iter()
        .filter_map(|t| storage_read_bytes(t))
        .sum()
}
