//! The machine a bench runs on, printed as the first line of every bench's
//! output: CPU model, CPU count and kernel, which BENCHMARKS.md names with
//! every figure (a lead on one kind of host can be a loss on another).

/// `# host: <CPU model>, <n> CPUs, kernel <release>`.
pub fn describe() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|l| {
                let (key, value) = l.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("# host: {cpu}, {cpus} CPUs, kernel {kernel}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_cpu_and_the_kernel() {
        let line = super::describe();
        assert!(line.starts_with("# host: "), "{line}");
        assert!(!line.contains("unknown CPU"), "{line}");
        assert!(line.contains(", kernel "), "{line}");
    }
}
