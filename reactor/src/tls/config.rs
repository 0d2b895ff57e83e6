//! TLS settings: a certificate chain with its key ([`TlsIdentity`]), the
//! certificates a side trusts ([`TlsRoots`]), and the two sides' settings
//! built from them ([`TlsAcceptor`], [`TlsConnector`]) as rustls
//! configurations on its `ring` provider. Uses the error type beside it.

use super::error::TlsError;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ResolvesServerCertUsingSni, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a handshake may take unless told otherwise (Netty's default).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, what: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        what: what.to_string(),
    }
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// A certificate chain and its private key: what a server shows (and a
/// client, for mutual TLS).
///
/// ```
/// use gyre_reactor::TlsIdentity;
///
/// # let dir = std::env::temp_dir().join(format!("gyre-identity-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// # std::fs::write(dir.join("cert.pem"), made.cert.pem())?;
/// # std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem())?;
/// // A chain (leaf first) and a PKCS#8, PKCS#1 or SEC1 key, in PEM.
/// let identity = TlsIdentity::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))?;
/// # let _ = identity;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl TlsIdentity {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key.
    ///
    /// # Errors
    /// [`TlsError::Read`] or [`TlsError::Pem`], naming the file.
    pub fn from_pem_files(
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        let (chain, key) = (chain.as_ref(), key.as_ref());
        Self::parse(&read(chain)?, chain, &read(key)?, key)
    }

    /// The same from PEM held in memory.
    ///
    /// # Errors
    /// [`TlsError::Pem`] (the path it names is `<memory>`).
    pub fn from_pem(chain: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let memory = Path::new("<memory>");
        Self::parse(chain, memory, key, memory)
    }

    fn parse(
        chain: &[u8],
        chain_path: &Path,
        key: &[u8],
        key_path: &Path,
    ) -> Result<Self, TlsError> {
        let chain = certificates(chain, chain_path)?;
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|e| pem_error(key_path, format!("no usable private key: {e}")))?;
        Ok(TlsIdentity {
            chain,
            key: Arc::new(key),
        })
    }

    fn certified_key(&self, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
        let key = provider
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(TlsError::Config)?;
        let certified = CertifiedKey::new(self.chain.clone(), key);
        certified.keys_match().map_err(TlsError::Config)?;
        Ok(Arc::new(certified))
    }
}

/// The certificate authorities one side trusts: a server's for client
/// certificates, a client's for the server's.
///
/// ```
/// use gyre_reactor::TlsRoots;
///
/// # let dir = std::env::temp_dir().join(format!("gyre-roots-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// # std::fs::write(dir.join("ca.pem"), made.cert.pem())?;
/// let roots = TlsRoots::from_pem_file(dir.join("ca.pem"))?;
/// assert_eq!(roots.len(), 1);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TlsRoots(Arc<RootCertStore>);

impl TlsRoots {
    /// Trusts every certificate in a PEM file.
    ///
    /// # Errors
    /// [`TlsError::Read`] or [`TlsError::Pem`] naming the file (no
    /// certificate, or one rustls cannot use as a trust anchor).
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, TlsError> {
        let path = path.as_ref();
        Self::parse(&read(path)?, path)
    }

    /// The same from PEM held in memory.
    ///
    /// # Errors
    /// As [`from_pem_file`](Self::from_pem_file).
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsError> {
        Self::parse(pem, Path::new("<memory>"))
    }

    fn parse(pem: &[u8], path: &Path) -> Result<Self, TlsError> {
        let mut store = RootCertStore::empty();
        for cert in certificates(pem, path)? {
            store
                .add(cert)
                .map_err(|e| pem_error(path, format!("not a usable trust anchor: {e}")))?;
        }
        Ok(TlsRoots(Arc::new(store)))
    }

