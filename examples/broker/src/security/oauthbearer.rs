//! SASL/OAUTHBEARER (RFC 7628, Kafka's KIP-255 and KIP-768): the client's
//! one message carries a bearer token, a JWT, and the broker validates it
//! as Kafka's validators do. With a JSON Web Key Set (Kafka's
//! `sasl.oauthbearer.jwks.endpoint.url`: an identity provider's HTTPS
//! endpoint or a file, fetched again every refresh, when a token names a
//! key id it lacks, and after a failed fetch with a backoff), the token
//! must be signed by one of its keys; with
//! `unsecured` (Kafka's default `OAuthBearerUnsecuredValidatorCallbackHandler`,
//! for development only), it must be unsigned (`alg: none`). Either way it
//! must be current (`exp`, and `iat`/`nbf` not in the future, within the
//! clock skew), name its principal (the `sub` claim, or the one
//! configured), and carry the expected issuer and audience where they are
//! set. The token's expiry bounds the session (KIP-368): the client is
//! told to re-authenticate before it. Uses the JWT and HTTPS-fetch
//! modules beside it.

use super::https_get::HttpsGet;
use super::jwt::{JwkSet, Jws, JwtError};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How tokens are checked.
#[derive(Debug, Clone)]
pub enum TokenValidation {
    /// Signed by a key of the JSON Web Key Set at `source`, which is
    /// fetched at start and again every `refresh` (Kafka's
    /// `sasl.oauthbearer.jwks.endpoint.refresh.ms`, default an hour), so
    /// an identity provider's rotated keys are taken up.
    Jwks {
        /// Where the key set is.
        source: KeySource,
        /// How often it is fetched again.
        refresh: Duration,
    },
    /// Unsigned tokens (`alg: none`), as Kafka's default validator takes
    /// them: anyone may claim any principal. For development only.
    Unsecured,
}

/// Where a JSON Web Key Set is fetched from.
///
/// ```
/// use gyre_broker::security::oauthbearer::KeySource;
///
/// // Kafka's sasl.oauthbearer.jwks.endpoint.url forms.
/// let idp = KeySource::from_url("https://login.example.com/realms/kafka/certs", None)?;
/// assert!(matches!(idp, KeySource::Https { .. }));
/// let file = KeySource::from_url("file:///etc/gyre/jwks.json", None)?;
/// assert_eq!(file, KeySource::File("/etc/gyre/jwks.json".into()));
/// assert!(KeySource::from_url("http://login.example.com/certs", None).is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file (kept current by whatever writes it).
    File(PathBuf),
    /// An identity provider's HTTPS endpoint (its `jwks_uri`).
    Https {
        /// The `https://` URL.
        url: String,
        /// The roots its certificate is checked against (PEM); the
        /// system's bundle without one.
        ca_file: Option<PathBuf>,
    },
}

impl KeySource {
    /// A source from Kafka's URL forms: `https://...`, or `file:` with a
    /// path (`file:/p`, `file:///p`). `ca_file` is for an HTTPS one.
    pub fn from_url(url: &str, ca_file: Option<PathBuf>) -> Result<KeySource, String> {
        if let Some(path) = url.strip_prefix("file://") {
            return Ok(KeySource::File(path.into()));
        }
        if let Some(path) = url.strip_prefix("file:") {
            return Ok(KeySource::File(path.into()));
        }
        super::https_get::HttpsUrl::parse(url)?;
        Ok(KeySource::Https {
            url: url.to_owned(),
            ca_file,
        })
    }
}

/// The settings of SASL listeners' OAUTHBEARER mechanism.
///
/// ```
/// use gyre_broker::security::oauthbearer::{KeySource, OAuthBearerConfig, TokenValidation};
/// use std::time::Duration;
///
/// let config = OAuthBearerConfig {
///     expected_issuer: Some("https://login.example.com".into()),
///     expected_audience: vec!["kafka".into()],
///     ..OAuthBearerConfig::new(TokenValidation::Jwks {
///         source: KeySource::File("/etc/gyre/jwks.json".into()),
///         refresh: Duration::from_secs(3600),
///     })
/// };
/// assert_eq!(config.principal_claim, "sub");
/// assert_eq!(config.clock_skew, Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct OAuthBearerConfig {
    /// How tokens are checked.
    pub validation: TokenValidation,
    /// The claim naming the principal (Kafka's
    /// `sasl.oauthbearer.sub.claim.name`; default `sub`).
    pub principal_claim: String,
    /// The issuer (`iss`) tokens must name, if set
    /// (`sasl.oauthbearer.expected.issuer`).
    pub expected_issuer: Option<String>,
    /// Audiences of which a token's `aud` must name one, if any are set
    /// (`sasl.oauthbearer.expected.audience`).
    pub expected_audience: Vec<String>,
    /// How far the broker's clock and the issuer's may differ
    /// (`sasl.oauthbearer.clock.skew.seconds`; default 30 s).
    pub clock_skew: Duration,
}

