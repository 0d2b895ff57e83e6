//! What the kernel-TLS tests ask of the kernel: how many sessions its TLS
//! has taken, and whether the run insists that it take them
//! (`GYRE_EXPECT_KTLS=1`, as `scripts/ktls-guest` runs the tests in a VM
//! whose kernel has TLS). Uses only `std`.

/// The kernel's count of sessions its TLS has encrypted for (`TlsTxSw` in
/// `/proc/net/tls_stat`); 0 where it has no TLS.
///
/// ```
/// let before = gyre_testkit::kernel_tls_sessions();
/// // ... connections a server hands to the kernel ...
/// assert!(gyre_testkit::kernel_tls_sessions() >= before);
/// ```
pub fn kernel_tls_sessions() -> u64 {
    std::fs::read_to_string("/proc/net/tls_stat")
        .ok()
        .and_then(|stat| {
            stat.lines()
                .find_map(|l| l.strip_prefix("TlsTxSw")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Whether this run insists that TLS servers hand their connections to
/// the kernel (on either transport): `GYRE_EXPECT_KTLS=1`.
pub fn kernel_tls_expected() -> bool {
    std::env::var("GYRE_EXPECT_KTLS").as_deref() == Ok("1")
}

/// Reports how many sessions the kernel's TLS took since `before` (a
/// [`kernel_tls_sessions`] reading) for `what`, and insists on at least
/// `at_least` where [`kernel_tls_expected`].
pub fn check_kernel_tls_took(before: u64, at_least: u64, what: &str) {
    let took = kernel_tls_sessions() - before;
    eprintln!("{what}: the kernel's TLS took {took} connections");
    if kernel_tls_expected() {
        assert!(
            took >= at_least,
            "{what}: the kernel's TLS took {took} connections, not {at_least}"
        );
    }
}
