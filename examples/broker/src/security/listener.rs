//! A listener as Kafka configures one: a security protocol and an address
//! (`SASL_SSL://0.0.0.0:9094`). Plain data.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// How a listener's clients connect (Kafka's `security.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// Clear text, anyone.
    Plaintext,
    /// TLS, anyone who completes the handshake (with the server's
    /// client-certificate rule).
    Ssl,
    /// Clear text, SASL authentication first.
    SaslPlaintext,
    /// TLS, then SASL authentication.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections are TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients must authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;

    /// Kafka's name, in any case.
    fn from_str(name: &str) -> Result<Self, String> {
        [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| format!("{name:?}: expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"))
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where and how a broker listens.
///
/// ```
/// use gyre_broker::security::{Listener, SecurityProtocol};
///
/// let l: Listener = "SASL_SSL://127.0.0.1:9094".parse()?;
/// assert_eq!(l.protocol, SecurityProtocol::SaslSsl);
/// assert_eq!(l.addr.port(), 9094);
/// assert!("HTTP://127.0.0.1:80".parse::<Listener>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The security protocol.
    pub protocol: SecurityProtocol,
    /// The address.
    pub addr: SocketAddr,
}

impl FromStr for Listener {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, addr) = s
            .split_once("://")
            .ok_or_else(|| format!("{s:?}: expected PROTOCOL://host:port"))?;
        let protocol: SecurityProtocol = name.parse()?;
        let addr = addr
            .parse()
            .map_err(|e| format!("{addr:?}: not an ip:port address ({e})"))?;
        Ok(Listener { protocol, addr })
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.protocol, self.addr)
    }
}
