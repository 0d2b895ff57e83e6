//! One connection's SASL authentication, as Kafka runs it: a
//! SaslHandshake names the mechanism, then SaslAuthenticate requests carry
//! the mechanism's messages until the client is in (or refused, and the
//! connection closed). Mechanisms: PLAIN (the password itself, checked
//! against the stored SCRAM credential: over TLS only, in practice),
//! SCRAM-SHA-256 and SCRAM-SHA-512. Uses the credentials and SCRAM
//! modules beside it.

use super::credentials::CredentialStore;
use super::scram::{Mechanism, ScramServer, Step};

/// The mechanisms a SASL listener offers, in SaslHandshake's answer.
pub const MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

enum Stage {
    /// Waiting for SaslHandshake.
    Handshake,
    /// PLAIN chosen: one SaslAuthenticate with the password.
    Plain,
    /// SCRAM chosen: two SaslAuthenticate round trips (boxed: the
    /// exchange's state is large, and most connections never get here).
    Scram(Box<ScramServer>),
    /// In, as this user.
    Authenticated(String),
    /// Refused or out of order: the connection is closing.
    Failed,
}

/// What a SaslAuthenticate is answered with.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// The mechanism's next message; the exchange goes on.
    Continue(Vec<u8>),
    /// Authenticated as `principal`; `last` is the mechanism's final
    /// message (empty for PLAIN).
    Authenticated {
        /// The user.
        principal: String,
        /// What to send back.
        last: Vec<u8>,
    },
    /// Refused: the reason is for the broker's log; the client is told
    /// only that authentication failed.
    Refused(String),
}

/// A connection's authentication state on a SASL listener.
pub struct SaslSession {
    stage: Stage,
    /// The handshake was v0: the tokens come raw, not in SaslAuthenticate.
    raw: bool,
}

impl Default for SaslSession {
    fn default() -> Self {
        Self::new()
    }
}

impl SaslSession {
    /// Before the handshake.
    pub fn new() -> SaslSession {
        SaslSession {
            stage: Stage::Handshake,
            raw: false,
        }
    }

    /// Whether the next frame is a raw SASL token (after a v0 handshake,
    /// until authenticated).
    pub fn expects_raw_token(&self) -> bool {
        self.raw && matches!(self.stage, Stage::Plain | Stage::Scram(_))
    }

    /// The authenticated user, once in.
    pub fn principal(&self) -> Option<&str> {
        match &self.stage {
            Stage::Authenticated(user) => Some(user),
            _ => None,
        }
    }

    /// Takes a SaslHandshake of `version`: true if `mechanism` is offered
    /// and the handshake was due.
    pub fn handshake(&mut self, mechanism: &str, version: i16) -> bool {
        self.raw = version == 0;
        if !matches!(self.stage, Stage::Handshake) {
            self.stage = Stage::Failed;
            return false;
        }
        self.stage = match mechanism {
            "PLAIN" => Stage::Plain,
            other => match Mechanism::from_name(other) {
                Some(m) => Stage::Scram(Box::new(ScramServer::new(m))),
                None => return false,
            },
        };
        true
    }

    /// Takes a SaslAuthenticate's bytes.
    pub fn authenticate(&mut self, bytes: &[u8], store: &CredentialStore) -> Reply {
        match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::Plain => {
                // authzid NUL authcid NUL password
                let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
                let [authzid, user, password] = parts[..] else {
                    return Reply::Refused(
                        "a PLAIN message that is not authzid\\0user\\0password".into(),
                    );
                };
                let (Ok(authzid), Ok(user), Ok(password)) = (
                    std::str::from_utf8(authzid),
                    std::str::from_utf8(user),
                    std::str::from_utf8(password),
                ) else {
                    return Reply::Refused("a PLAIN message that is not UTF-8".into());
                };
                if !authzid.is_empty() && authzid != user {
                    return Reply::Refused(format!("{user:?} asked to act as {authzid:?}"));
                }
                if !store.verify_password(user, password) {
                    return Reply::Refused(format!(
                        "wrong password or unknown user {user:?} (PLAIN)"
                    ));
                }
                self.stage = Stage::Authenticated(user.to_owned());
                Reply::Authenticated {
                    principal: user.to_owned(),
                    last: Vec::new(),
                }
            }
            Stage::Scram(mut server) => {
                let mechanism = server.mechanism();
                match server.step(bytes, |user| store.get(user, mechanism)) {
                    Step::Continue(message) => {
                        self.stage = Stage::Scram(server);
                        Reply::Continue(message)
                    }
                    Step::Done { user, last } => {
                        self.stage = Stage::Authenticated(user.clone());
                        Reply::Authenticated {
                            principal: user,
                            last,
                        }
                    }
                    Step::Failed(why) => Reply::Refused(format!("{why} ({})", mechanism.name())),
                }
            }
            Stage::Handshake => Reply::Refused("SaslAuthenticate before SaslHandshake".into()),
            Stage::Authenticated(_) => {
                Reply::Refused("SaslAuthenticate after authentication".into())
            }
            Stage::Failed => Reply::Refused("SaslAuthenticate after a refusal".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::Credential;

    #[test]
    fn plain_checks_the_stored_credential_and_order_is_enforced() {
        let dir = std::env::temp_dir().join(format!("gyre-sasl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CredentialStore::open(&dir).unwrap();
        store
            .set("alice", Credential::new(Mechanism::Sha256, "pw", 4096))
            .unwrap();
        let mut s = SaslSession::new();
        assert!(matches!(
            s.authenticate(b"\0alice\0pw", &store),
            Reply::Refused(_)
        ));
        let mut s = SaslSession::new();
        assert!(!s.handshake("GSSAPI", 1));
        assert!(s.handshake("PLAIN", 1));
        assert_eq!(
            s.authenticate(b"\0alice\0pw", &store),
            Reply::Authenticated {
                principal: "alice".into(),
                last: Vec::new()
            }
        );
        assert_eq!(s.principal(), Some("alice"));
        let mut s = SaslSession::new();
        assert!(s.handshake("PLAIN", 0));
        assert!(s.expects_raw_token());
        assert!(matches!(
            s.authenticate(b"\0alice\0nope", &store),
            Reply::Refused(_)
        ));
        assert!(!s.expects_raw_token());
        assert!(s.principal().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
