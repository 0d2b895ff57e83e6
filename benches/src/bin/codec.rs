//! The codec harness: Gyre's frame decoders against tokio-util's, on the
//! same 64 MiB input fed in 64 KiB reads, in one run.
//!
//! ```text
//! cargo run --release -p gyre-benches --bin codec -- --quick   # < 60 s
//! ```
//!
//! Prints `result <bench> <impl> <GB/s>` and `ratio <bench> gyre/<peer>
//! <value>` lines (above 1: Gyre faster). The line case also runs the floor
//! (`codec::floor_lines`, a decoder told every line's length, so it never
//! searches): `floor/<peer>` is the most any decoder returning `Bytes` could
//! show, and `gyre/floor` what gyre's search costs. It runs the scan floor
//! too (`codec::scan_floor_lines`, the floor plus one vector pass over
//! every byte): `gyre/scan-floor` is what the search costs beyond reading
//! the bytes at all, which on some hosts is most of `gyre/floor`. Each
//! `gyre/<peer>` ratio also comes as `<bench>-same-round`, the median of
//! each round's own ratio (the cases of a round run back to back).

use clap::Parser;
use gyre_benches::codec::{self, Case, Decoded};
use gyre_benches::stats::{median, print_rates, print_same_round_ratios, Rates, Unit};

#[derive(Parser)]
#[command(about = "Gyre's codecs against tokio-util's, side by side")]
struct Args {
    /// Fewer rounds: the whole run takes well under a minute.
    #[arg(long)]
    quick: bool,
}

/// Run the cases interleaved, `rounds` times, check they decoded the same
/// frames, and print the median rates.
fn compare(bench: &str, input: &[u8], rounds: usize, cases: &[(&str, Case)]) {
    let mut samples = vec![Vec::new(); cases.len()];
    let mut reference: Option<Decoded> = None;
    for _ in 0..rounds {
        for (i, (name, case)) in cases.iter().enumerate() {
            let (elapsed, decoded) = case(input);
            match reference {
                None => reference = Some(decoded),
                Some(r) => assert_eq!(r, decoded, "{bench}: {name} decoded different frames"),
            }
            samples[i].push(input.len() as f64 / elapsed.as_secs_f64());
        }
    }
    let rates: Vec<(String, f64)> = cases
        .iter()
        .zip(&samples)
        .map(|((name, _), s)| (name.to_string(), median(&mut s.clone())))
        .collect();
    print_rates(bench, &rates, Unit::Bytes);
    let rounds = Rates {
        medians: rates.clone(),
        samples: samples
            .into_iter()
            .map(|s| s.into_iter().map(|rate| (rate, None)).collect())
            .collect(),
    };
    print_same_round_ratios(bench, &rounds);
    // The floor is a ruler: how far above each peer any decoder could be.
    if let Some(&(_, floor)) = rates.iter().find(|(name, _)| name == "floor") {
        for (name, rate) in &rates[1..] {
            if !name.ends_with("floor") {
                println!("ratio {bench} floor/{name} {:.2}", floor / rate);
            }
        }
    }
}

fn main() {
    println!("{}", gyre_benches::host::describe());
    let _steal = gyre_benches::steal::RunSteal::start();
    let args = Args::parse();
    let rounds = if args.quick { 5 } else { 15 };
    let total = 64 << 20;
    println!("# gyre codec bench: 64 MiB per case in 64 KiB reads, {rounds} interleaved rounds, median shown");

    let lines = codec::lines(total, 64);
    compare(
        "lines-64B",
        &lines,
        rounds,
        &[
            ("gyre", codec::gyre_lines),
            ("LinesCodec", codec::tokio_lines),
            ("AnyDelimiterCodec", codec::tokio_any_delimiter),
            ("floor", codec::floor_lines),
            ("scan-floor", codec::scan_floor_lines),
        ],
    );

    let small = codec::length_prefixed(total, 16, 64);
    compare(
        "length-16-64B",
        &small,
        rounds,
        &[
            ("gyre", codec::gyre_length),
            ("LengthDelimitedCodec", codec::tokio_length),
        ],
    );

    let large = codec::length_prefixed(total, 16, 4096);
    compare(
        "length-16B-4KiB",
        &large,
        rounds,
        &[
            ("gyre", codec::gyre_length),
            ("LengthDelimitedCodec", codec::tokio_length),
        ],
    );
}
