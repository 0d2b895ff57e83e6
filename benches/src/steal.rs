//! How much CPU the hypervisor kept from this VM while a bench ran: the
//! `steal` column of `/proc/stat`, the time a vCPU wanted to run and the
//! host ran someone else. Plain std; Linux only (elsewhere it reads
//! nothing and says so).
//!
//! Our VMs share their hosts. When the neighbours are busy, steal on the
//! Zen 4 VM rises to 20-45% for seconds at a time, and a case run then
//! measures how much CPU the host handed out rather than how fast the code
//! is. It does not hit every framework alike: gyre-rpc with 64 calls in
//! flight spreads its work over both vCPUs (about 1.4 cores, against
//! tarpc's 0.9), so when the host takes CPU away its lead falls towards
//! its CPU-per-call advantage alone (BENCHMARKS.md, issue 22, twenty-second
//! session: 1.8-2.7x tarpc's calls/s in one-second runs with under 10%
//! steal, 0.27-0.92x at 33-47%). Every bench prints
//! the run's steal on its last line, and the RPC bench each round's, so a
//! figure is read with the host's conditions beside it.

/// The steal and total CPU time counters at one moment (jiffies, all
/// CPUs).
#[derive(Clone, Copy, Debug)]
pub struct StealClock {
    steal: u64,
    total: u64,
}

/// The first line of `/proc/stat` (`cpu  user nice system idle iowait irq
/// softirq steal ...`): steal and the sum of every column.
fn read() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let columns: Vec<u64> = line
        .split_whitespace()
        .map(|c| c.parse().ok())
        .collect::<Option<_>>()?;
    // guest and guest_nice (columns 9 and 10) are already counted in user
    // and nice.
    let total = columns.iter().take(8).sum();
    Some((*columns.get(7)?, total))
}

impl StealClock {
    /// Starts counting now.
    pub fn start() -> StealClock {
        let (steal, total) = read().unwrap_or((0, 0));
        StealClock { steal, total }
    }

    /// The share of the VM's CPU time the host took since [`start`]
    /// (percent), or `None` where the kernel does not say (not Linux, or
    /// too short a span to have ticked).
    ///
    /// [`start`]: StealClock::start
    pub fn percent(&self) -> Option<f64> {
        let (steal, total) = read()?;
        let elapsed = total.checked_sub(self.total).filter(|&t| t > 0)?;
        Some(100.0 * steal.saturating_sub(self.steal) as f64 / elapsed as f64)
    }

    /// `# steal: <x>% of the VM's CPU time went to other guests` (the
    /// span since [`start`]), for a bench's last line.
    ///
    /// [`start`]: StealClock::start
    pub fn line(&self) -> String {
        match self.percent() {
            Some(p) => format!("# steal: {p:.1}% of the VM's CPU time went to other guests"),
            None => "# steal: not reported by this kernel".to_owned(),
        }
    }
}

/// Prints the steal of its lifetime ([`StealClock::line`]) when dropped:
/// made right after a bench prints its host line and dropped last, at the
/// end of `main`, it puts the run's steal on the bench's last line.
#[derive(Debug)]
pub struct RunSteal(StealClock);

impl RunSteal {
    /// Starts counting now.
    pub fn start() -> RunSteal {
        RunSteal(StealClock::start())
    }
}

impl Drop for RunSteal {
    fn drop(&mut self) {
        println!("{}", self.0.line());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_share_between_none_and_all() {
        let clock = StealClock::start();
        // Enough CPU time for the counters to tick (every 10 ms per CPU).
        let until = std::time::Instant::now() + std::time::Duration::from_millis(50);
        let mut spins = 0u64;
        while std::time::Instant::now() < until {
            spins = std::hint::black_box(spins + 1);
        }
        let p = clock.percent().expect("Linux reports steal");
        assert!((0.0..=100.0).contains(&p), "{p}");
        assert!(clock.line().starts_with("# steal: "), "{}", clock.line());
    }
}
