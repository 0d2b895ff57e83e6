//! SASL/OAUTHBEARER against a JSON Web Key Set, from a file or an
//! identity provider's HTTPS endpoint: tokens signed by its
//! keys (RS256 from a fixed test key, ES256 from one made here) are
//! accepted as their `sub`, anything else is refused and closed; the
//! token's expiry bounds the session; a rotated key set is taken up at the
//! next refresh. Then librdkafka (confluent-kafka), kafka-python and
//! kafkajs produce with tokens they read from a file a sidecar keeps
//! fresh, renewing their sessions on the connections they have; and
//! librdkafka's own unsecured tokens against `--sasl-oauthbearer-unsecured`.

mod common;

use base64::Engine;
use common::key_server::{Answer, KeyServer};
use common::Client;
use gyre_broker::security::oauthbearer::{KeySource, OAuthBearerConfig, TokenValidation};
use gyre_broker::Broker;
use kafka_protocol::messages::{ApiKey, SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ISSUER: &str = "https://idp.test";

fn enc(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A signing key and its public half as a JWK.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl Signer {
    /// The fixed 2048-bit RSA test key, PKCS#1 DER (ring cannot make RSA
    /// keys; `openssl genpkey -algorithm RSA -outform DER` made it).
    fn rsa() -> Signer {
        let der = include_bytes!("fixtures/oauth-rsa.der");
        Signer::Rsa(RsaKeyPair::from_der(der).unwrap())
    }

    fn ec() -> Signer {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Signer::Ec(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
    }

    fn jwk(&self, kid: &str) -> String {
        match self {
            Signer::Rsa(k) => {
                let c: signature::RsaPublicKeyComponents<Vec<u8>> = k.public().into();
                format!(
                    r#"{{"kty":"RSA","kid":"{kid}","alg":"RS256","use":"sig","n":"{}","e":"{}"}}"#,
                    enc(&c.n),
                    enc(&c.e)
                )
            }
            Signer::Ec(k) => {
                let p = k.public_key().as_ref();
                format!(
                    r#"{{"kty":"EC","crv":"P-256","kid":"{kid}","x":"{}","y":"{}"}}"#,
                    enc(&p[1..33]),
                    enc(&p[33..])
                )
            }
        }
    }

    /// A token with `claims`, its header naming `kid`.
    fn token(&self, kid: &str, claims: &str) -> String {
        let alg = match self {
            Signer::Rsa(_) => "RS256",
            Signer::Ec(_) => "ES256",
        };
        let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
        let input = format!("{}.{}", enc(header.as_bytes()), enc(claims.as_bytes()));
        let rng = SystemRandom::new();
        let sig = match self {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .unwrap();
                sig
            }
            Signer::Ec(k) => k.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec(),
        };
        format!("{input}.{}", enc(&sig))
    }

    /// A token for `sub` expiring `life` seconds from now, for this
    /// broker's issuer and audience.
    fn token_for(&self, kid: &str, sub: &str, life: i64) -> String {
        let now = unix_now() as i64;
        self.token_until(kid, sub, now, (now + life) as f64)
    }

    /// A token for `sub` issued at `iat`, expiring at `exp` (seconds
    /// since the epoch; a NumericDate may have a fraction).
    fn token_until(&self, kid: &str, sub: &str, iat: i64, exp: f64) -> String {
        self.token(
            kid,
            &format!(
                r#"{{"sub":"{sub}","iss":"{ISSUER}","aud":["gyre"],"iat":{iat},"exp":{exp:.3}}}"#
            ),
        )
    }
}

fn write_key_set(file: &Path, keys: &[String]) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, key_set(keys)).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// A broker with a SASL_PLAINTEXT listener offering OAUTHBEARER against
/// the key set in `jwks` (read again every 200 ms).
fn broker(tag: &str, jwks: &Path) -> (Broker, SocketAddr) {
    broker_refreshing(tag, jwks, Duration::from_millis(200))
}

/// [`broker`], reading the key set again every `refresh`.
fn broker_refreshing(tag: &str, jwks: &Path, refresh: Duration) -> (Broker, SocketAddr) {
    let config = broker_config(tag, KeySource::File(jwks.to_owned()), refresh);
    let broker = common::start(&config);
    let addr = broker.listeners()[0].addr;
    (broker, addr)
}

/// A broker's settings: a SASL_PLAINTEXT listener offering OAUTHBEARER
/// against the key set at `source`, fetched again every `refresh`.
fn broker_config(tag: &str, source: KeySource, refresh: Duration) -> gyre_broker::BrokerConfig {
    let mut config = common::config(tag);
    config.listeners = vec!["SASL_PLAINTEXT://127.0.0.1:0".parse().unwrap()];
    config.oauthbearer = Some(OAuthBearerConfig {
        expected_issuer: Some(ISSUER.into()),
        expected_audience: vec!["gyre".into()],
        ..OAuthBearerConfig::new(TokenValidation::Jwks { source, refresh })
    });
    config
}

fn key_set(keys: &[String]) -> String {
    format!(r#"{{"keys":[{}]}}"#, keys.join(","))
}

/// An OAUTHBEARER handshake and authentication with `token`: the
/// session lifetime the broker gave, or the error code.
fn bearer(c: &mut Client, token: &str) -> Result<i64, i16> {
    let message = format!("n,,\x01auth=Bearer {token}\x01\x01");
    common::sasl_once(c, "OAUTHBEARER", message.into_bytes())
}

fn dir(tag: &str) -> PathBuf {
    gyre_testkit::scratch_dir(&format!("oauth-{tag}"))
}

#[test]
fn signed_tokens_are_checked_against_the_key_set_and_bound_the_session() {
    let d = dir("raw");
    let jwks = d.join("jwks.json");
    let (rsa, ec, stranger) = (Signer::rsa(), Signer::ec(), Signer::ec());
    write_key_set(&jwks, &[rsa.jwk("rsa-1"), ec.jwk("ec-1")]);
    let (_broker, addr) = broker("oauth-raw", &jwks);

    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("NOPE");
    let r: SaslHandshakeResponse = Client::connect(addr).call(ApiKey::SaslHandshake, 1, &hs);
    assert!(r.mechanisms.iter().any(|m| m.as_str() == "OAUTHBEARER"));

    // Each key's tokens are in, for as long as the token lasts.
    for token in [
        rsa.token_for("rsa-1", "alice", 60),
        ec.token_for("ec-1", "alice", 60),
    ] {
        let mut c = Client::connect(addr);
        let lifetime = bearer(&mut c, &token).expect("accepted");
        assert!((55_000..=60_000).contains(&lifetime), "{lifetime}");
        assert!(common::metadata_answered(&mut c));
    }

    // Refused, and closed: a stranger's signature, a key not in the set,
    // an expired token, another issuer or audience, no signature.
    let now = unix_now();
    let claims = |extra: &str| {
        format!(
            r#"{{"sub":"alice","iss":"{ISSUER}","aud":"gyre","exp":{}{extra}}}"#,
            now + 60
        )
    };
    let unsigned = format!(
        "{}.{}.",
        enc(br#"{"alg":"none"}"#),
        enc(claims("").as_bytes())
    );
    for (what, token) in [
        ("a stranger's key", stranger.token("ec-1", &claims(""))),
        ("an unknown kid", ec.token("ec-9", &claims(""))),
        ("expired", ec.token_for("ec-1", "alice", -120)),
        (
            "another issuer",
            ec.token(
                "ec-1",
                &format!(
                    r#"{{"sub":"alice","iss":"https://evil","aud":"gyre","exp":{}}}"#,
                    now + 60
                ),
            ),
        ),
        (
            "another audience",
            ec.token(
                "ec-1",
                &format!(
                    r#"{{"sub":"alice","iss":"{ISSUER}","aud":"web","exp":{}}}"#,
                    now + 60
                ),
            ),
        ),
        ("no signature", unsigned),
        ("not a token", "garbage".to_owned()),
    ] {
        let mut c = Client::connect(addr);
        assert_eq!(bearer(&mut c, &token), Err(58), "{what}");
        assert!(c.is_closed(), "{what}: left open");
    }

    // The token's expiry ends the session: renewed with a fresh token it
    // goes on; not renewed, its next request closes it.
    let mut c = Client::connect(addr);
    let lifetime = bearer(&mut c, &ec.token_for("ec-1", "alice", 2)).unwrap();
    assert!((1..=2_000).contains(&lifetime), "{lifetime}");
    std::thread::sleep(Duration::from_millis(1_000));
    assert!(bearer(&mut c, &ec.token_for("ec-1", "alice", 2)).is_ok());
    assert!(common::metadata_answered(&mut c), "closed after a renewal");
    // A renewal as another principal is refused.
    let mut other = Client::connect(addr);
    assert!(bearer(&mut other, &ec.token_for("ec-1", "alice", 60)).is_ok());
    assert_eq!(
        bearer(&mut other, &ec.token_for("ec-1", "bob", 60)),
        Err(58)
    );
    std::thread::sleep(Duration::from_millis(2_200));
    assert!(
        !common::metadata_answered(&mut c),
        "served past its token's expiry"
    );

    // Keys rotated: the new key's tokens are taken at the next refresh,
    // the removed key's no more.
    let rotated = Signer::ec();
    write_key_set(&jwks, &[rotated.jwk("ec-2")]);
    std::thread::sleep(Duration::from_millis(800));
    let mut c = Client::connect(addr);
    assert!(bearer(&mut c, &rotated.token_for("ec-2", "alice", 60)).is_ok());
    let mut c = Client::connect(addr);
    assert_eq!(
        bearer(&mut c, &rsa.token_for("rsa-1", "alice", 60)),
        Err(58)
    );
    // A token naming a key id the set lacks has the set read again at
    // once, long before the next refresh: the issuer's retry gets in.
    let (_slow, slow_addr) = broker_refreshing("oauth-raw-kid", &jwks, Duration::from_secs(3_600));
    let newer = Signer::ec();
    write_key_set(&jwks, &[rotated.jwk("ec-2"), newer.jwk("ec-3")]);
    let token = newer.token_for("ec-3", "alice", 60);
    let mut c = Client::connect(slow_addr);
    assert_eq!(
        bearer(&mut c, &token),
        Err(58),
        "not in the set read at start"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(slow_addr);
        if bearer(&mut c, &token).is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the set was never read again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A key set gone bad keeps the keys there were.
    std::fs::write(&jwks, "{").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let mut c = Client::connect(addr);
    assert!(bearer(&mut c, &rotated.token_for("ec-2", "alice", 60)).is_ok());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn keys_from_an_https_endpoint_are_fetched_at_start_again_on_an_unknown_kid_and_kept_through_errors(
) {
    let d = dir("https");
    let (ec, rotated) = (Signer::ec(), Signer::ec());
    let idp = KeyServer::start(&d, &key_set(&[ec.jwk("ec-1")]));
    let source = KeySource::from_url(&idp.url(), Some(idp.ca_file())).unwrap();
    // Refreshing hourly: every fetch after the first is asked for.
    let config = broker_config("oauth-https", source, Duration::from_secs(3_600));
    let broker = common::start(&config);
    let addr = broker.listeners()[0].addr;
    assert_eq!(idp.requests(), 1, "fetched once at start");
    let mut c = Client::connect(addr);
    assert!(bearer(&mut c, &ec.token_for("ec-1", "alice", 60)).is_ok());
    assert!(common::metadata_answered(&mut c));

    // The provider rotates its keys (sent in chunks now): a token naming
    // the new key id has the set fetched again, and the retry gets in.
    idp.set_keys(&key_set(&[rotated.jwk("ec-2")]));
    idp.answer(Answer::Chunked);
    let token = rotated.token_for("ec-2", "alice", 60);
    let in_again = |token: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let mut c = Client::connect(addr);
            if bearer(&mut c, token).is_ok() {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    assert!(in_again(&token), "the rotated key was never fetched");
    assert_eq!(idp.requests(), 2);
    let mut c = Client::connect(addr);
    assert_eq!(bearer(&mut c, &ec.token_for("ec-1", "alice", 60)), Err(58));

    // The provider fails: the keys there were stay, and the broker tries
    // again with a backoff (100 ms, doubling) rather than waiting an hour.
    idp.answer(Answer::Status(503));
    let newer = Signer::ec();
    let mut c = Client::connect(addr);
    assert_eq!(
        bearer(&mut c, &newer.token_for("ec-3", "alice", 60)),
        Err(58)
    );
    let asked = idp.requests();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while idp.requests() < asked + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "no retries after a failed fetch: {} requests",
            idp.requests()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = Client::connect(addr);
    assert!(bearer(&mut c, &token).is_ok(), "the old keys were dropped");
    // Back up with the newer key: a retry takes it up on its own.
    idp.set_keys(&key_set(&[rotated.jwk("ec-2"), newer.jwk("ec-3")]));
    idp.answer(Answer::Keys);
    assert!(in_again(&newer.token_for("ec-3", "alice", 60)));
    drop(broker);

    // A broker does not start on an endpoint it cannot fetch from, nor
    // on one whose certificate its roots do not vouch for; the error
    // names the URL.
    let refused_start = |tag: &str, ca: PathBuf| {
        let source = KeySource::from_url(&idp.url(), Some(ca)).unwrap();
        let config = broker_config(tag, source, Duration::from_secs(60));
        gyre_broker::Broker::start(&config).unwrap_err().to_string()
    };
    idp.answer(Answer::Status(500));
    let e = refused_start("oauth-https-500", idp.ca_file());
    assert!(e.contains(&idp.url()) && e.contains("500"), "{e}");
    idp.answer(Answer::Keys);
    let stranger_ca = d.join("stranger-ca");
    let (other_ca, _, _) =
        gyre_testkit::certs::TestCa::new("another CA").write(&stranger_ca, &["x"]);
    let e = refused_start("oauth-https-ca", other_ca);
    assert!(
        e.contains(&idp.url()) && e.to_lowercase().contains("certificate"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_request_too_big_for_authentication_closes_the_connection_unparsed() {
    use kafka_protocol::messages::SaslAuthenticateRequest;
    let d = dir("big");
    let jwks = d.join("jwks.json");
    write_key_set(&jwks, &[Signer::ec().jwk("ec-1")]);
    let (_broker, addr) = broker("oauth-big", &jwks);
    // Kafka's sasl.server.max.receive.size: 512 KiB before a client is in.
    for (size, closed) in [(100 * 1024, false), (1024 * 1024, true)] {
        let mut c = Client::connect(addr);
        let mut hs = SaslHandshakeRequest::default();
        hs.mechanism = StrBytes::from_static_str("OAUTHBEARER");
        let r: SaslHandshakeResponse = c.call(ApiKey::SaslHandshake, 1, &hs);
        assert_eq!(r.error_code, 0);
        let mut auth = SaslAuthenticateRequest::default();
        let token = "x".repeat(size);
        auth.auth_bytes = format!("n,,\x01auth=Bearer {token}\x01\x01")
            .into_bytes()
            .into();
        c.send(ApiKey::SaslAuthenticate, 1, &auth);
        // A malformed token is answered (refused) below the limit; above
        // it, the connection closes without an answer.
        assert_eq!(c.receive().is_err(), closed, "{size} bytes");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_broker_does_not_start_on_a_key_set_it_cannot_read() {
    let d = dir("missing");
    let mut config = common::config("oauth-missing");
    config.listeners = vec!["SASL_PLAINTEXT://127.0.0.1:0".parse().unwrap()];
    config.oauthbearer = Some(OAuthBearerConfig::new(TokenValidation::Jwks {
        source: KeySource::File(d.join("nowhere.json")),
        refresh: Duration::from_secs(60),
    }));
    let e = Broker::start(&config).unwrap_err().to_string();
    assert!(e.contains("nowhere.json"), "{e}");
}

/// Writes a fresh token (ES256, `life` seconds, to the millisecond) and
/// its expiry to `file` every 200 ms until dropped, as a sidecar
/// refreshing a token file.
struct TokenFile {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenFile {
    fn start(file: PathBuf, signer: Signer, life: f64) -> TokenFile {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let write = move || {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            let exp = now.as_secs_f64() + life;
            let token = signer.token_until("ec-1", "alice", now.as_secs() as i64, exp);
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, format!("{token}\n{exp:.3}\n")).unwrap();
            std::fs::rename(&tmp, &file).unwrap();
        };
        write();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                write();
            }
        });
        TokenFile {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `client` under `runner` with tokens of 6 s from a token file (see
/// [`common::renews_on_its_connections`]): each session ends with its
/// token, so the client must renew them.
fn produces_on_renewed_tokens(tag: &str, runner: &str, client: &str) {
    let d = dir(tag);
    let jwks = d.join("jwks.json");
    let ec = Signer::ec();
    write_key_set(&jwks, &[ec.jwk("ec-1")]);
    let (broker, _) = broker(tag, &jwks);
    let token_file = d.join("token");
    // librdkafka renews at about 90% of a session: 6 s leaves it 600 ms
    // (less the token file's age) on a loaded host.
    let _sidecar = TokenFile::start(token_file.clone(), ec, 6.0);
    let credential = ("OAUTHBEARER", token_file.to_str().unwrap());
    common::renews_on_its_connections(&broker, runner, client, credential, Duration::from_secs(6));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn librdkafka_produces_with_signed_tokens_it_renews() {
    produces_on_renewed_tokens("oauth-librdkafka", "python3", "sasl_reauth.py");
}

#[test]
fn kafka_python_produces_with_signed_tokens_it_renews() {
    produces_on_renewed_tokens(
        "oauth-kafka-python",
        "python3",
        "sasl_reauth_kafka_python.py",
    );
}

#[test]
fn kafkajs_produces_with_signed_tokens_it_renews() {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node_modules/kafkajs");
    assert!(
        modules.is_dir(),
        "kafkajs is not installed: scripts/test installs it"
    );
    produces_on_renewed_tokens("oauth-kafkajs", "node", "sasl_reauth.js");
}

#[test]
fn librdkafka_unsecured_tokens_are_taken_only_where_the_broker_allows_them() {
    let mut config = common::config("oauth-unsecured");
    config.listeners = vec!["SASL_PLAINTEXT://127.0.0.1:0".parse().unwrap()];
    config.oauthbearer = Some(OAuthBearerConfig::new(TokenValidation::Unsecured));
    // The principal the token claims is the one ACLs see: alice may do
    // everything, bob nothing.
    config.authorizer.enabled = true;
    config.authorizer.super_users = vec!["User:alice".into()];
    let broker = common::start(&config);
    let addr = broker.listeners()[0].addr.to_string();
    let args = [addr.as_str(), "unsecured"];
    common::client_script_ok("oauthbearer_unsecured.py", &args, "unsecured ok alice");
    // A broker checking signatures refuses the same client.
    let d = dir("unsecured-refused");
    let jwks = d.join("jwks.json");
    write_key_set(&jwks, &[Signer::ec().jwk("ec-1")]);
    let (_signed, addr) = self::broker("oauth-unsecured-refused", &jwks);
    let addr = addr.to_string();
    let out = common::client_script("oauthbearer_unsecured.py", &[&addr, "unsecured"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("refused"), "{stdout}");
    let _ = std::fs::remove_dir_all(&d);
}
