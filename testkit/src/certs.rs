//! Certificates for TLS tests and benches, made at run time (nothing
//! secret is checked in): a certificate authority that issues leaf
//! certificates for DNS names and IP addresses, valid now or long expired,
//! as PEM. Uses `rcgen`.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A test certificate authority.
///
/// ```
/// use gyre_testkit::certs::TestCa;
///
/// let ca = TestCa::new("test CA");
/// let leaf = ca.issue(&["localhost", "127.0.0.1"]);
/// assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// assert!(leaf.key_pem.contains("PRIVATE KEY"));
/// ```
pub struct TestCa {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

/// A certificate the CA issued, and its key, as PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `name` (its subject's common name: distinct from
    /// every leaf's, or a leaf would look self-signed).
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(vec![]).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("a key pair");
        let pem = params.self_signed(&key).expect("the CA certificate").pem();
        TestCa { params, key, pem }
    }

    /// The CA's certificate, to trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A leaf for `names` (DNS names, or IP addresses), valid now; its
    /// common name is the first.
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, false)
    }

    /// The same, but valid only in 2020: expired.
    pub fn issue_expired(&self, names: &[&str]) -> Issued {
        self.issue_with(names, true)
    }

    fn issue_with(&self, names: &[&str], expired: bool) -> Issued {
        let mut params = CertificateParams::new(vec![]).expect("leaf parameters");
        for name in names {
            params.subject_alt_names.push(match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*name).try_into().expect("a DNS name")),
            });
        }
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("a key pair");
        let cert = params
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .expect("the leaf certificate");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the CA and a leaf for `names` into `dir` as `ca.pem`,
    /// `cert.pem` and `key.pem`; returns their paths in that order.
    pub fn write(&self, dir: &Path, names: &[&str]) -> (PathBuf, PathBuf, PathBuf) {
        std::fs::create_dir_all(dir).expect("the certificates' folder");
        let leaf = self.issue(names);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write a PEM file");
            path
        };
        (
            write("ca.pem", &self.pem),
            write("cert.pem", &leaf.cert_pem),
            write("key.pem", &leaf.key_pem),
        )
    }
}
