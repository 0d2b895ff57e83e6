//! Byte-rate limits on what the file server sends
//! (`FileServerConfig::limit_rate`, nginx's `limit_rate`, and
//! `limit_rate_total` for all connections together), with curl: a body
//! arrives whole and no faster than its limit allows (a bound load cannot
//! break), and not held for ever. On the transport `GYRE_TRANSPORT` names.
//! curl must be installed.

mod common;

use common::Site;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// Downloads `url` into `out`; curl's own total time.
fn curl(url: &str, out: &std::path::Path) -> Duration {
    let result = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "-w",
            "%{http_code} %{time_total}",
            "-o",
        ])
        .arg(out)
        .arg(url)
        .output()
        .expect("curl is not installed (scripts/test installs it)");
    assert!(result.status.success(), "curl failed");
    let text = String::from_utf8(result.stdout).unwrap();
    let (code, secs) = text.split_once(' ').unwrap();
    assert_eq!(code, "200");
    Duration::from_secs_f64(secs.parse().unwrap())
}

fn whole(out: &std::path::Path, len: usize, crc: u32) {
    let data = std::fs::read(out).unwrap();
    assert_eq!(
        (data.len(), crc32c::crc32c(&data)),
        (len, crc),
        "not the file"
    );
}

#[test]
fn each_connection_is_held_to_its_rate() {
    let rate = 2 * MIB as u64;
    let site = Site::with("limit-rate", |c| c.limit_rate = Some(rate));
    let crc = site.file("three", 3 * MIB);
    let out = site.base.join("out");
    let took = curl(&site.url("/three"), &out);
    whole(&out, 3 * MIB, crc);
    eprintln!("3 MiB at 2 MiB/s: {took:?}");
    // Less the burst (a tenth of a second's worth) and what a splice pipe
    // may send past the allowance at the end (at most a burst): 1.3 s at
    // least.
    let burst = rate / 10;
    let least = Duration::from_secs_f64((3 * MIB as u64 - 2 * burst) as f64 / rate as f64);
    assert!(took >= least, "{took:?}, at least {least:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn all_connections_together_are_held_to_the_total() {
    let rate = 2 * MIB as u64;
    let site = Site::with("limit-rate-total", |c| c.limit_rate_total = Some(rate));
    let crc = site.file("one", MIB);
    let url = site.url("/one");
    let start = Instant::now();
    let downloads: Vec<_> = (0..2)
        .map(|i| {
            let (url, out) = (url.clone(), site.base.join(format!("out{i}")));
            std::thread::spawn(move || {
                curl(&url, &out);
                out
            })
        })
        .collect();
    for d in downloads {
        whole(&d.join().unwrap(), MIB, crc);
    }
    let took = start.elapsed();
    eprintln!("2 x 1 MiB through 2 MiB/s in all: {took:?}");
    // 2 MiB in all, less a burst per connection that may take one at the
    // same moment (the site runs two loops), and one a splice pipe may
    // send past the allowance at the end.
    let least = Duration::from_secs_f64((2 * MIB as u64 - 3 * (rate / 10)) as f64 / rate as f64);
    assert!(took >= least, "{took:?}, at least {least:?}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}
