//! One connection's SASL authentication, as Kafka runs it: a
//! SaslHandshake names the mechanism, then SaslAuthenticate requests carry
//! the mechanism's messages until the client is in (or refused, and the
//! connection closed). Mechanisms: PLAIN (the password itself, checked
//! against the stored SCRAM credential: over TLS only, in practice),
//! SCRAM-SHA-256, SCRAM-SHA-512, and OAUTHBEARER where the broker is given
//! a token validator. Where the listener gives sessions a lifetime
//! (KIP-368, `connections.max.reauth.ms`), or the token expires, the
//! client is told the session's lifetime at authentication and
//! re-authenticates on the same connection before it ends, with the same
//! mechanism and as the same user; a session that ends unrenewed is
//! [`expired`](SaslSession::expired). Uses the credentials, SCRAM and
//! OAUTHBEARER modules beside it.

use super::credentials::CredentialStore;
use super::oauthbearer::OAuthBearer;
use super::scram::{Mechanism, ScramServer, Step};
use std::time::{Duration, Instant, SystemTime};

/// Every mechanism a SASL listener may offer; OAUTHBEARER, the last, only
/// where the broker has a token validator.
const ALL_MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// What checks a client's credentials: the stored users, and the token
/// validator where OAUTHBEARER is offered.
#[derive(Clone, Copy, Debug)]
pub struct Verifiers<'a> {
    /// Users and their SCRAM credentials (PLAIN checks against them too).
    pub credentials: &'a CredentialStore,
    /// OAUTHBEARER's validator, if offered.
    pub oauthbearer: Option<&'a OAuthBearer>,
}

enum Stage {
    /// Waiting for SaslHandshake.
    Handshake,
    /// PLAIN chosen: one SaslAuthenticate with the password.
    Plain,
    /// SCRAM chosen: two SaslAuthenticate round trips (boxed: the
    /// exchange's state is large, and most connections never get here).
    Scram(Box<ScramServer>),
    /// OAUTHBEARER chosen: one SaslAuthenticate with the token.
    OAuthBearer,
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
        /// A re-authentication of a session already in (KIP-368).
        again: bool,
        /// How long this authentication lasts, if it ends (KIP-368's
        /// session lifetime, told to the client).
        lifetime: Option<Duration>,
    },
    /// Refused: the reason is for the broker's log; the client is told
    /// only that authentication failed.
    Refused(String),
}

/// How a SaslHandshake went.
#[derive(Debug, PartialEq, Eq)]
pub enum Handshake {
    /// The exchange may begin.
    Accepted,
    /// The mechanism is not offered.
    Unsupported,
    /// Not due now (a second handshake without re-authentication, a
    /// re-authentication that changes mechanism or comes raw).
    IllegalState,
}

/// A connection's authentication state on a SASL listener.
pub struct SaslSession {
    stage: Stage,
    /// The handshake was v0: the tokens come raw, not in SaslAuthenticate.
    raw: bool,
    /// The mechanism of the exchange under way, or of the last.
    mechanism: &'static str,
    /// How long an authentication lasts at most, where the listener says
    /// (KIP-368); `None`: for the connection's life, or its token's.
    lifetime: Option<Duration>,
    /// Whether OAUTHBEARER is offered.
    oauthbearer: bool,
    /// When the current authentication ends.
    expires: Option<Instant>,
    /// The user first authenticated: a re-authentication must be them.
    first: Option<String>,
}

impl Default for SaslSession {
    fn default() -> Self {
        Self::new()
    }
}

impl SaslSession {
    /// Before the handshake; an authentication lasts as long as the
    /// connection.
    pub fn new() -> SaslSession {
        SaslSession::with_lifetime(None)
    }

    /// Before the handshake; each authentication lasts `lifetime` (then
    /// the client must re-authenticate), or the connection's life.
    pub fn with_lifetime(lifetime: Option<Duration>) -> SaslSession {
        SaslSession {
            stage: Stage::Handshake,
            raw: false,
            mechanism: "",
            lifetime,
            oauthbearer: false,
            expires: None,
            first: None,
        }
    }

    /// The same, offering OAUTHBEARER too if `offered`.
    pub fn offering_oauthbearer(mut self, offered: bool) -> SaslSession {
        self.oauthbearer = offered;
        self
    }

