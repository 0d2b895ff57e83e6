//! `pin_to_cores`: each loop thread is restricted to one CPU of the
//! process's allowed set, loop `i` to the `i`-th (wrapping), as the kernel
//! reports in `/proc/self/task/<tid>/status`.

mod common;

use common::{thread_dir, transport};
use gyre_reactor::EventLoopGroup;
use std::time::Duration;

/// The `Cpus_allowed_list` line of a `status` file under `/proc`.
fn cpus_allowed_list(status: std::path::PathBuf) -> String {
    std::fs::read_to_string(status)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

/// `Cpus_allowed_list` of the thread named `name`.
fn allowed_cpus_of(name: &str) -> String {
    cpus_allowed_list(thread_dir(name).join("status"))
}

/// The CPUs this process may use, as the kernel lists them for it.
fn process_cpus() -> Vec<usize> {
    let list = cpus_allowed_list("/proc/self/status".into());
    list.split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<usize>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

#[test]
fn each_pinned_loop_runs_on_its_own_cpu() {
    let cpus = process_cpus();
    let loops = cpus.len() + 1;
    let group = EventLoopGroup::builder()
        .threads(loops)
        .name("pinned")
        .transport(transport())
        .pin_to_cores(true)
        .build()
        .unwrap();
    for i in 0..loops {
        assert_eq!(
            allowed_cpus_of(&format!("pinned-{i}")),
            cpus[i % cpus.len()].to_string(),
            "loop {i}"
        );
    }
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}

#[test]
fn unpinned_loops_may_run_anywhere_the_process_may() {
    let group = EventLoopGroup::builder()
        .threads(1)
        .name("free")
        .transport(transport())
        .build()
        .unwrap();
    assert_eq!(
        allowed_cpus_of("free-0"),
        cpus_allowed_list("/proc/self/status".into())
    );
    group.shutdown_gracefully(Duration::ZERO, Duration::from_secs(5));
}
