//! The file server over HTTPS against curl: a certificate made for the
//! test, files of several sizes byte for byte, a byte range, HEAD,
//! keep-alive (one connection for two transfers), a 404, and a client that
//! does not trust the certificate refused; and behind a PROXY header. On
//! the transport `GYRE_TRANSPORT` names. Where the kernel has TLS the connections go to
//! it after their handshakes; `GYRE_EXPECT_KTLS=1` (as `scripts/ktls-guest`
//! runs this file, in a VM whose kernel has it) makes the test insist, by
//! the kernel's own count of kTLS sessions.

mod common;

use common::Site;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

struct Certs {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a `localhost` certificate it signs, written under `dir`.
fn certs(dir: &Path) -> Certs {
    let (ca, cert, key) =
        gyre_testkit::certs::TestCa::new("file server test CA").write(dir, &["localhost"]);
    Certs { ca, cert, key }
}

/// Runs curl against the site by the name `localhost`; returns its exit
/// status and stdout.
fn curl(site: &Site, ca: &Path, args: &[&str]) -> (bool, Vec<u8>) {
    let port = site.server.local_addr().port();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("localhost:{port}:127.0.0.1"))
        .args(args)
        .output()
        .expect("curl is not installed (scripts/test installs it)");
    if !out.status.success() {
        eprintln!("curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (out.status.success(), out.stdout)
}

fn url(site: &Site, path: &str) -> String {
    format!(
        "https://localhost:{}{path}",
        site.server.local_addr().port()
    )
}

#[test]
fn curl_downloads_over_https_with_ranges_head_and_keep_alive() {
    let sessions_before = gyre_testkit::kernel_tls_sessions();
    let dir =
        gyre_testkit::scratch_root().join(format!("gyre-fs-https-certs-{}", std::process::id()));
    let c = certs(&dir);
    let site = Site::with("https", |config| {
        *config = config.clone().with_tls_files(&c.cert, &c.key).unwrap();
    });
    let out = site.base.join("out");
    let out_s = out.to_str().unwrap().to_owned();
    for (name, len) in [
        ("empty", 0),
        ("one", 1),
        ("mib", 1 << 20),
        ("big", 48 << 20),
    ] {
        let crc = site.file(name, len);
        let (ok, code) = curl(
            &site,
            &c.ca,
            &[
                "-o",
                &out_s,
                "-w",
                "%{http_code}",
                &url(&site, &format!("/{name}")),
            ],
        );
        assert!(ok, "{name}");
        assert_eq!(code, b"200", "{name}");
        let data = std::fs::read(&out).unwrap();
        assert_eq!((data.len(), crc32c::crc32c(&data)), (len, crc), "{name}");
    }
    // A range.
    let data = std::fs::read(site.root.join("mib")).unwrap();
    let (ok, code) = curl(
        &site,
        &c.ca,
        &[
            "-r",
            "1000-2999",
            "-o",
            &out_s,
            "-w",
            "%{http_code}",
            &url(&site, "/mib"),
        ],
    );
    assert!(ok);
    assert_eq!(code, b"206");
    assert_eq!(std::fs::read(&out).unwrap(), &data[1000..3000]);
    // HEAD.
    let (ok, head) = curl(&site, &c.ca, &["-I", &url(&site, "/mib")]);
    assert!(ok);
    let head = String::from_utf8(head).unwrap();
    assert!(head.contains("Content-Length: 1048576\r\n"), "{head}");
    // Keep-alive: one TLS connection for two transfers.
    let (ok, connects) = curl(
        &site,
        &c.ca,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{num_connects},",
            &url(&site, "/one"),
            "-o",
            "/dev/null",
            &url(&site, "/mib"),
        ],
    );
    assert!(ok);
    assert_eq!(connects, b"1,0,");
    // A missing file.
    let (_, code) = curl(
        &site,
        &c.ca,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url(&site, "/missing"),
        ],
    );
    assert_eq!(code, b"404");
    // A client that trusts another authority refuses the server.
    let other = certs(&dir.join("other"));
    let (ok, _) = curl(&site, &other.ca, &["-o", "/dev/null", &url(&site, "/one")]);
    assert!(!ok, "curl must refuse a certificate it cannot verify");
    // The server still serves afterwards.
    let (ok, code) = curl(
        &site,
        &c.ca,
        &["-o", "/dev/null", "-w", "%{http_code}", &url(&site, "/one")],
    );
    assert!(ok && code == b"200");
    // Four downloads, a range, HEAD, keep-alive, 404, the last one.
    gyre_testkit::check_kernel_tls_took(sessions_before, 9, "HTTPS");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Behind a load balancer that sends the PROXY header before the TLS
/// handshake (HAProxy's `send-proxy` in front of an HTTPS server): curl's
/// `--haproxy-protocol` downloads byte for byte; without the header the
/// handshake never starts.
#[test]
fn curl_over_https_behind_a_proxy_header() {
    let sessions_before = gyre_testkit::kernel_tls_sessions();
    let dir =
        gyre_testkit::scratch_root().join(format!("gyre-fs-https-proxy-{}", std::process::id()));
    let c = certs(&dir);
    let site = Site::with("https-proxy", |config| {
        *config = config.clone().with_tls_files(&c.cert, &c.key).unwrap();
        config.proxy_protocol = true;
    });
    let crc = site.file("mib", 1 << 20);
    let out = site.base.join("out");
    let (ok, code) = curl(
        &site,
        &c.ca,
        &[
            "--haproxy-protocol",
            "-o",
            out.to_str().unwrap(),
            "-w",
            "%{http_code}",
            &url(&site, "/mib"),
        ],
    );
    assert!(ok && code == b"200", "{}", String::from_utf8_lossy(&code));
    let data = std::fs::read(&out).unwrap();
    assert_eq!((data.len(), crc32c::crc32c(&data)), (1 << 20, crc));
    let (ok, _) = curl(&site, &c.ca, &["-o", "/dev/null", &url(&site, "/mib")]);
    assert!(!ok, "no header, no handshake");
    // The header read first does not keep the kernel's TLS away.
    gyre_testkit::check_kernel_tls_took(sessions_before, 1, "HTTPS behind a PROXY header");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_key_file_is_named() {
    let config = gyre_fileserver::FileServerConfig::new(".");
    match config.with_tls_files("/no/such/cert.pem", "/no/such/key.pem") {
        Err(e) => assert!(e.to_string().contains("/no/such/cert.pem"), "{e}"),
        Ok(_) => panic!("a missing certificate must be an error"),
    }
    let _ = Duration::ZERO;
}