    /// How many authorities are trusted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Whether a server asks for client certificates.
#[derive(Clone, Debug)]
enum ClientAuth {
    None,
    Optional(TlsRoots),
    Required(TlsRoots),
}

/// A server's TLS settings, shared by all its connections (cheap to
/// clone). Add it to each connection's pipeline with
/// [`Pipeline::tls_server`](crate::Pipeline::tls_server).
///
/// ```
/// use gyre_reactor::{Pipeline, ServerBootstrap, TlsAcceptor, TlsIdentity};
///
/// # let dir = std::env::temp_dir().join(format!("gyre-acceptor-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// # std::fs::write(dir.join("cert.pem"), made.cert.pem())?;
/// # std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem())?;
/// let tls = TlsAcceptor::builder()
///     .identity(TlsIdentity::from_pem_files(dir.join("cert.pem"), dir.join("key.pem"))?)
///     .alpn(["http/1.1"])
///     .build()?;
/// let server = ServerBootstrap::new().bind("127.0.0.1:0", move |_| Pipeline::new().tls_server(&tls))?;
/// server.shutdown_gracefully(std::time::Duration::ZERO, std::time::Duration::from_secs(1));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TlsAcceptor {
    pub(super) config: Arc<ServerConfig>,
    pub(super) handshake_timeout: Duration,
    /// Hand each connection's record layer to the kernel after its
    /// handshake ([`TlsAcceptorBuilder::kernel_tls`]).
    pub(super) kernel_tls: bool,
}

impl TlsAcceptor {
    /// Settings to build: no identity yet, no ALPN, no client
    /// certificates, a 10 s handshake timeout.
    pub fn builder() -> TlsAcceptorBuilder {
        TlsAcceptorBuilder {
            identity: None,
            sni: Vec::new(),
            alpn: Vec::new(),
            client_auth: ClientAuth::None,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            kernel_tls: false,
        }
    }

