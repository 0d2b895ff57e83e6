//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka uses
//! them: a user's stored credential (salt, iterations, stored key, server
//! key: never the password), and the server's side of one exchange. Uses
//! `ring` for PBKDF2, HMAC and SHA-2, `base64` for the attribute values.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};
use std::num::NonZeroU32;

/// A SCRAM mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mechanism {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl Mechanism {
    /// Both, in Kafka's order.
    pub const ALL: [Mechanism; 2] = [Mechanism::Sha256, Mechanism::Sha512];

    /// The SASL name (`SCRAM-SHA-256`).
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// By SASL name.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's code in the SCRAM credential APIs (1 and 2).
    pub fn code(self) -> i8 {
        match self {
            Mechanism::Sha256 => 1,
            Mechanism::Sha512 => 2,
        }
    }

    /// By Kafka's code.
    pub fn from_code(code: i8) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.code() == code)
    }

    /// The fewest PBKDF2 iterations Kafka accepts (4096).
    pub const MIN_ITERATIONS: u32 = 4096;

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Mechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Mechanism::Sha256 => hmac::HMAC_SHA256,
            Mechanism::Sha512 => hmac::HMAC_SHA512,
        };
        hmac::sign(&hmac::Key::new(algorithm, key), data)
            .as_ref()
            .to_vec()
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            Mechanism::Sha256 => &digest::SHA256,
            Mechanism::Sha512 => &digest::SHA512,
        };
        digest::digest(algorithm, data).as_ref().to_vec()
    }

    fn output_len(self) -> usize {
        match self {
            Mechanism::Sha256 => 32,
            Mechanism::Sha512 => 64,
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this hash.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0; self.output_len()];
        let iterations = NonZeroU32::new(iterations.max(1)).expect("at least one");
        pbkdf2::derive(self.pbkdf2(), iterations, salt, password, &mut out);
        out
    }
}

/// Compares in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What the broker keeps of a user's password for one mechanism.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The mechanism.
    pub mechanism: Mechanism,
    /// The salt.
    pub salt: Vec<u8>,
    /// PBKDF2 iterations.
    pub iterations: u32,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl Credential {
    /// A credential for `password` with a fresh random 32-byte salt.
    pub fn new(mechanism: Mechanism, password: &str, iterations: u32) -> Credential {
        let mut salt = vec![0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .expect("the system's random source");
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        Credential::from_salted_password(mechanism, salt, iterations, &salted)
    }

    /// A credential from a salted password (what AlterUserScramCredentials
    /// carries: the client salts, the password never travels).
    pub fn from_salted_password(
        mechanism: Mechanism,
        salt: Vec<u8>,
        iterations: u32,
        salted: &[u8],
    ) -> Credential {
        let client_key = mechanism.hmac(salted, b"Client Key");
        Credential {
            mechanism,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// Whether `password` is the one this credential was made from (for
    /// SASL/PLAIN, which sends the password itself).
    pub fn verify_password(&self, password: &str) -> bool {
        let salted =
            self.mechanism
                .salted_password(password.as_bytes(), &self.salt, self.iterations);
        let client_key = self.mechanism.hmac(&salted, b"Client Key");
        same(&self.mechanism.hash(&client_key), &self.stored_key)
    }

    /// One line of the credentials file: mechanism, iterations, and the
    /// salt and keys in base64.
    pub fn to_fields(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}",
            self.mechanism.name(),
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }

    /// Reads [`to_fields`](Self::to_fields).
    pub fn from_fields(fields: &[&str]) -> Option<Credential> {
        let [mechanism, iterations, salt, stored, server] = fields else {
            return None;
        };
        Some(Credential {
            mechanism: Mechanism::from_name(mechanism)?,
            iterations: iterations.parse().ok()?,
            salt: B64.decode(salt).ok()?,
            stored_key: B64.decode(stored).ok()?,
            server_key: B64.decode(server).ok()?,
        })
    }
}

/// What one step of an exchange gives.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this and wait for the client's next message.
    Continue(Vec<u8>),
    /// Authenticated as `user`; send `last` (the server's signature).
    Done {
        /// Who.
        user: String,
        /// The server-final message.
        last: Vec<u8>,
    },
    /// Refused; the reason is for the log (the client is told only that
    /// its credentials were wrong).
    Failed(String),
}

enum State {
    First,
    Final {
        user: String,
        credential: Credential,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Over,
}

/// The server's side of one SCRAM exchange.
pub struct ScramServer {
    mechanism: Mechanism,
    state: State,
    /// The server's part of the nonce (random, or fixed by a test).
    server_nonce: String,
}

/// Undoes SCRAM's escaping of `,` and `=` in a user name.
fn unescape_name(name: &str) -> Option<String> {
    let out = name.replace("=2C", ",").replace("=3D", "=");
    (!out.contains('=')).then_some(out)
}

/// The value of attribute `key` (`"n"`, `"r"`, ...) among `parts`.
fn attribute<'a>(parts: &[&'a str], key: char) -> Option<&'a str> {
    parts
        .iter()
        .find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

