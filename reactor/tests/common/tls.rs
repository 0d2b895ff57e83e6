//! TLS helpers for the integration tests (feature `tls`): the test CA as
//! this crate's TLS types, and a blocking rustls client with the versions
//! and cipher suites a test asks for.

use gyre_reactor::{TlsAcceptor, TlsIdentity, TlsRoots};
use gyre_testkit::certs::TestCa;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// The test CA (from gyre-testkit) as this crate's TLS types.
pub trait AsTls {
    fn identity(&self, names: &[&str]) -> TlsIdentity;
    fn roots(&self) -> TlsRoots;
    /// A server's acceptor for `localhost`, with the default settings.
    fn acceptor(&self) -> TlsAcceptor;
}

impl AsTls for TestCa {
    fn identity(&self, names: &[&str]) -> TlsIdentity {
        let leaf = self.issue(names);
        TlsIdentity::from_pem(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes()).unwrap()
    }

    fn roots(&self) -> TlsRoots {
        TlsRoots::from_pem(self.pem().as_bytes()).unwrap()
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::builder()
            .identity(self.identity(&["localhost"]))
            .build()
            .unwrap()
    }
}

/// A blocking rustls client to `addr` for `name`, trusting `ca_pem`, with
/// a client certificate if `identity` is given (PEM chain and key).
pub fn rustls_client(
    addr: SocketAddr,
    name: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let provider = rustls::crypto::ring::default_provider();
    rustls_client_offering(
        addr,
        name,
        ca_pem,
        identity,
        provider,
        rustls::DEFAULT_VERSIONS,
    )
}

/// [`rustls_client`] offering only `provider`'s cipher suites and
/// `versions`.
pub fn rustls_client_offering(
    addr: SocketAddr,
    name: &str,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
    provider: rustls::crypto::CryptoProvider,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut store = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        store.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(store);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(|c| c.unwrap())
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let conn = rustls::ClientConnection::new(
        Arc::new(config),
        ServerName::try_from(name.to_owned()).unwrap(),
    )
    .unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    rustls::StreamOwned::new(conn, sock)
}