    /// One certificate chain and key for every name, from PEM files.
    ///
    /// # Errors
    /// As [`TlsIdentity::from_pem_files`] and [`TlsAcceptorBuilder::build`].
    pub fn from_pem_files(
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, TlsError> {
        Self::builder()
            .identity(TlsIdentity::from_pem_files(chain, key)?)
            .build()
    }

    /// Uses a rustls configuration made by hand, for what the builder does
    /// not offer. Kernel TLS stays off (it is the builder's
    /// [`kernel_tls`](TlsAcceptorBuilder::kernel_tls)).
    pub fn from_config(config: Arc<ServerConfig>) -> Self {
        TlsAcceptor {
            config,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            kernel_tls: false,
        }
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Whether connections go to the kernel's TLS after their handshakes:
    /// it was asked for ([`TlsAcceptorBuilder::kernel_tls`]) and this
    /// kernel takes at least one version and cipher. Worth a line in a
    /// server's start-up log.
    pub fn kernel_tls(&self) -> bool {
        self.kernel_tls && crate::ktls::available()
    }
}

/// Builds a [`TlsAcceptor`].
///
/// ```
/// use gyre_reactor::{TlsAcceptor, TlsIdentity, TlsRoots};
/// use std::time::Duration;
///
/// # let main = rcgen::generate_simple_self_signed(vec!["api.example".into()])?;
/// # let other = rcgen::generate_simple_self_signed(vec!["admin.example".into()])?;
/// # let ca = rcgen::generate_simple_self_signed(vec!["clients".into()])?;
/// # let pem = |c: &rcgen::CertifiedKey<rcgen::KeyPair>| (c.cert.pem(), c.signing_key.serialize_pem());
/// # let ((main_chain, main_key), (admin_chain, admin_key)) = (pem(&main), pem(&other));
/// # let client_ca = ca.cert.pem();
/// // Two names on one port (SNI), HTTP/2 preferred, clients must show a
/// // certificate from our own authority, and five seconds to shake hands.
/// let tls = TlsAcceptor::builder()
///     .identity(TlsIdentity::from_pem(main_chain.as_bytes(), main_key.as_bytes())?)
///     .sni_identity("admin.example", TlsIdentity::from_pem(admin_chain.as_bytes(), admin_key.as_bytes())?)
///     .alpn(["h2", "http/1.1"])
///     .require_client_certificates(TlsRoots::from_pem(client_ca.as_bytes())?)
///     .handshake_timeout(Duration::from_secs(5))
///     .build()?;
/// # let _ = tls;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct TlsAcceptorBuilder {
    identity: Option<TlsIdentity>,
    sni: Vec<(String, TlsIdentity)>,
    alpn: Vec<Vec<u8>>,
    client_auth: ClientAuth,
    handshake_timeout: Duration,
    kernel_tls: bool,
}

impl TlsAcceptorBuilder {
    /// The chain and key shown to clients that name no server, or a name
    /// no [`sni_identity`](Self::sni_identity) is for.
    pub fn identity(mut self, identity: TlsIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The chain and key shown to clients that ask for `server_name` (SNI).
    /// With SNI identities and no default [`identity`](Self::identity), a
    /// client naming another server (or none) is refused.
    pub fn sni_identity(mut self, server_name: impl Into<String>, identity: TlsIdentity) -> Self {
        self.sni.push((server_name.into(), identity));
        self
    }

    /// The application protocols offered, most preferred first (ALPN, e.g.
    /// `["h2", "http/1.1"]`). A client offering none of them is refused.
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// Asks clients for a certificate issued by one of `roots`, and refuses
    /// those without one (mutual TLS). The verified chain reaches handlers
    /// in the [`TlsSession`](crate::TlsSession).
    pub fn require_client_certificates(mut self, roots: TlsRoots) -> Self {
        self.client_auth = ClientAuth::Required(roots);
        self
    }

    /// Asks clients for a certificate issued by one of `roots`, and lets
    /// in those that send none (a bad one is still refused).
    pub fn request_client_certificates(mut self, roots: TlsRoots) -> Self {
        self.client_auth = ClientAuth::Optional(roots);
        self
    }

    /// How long a handshake may take before its connection is closed
    /// (zero: no limit). 10 s by default.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Hands each connection's record layer to the kernel (kTLS) once its
    /// handshake is done, where the kernel offers it: the kernel then
    /// encrypts and decrypts, so file regions go out by `sendfile` (or
    /// `splice`) without passing through user space, and plaintext writes
    /// cost no copy into rustls. Off by default.
    ///
    /// It applies to TCP connections that agreed on AES-GCM or
    /// ChaCha20-Poly1305 under TLS 1.2 or 1.3, and it takes effect at the
    /// first moment after the handshake when nothing is half-sent or
    /// half-read (usually at once). On an io_uring loop such a connection
    /// is read and written as on epoll, polling through the ring for
    /// readiness (a ring receive could take ciphertext past the switch,
    /// and carries no record type), from its start, even if the switch
    /// does not happen after all. Everywhere else, and on a
    /// kernel without TLS (`/proc/sys/net/ipv4/tcp_available_ulp` lacks
    /// `tls`, or the `tls` module cannot load), the connection simply
    /// stays in rustls. `build` asks the kernel once per process which
    /// versions and ciphers it takes (on throwaway loopback connections,
    /// which loads the kernel's modules then rather than on a loop). [`Channel::kernel_tls`](crate::Channel::kernel_tls)
    /// says which a connection got.
    ///
    /// Under kernel TLS a connection closes with an error when the peer
    /// sends a post-handshake message (a TLS 1.3 key update), which the
    /// kernel cannot take back to rustls; and no key update is made for
    /// our side, so a connection should not carry more than the suite's
    /// limit (2^24.5 records for AES-GCM, about 370 GB of full records).
    ///
    /// ```
    /// use gyre_reactor::{TlsAcceptor, TlsIdentity};
    ///
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # let identity = TlsIdentity::from_pem(made.cert.pem().as_bytes(), made.signing_key.serialize_pem().as_bytes())?;
    /// let tls = TlsAcceptor::builder().identity(identity).kernel_tls(true).build()?;
    /// # let _ = tls;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kernel_tls(mut self, on: bool) -> Self {
        self.kernel_tls = on;
        self
    }

