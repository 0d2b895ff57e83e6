//! The machine a bench runs on, printed as the first line of every bench's
//! output: CPU model, CPU count and kernel, which BENCHMARKS.md names with
//! every figure (a lead on one kind of host can be a loss on another).

/// `# host: <CPU model> (family <f> model <m> stepping <s>), <n> CPUs,
/// kernel <release>`.
///
/// A VM may name its CPU only by brand ("AMD EPYC"); the family and model
/// say which generation it is (family 25 model 1 is Zen 3), and two VMs of
/// one name can differ there.
pub fn describe() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    let cpu = field("model name").unwrap_or_else(|| "unknown CPU".into());
    let generation = match (field("cpu family"), field("model"), field("stepping")) {
        (Some(family), Some(model), Some(stepping)) => {
            format!(" (family {family} model {model} stepping {stepping})")
        }
        _ => String::new(),
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("# host: {cpu}{generation}, {cpus} CPUs, kernel {kernel}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_cpu_and_the_kernel() {
        let line = super::describe();
        assert!(line.starts_with("# host: "), "{line}");
        assert!(!line.contains("unknown CPU"), "{line}");
        assert!(line.contains(", kernel "), "{line}");
        #[cfg(target_arch = "x86_64")]
        assert!(line.contains(" (family "), "{line}");
    }
}