impl OAuthBearerConfig {
    /// Tokens checked by `validation`, with Kafka's defaults otherwise.
    pub fn new(validation: TokenValidation) -> OAuthBearerConfig {
        OAuthBearerConfig {
            validation,
            principal_claim: "sub".to_owned(),
            expected_issuer: None,
            expected_audience: Vec::new(),
            clock_skew: Duration::from_secs(30),
        }
    }
}

/// A key set that could not be fetched or used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the OAUTHBEARER key set {origin}: {why}")]
pub struct KeySetError {
    /// The file or URL.
    pub origin: String,
    /// What is wrong with it.
    pub why: String,
}

/// How long one HTTPS fetch of a key set may wait at each step.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Fetches a key set from where it is.
#[derive(Debug)]
enum Fetcher {
    File(PathBuf),
    Https(HttpsGet),
}

impl Fetcher {
    fn new(source: &KeySource) -> Result<Fetcher, KeySetError> {
        Ok(match source {
            KeySource::File(f) => Fetcher::File(f.clone()),
            KeySource::Https { url, ca_file } => Fetcher::Https(
                HttpsGet::new(url, ca_file.as_deref(), FETCH_TIMEOUT).map_err(|why| {
                    KeySetError {
                        origin: url.clone(),
                        why,
                    }
                })?,
            ),
        })
    }

    fn origin(&self) -> String {
        match self {
            Fetcher::File(f) => f.display().to_string(),
            Fetcher::Https(get) => get.url().to_owned(),
        }
    }

    fn fetch(&self) -> Result<JwkSet, KeySetError> {
        let error = |why: String| KeySetError {
            origin: self.origin(),
            why,
        };
        let bytes = match self {
            Fetcher::File(f) => std::fs::read(f).map_err(|e| error(e.to_string()))?,
            Fetcher::Https(get) => get.get().map_err(error)?,
        };
        read_key_set(&bytes).map_err(error)
    }
}

fn read_key_set(bytes: &[u8]) -> Result<JwkSet, String> {
    let set = JwkSet::parse(bytes).map_err(|e| e.to_string())?;
    if set.is_empty() {
        return Err("it holds no signature key".into());
    }
    Ok(set)
}

/// A token accepted.
#[derive(Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Its principal.
    pub principal: String,
    /// When it expires.
    pub expires: SystemTime,
}

/// Validates OAUTHBEARER messages; shared by every connection.
///
/// ```
/// use gyre_broker::security::oauthbearer::{OAuthBearer, OAuthBearerConfig, TokenValidation};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let v = OAuthBearer::new(OAuthBearerConfig::new(TokenValidation::Unsecured))?;
/// // {"alg":"none"} . {"sub":"alice","exp":2000000000} . (no signature)
/// let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMH0.";
/// let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// assert_eq!(v.validate(token, now)?.principal, "alice");
/// // Past its expiry (and the 30 s of clock skew) it is refused.
/// assert!(v.validate(token, UNIX_EPOCH + Duration::from_secs(2_000_000_031)).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OAuthBearer {
    config: OAuthBearerConfig,
    /// Where the keys come from (`None`: unsecured).
    fetcher: Option<Fetcher>,
    keys: RwLock<Arc<JwkSet>>,
    /// Asks the refresher to read the key set now (a token named a key id
    /// the set lacks: the issuer may have rotated its keys); set once the
    /// refresher runs.
    reread: std::sync::OnceLock<crossbeam_channel::Sender<()>>,
}

impl OAuthBearer {
    /// Ready to validate; with a key set, fetches it first (a broker
    /// does not start on keys it cannot get, as Kafka's does not).
    pub fn new(config: OAuthBearerConfig) -> Result<OAuthBearer, KeySetError> {
        let fetcher = match &config.validation {
            TokenValidation::Jwks { source, .. } => Some(Fetcher::new(source)?),
            TokenValidation::Unsecured => None,
        };
        let keys = match &fetcher {
            Some(f) => f.fetch()?,
            None => JwkSet::default(),
        };
        Ok(OAuthBearer {
            config,
            fetcher,
            keys: RwLock::new(Arc::new(keys)),
            reread: std::sync::OnceLock::new(),
        })
    }