impl ScramServer {
    /// A new exchange for `mechanism`.
    pub fn new(mechanism: Mechanism) -> ScramServer {
        let mut raw = [0u8; 18];
        ring::rand::SystemRandom::new()
            .fill(&mut raw)
            .expect("the system's random source");
        Self::with_nonce(mechanism, &B64.encode(raw))
    }

    /// Its mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The same with the server's nonce given (RFC 7677's example).
    pub fn with_nonce(mechanism: Mechanism, server_nonce: &str) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::First,
            server_nonce: server_nonce.to_owned(),
        }
    }

    /// Takes the client's next message; `lookup` finds a user's
    /// credential for this mechanism.
    pub fn step(&mut self, message: &[u8], lookup: impl Fn(&str) -> Option<Credential>) -> Step {
        let Ok(text) = std::str::from_utf8(message) else {
            self.state = State::Over;
            return Step::Failed("a SCRAM message that is not UTF-8".into());
        };
        match std::mem::replace(&mut self.state, State::Over) {
            State::First => self.first(text, lookup),
            State::Final {
                user,
                credential,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let parts: Vec<&str> = text.split(',').collect();
                let (Some(binding), Some(r), Some(proof)) = (
                    attribute(&parts, 'c'),
                    attribute(&parts, 'r'),
                    attribute(&parts, 'p'),
                ) else {
                    return Step::Failed("a client-final message without c, r or p".into());
                };
                if B64.decode(binding).ok().as_deref() != Some(gs2_header.as_bytes()) {
                    return Step::Failed("channel binding does not match the header".into());
                }
                // Kafka checks only that the client's nonce ends with the
                // one it sent: librdkafka puts its own nonce in front of
                // the whole server nonce again.
                if !r.ends_with(&nonce) {
                    return Step::Failed(
                        "the client-final nonce does not end with the server's".into(),
                    );
                }
                let Ok(proof) = B64.decode(proof) else {
                    return Step::Failed("a proof that is not base64".into());
                };
                let without_proof = &text[..text.rfind(",p=").unwrap_or(text.len())];
                let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
                let m = self.mechanism;
                let client_signature = m.hmac(&credential.stored_key, auth_message.as_bytes());
                if proof.len() != client_signature.len() {
                    return Step::Failed(format!("wrong credentials for {user:?}"));
                }
                let client_key: Vec<u8> = proof
                    .iter()
                    .zip(&client_signature)
                    .map(|(a, b)| a ^ b)
                    .collect();
                if !same(&m.hash(&client_key), &credential.stored_key) {
                    return Step::Failed(format!("wrong credentials for {user:?}"));
                }
                let signature = m.hmac(&credential.server_key, auth_message.as_bytes());
                Step::Done {
                    user,
                    last: format!("v={}", B64.encode(signature)).into_bytes(),
                }
            }
            State::Over => Step::Failed("the exchange is over".into()),
        }
    }

    fn first(&mut self, text: &str, lookup: impl Fn(&str) -> Option<Credential>) -> Step {
        // gs2-header: "n,," or "y,," (no channel binding), with an
        // optional authorization id; then the bare message.
        let mut pieces = text.splitn(3, ',');
        let (Some(cb), Some(authzid), Some(bare)) = (pieces.next(), pieces.next(), pieces.next())
        else {
            return Step::Failed("a client-first message without a GS2 header".into());
        };
        if cb != "n" && cb != "y" {
            return Step::Failed("channel binding is not supported".into());
        }
        let parts: Vec<&str> = bare.split(',').collect();
        let (Some(name), Some(client_nonce)) = (attribute(&parts, 'n'), attribute(&parts, 'r'))
        else {
            return Step::Failed("a client-first message without n or r".into());
        };
        let Some(user) = unescape_name(name) else {
            return Step::Failed("a badly escaped user name".into());
        };
        if !authzid.is_empty()
            && authzid.strip_prefix("a=").and_then(unescape_name) != Some(user.clone())
        {
            return Step::Failed("an authorization id other than the user".into());
        }
        let Some(credential) = lookup(&user) else {
            return Step::Failed(format!(
                "no {} credential for {user:?}",
                self.mechanism.name()
            ));
        };
        let nonce = format!("{client_nonce}{}", self.server_nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        self.state = State::Final {
            user,
            credential,
            gs2_header: format!("{cb},{authzid},"),
            client_first_bare: bare.to_owned(),
            server_first: server_first.clone(),
            nonce,
        };
        Step::Continue(server_first.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677, section 3: the whole exchange, byte for byte.
    #[test]
    fn rfc_7677_example_exchange() {
        let m = Mechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = m.salted_password(b"pencil", &salt, 4096);
        let credential = Credential::from_salted_password(m, salt, 4096, &salted);
        let lookup = |user: &str| (user == "user").then(|| credential.clone());
        let mut server = ScramServer::with_nonce(m, "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
        assert_eq!(
            server.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", lookup),
            Step::Continue(
                b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec()
            )
        );
        assert_eq!(
            server.step(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                lookup
            ),
            Step::Done {
                user: "user".into(),
                last: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec()
            }
        );
    }

    #[test]
    fn a_wrong_proof_an_unknown_user_and_a_changed_nonce_fail() {
        let m = Mechanism::Sha512;
        let credential = Credential::new(m, "secret", 4096);
        assert!(credential.verify_password("secret"));
        assert!(!credential.verify_password("Secret"));
        let lookup = |user: &str| (user == "alice").then(|| credential.clone());
        let mut unknown = ScramServer::new(m);
        assert!(matches!(
            unknown.step(b"n,,n=bob,r=abc", lookup),
            Step::Failed(_)
        ));
        let mut server = ScramServer::with_nonce(m, "xyz");
        assert!(matches!(
            server.step(b"n,,n=alice,r=abc", lookup),
            Step::Continue(_)
        ));
        let bad = format!("c=biws,r=abcxyz,p={}", B64.encode([0u8; 64]));
        assert!(matches!(
            server.step(bad.as_bytes(), lookup),
            Step::Failed(_)
        ));
        let mut server = ScramServer::with_nonce(m, "xyz");
        server.step(b"n,,n=alice,r=abc", lookup);
        let changed = format!("c=biws,r=abcxy,p={}", B64.encode([0u8; 64]));
        assert!(matches!(
            server.step(changed.as_bytes(), lookup),
            Step::Failed(_)
        ));
        // A credential survives its file form.
        let line = credential.to_fields();
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(Credential::from_fields(&fields), Some(credential.clone()));
    }
}