    /// The settings.
    ///
    /// # Errors
    /// [`TlsError::Config`]: no identity at all, a key that does not match
    /// its certificate, unusable client-certificate roots.
    pub fn build(self) -> Result<TlsAcceptor, TlsError> {
        let provider = provider();
        let versions = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?;
        let verifier = match &self.client_auth {
            ClientAuth::None => None,
            ClientAuth::Optional(roots) | ClientAuth::Required(roots) => {
                let builder =
                    WebPkiClientVerifier::builder_with_provider(roots.0.clone(), provider.clone());
                let builder = match self.client_auth {
                    ClientAuth::Optional(_) => builder.allow_unauthenticated(),
                    _ => builder,
                };
                Some(builder.build().map_err(|e| {
                    TlsError::Config(rustls::Error::General(format!(
                        "client certificate roots: {e}"
                    )))
                })?)
            }
        };
        let versions = match verifier {
            Some(v) => versions.with_client_cert_verifier(v),
            None => versions.with_no_client_auth(),
        };
        let mut config = if self.sni.is_empty() {
            let Some(identity) = &self.identity else {
                return Err(no_identity());
            };
            versions
                .with_single_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(TlsError::Config)?
        } else {
            let mut by_name = ResolvesServerCertUsingSni::new();
            for (name, identity) in &self.sni {
                by_name
                    .add(name, (*identity.certified_key(&provider)?).clone())
                    .map_err(TlsError::Config)?;
            }
            let fallback = match &self.identity {
                Some(identity) => Some(identity.certified_key(&provider)?),
                None => None,
            };
            versions.with_cert_resolver(Arc::new(SniOrDefault { by_name, fallback }))
        };
        config.alpn_protocols = self.alpn;
        // rustls gives a session's keys up only where this is set.
        config.enable_secret_extraction = self.kernel_tls;
        if self.kernel_tls {
            // What this kernel takes, asked here, off the loops.
            crate::ktls::probe();
        }
        Ok(TlsAcceptor {
            config: Arc::new(config),
            handshake_timeout: self.handshake_timeout,
            kernel_tls: self.kernel_tls,
        })
    }
}

fn no_identity() -> TlsError {
    TlsError::Config(rustls::Error::General(
        "a TLS server needs an identity (a certificate chain and its key)".into(),
    ))
}

/// Chooses a server's certificate by the client's SNI name, falling back to
/// the default identity.
#[derive(Debug)]
struct SniOrDefault {
    by_name: ResolvesServerCertUsingSni,
    fallback: Option<Arc<CertifiedKey>>,
}

impl rustls::server::ResolvesServerCert for SniOrDefault {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello.server_name().is_some();
        let fallback = self.fallback.clone();
        if named {
            self.by_name.resolve(hello).or(fallback)
        } else {
            fallback
        }
    }
}

/// A client's TLS settings for one server name (cheap to clone; use
/// [`for_server`](Self::for_server) for another name with the same
/// settings). Add it to a client's pipeline with
/// [`Pipeline::tls_client`](crate::Pipeline::tls_client). Connections made
/// with clones of one connector resume each other's sessions.
///
/// ```
/// use gyre_reactor::{TlsConnector, TlsRoots};
///
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
/// let roots = TlsRoots::from_pem(made.cert.pem().as_bytes())?;
/// let tls = TlsConnector::builder("localhost").roots(roots).alpn(["http/1.1"]).build()?;
/// let other = tls.for_server("127.0.0.1")?;
/// # let _ = other;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct TlsConnector {
    pub(super) config: Arc<ClientConfig>,
    pub(super) server_name: ServerName<'static>,
    pub(super) handshake_timeout: Duration,
}

impl TlsConnector {
    /// Settings to build for connections to `server_name` (a DNS name or
    /// an IP address: what the server's certificate must be for, and the
    /// SNI name sent).
    pub fn builder(server_name: impl Into<String>) -> TlsConnectorBuilder {
        TlsConnectorBuilder {
            server_name: server_name.into(),
            roots: None,
            identity: None,
            alpn: Vec::new(),
            handshake_timeout: HANDSHAKE_TIMEOUT,
        }
    }