    /// Fetches the key set again (the refresher's work, off the event
    /// loops; an HTTPS fetch waits on the network). A source that went bad
    /// keeps the keys there were: a refresh never locks everyone out.
    pub fn refresh_keys(&self) -> Result<usize, KeySetError> {
        let Some(fetcher) = &self.fetcher else {
            return Ok(0);
        };
        let set = fetcher.fetch()?;
        let n = set.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(n)
    }

    /// Takes the client's first message (`n,[a=authzid],` then
    /// `key=value` pairs each ended by 0x01, one of them
    /// `auth=Bearer <token>`, then 0x01), at `now`.
    pub fn authenticate(&self, message: &[u8], now: SystemTime) -> Result<Accepted, String> {
        let text = std::str::from_utf8(message).map_err(|_| "a message that is not UTF-8")?;
        let (authzid, pairs) = gs2_header(text)?;
        let mut token = None;
        let mut rest = pairs
            .strip_suffix('\x01')
            .ok_or("a message not ended by 0x01")?;
        while !rest.is_empty() {
            let (pair, after) = rest
                .split_once('\x01')
                .ok_or("a key=value pair not ended by 0x01")?;
            let (key, value) = pair.split_once('=').ok_or("a pair without '='")?;
            if key == "auth" {
                let t = value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .ok_or("an auth value that is not a bearer token")?;
                token = Some(t.trim());
            }
            // Other keys are SASL extensions (KIP-342): no validator of
            // ours takes any, and Kafka's default ignores them too.
            rest = after;
        }
        let token = token.ok_or("no auth=Bearer token")?;
        let accepted = self.validate(token, now).map_err(|e| e.to_string())?;
        if let Some(authzid) = authzid {
            if authzid != accepted.principal {
                return Err(format!(
                    "authorization id {authzid:?} is not the token's principal {:?}",
                    accepted.principal
                ));
            }
        }
        Ok(accepted)
    }

    /// Checks a token: its signature (or its lack of one), its times, its
    /// principal, issuer and audience.
    pub fn validate(&self, token: &str, now: SystemTime) -> Result<Accepted, TokenError> {
        let jws = Jws::parse(token)?;
        match self.config.validation {
            TokenValidation::Unsecured if !jws.unsecured() => {
                return Err(TokenError::Claim(format!(
                    "an unsecured listener takes only unsigned tokens (alg none), not {}",
                    jws.alg()
                )))
            }
            TokenValidation::Unsecured => {}
            TokenValidation::Jwks { .. } => {
                let keys = self.keys.read().unwrap_or_else(|e| e.into_inner()).clone();
                let verified = jws.verify(&keys);
                if let Err(JwtError::NoKey { kid: Some(_), .. }) = &verified {
                    // As Kafka: a key id the set lacks has the set read
                    // again (this token is refused; the client's retry
                    // finds the key). Never waits: a request already
                    // pending stands for this one.
                    if let Some(ask) = self.reread.get() {
                        let _ = ask.try_send(());
                    }
                }
                verified?;
            }
        }
        let claims = &jws.claims;
        let skew = self.config.clock_skew.as_secs_f64();
        let now_s = now
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let time = |name: &str| -> Result<Option<f64>, TokenError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| TokenError::Claim(format!("{name} is not a number"))),
            }
        };
        let exp = time("exp")?.ok_or_else(|| TokenError::Claim("no exp".into()))?;
        if exp + skew <= now_s {
            return Err(TokenError::Claim(format!(
                "expired {:.0} s ago",
                now_s - exp
            )));
        }
        for name in ["iat", "nbf"] {
            if time(name)?.is_some_and(|t| t > now_s + skew) {
                return Err(TokenError::Claim(format!("{name} is in the future")));
            }
        }
        let principal = claims
            .get(&self.config.principal_claim)
            .and_then(Value::as_str)
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| {
                TokenError::Claim(format!(
                    "no principal: the {:?} claim is missing or empty",
                    self.config.principal_claim
                ))
            })?;
        if let Some(issuer) = &self.config.expected_issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
                return Err(TokenError::Claim(format!("the issuer is not {issuer:?}")));
            }
        }
        if !self.config.expected_audience.is_empty() {
            let named: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !named
                .iter()
                .any(|a| self.config.expected_audience.iter().any(|e| e == a))
            {
                return Err(TokenError::Claim(format!(
                    "the audience {named:?} names none of {:?}",
                    self.config.expected_audience
                )));
            }
        }
        Ok(Accepted {
            principal: principal.to_owned(),
            expires: UNIX_EPOCH + Duration::from_secs_f64(exp.max(0.0)),
        })
    }
}

