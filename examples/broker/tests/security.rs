//! The broker's security against real clients: listeners by protocol
//! (PLAINTEXT, SASL_PLAINTEXT and SASL_SSL at once), users added with the
//! `users` subcommand and stored hashed, and kcat (librdkafka 2.0),
//! kafka-python, confluent-kafka and kafkajs authenticating with PLAIN,
//! SCRAM-SHA-256 and SCRAM-SHA-512 in clear text and over TLS; a wrong
//! password and a client that skips SASL refused, the plaintext listener
//! still open; users managed through AlterUserScramCredentials and
//! DescribeUserScramCredentials; ACLs (CreateAcls, DescribeAcls,
//! DeleteAcls through confluent-kafka) deciding who may write, read,
//! commit and manage them; on an SSL listener, a client certificate's
//! subject as the principal; each listener advertising its own address.

mod common;

use common::process::BrokerProcess;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn data_dir(tag: &str) -> PathBuf {
    gyre_testkit::scratch_dir(&format!("security-{tag}"))
}

fn broker_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gyre-broker"))
}

/// A CA and a certificate it signs for `localhost` and 127.0.0.1: (CA
/// file, cert, key).
fn certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    gyre_testkit::certs::TestCa::new("broker test CA").write(dir, &["localhost", "127.0.0.1"])
}