    /// The same settings for another server name.
    ///
    /// # Errors
    /// [`TlsError::ServerName`].
    pub fn for_server(&self, server_name: &str) -> Result<Self, TlsError> {
        Ok(TlsConnector {
            server_name: server_name_of(server_name)?,
            ..self.clone()
        })
    }

    /// Uses a rustls configuration made by hand.
    ///
    /// # Errors
    /// [`TlsError::ServerName`].
    pub fn from_config(config: Arc<ClientConfig>, server_name: &str) -> Result<Self, TlsError> {
        Ok(TlsConnector {
            config,
            server_name: server_name_of(server_name)?,
            handshake_timeout: HANDSHAKE_TIMEOUT,
        })
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

fn server_name_of(name: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName {
        name: name.to_owned(),
    })
}

/// Builds a [`TlsConnector`].
///
/// ```
/// use gyre_reactor::{TlsConnector, TlsIdentity, TlsRoots};
/// use std::time::Duration;
///
/// # let ca = rcgen::generate_simple_self_signed(vec!["broker.internal".into()])?;
/// # let me = rcgen::generate_simple_self_signed(vec!["client".into()])?;
/// # let (ca_pem, my_chain, my_key) = (ca.cert.pem(), me.cert.pem(), me.signing_key.serialize_pem());
/// // A client that trusts its own authority, shows its own certificate
/// // (mutual TLS), speaks HTTP/2 or 1.1, and gives a handshake 3 s.
/// let tls = TlsConnector::builder("broker.internal")
///     .roots(TlsRoots::from_pem(ca_pem.as_bytes())?)
///     .identity(TlsIdentity::from_pem(my_chain.as_bytes(), my_key.as_bytes())?)
///     .alpn(["h2", "http/1.1"])
///     .handshake_timeout(Duration::from_secs(3))
///     .build()?;
/// # let _ = tls;
/// // Roots are required: Gyre bundles no public ones.
/// assert!(TlsConnector::builder("example.com").build().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct TlsConnectorBuilder {
    server_name: String,
    roots: Option<TlsRoots>,
    identity: Option<TlsIdentity>,
    alpn: Vec<Vec<u8>>,
    handshake_timeout: Duration,
}

impl TlsConnectorBuilder {
    /// The authorities the server's certificate must chain to (required:
    /// Gyre bundles no public roots).
    pub fn roots(mut self, roots: TlsRoots) -> Self {
        self.roots = Some(roots);
        self
    }

    /// The chain and key to show a server that asks (mutual TLS).
    pub fn identity(mut self, identity: TlsIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The application protocols offered, most preferred first (ALPN).
    pub fn alpn<P: AsRef<[u8]>>(mut self, protocols: impl IntoIterator<Item = P>) -> Self {
        self.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// How long a handshake may take before its connection is closed
    /// (zero: no limit). 10 s by default.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The settings.
    ///
    /// # Errors
    /// [`TlsError::ServerName`]; [`TlsError::Config`] without roots, or
    /// for a key that does not match its certificate.
    pub fn build(self) -> Result<TlsConnector, TlsError> {
        let server_name = server_name_of(&self.server_name)?;
        let Some(roots) = self.roots else {
            return Err(TlsError::Config(rustls::Error::General(
                "a TLS client needs the roots it trusts (TlsConnectorBuilder::roots)".into(),
            )));
        };
        let versions = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_root_certificates(roots.0);
        let mut config = match self.identity {
            Some(identity) => versions
                .with_client_auth_cert(identity.chain, identity.key.clone_key())
                .map_err(TlsError::Config)?,
            None => versions.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn;
        Ok(TlsConnector {
            config: Arc::new(config),
            server_name,
            handshake_timeout: self.handshake_timeout,
        })
    }
}