/// The least time between two readings of the key set that tokens with
/// unknown key ids asked for.
const REREAD_AT_MOST: Duration = Duration::from_secs(1);

/// The first wait before a failed fetch is tried again, doubled after
/// each failure up to [`RETRY_MOST`] (Kafka's
/// `sasl.oauthbearer.jwks.endpoint.retry.backoff.ms` and `.max.ms`).
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between fetches while they fail.
const RETRY_MOST: Duration = Duration::from_secs(10);

/// Fetches a validator's key set again every refresh, when a token names
/// a key id the set lacks (at most once a second), and after a failed
/// fetch (from 100 ms, doubling, to 10 s), on a thread of its own, until
/// dropped.
#[derive(Debug)]
pub(crate) struct KeyRefresher {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Joined when dropped: false for an HTTPS source, whose fetch may
    /// wait on the network (the thread ends after it, on its own).
    join: bool,
}

impl KeyRefresher {
    /// Starts refreshing `validator`'s keys, if it has a key set.
    pub(crate) fn start(validator: &Arc<OAuthBearer>) -> std::io::Result<Option<KeyRefresher>> {
        let TokenValidation::Jwks { refresh, source } = &validator.config.validation else {
            return Ok(None);
        };
        let refresh = *refresh;
        let join = matches!(source, KeySource::File(_));
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let (ask, asked) = crossbeam_channel::bounded::<()>(1);
        let _ = validator.reread.set(ask);
        let validator = Arc::downgrade(validator);
        let thread = std::thread::Builder::new()
            .name("gyre-broker-jwks".into())
            .spawn(move || {
                let mut next = std::time::Instant::now() + refresh;
                let mut last = std::time::Instant::now();
                let mut backoff = RETRY_FIRST;
                loop {
                    let wait = next.saturating_duration_since(std::time::Instant::now());
                    crossbeam_channel::select! {
                        // Dropped: the broker stops.
                        recv(stopped) -> _ => return,
                        recv(asked) -> r => {
                            // Disconnected: the validator is gone.
                            if r.is_err() {
                                return;
                            }
                            if last.elapsed() < REREAD_AT_MOST {
                                // Too soon after the last fetch: one a
                                // second after it, not never.
                                next = next.min(last + REREAD_AT_MOST);
                                continue;
                            }
                        }
                        default(wait) => {}
                    }
                    last = std::time::Instant::now();
                    let Some(v) = validator.upgrade() else { return };
                    match v.refresh_keys() {
                        Ok(keys) => {
                            tracing::debug!(keys, "OAUTHBEARER key set fetched again");
                            next = std::time::Instant::now() + refresh;
                            backoff = RETRY_FIRST;
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "OAUTHBEARER keys kept as they were");
                            next = std::time::Instant::now() + backoff.min(refresh);
                            backoff = (backoff * 2).min(RETRY_MOST);
                        }
                    }
                }
            })?;
        Ok(Some(KeyRefresher {
            stop: Some(stop),
            thread: Some(thread),
            join,
        }))
    }
}

impl Drop for KeyRefresher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take().filter(|_| self.join) {
            let _ = t.join();
        }
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Its form or signature.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// A claim, or the token's kind.
    #[error("{0}")]
    Claim(String),
}

