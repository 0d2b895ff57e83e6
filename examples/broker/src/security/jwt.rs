//! JSON Web Tokens as OAUTHBEARER carries them (RFC 7519): the compact
//! JWS form (`header.claims.signature`, each base64url), a JSON Web Key
//! Set to check signatures against (RFC 7517: RSA, EC P-256/P-384 and
//! Ed25519 public keys), and the signature check itself (RS256/384/512,
//! PS256/384/512, ES256/384, EdDSA) on `ring`. Claims are read as JSON
//! values; which claims a token must carry is the OAUTHBEARER module's
//! business. Uses nothing else of the broker.

use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};

/// Why a token or a key set was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    /// Not three base64url parts, or a part that is not the JSON it must be.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is not one this broker checks.
    #[error("unsupported signature algorithm {0:?}")]
    Algorithm(String),
    /// No key of the set could have made the signature.
    #[error("no key of the key set for {alg} (kid {kid:?})")]
    NoKey {
        /// The token's algorithm.
        alg: String,
        /// The key id it named, if any.
        kid: Option<String>,
    },
    /// A key fits, but the signature is not its.
    #[error("the signature does not verify")]
    Signature,
    /// A JSON Web Key Set that does not parse.
    #[error("invalid key set: {0}")]
    KeySet(String),
}

/// A token split and decoded, before its signature is checked.
#[derive(Debug)]
pub struct Jws {
    /// The JOSE header.
    pub header: Map<String, Value>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// `header.claims` as sent: what the signature signs.
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    // Base64url without padding (RFC 7515 section 2); a padded part is
    // tolerated, as most libraries do.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| JwtError::Malformed("a part that is not base64url"))
}

fn object(bytes: &[u8], what: &'static str) -> Result<Map<String, Value>, JwtError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(JwtError::Malformed(what)),
    }
}

impl Jws {
    /// Splits and decodes a compact JWS (`alg: none` tokens have an empty
    /// signature part).
    pub fn parse(token: &str) -> Result<Jws, JwtError> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed("not three dot-separated parts"));
        };
        Ok(Jws {
            header: object(&b64(h)?, "a header that is not a JSON object")?,
            claims: object(&b64(c)?, "claims that are not a JSON object")?,
            signing_input: token.as_bytes()[..h.len() + 1 + c.len()].to_vec(),
            signature: b64(s)?,
        })
    }

    /// The header's `alg`.
    pub fn alg(&self) -> &str {
        self.header.get("alg").and_then(Value::as_str).unwrap_or("")
    }

    /// Whether the token is unsecured: `alg: none` and no signature.
    pub fn unsecured(&self) -> bool {
        self.alg() == "none" && self.signature.is_empty()
    }

    /// Checks the signature against the keys of `set`: the key the
    /// header's `kid` names, or, without one, each key that fits the
    /// algorithm.
    pub fn verify(&self, set: &JwkSet) -> Result<(), JwtError> {
        let alg = self.alg();
        let family = Family::of(alg).ok_or_else(|| JwtError::Algorithm(alg.to_owned()))?;
        let kid = self.header.get("kid").and_then(Value::as_str);
        let mut fitting = set
            .keys
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.kid.as_deref() == Some(kid)))
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == alg))
            .filter(|k| k.fits(family))
            .peekable();
        if fitting.peek().is_none() {
            return Err(JwtError::NoKey {
                alg: alg.to_owned(),
                kid: kid.map(str::to_owned),
            });
        }
        if fitting.any(|k| k.verifies(alg, &self.signing_input, &self.signature)) {
            Ok(())
        } else {
            Err(JwtError::Signature)
        }
    }
}

