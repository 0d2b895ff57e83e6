//! Small measurement helpers: medians of repeated runs, rates, CPU time,
//! and the `ratio` lines every harness prints.

use crate::regime::Regime;
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

/// What [`interleaved_rates`] measured: each case's median, and each
/// sample with the placement regime it ran in.
#[derive(Debug, Clone)]
pub struct Rates {
    /// Each case's name and median rate over every round, Gyre's first.
    pub medians: Vec<(String, f64)>,
    /// Per case, each round's rate and its regime: `None` when the regime
    /// changed during the sample (measured before and after it).
    pub samples: Vec<Vec<(f64, Option<Regime>)>>,
}

impl Rates {
    /// Per regime, each case's median over the samples that ran wholly in
    /// it, with their count; a regime appears only if every case has a
    /// sample in it.
    pub fn by_regime(&self) -> Vec<(Regime, Vec<(f64, usize)>)> {
        [Regime::Near, Regime::Middle, Regime::Far]
            .into_iter()
            .filter_map(|regime| {
                let per_case: Vec<(f64, usize)> = self
                    .samples
                    .iter()
                    .map(|case| {
                        let mut rates: Vec<f64> = case
                            .iter()
                            .filter(|(_, r)| *r == Some(regime))
                            .map(|(rate, _)| *rate)
                            .collect();
                        let count = rates.len();
                        (if count == 0 { 0.0 } else { median(&mut rates) }, count)
                    })
                    .collect();
                per_case
                    .iter()
                    .all(|(_, count)| *count > 0)
                    .then_some((regime, per_case))
            })
            .collect()
    }

    /// Per peer (every case after Gyre's), the median over the rounds of
    /// Gyre's rate divided by the peer's in the same round.
    ///
    /// A ratio of medians can set Gyre's best placement against a peer's
    /// worst: the VM moves its vCPUs within seconds, and the median of each
    /// case may come from a different round. Within a round the cases run
    /// back to back, so the placement drift they share divides out.
    pub fn same_round_ratios(&self) -> Vec<f64> {
        let rates = |case: &[(f64, Option<Regime>)]| case.iter().map(|(rate, _)| *rate).collect();
        let gyre: Vec<f64> = rates(&self.samples[0]);
        self.samples[1..]
            .iter()
            .map(|peer| same_round_ratio(&gyre, &rates(peer)))
            .collect()
    }
}

/// The median over the rounds of `a`'s rate over `b`'s in the same round
/// (both indexed by round): see [`Rates::same_round_ratios`] for why.
pub fn same_round_ratio(a: &[f64], b: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
    median(&mut ratios)
}

/// Run each of `cases` `rounds` times, interleaved (so drift and thermal
/// effects hit every case alike), and return each case's median rate and
/// every sample tagged with its placement regime.
///
/// Each case first runs once unrecorded, on a quarter of `n`: the first run
/// of a process (and the first after a peer's JVM has started) was often
/// the slowest by 2x on our VMs, whichever case drew it. And each round
/// starts one case later than the one before, so no case always follows
/// the same one. The regime is measured between samples (a few
/// milliseconds each), so a sample's regime is known when the one before
/// it and the one after it agree.
pub fn interleaved_rates(
    rounds: usize,
    n: u64,
    cases: &[(&str, &dyn Fn(u64) -> Duration)],
) -> Rates {
    for (_, case) in cases {
        case((n / 4).max(1));
    }
    let mut samples: Vec<Vec<(f64, Option<Regime>)>> = vec![Vec::new(); cases.len()];
    let mut before = Regime::now();
    for round in 0..rounds {
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let rate = rate(n, (cases[i].1)(n));
            let after = Regime::now();
            samples[i].push((rate, (before == after).then_some(after)));
            before = after;
        }
    }
    let medians = cases
        .iter()
        .zip(&samples)
        .map(|((name, _), s)| {
            let mut rates: Vec<f64> = s.iter().map(|(rate, _)| *rate).collect();
            (name.to_string(), median(&mut rates))
        })
        .collect();
    Rates { medians, samples }
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
        println!("result {bench} {name} {}", show(*r, unit));
    }
    let gyre = rates[0].1;
    for (name, r) in &rates[1..] {
        println!("ratio {bench} gyre/{name} {:.2}", gyre / r);
    }
}

/// [`print_rates`] for the medians; then `ratio <bench>-same-round
/// gyre/<peer> <value>`, the median of each round's own ratio
/// ([`Rates::same_round_ratios`]); then, for each placement regime every
/// case ran in, the medians from those samples alone, as `result
/// <bench>@<regime> <case> <rate> (<k> samples)` and `ratio
/// <bench>@<regime> gyre/<peer> <value>`.
pub fn print_rates_by_regime(bench: &str, rates: &Rates, unit: Unit) {
    let medians = &rates.medians;
    print_rates(bench, medians, unit);
    print_same_round_ratios(bench, rates);
    for (regime, per_case) in rates.by_regime() {
        let at = format!("{bench}@{}", regime.name());
        for ((name, _), (r, count)) in medians.iter().zip(&per_case) {
            println!("result {at} {name} {} ({count} samples)", show(*r, unit));
        }
        for ((name, _), (r, _)) in medians.iter().zip(&per_case).skip(1) {
            println!("ratio {at} gyre/{name} {:.2}", per_case[0].0 / r);
        }
    }
}

/// One `ratio <bench>-same-round gyre/<peer> <value>` line per peer, from
/// [`Rates::same_round_ratios`].
pub fn print_same_round_ratios(bench: &str, rates: &Rates) {
    let peers = rates.medians.iter().skip(1);
    for ((name, _), ratio) in peers.zip(rates.same_round_ratios()) {
        println!("ratio {bench}-same-round gyre/{name} {ratio:.2}");
    }
}

fn show(rate: f64, unit: Unit) -> String {
    match unit {
        Unit::Events => format!("{:.1} Mevents/s", rate / 1e6),
        Unit::Bytes => format!("{:.2} GB/s", rate / 1e9),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_round_ratios_pair_each_round_with_itself() {
        // Gyre leads 2.5x in two rounds of three and trails in the other;
        // each case's median comes from a different round.
        let rates = Rates {
            medians: vec![("gyre".into(), 0.0), ("peer".into(), 0.0)],
            samples: vec![
                vec![(10.0, None), (100.0, None), (50.0, None)],
                vec![(60.0, None), (40.0, None), (20.0, None)],
            ],
        };
        assert_eq!(rates.same_round_ratios(), vec![2.5]);
        let mut gyre: Vec<f64> = rates.samples[0].iter().map(|s| s.0).collect();
        let mut peer: Vec<f64> = rates.samples[1].iter().map(|s| s.0).collect();
        assert_eq!(median(&mut gyre) / median(&mut peer), 1.25);
    }

    #[test]
    fn a_regime_counts_only_its_own_samples_and_needs_every_case() {
        let rates = Rates {
            medians: vec![("gyre".into(), 0.0), ("peer".into(), 0.0)],
            samples: vec![
                vec![
                    (10.0, Some(Regime::Middle)),
                    (30.0, Some(Regime::Middle)),
                    (50.0, None),
                    (5.0, Some(Regime::Far)),
                ],
                vec![(20.0, Some(Regime::Middle)), (1.0, None)],
            ],
        };
        let by_regime = rates.by_regime();
        assert_eq!(by_regime.len(), 1, "far lacks the peer, near has nobody");
        let (regime, per_case) = &by_regime[0];
        assert_eq!(*regime, Regime::Middle);
        assert_eq!(per_case, &vec![(20.0, 2), (20.0, 1)]);
    }
}