/// Splits RFC 5801's GS2 header off: `n,,` or `n,a=authzid,` (no channel
/// binding: `y` and `p` are refused).
fn gs2_header(text: &str) -> Result<(Option<&str>, &str), String> {
    let rest = text
        .strip_prefix("n,")
        .ok_or("a GS2 header that is not n, (channel binding is not offered)")?;
    let (authzid, pairs) = rest.split_once(',').ok_or("a GS2 header without its end")?;
    let authzid = match authzid {
        "" => None,
        a => Some(a.strip_prefix("a=").ok_or("a GS2 authzid that is not a=")?),
    };
    let pairs = pairs
        .strip_prefix('\x01')
        .ok_or("no 0x01 after the GS2 header")?;
    Ok((authzid, pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn enc(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn unsigned(claims: &str) -> String {
        format!("{}.{}.", enc(r#"{"alg":"none"}"#), enc(claims))
    }

    fn message(authzid: &str, token: &str) -> Vec<u8> {
        format!("n,{authzid},\x01host=localhost\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    #[test]
    fn an_unsecured_validator_checks_times_principal_issuer_and_audience() {
        let v = OAuthBearer::new(OAuthBearerConfig {
            expected_issuer: Some("idp".into()),
            expected_audience: vec!["kafka".into(), "gyre".into()],
            ..OAuthBearerConfig::new(TokenValidation::Unsecured)
        })
        .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let good = r#"{"sub":"alice","exp":1000100,"iat":999990,"iss":"idp","aud":["x","gyre"]}"#;
        let accepted = v.authenticate(&message("", &unsigned(good)), now).unwrap();
        assert_eq!(accepted.principal, "alice");
        assert_eq!(
            accepted.expires,
            UNIX_EPOCH + Duration::from_secs(1_000_100)
        );
        assert!(v
            .authenticate(&message("a=alice", &unsigned(good)), now)
            .is_ok());
        for (msg, why) in [
            (message("a=bob", &unsigned(good)), "authorization id"),
            (
                message(
                    "",
                    &unsigned(r#"{"sub":"a","exp":999900,"iss":"idp","aud":"kafka"}"#),
                ),
                "expired",
            ),
            (
                message(
                    "",
                    &unsigned(
                        r#"{"sub":"a","exp":1000100,"nbf":1000060,"iss":"idp","aud":"kafka"}"#,
                    ),
                ),
                "nbf is in the future",
            ),
            (
                message(
                    "",
                    &unsigned(r#"{"exp":1000100,"iss":"idp","aud":"kafka"}"#),
                ),
                "no principal",
            ),
            (
                message(
                    "",
                    &unsigned(r#"{"sub":"a","exp":1000100,"iss":"other","aud":"kafka"}"#),
                ),
                "issuer",
            ),
            (
                message(
                    "",
                    &unsigned(r#"{"sub":"a","exp":1000100,"iss":"idp","aud":"web"}"#),
                ),
                "audience",
            ),
            (
                message("", &unsigned(r#"{"sub":"a","iss":"idp","aud":"kafka"}"#)),
                "no exp",
            ),
            (
                message(
                    "",
                    &format!("{}.{}.c2ln", enc(r#"{"alg":"RS256"}"#), enc(good)),
                ),
                "only unsigned",
            ),
            (b"y,,\x01auth=Bearer x\x01\x01".to_vec(), "channel binding"),
            (b"n,,\x01host=x\x01\x01".to_vec(), "no auth"),
            (b"n,,\x01auth=Basic x\x01\x01".to_vec(), "not a bearer"),
            (b"n,,\x01auth=Bearer x\x01".to_vec(), "not ended"),
        ] {
            let e = v.authenticate(&msg, now).unwrap_err();
            assert!(e.contains(why), "{e} (wanted {why})");
        }
        // Within the clock skew an expired token still passes.
        let just = r#"{"sub":"a","exp":999980,"iss":"idp","aud":"kafka"}"#;
        assert!(v.authenticate(&message("", &unsigned(just)), now).is_ok());
    }

    #[test]
    fn a_key_set_file_is_required_to_hold_a_key_and_a_bad_refresh_keeps_the_old_keys() {
        let dir = gyre_testkit::scratch_root().join(format!("gyre-oauth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("jwks.json");
        let config = || {
            OAuthBearerConfig::new(TokenValidation::Jwks {
                source: KeySource::File(file.clone()),
                refresh: Duration::from_secs(60),
            })
        };
        let e = OAuthBearer::new(config()).unwrap_err().to_string();
        assert!(e.contains("jwks.json"), "{e}");
        std::fs::write(&file, r#"{"keys": []}"#).unwrap();
        let e = OAuthBearer::new(config()).unwrap_err().to_string();
        assert!(e.contains("no signature key"), "{e}");
        let key = r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        std::fs::write(&file, key).unwrap();
        let v = OAuthBearer::new(config()).unwrap();
        std::fs::write(&file, "not json").unwrap();
        assert!(v.refresh_keys().is_err());
        assert_eq!(v.keys.read().unwrap().len(), 1, "the old keys stay");
        // An unsigned token is refused where keys are required.
        let now = UNIX_EPOCH + Duration::from_secs(10);
        let e = v
            .validate(&unsigned(r#"{"sub":"a","exp":100}"#), now)
            .unwrap_err();
        assert!(e.to_string().contains("none"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
