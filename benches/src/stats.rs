//! Small measurement helpers: medians of repeated runs, rates, CPU time,
//! and the `ratio` lines every harness prints.

use std::time::Duration;

/// Events per second for `n` events in `elapsed`.
pub fn rate(n: u64, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// The median of `samples` (sorted in place).
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2.0
    }
}

/// Run each of `cases` `rounds` times, interleaved (so drift and thermal
/// effects hit every case alike), and return each case's median rate.
///
/// Each case first runs once unrecorded, on a quarter of `n`: the first run
/// of a process (and the first after a peer's JVM has started) was often
/// the slowest by 2x on our VMs, whichever case drew it. And each round
/// starts one case later than the one before, so no case always follows
/// the same one.
pub fn interleaved_rates(
    rounds: usize,
    n: u64,
    cases: &[(&str, &dyn Fn(u64) -> Duration)],
) -> Vec<(String, f64)> {
    for (_, case) in cases {
        case((n / 4).max(1));
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            samples[i].push(rate(n, (cases[i].1)(n)));
        }
    }
    cases
        .iter()
        .zip(samples.iter_mut())
        .map(|((name, _), s)| (name.to_string(), median(s)))
        .collect()
}

/// What a rate counts, for printing.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    /// Events per second, printed in millions.
    Events,
    /// Bytes per second, printed in GB/s.
    Bytes,
}

/// Print one `result` line per case and one `ratio` line per peer, the
/// first case being Gyre's.
pub fn print_rates(bench: &str, rates: &[(String, f64)], unit: Unit) {
    for (name, r) in rates {
        match unit {
            Unit::Events => println!("result {bench} {name} {:.1} Mevents/s", r / 1e6),
            Unit::Bytes => println!("result {bench} {name} {:.2} GB/s", r / 1e9),
        }
    }
    let gyre = rates[0].1;
    for (name, r) in &rates[1..] {
        println!("ratio {bench} gyre/{name} {:.2}", gyre / r);
    }
}

/// CPU time (user + system) this process has used so far.
pub fn process_cpu_time() -> Duration {
    rusage_cpu(libc::RUSAGE_SELF)
}

/// CPU time (user + system) the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    rusage_cpu(libc::RUSAGE_THREAD)
}

fn rusage_cpu(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct we pass, which is plain data
    // and valid when zeroed; both `who` values we pass are valid on Linux.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
