//! The machine a bench runs on, printed as the first line of every bench's
//! output: CPU model, CPU count, kernel and idle driver, which
//! BENCHMARKS.md names with every figure (a lead on one kind of host can
//! be a loss on another).

/// `# host: <CPU model> (family <f> model <m> stepping <s>), <n> CPUs,
/// kernel <release>, idle <driver>` (for the guest halt-poll driver, with
/// its window: `idle haltpoll, polls 0 ns`).
///
/// A VM may name its CPU only by brand ("AMD EPYC"); the family and model
/// say which generation it is (family 25 model 1 is Zen 3), and two VMs of
/// one name can differ there. The idle driver says what waking an idle
/// vCPU costs: a guest that halts at once (a halt-poll window of 0) pays
/// the hypervisor's wake-up each time, tens of microseconds on our VMs,
/// which sets the pace of every one-call-at-a-time case.
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
    format!(
        "# host: {cpu}{generation}, {cpus} CPUs, kernel {kernel}{}",
        idle()
    )
}

/// `, idle <driver>`, with the halt-poll window where the driver has one;
/// empty where the kernel says nothing.
fn idle() -> String {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    let Some(driver) = read("/sys/devices/system/cpu/cpuidle/current_driver") else {
        return String::new();
    };
    match read("/sys/module/haltpoll/parameters/guest_halt_poll_ns") {
        Some(ns) if driver == "haltpoll" => format!(", idle {driver}, polls {ns} ns"),
        _ => format!(", idle {driver}"),
    }
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
        if std::path::Path::new("/sys/devices/system/cpu/cpuidle/current_driver").exists() {
            assert!(line.contains(", idle "), "{line}");
        }
    }
}