/// Runs `cmd`; its stdout and stderr, and whether it succeeded.
fn run(mut cmd: Command, input: Option<&[u8]>) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test installs the clients)"));
    let mut stdin = child.stdin.take().unwrap();
    if let Some(input) = input {
        stdin.write_all(input).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a client script against `broker` and checks it succeeded and
/// printed `done` (the broker's log is shown if not).
fn client_passes(client: Command, done: &str, broker: &BrokerProcess) {
    let (ok, out, err) = run(client, None);
    assert!(ok, "{out}\n{err}\n{}", broker.stderr());
    assert!(out.contains(done), "{out}");
}

/// A broker with three listeners and one user; (broker, plaintext,
/// sasl_plaintext, sasl_ssl addresses, CA file).
fn secured(tag: &str) -> (BrokerProcess, [String; 3], PathBuf, PathBuf) {
    let dir = data_dir(tag);
    let data = dir.join("data");
    let (ca, cert, key) = certs(&dir);
    let out = add_user(&data, "alice", "wonder land");
    assert!(out.contains("SCRAM-SHA-512 set"), "{out}");
    let stored = std::fs::read_to_string(data.join("security/credentials")).unwrap();
    assert!(
        !stored.contains("wonder land"),
        "the password is not stored"
    );
    let mut broker = BrokerProcess::start(
        &data,
        &[
            "--listener",
            "PLAINTEXT://127.0.0.1:0",
            "--listener",
            "SASL_PLAINTEXT://127.0.0.1:0",
            "--listener",
            "SASL_SSL://127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let addrs = [0, 1, 2].map(|_| next_listener(&mut broker));
    (broker, addrs, ca, dir)
}

/// Adds `user` with `password` to the data folder's credentials, with the
/// `users` subcommand; what it printed.
fn add_user(data: &Path, user: &str, password: &str) -> String {
    let mut add = broker_bin();
    add.arg("users").arg("--data").arg(data).args([
        "add",
        user,
        "--password",
        password,
        "--iterations",
        "4096",
    ]);
    let (ok, out, err) = run(add, None);
    assert!(ok, "users add {user}: {err}");
    out
}

/// The address of the broker's next listener line (`listener P://addr`).
fn next_listener(broker: &mut BrokerProcess) -> String {
    let line = broker.next_line();
    line.split("://")
        .nth(1)
        .unwrap_or_else(|| panic!("not a listener line: {line:?}"))
        .to_owned()
}

/// A client script of `tests/clients`, run by python3.
fn python(script: &str) -> Command {
    let mut c = Command::new("python3");
    c.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/clients")
            .join(script),
    );
    c
}

fn kcat(
    addr: &str,
    protocol: &str,
    mechanism: &str,
    password: &str,
    ca: &Path,
    args: &[&str],
) -> Command {
    let mut c = Command::new("kcat");
    c.args(["-b", addr, "-X"])
        .arg(format!("security.protocol={protocol}"))
        .args(["-X", &format!("sasl.mechanisms={mechanism}")])
        .args(["-X", "sasl.username=alice", "-X"])
        .arg(format!("sasl.password={password}"))
        .args(["-X", &format!("ssl.ca.location={}", ca.display())])
        .args(args);
    c
}

#[test]
fn kcat_authenticates_with_every_mechanism_in_clear_and_over_tls() {
    let sessions_before = gyre_testkit::kernel_tls_sessions();
    let (broker, [plain, sasl, sasl_ssl], ca, dir) = secured("kcat");
    let pw = "wonder land";
    for (addr, protocol, mechanism) in [
        (&sasl, "SASL_PLAINTEXT", "SCRAM-SHA-256"),
        (&sasl, "SASL_PLAINTEXT", "SCRAM-SHA-512"),
        (&sasl_ssl, "SASL_SSL", "PLAIN"),
        (&sasl_ssl, "SASL_SSL", "SCRAM-SHA-512"),
    ] {
        let line = format!("{protocol} {mechanism}\n");
        let (ok, _, err) = run(
            kcat(addr, protocol, mechanism, pw, &ca, &["-P", "-t", "secure"]),
            Some(line.as_bytes()),
        );
        assert!(ok, "{protocol} {mechanism}: {err}");
    }
    // Read back over TLS; the fetch's file regions are encrypted.
    let (ok, out, err) = run(
        kcat(
            &sasl_ssl,
            "SASL_SSL",
            "SCRAM-SHA-256",
            pw,
            &ca,
            &["-C", "-t", "secure", "-e", "-q"],
        ),
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(
        out,
        "SASL_PLAINTEXT SCRAM-SHA-256\nSASL_PLAINTEXT SCRAM-SHA-512\nSASL_SSL PLAIN\nSASL_SSL SCRAM-SHA-512\n"
    );
    // Where the kernel has TLS, the SASL_SSL connections went to it (two
    // produces and the fetch, each on at least one connection).
    gyre_testkit::check_kernel_tls_took(sessions_before, 3, "SASL_SSL");
    // A wrong password is refused, with the reason logged by the broker.
    let (ok, _, err) = run(
        kcat(
            &sasl,
            "SASL_PLAINTEXT",
            "SCRAM-SHA-256",
            "wrong",
            &ca,
            &["-L", "-m", "5"],
        ),
        None,
    );
    assert!(!ok && err.contains("Authentication failed"), "{err}");
    assert!(broker.stderr().contains("SASL authentication failed"));
    // A client that does not authenticate gets nothing on a SASL listener.
    let (ok, _, _) = run(
        {
            let mut c = Command::new("kcat");
            c.args(["-b", &sasl, "-L", "-m", "3"]);
            c
        },
        None,
    );
    assert!(!ok);
    assert!(broker.stderr().contains("before SASL authentication"));
    // The plaintext listener is open to anyone, as configured.
    let (ok, out, err) = run(
        {
            let mut c = Command::new("kcat");
            c.args(["-b", &plain, "-C", "-t", "secure", "-e", "-q", "-c", "1"]);
            c
        },
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "SASL_PLAINTEXT SCRAM-SHA-256\n");
    drop(broker);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn kafka_python_confluent_kafka_and_kafkajs_authenticate() {
    let (broker, [_, sasl, sasl_ssl], ca, dir) = secured("clients");
    let clients = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    let mut py = python("sasl.py");
    py.args([&sasl, &sasl_ssl])
        .arg(&ca)
        .args(["py-topic", "alice", "wonder land"]);
    client_passes(py, "sasl ok 4", &broker);
    // Users managed through AlterUserScramCredentials and
    // DescribeUserScramCredentials (confluent-kafka's admin client).
    let mut admin = python("scram_admin.py");
    admin.args([&sasl, "alice", "wonder land"]);
    client_passes(admin, "scram admin ok", &broker);
    assert!(
        clients.join("node_modules/kafkajs").is_dir(),
        "kafkajs is not installed: scripts/test installs it"
    );
    let mut js = Command::new("node");
    js.arg(clients.join("sasl.js"))
        .args([&sasl, &sasl_ssl])
        .arg(&ca)
        .args(["js-topic", "alice", "wonder land"]);
    client_passes(js, "sasl ok 3", &broker);
    drop(broker);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn users_are_listed_and_removed_and_a_tls_listener_needs_a_certificate() {
    let dir = data_dir("users");
    let data = dir.join("data");
    for args in [
        vec![
            "add",
            "bob",
            "--password",
            "pw",
            "--mechanism",
            "SCRAM-SHA-256",
        ],
        vec!["list"],
        vec!["remove", "bob"],
        vec!["list"],
    ] {
        let mut c = broker_bin();
        c.arg("users").arg("--data").arg(&data).args(&args);
        let (ok, out, err) = run(c, None);
        assert!(ok, "{args:?}: {err}");
        match args[0] {
            "list" if out.is_empty() => {}
            "list" => assert!(
                out.starts_with("bob\tSCRAM-SHA-256 (8192 iterations)"),
                "{out}"
            ),
            _ => {}
        }
    }
    let mut c = broker_bin();
    c.arg("users").arg("--data").arg(&data).args([
        "add",
        "x",
        "--password",
        "p",
        "--iterations",
        "10",
    ]);
    let (ok, _, err) = run(c, None);
    assert!(!ok && err.contains("at least 4096"), "{err}");
    let mut c = broker_bin();
    c.args(["--data"])
        .arg(&data)
        .args(["--listener", "SSL://127.0.0.1:0"]);
    let (ok, _, err) = run(c, None);
    assert!(!ok && err.contains("needs a certificate"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn acls_decide_who_may_write_read_commit_and_manage_them() {
    let dir = data_dir("acls");
    let data = dir.join("data");
    for user in ["admin", "alice", "bob"] {
        add_user(&data, user, "pw");
    }
    let mut broker = BrokerProcess::start(
        &data,
        &[
            "--listener",
            "SASL_PLAINTEXT://127.0.0.1:0",
            "--authorizer",
            "--super-user",
            "User:admin",
        ],
    );
    let addr = next_listener(&mut broker);
    let mut py = python("acls.py");
    py.args([&addr, "pw"]);
    client_passes(py, "acls ok", &broker);
    // The ACLs outlive the broker: alice's READ on the group is still
    // there after a restart, and nothing but bindings is in the file.
    drop(broker);
    let acls = std::fs::read_to_string(data.join("security/acls")).unwrap();
    assert!(
        acls.contains("User:bob") && !acls.contains("User:alice\t*\torders"),
        "{acls}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// An SSL listener requiring client certificates, with `mapping_rules` if
/// given, and the super user `admin`: `ssl_principal.py` checks that the
/// ACL for alice's principal lets her write and bob's is refused.
fn client_certificates_name_principals(name: &str, mapping_rules: Option<&str>) {
    let dir = data_dir(name);
    let data = dir.join("data");
    let (ca, cert, key) = certs(&dir);
    let clients = gyre_testkit::certs::TestCa::new("client CA");
    let client_ca = dir.join("clients-ca.pem");
    std::fs::write(&client_ca, clients.pem()).unwrap();
    for user in ["admin", "alice", "bob"] {
        let leaf = clients.issue(&[user]);
        std::fs::write(dir.join(format!("{user}.pem")), leaf.cert_pem).unwrap();
        std::fs::write(dir.join(format!("{user}.key")), leaf.key_pem).unwrap();
    }
    let mut args = vec![
        "--listener",
        "SSL://127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-client-ca",
        client_ca.to_str().unwrap(),
        "--authorizer",
        "--super-user",
    ];
    match mapping_rules {
        Some(rules) => args.extend(["User:admin", "--ssl-principal-mapping-rules", rules]),
        None => args.push("User:CN=admin"),
    }
    let mut broker = BrokerProcess::start(&data, &args);
    let addr = next_listener(&mut broker);
    let mut py = python("ssl_principal.py");
    py.arg(&addr).arg(&ca).arg(&dir);
    if mapping_rules.is_some() {
        py.arg("mapped");
    }
    client_passes(py, "ssl principal ok", &broker);
    drop(broker);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_client_certificate_names_the_principal_on_an_ssl_listener() {
    client_certificates_name_principals("ssl-principal", None);
}

/// Kafka's `ssl.principal.mapping.rules`: the CN alone is the principal.
#[test]
fn principal_mapping_rules_turn_a_subject_into_a_name() {
    client_certificates_name_principals(
        "ssl-principal-mapped",
        Some("RULE:^CN=([a-z]+)$/$1/L,DEFAULT"),
    );
}

#[test]
fn each_listener_advertises_its_own_address() {
    let dir = data_dir("advertised");
    let data = dir.join("data");
    add_user(&data, "alice", "pw");
    let mut broker = BrokerProcess::start(
        &data,
        &[
            "--listener",
            "PLAINTEXT://127.0.0.1:0",
            "--listener",
            "SASL_PLAINTEXT://127.0.0.1:0",
            "--advertised-listener",
            "SASL_PLAINTEXT://sasl.example:9999",
        ],
    );
    let [plain, sasl] = [0, 1].map(|_| next_listener(&mut broker));
    let mut c = Command::new("kcat");
    c.args(["-b", &plain, "-L", "-m", "5"]);
    let (ok, out, err) = run(c, None);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("broker 0 at {plain}")), "{out}");
    let mut c = Command::new("kcat");
    c.args(["-b", &sasl, "-L", "-m", "5"])
        .args([
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=PLAIN",
        ])
        .args(["-X", "sasl.username=alice", "-X", "sasl.password=pw"]);
    let (_, out, err) = run(c, None);
    assert!(
        out.contains("broker 0 at sasl.example:9999"),
        "{out}\n{err}"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(dir);
}