    /// The mechanisms this session offers, in SaslHandshake's answer.
    pub fn mechanisms(&self) -> &'static [&'static str] {
        &ALL_MECHANISMS[..if self.oauthbearer { 4 } else { 3 }]
    }

    /// Whether the current authentication ends (a listener lifetime, or
    /// an expiring token): only then is [`expired`](Self::expired) worth a
    /// look at the clock.
    pub fn ends(&self) -> bool {
        self.expires.is_some()
    }

    /// Whether the authentication ended at `now` without being renewed:
    /// the connection may then only begin a re-authentication.
    pub fn expired(&self, now: Instant) -> bool {
        matches!(self.stage, Stage::Authenticated(_)) && self.expires.is_some_and(|e| now >= e)
    }

    /// Whether the next frame is a raw SASL token (after a v0 handshake,
    /// until authenticated).
    pub fn expects_raw_token(&self) -> bool {
        self.raw
            && matches!(
                self.stage,
                Stage::Plain | Stage::Scram(_) | Stage::OAuthBearer
            )
    }

    /// The authenticated user, once in.
    pub fn principal(&self) -> Option<&str> {
        match &self.stage {
            Stage::Authenticated(user) => Some(user),
            _ => None,
        }
    }

    /// Takes a SaslHandshake of `version`: the first, or (with a
    /// lifetime, once in) a re-authentication's, which must name the
    /// same mechanism and not ask for raw tokens (v0).
    pub fn handshake(&mut self, mechanism: &str, version: i16) -> Handshake {
        let due = match &self.stage {
            Stage::Handshake => true,
            Stage::Authenticated(_) => {
                self.expires.is_some() && version >= 1 && mechanism == self.mechanism
            }
            _ => false,
        };
        if !due {
            self.stage = Stage::Failed;
            return Handshake::IllegalState;
        }
        let Some(named) = self.mechanisms().iter().find(|m| **m == mechanism) else {
            return Handshake::Unsupported;
        };
        self.raw = version == 0;
        self.mechanism = named;
        self.stage = match (Mechanism::from_name(named), *named) {
            (Some(m), _) => Stage::Scram(Box::new(ScramServer::new(m))),
            (None, "OAUTHBEARER") => Stage::OAuthBearer,
            (None, _) => Stage::Plain,
        };
        Handshake::Accepted
    }

    /// `user` is in, until its credential expires if it does (a token):
    /// the first time, or again as the same user. The session lasts the
    /// listener's lifetime or to the credential's expiry, whichever is
    /// sooner, as Kafka reckons it.
    fn authenticated(
        &mut self,
        user: String,
        last: Vec<u8>,
        credential_expires: Option<SystemTime>,
    ) -> Reply {
        let again = self.first.is_some();
        if let Some(first) = &self.first {
            if *first != user {
                return Reply::Refused(format!(
                    "re-authenticated as {user:?}, not as {first:?}: a principal cannot change"
                ));
            }
        }
        let credential = credential_expires.map(|at| {
            // At least a millisecond: a lifetime of 0 tells a client its
            // session never ends.
            let left = at.duration_since(SystemTime::now()).unwrap_or_default();
            left.max(Duration::from_millis(1))
        });
        let lifetime = match (self.lifetime, credential) {
            (Some(l), Some(c)) => Some(l.min(c)),
            (l, c) => l.or(c),
        };
        self.first = Some(user.clone());
        self.expires = lifetime.map(|l| Instant::now() + l);
        self.stage = Stage::Authenticated(user.clone());
        Reply::Authenticated {
            principal: user,
            last,
            again,
            lifetime,
        }
    }

    /// Takes a SaslAuthenticate's bytes.
    pub fn authenticate(&mut self, bytes: &[u8], verifiers: Verifiers<'_>) -> Reply {
        let store = verifiers.credentials;
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
                self.authenticated(user.to_owned(), Vec::new(), None)
            }
            Stage::OAuthBearer => {
                let Some(validator) = verifiers.oauthbearer else {
                    return Reply::Refused("OAUTHBEARER without a token validator".into());
                };
                match validator.authenticate(bytes, SystemTime::now()) {
                    // The server's last message is empty (RFC 7628).
                    Ok(ok) => self.authenticated(ok.principal, Vec::new(), Some(ok.expires)),
                    Err(why) => Reply::Refused(format!("{why} (OAUTHBEARER)")),
                }
            }
            Stage::Scram(mut server) => {
                let mechanism = server.mechanism();
                match server.step(bytes, |user| store.get(user, mechanism)) {
                    Step::Continue(message) => {
                        self.stage = Stage::Scram(server);
                        Reply::Continue(message)
                    }
                    Step::Done { user, last } => self.authenticated(user, last, None),
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
    use crate::security::oauthbearer::{OAuthBearerConfig, TokenValidation};
    use crate::security::scram::Credential;

    fn plain(store: &CredentialStore) -> Verifiers<'_> {
        Verifiers {
            credentials: store,
            oauthbearer: None,
        }
    }

    /// Messages shaped like each mechanism's, with a piece of any bytes
    /// spliced in: what a client sends before it is in reaches these
    /// parsers on the event loop, where a panic would take every
    /// connection of the loop down.
    fn mechanism_messages() -> Vec<(&'static str, Vec<Vec<u8>>)> {
        use base64::Engine;
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.",
            enc(r#"{"alg":"none"}"#),
            enc(r#"{"sub":"bob","exp":99999999999}"#)
        );
        vec![
            ("PLAIN", vec![b"\0alice\0pw".to_vec()]),
            (
                "SCRAM-SHA-256",
                vec![
                    b"n,,n=alice,r=fyko+d2lbbFgONRv9qkxdawL".to_vec(),
                    b"c=biws,r=fyko+d2lbbFgONRv9qkxdawLserver,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=".to_vec(),
                ],
            ),
            (
                "OAUTHBEARER",
                vec![format!("n,a=bob,\x01auth=Bearer {jwt}\x01\x01").into_bytes()],
            ),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_a_client_sends_are_answered_never_a_panic(
            mechanism in 0..3usize,
            message in 0..2usize,
            at in 0..200usize,
            cut in 0..200usize,
            piece in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            extra in 0..3usize,
        ) {
            let dir = gyre_testkit::scratch_dir("sasl-proptest");
            let store = CredentialStore::open(&dir).unwrap();
            store
                .set("alice", Credential::new(Mechanism::Sha256, "pw", 4096))
                .unwrap();
            let validator =
                OAuthBearer::new(OAuthBearerConfig::new(TokenValidation::Unsecured)).unwrap();
            let v = Verifiers {
                credentials: &store,
                oauthbearer: Some(&validator),
            };
            let (name, messages) = &mechanism_messages()[mechanism];
            let mut s = SaslSession::new().offering_oauthbearer(true);
            proptest::prop_assert_eq!(s.handshake(name, 1), Handshake::Accepted);
            for (i, m) in messages.iter().enumerate() {
                let mut m = m.clone();
                if i == message.min(messages.len() - 1) {
                    let at = at.min(m.len());
                    let end = (at + cut).min(m.len());
                    m.splice(at..end, piece.iter().copied());
                }
                let _ = s.authenticate(&m, v);
            }
            for _ in 0..extra {
                let _ = s.authenticate(&piece, v);
            }
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn plain_checks_the_stored_credential_and_order_is_enforced() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-sasl-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CredentialStore::open(&dir).unwrap();
        store
            .set("alice", Credential::new(Mechanism::Sha256, "pw", 4096))
            .unwrap();
        let mut s = SaslSession::new();
        assert!(matches!(
            s.authenticate(b"\0alice\0pw", plain(&store)),
            Reply::Refused(_)
        ));
        let mut s = SaslSession::new();
        assert_eq!(s.handshake("GSSAPI", 1), Handshake::Unsupported);
        assert_eq!(s.handshake("PLAIN", 1), Handshake::Accepted);
        assert_eq!(
            s.authenticate(b"\0alice\0pw", plain(&store)),
            Reply::Authenticated {
                principal: "alice".into(),
                last: Vec::new(),
                again: false,
                lifetime: None,
            }
        );
        assert_eq!(s.principal(), Some("alice"));
        // Without a lifetime, once in is for good: no second handshake.
        assert!(!s.expired(Instant::now() + Duration::from_secs(86_400)));
        assert_eq!(s.handshake("PLAIN", 1), Handshake::IllegalState);
        let mut s = SaslSession::new();
        assert_eq!(s.handshake("PLAIN", 0), Handshake::Accepted);
        assert!(s.expects_raw_token());
        assert!(matches!(
            s.authenticate(b"\0alice\0nope", plain(&store)),
            Reply::Refused(_)
        ));
        assert!(!s.expects_raw_token());
        assert!(s.principal().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_session_with_a_lifetime_expires_and_renews_as_the_same_user_only() {
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-sasl-reauth-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CredentialStore::open(&dir).unwrap();
        for user in ["alice", "bob"] {
            store
                .set(user, Credential::new(Mechanism::Sha256, "pw", 4096))
                .unwrap();
        }
        let lifetime = Duration::from_secs(60);
        let mut s = SaslSession::with_lifetime(Some(lifetime));
        assert_eq!(s.handshake("PLAIN", 1), Handshake::Accepted);
        let in_at = Instant::now();
        assert!(matches!(
            s.authenticate(b"\0alice\0pw", plain(&store)),
            Reply::Authenticated { again: false, .. }
        ));
        assert!(!s.expired(in_at));
        assert!(s.expired(in_at + lifetime + Duration::from_secs(1)));
        // Renewed: the same mechanism, the same user.
        assert_eq!(s.handshake("PLAIN", 1), Handshake::Accepted);
        assert!(
            s.principal().is_none(),
            "nothing else is served mid-renewal"
        );
        assert!(matches!(
            s.authenticate(b"\0alice\0pw", plain(&store)),
            Reply::Authenticated { again: true, .. }
        ));
        assert!(
            !s.expired(in_at + lifetime + Duration::from_millis(10)),
            "renewal restarts the lifetime"
        );
        // Another mechanism, or raw tokens, is not a renewal.
        for (mechanism, version) in [("SCRAM-SHA-256", 1), ("PLAIN", 0)] {
            let mut other = SaslSession::with_lifetime(Some(lifetime));
            other.handshake("PLAIN", 1);
            other.authenticate(b"\0alice\0pw", plain(&store));
            assert_eq!(other.handshake(mechanism, version), Handshake::IllegalState);
        }
        // Another user is refused.
        assert_eq!(s.handshake("PLAIN", 1), Handshake::Accepted);
        assert!(matches!(
            s.authenticate(b"\0bob\0pw", plain(&store)),
            Reply::Refused(_)
        ));
        assert!(s.principal().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_oauthbearer_session_lasts_until_its_token_expires_or_the_lifetime_ends() {
        use base64::Engine;
        let enc = |s: String| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = |user: &str, life: u64| {
            let exp = SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + life;
            let claims = format!(r#"{{"sub":"{user}","exp":{exp}}}"#);
            let jwt = format!("{}.{}.", enc(r#"{"alg":"none"}"#.into()), enc(claims));
            format!("n,,\x01auth=Bearer {jwt}\x01\x01").into_bytes()
        };
        let dir =
            gyre_testkit::scratch_root().join(format!("gyre-sasl-oauth-{}", std::process::id()));
        let store = CredentialStore::open(&dir).unwrap();
        let validator =
            OAuthBearer::new(OAuthBearerConfig::new(TokenValidation::Unsecured)).unwrap();
        let v = Verifiers {
            credentials: &store,
            oauthbearer: Some(&validator),
        };
        // Not offered unless the broker validates tokens.
        let mut s = SaslSession::new();
        assert_eq!(s.handshake("OAUTHBEARER", 1), Handshake::Unsupported);
        let mut s = SaslSession::new().offering_oauthbearer(true);
        assert_eq!(s.mechanisms().last(), Some(&"OAUTHBEARER"));
        assert_eq!(s.handshake("OAUTHBEARER", 1), Handshake::Accepted);
        let Reply::Authenticated { lifetime, .. } = s.authenticate(&token("alice", 600), v) else {
            panic!("refused")
        };
        // Without a listener lifetime the token's expiry bounds the
        // session, and the client may renew it.
        let lifetime = lifetime.expect("a token's session ends");
        assert!(lifetime > Duration::from_secs(590) && lifetime <= Duration::from_secs(600));
        assert!(s.expired(Instant::now() + Duration::from_secs(601)));
        assert_eq!(s.handshake("OAUTHBEARER", 1), Handshake::Accepted);
        assert!(matches!(
            s.authenticate(&token("alice", 600), v),
            Reply::Authenticated { again: true, .. }
        ));
        // Renewing as another principal is refused.
        assert_eq!(s.handshake("OAUTHBEARER", 1), Handshake::Accepted);
        assert!(matches!(
            s.authenticate(&token("bob", 600), v),
            Reply::Refused(_)
        ));
        // The sooner of the listener's lifetime and the token's wins.
        let mut s =
            SaslSession::with_lifetime(Some(Duration::from_secs(60))).offering_oauthbearer(true);
        s.handshake("OAUTHBEARER", 1);
        assert!(matches!(
            s.authenticate(&token("alice", 600), v),
            Reply::Authenticated { lifetime: Some(l), .. } if l == Duration::from_secs(60)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