/// The kinds of key, as the algorithms need them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    fn of(alg: &str) -> Option<Family> {
        Some(match alg {
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Family::Rsa,
            "ES256" => Family::P256,
            "ES384" => Family::P384,
            "EdDSA" => Family::Ed25519,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Material {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed point (0x04, x, y) on the named curve.
    Ec { p384: bool, point: Vec<u8> },
    /// An Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// One public key of a set.
#[derive(Debug, Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    material: Material,
}

impl Jwk {
    fn fits(&self, family: Family) -> bool {
        match (&self.material, family) {
            (Material::Rsa { .. }, Family::Rsa) => true,
            (Material::Ec { p384, .. }, Family::P256) => !p384,
            (Material::Ec { p384, .. }, Family::P384) => *p384,
            (Material::Ed25519(_), Family::Ed25519) => true,
            _ => false,
        }
    }

    fn verifies(&self, alg: &str, message: &[u8], sig: &[u8]) -> bool {
        match &self.material {
            Material::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                    "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                    "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                    "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                    _ => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            Material::Ec { p384, point } => {
                let params = if *p384 {
                    &signature::ECDSA_P384_SHA384_FIXED
                } else {
                    &signature::ECDSA_P256_SHA256_FIXED
                };
                UnparsedPublicKey::new(params, point)
                    .verify(message, sig)
                    .is_ok()
            }
            Material::Ed25519(key) => UnparsedPublicKey::new(&signature::ED25519, key)
                .verify(message, sig)
                .is_ok(),
        }
    }
}

/// A JSON Web Key Set: the public keys tokens may be signed with.
///
/// ```
/// use gyre_broker::security::jwt::JwkSet;
///
/// let set = JwkSet::parse(br#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
///     "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#).unwrap();
/// assert_eq!(set.len(), 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses a key set (`{"keys": [...]}`). Keys of a type this broker
    /// does not check signatures with, or marked for encryption only, are
    /// skipped, as a set may hold them for others; a key of a known type
    /// with missing or malformed members is an error.
    pub fn parse(json: &[u8]) -> Result<JwkSet, JwtError> {
        let bad = |why: String| JwtError::KeySet(why);
        let root: Value =
            serde_json::from_slice(json).map_err(|e| bad(format!("not JSON: {e}")))?;
        let keys = root
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no \"keys\" array".into()))?;
        let mut set = JwkSet::default();
        for (i, key) in keys.iter().enumerate() {
            let member = |name: &str| -> Result<Vec<u8>, JwtError> {
                let text = key
                    .get(name)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("key {i} has no {name:?}")))?;
                b64(text).map_err(|_| bad(format!("key {i}'s {name:?} is not base64url")))
            };
            if key
                .get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
            {
                continue;
            }
            let kty = key.get("kty").and_then(Value::as_str).unwrap_or("");
            let crv = key.get("crv").and_then(Value::as_str).unwrap_or("");
            let material = match (kty, crv) {
                ("RSA", _) => {
                    let strip = |v: Vec<u8>| -> Vec<u8> {
                        let zeros = v.iter().take_while(|b| **b == 0).count();
                        v[zeros..].to_vec()
                    };
                    Material::Rsa {
                        n: strip(member("n")?),
                        e: strip(member("e")?),
                    }
                }
                ("EC", "P-256" | "P-384") => {
                    let (x, y) = (member("x")?, member("y")?);
                    let size = if crv == "P-256" { 32 } else { 48 };
                    if x.len() != size || y.len() != size {
                        return Err(bad(format!("key {i}'s point is not on {crv}")));
                    }
                    let mut point = Vec::with_capacity(1 + 2 * size);
                    point.push(4);
                    point.extend_from_slice(&x);
                    point.extend_from_slice(&y);
                    Material::Ec {
                        p384: crv == "P-384",
                        point,
                    }
                }
                ("OKP", "Ed25519") => Material::Ed25519(member("x")?),
                _ => continue,
            };
            set.keys.push(Jwk {
                kid: key.get("kid").and_then(Value::as_str).map(str::to_owned),
                alg: key.get("alg").and_then(Value::as_str).map(str::to_owned),
                material,
            });
        }
        Ok(set)
    }

    /// How many keys the set holds that signatures may be checked with.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    fn enc(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn token(header: &str, claims: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let input = format!("{}.{}", enc(header.as_bytes()), enc(claims.as_bytes()));
        let sig = sign(input.as_bytes());
        format!("{input}.{}", enc(&sig))
    }

    #[test]
    fn es256_and_eddsa_tokens_verify_against_their_keys_only() {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let point = ec.public_key().as_ref();
        let ed_pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
        let json = format!(
            r#"{{"keys": [
                {{"kty": "EC", "crv": "P-256", "kid": "ec", "x": "{}", "y": "{}"}},
                {{"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "{}"}},
                {{"kty": "oct", "k": "c2VjcmV0"}},
                {{"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}}
            ]}}"#,
            enc(&point[1..33]),
            enc(&point[33..]),
            enc(ed.public_key().as_ref())
        );
        let set = JwkSet::parse(json.as_bytes()).unwrap();
        assert_eq!(
            set.len(),
            2,
            "the symmetric and encryption keys are skipped"
        );
        let claims = r#"{"sub": "alice"}"#;
        let es = token(r#"{"alg": "ES256", "kid": "ec"}"#, claims, |m| {
            ec.sign(&rng, m).unwrap().as_ref().to_vec()
        });
        let jws = Jws::parse(&es).unwrap();
        assert_eq!(jws.claims["sub"], "alice");
        assert_eq!(jws.verify(&set), Ok(()));
        let eddsa = token(r#"{"alg": "EdDSA"}"#, claims, |m| {
            ed.sign(m).as_ref().to_vec()
        });
        assert_eq!(Jws::parse(&eddsa).unwrap().verify(&set), Ok(()));
        // Another key id, another key's signature, a changed claim.
        let elsewhere = token(r#"{"alg": "ES256", "kid": "gone"}"#, claims, |m| {
            ec.sign(&rng, m).unwrap().as_ref().to_vec()
        });
        assert!(matches!(
            Jws::parse(&elsewhere).unwrap().verify(&set),
            Err(JwtError::NoKey { .. })
        ));
        let mut forged = Jws::parse(&es).unwrap();
        *forged.signing_input.last_mut().unwrap() ^= 1;
        assert_eq!(forged.verify(&set), Err(JwtError::Signature));
        let none = format!("{}.{}.", enc(br#"{"alg":"none"}"#), enc(claims.as_bytes()));
        let none = Jws::parse(&none).unwrap();
        assert!(none.unsecured());
        assert_eq!(none.verify(&set), Err(JwtError::Algorithm("none".into())));
        for bad in ["a.b", "a.b.c.d", "!!.e30.", "e30.W10."] {
            assert!(
                matches!(Jws::parse(bad), Err(JwtError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_key_sets_are_refused_with_a_reason() {
        for (json, why) in [
            (&b"[]"[..], "no \"keys\""),
            (br#"{"keys": [{"kty": "RSA", "e": "AQAB"}]}"#, "no \"n\""),
            (
                br#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "AQ", "y": "AQ"}]}"#,
                "not on P-256",
            ),
        ] {
            let e = JwkSet::parse(json).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}
