//! CPU time of the server's threads, read from `/proc/self/task`, so the
//! harness can report what each message costs the server, apart from the
//! load generator that shares the machine.

use std::time::Duration;

/// User + system time of every thread of this process whose name starts
/// with `prefix`.
pub fn threads_cpu(prefix: &str) -> Duration {
    // SAFETY: sysconf has no memory arguments.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let total: u64 = gyre_testkit::threads_named(prefix)
        .iter()
        .filter_map(|task| gyre_testkit::cpu_ticks(task))
        .sum();
    Duration::from_nanos(total * 1_000_000_000 / ticks)
}
