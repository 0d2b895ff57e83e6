//! Real Kafka clients against the `gyre-broker` binary: kcat (librdkafka
//! 2.0), confluent-kafka (its bundled librdkafka), kafka-python, aiokafka
//! and kafkajs, which `scripts/test` installs. Each test starts its
//! own broker on a free port with its own data folder.

mod common;

use common::process::BrokerProcess;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn data_dir(tag: &str) -> PathBuf {
    let d = gyre_testkit::scratch_root().join(format!("gyre-clients-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "{name} is not installed: scripts/test installs it");
    Command::new(name)
}

fn python(script: &str) -> Command {
    let mut c = tool("python3");
    c.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/clients")
            .join(script),
    );
    c
}

/// A kafkajs script, on the `node_modules` `scripts/test` installs beside
/// the scripts.
fn node(script: &str) -> Command {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients");
    assert!(
        dir.join("node_modules/kafkajs").is_dir(),
        "kafkajs is not installed: scripts/test installs it"
    );
    let mut c = tool("node");
    c.arg(dir.join(script));
    c
}

/// Starts a broker on a data folder of its own, runs `script` (a
/// `python`/`node` command) with the broker's address and `topic`, and
/// checks that it printed `expected`; returns the folder, the broker
/// stopped, for checks of what it left.
fn passes(tag: &str, mut script: Command, topic: &str, expected: &str) -> PathBuf {
    let data = data_dir(tag);
    let broker = BrokerProcess::start(&data, &[]);
    script.args([&broker.addr, topic]);
    let out = run(script, None);
    assert!(out.contains(expected), "{out}");
    drop(broker);
    data
}

/// Runs `script` (a `python` command that starts, stops and restarts the
/// broker itself) with the broker binary and a data folder of its own,
/// checks that it printed `expected`, then removes the folder.
fn passes_running_the_broker(tag: &str, mut script: Command, expected: &str) {
    let data = data_dir(tag);
    std::fs::create_dir_all(&data).unwrap();
    script.args([
        env!("CARGO_BIN_EXE_gyre-broker"),
        data.join("data").to_str().unwrap(),
    ]);
    let out = run(script, None);
    assert!(out.contains(expected), "{out}");
    let _ = std::fs::remove_dir_all(&data);
}

/// [`passes`], then removes the broker's folder.
fn passes_and_clean(tag: &str, script: Command, topic: &str, expected: &str) {
    let data = passes(tag, script, topic, expected);
    let _ = std::fs::remove_dir_all(&data);
}

fn run(mut cmd: Command, input: Option<&[u8]>) -> String {
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = input {
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        std::thread::spawn(move || stdin.write_all(&input).unwrap());
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kcat(addr: &str, args: &[&str]) -> Command {
    let mut c = tool("kcat");
    c.args(["-b", addr]).args(args);
    c
}

#[test]
fn kcat_produces_100_000_keyed_messages_and_reads_them_back() {
    let data = data_dir("kcat");
    let broker = BrokerProcess::start(&data, &[]);
    let input: String = (0..100_000)
        .map(|i| format!("key-{i}\tvalue-{i}-{}\n", "x".repeat(i % 50)))
        .collect();
    run(
        kcat(&broker.addr, &["-P", "-t", "keyed", "-K", "\t"]),
        Some(input.as_bytes()),
    );
    let back = run(
        kcat(
            &broker.addr,
            &[
                "-C",
                "-t",
                "keyed",
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%k\t%s\n",
            ],
        ),
        None,
    );
    assert!(
        back == input,
        "all 100 000 messages, in order, keys and values intact"
    );
    // From a given offset.
    let from = run(
        kcat(
            &broker.addr,
            &[
                "-C", "-t", "keyed", "-o", "50000", "-c", "3", "-q", "-f", "%o %k\n",
            ],
        ),
        None,
    );
    assert_eq!(from, "50000 key-50000\n50001 key-50001\n50002 key-50002\n");
    // Offsets: kcat's query, then kafka-python's list-offsets calls.
    let latest = run(kcat(&broker.addr, &["-Q", "-t", "keyed:0:-1"]), None);
    assert!(latest.contains("offset 100000"), "{latest}");
    let mut offsets = python("offsets.py");
    offsets.args([&broker.addr, "keyed", "100000"]);
    assert!(run(offsets, None).contains("offsets ok"));
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_kafka_python_group_splits_partitions_commits_and_resumes() {
    passes_and_clean("group", python("group.py"), "split4", "resumed 400");
}

#[test]
fn kafka_python_reads_24_partitions_through_an_incremental_fetch_session() {
    passes_and_clean(
        "fetch-sessions",
        python("fetch_sessions.py"),
        "sessions24",
        "fetch sessions ok",
    );
}

#[test]
fn kafka_python_consumers_take_turns_evicting_each_others_fetch_session() {
    let data = data_dir("fetch-session-eviction");
    let broker = BrokerProcess::start(
        &data,
        &[
            "--max-incremental-fetch-session-cache-slots",
            "1",
            "--min-incremental-fetch-session-eviction-ms",
            "300",
        ],
    );
    let mut script = python("fetch_session_eviction.py");
    script.args([&broker.addr, "evict24"]);
    let out = run(script, None);
    assert!(out.contains("session eviction ok"), "{out}");
    println!("{out}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn librdkafka_commits_its_revoked_partitions_during_a_rebalance() {
    // Before the fix the broker refused the commit with
    // REBALANCE_IN_PROGRESS and all 2,000 messages were read again.
    passes_and_clean(
        "revoke",
        python("commit_on_revoke.py"),
        "revoked4",
        "redelivered 0",
    );
}

#[test]
fn transactions_commit_abort_fence_and_carry_offsets_for_librdkafka_and_kafka_python() {
    // Before: every transactional producer was refused at
    // init_transactions (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    passes_and_clean("txn", python("transactions.py"), "txn1", "transactions ok");
}

#[test]
fn kafkajs_commits_aborts_and_sends_offsets_in_transactions() {
    passes_and_clean(
        "kafkajs-txn",
        node("transactions.js"),
        "kjstx",
        "kafkajs transactions ok",
    );
}

#[test]
fn log_dirs_replica_moves_and_leader_elections_answer_kafka_python_and_librdkafka() {
    // Before: DescribeLogDirs, AlterReplicaLogDirs and ElectLeaders were
    // not served (the clients got UNSUPPORTED_VERSION, Kafka's UIs no
    // disk view).
    passes_and_clean(
        "replicas",
        python("replicas_admin.py"),
        "replicated",
        "replicas ok",
    );
}

#[test]
fn groups_are_listed_and_described_to_kafka_python_and_librdkafka() {
    passes_and_clean(
        "groups-admin",
        python("groups_admin.py"),
        "described2",
        "groups ok",
    );
}

#[test]
fn kafkajs_lists_describes_and_sets_a_groups_offsets() {
    // Before DescribeGroups, kafkajs's setOffsets failed with "The Kafka
    // server does not support the requested API version".
    passes_and_clean(
        "kafkajs-groups",
        node("groups_admin.js"),
        "kjs2",
        "kafkajs groups ok",
    );
}

#[test]
fn kafkajs_creates_validates_describes_alters_and_deletes_topics() {
    // Before: a validate-only createTopics was refused INVALID_REQUEST
    // ("no answer") for every topic.
    passes_and_clean(
        "kafkajs-topics",
        node("topics_admin.js"),
        "kjstopics",
        "kafkajs topics ok",
    );
}

#[test]
fn a_time_lookup_finds_the_record_inside_its_batch_under_every_compression() {
    // Before: record #42's timestamp answered offset 0, the batch's base.
    passes_and_clean(
        "by-time",
        python("records_by_time.py"),
        "bytime",
        "by time ok",
    );
}

/// [`passes`], then checks that topic `of`'s properties file holds each
/// of `lines` (what was altered is on disk for the next start), then
/// removes the broker's folder.
fn passes_and_keeps(
    tag: &str,
    script: Command,
    topic: &str,
    expected: &str,
    of: &str,
    lines: &[&str],
) {
    let data = passes(tag, script, topic, expected);
    let props =
        std::fs::read_to_string(data.join(format!("topics/{of}/topic.properties"))).unwrap();
    for line in lines {
        assert!(props.contains(&format!("{line}\n")), "{line}: {props}");
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn topic_configs_are_described_and_altered_for_librdkafka_and_kafka_python() {
    passes_and_keeps(
        "configs",
        python("configs.py"),
        "configured",
        "configs ok",
        "configured",
        &["retention.bytes=1048576", "retention.ms=604800000"],
    );
}

#[test]
fn aiokafka_produces_every_codec_consumes_in_a_group_and_replaces_configs() {
    // Before: aiokafka's alter_configs failed with "AlterConfigsRequest
    // cannot be used if the API version is unknown" (only the incremental
    // API was answered), and every produce response said the log starts
    // at -1.
    // The replacing alter keeps the named config and puts the other one
    // back to the default.
    passes_and_keeps(
        "aiokafka",
        python("aiokafka_client.py"),
        "aio3",
        "aiokafka ok",
        "aio3",
        &["retention.ms=7200000", "segment.bytes=134217728"],
    );
}

#[test]
fn compacted_topics_keep_each_keys_last_record_for_every_client_and_across_a_kill() {
    // Before: `cleanup.policy=compact` was refused at create, so Kafka
    // Connect's, Kafka Streams' and schema registries' topics could not
    // be made here.
    let data = data_dir("compaction");
    let saved = data.with_extension("seen.json");
    let saved = saved.to_str().unwrap();
    let cleaner = ["--log-cleaner-backoff-ms", "200"];
    let broker = BrokerProcess::start(&data, &cleaner);
    let mut write = python("compaction.py");
    write.args([&broker.addr, "compacted", saved]);
    let out = run(write, None);
    let count = out
        .trim()
        .strip_prefix("compaction ok ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let mut kjs = node("compaction.js");
    kjs.args([&broker.addr, "compacted", saved]);
    let out = run(kjs, None);
    assert!(out.contains("kafkajs compaction ok"), "{out}");
    let read = kcat(
        &broker.addr,
        &[
            "-C",
            "-t",
            "compacted",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o\n",
        ],
    );
    let offsets = run(read, None);
    assert_eq!(
        offsets.lines().count().to_string(),
        count,
        "kcat: {offsets}"
    );
    // Killed: the next start checks every batch past the recovery point,
    // gaps and all, and serves the same records.
    drop(broker);
    let broker = BrokerProcess::start(&data, &cleaner);
    let mut again = python("compaction.py");
    again.args([&broker.addr, "compacted", saved, "--again"]);
    let out = run(again, None);
    assert!(out.contains("compaction ok"), "{out}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(saved);
}

/// The transaction markers in partition folder `dir`'s segment files:
/// (commits, aborts).
fn markers_in(dir: &Path) -> (usize, usize) {
    use gyre_broker::log::batch::{read_marker, split, Marker};
    let mut found = (0, 0);
    for file in common::segment_files(dir) {
        let bytes = std::fs::read(file).unwrap();
        for (_, range) in split(&bytes).unwrap() {
            match read_marker(&bytes[range]) {
                Some(Marker::Commit) => found.0 += 1,
                Some(Marker::Abort) => found.1 += 1,
                None => {}
            }
        }
    }
    found
}

#[test]
fn an_idle_compacted_topics_tombstones_go_when_their_horizon_passes_with_no_new_records() {
    // Before: a log was passed over only when enough of it was dirty, so
    // tombstones a pass kept for `delete.retention.ms` stayed until new
    // records came, for good on an idle topic (Kafka's KAFKA-8522).
    let data = data_dir("idle-tombstones");
    let broker = BrokerProcess::start(&data, &["--log-cleaner-backoff-ms", "200"]);
    let create = "import sys\n\
from confluent_kafka.admin import AdminClient, NewTopic\n\
a = AdminClient({'bootstrap.servers': sys.argv[1]})\n\
a.create_topics([NewTopic('idle', 1, 1, config={'cleanup.policy': 'compact', \
'segment.bytes': '1024', 'min.cleanable.dirty.ratio': '0.01', \
'delete.retention.ms': '6000'})])['idle'].result(10)\n";
    let mut admin = tool("python3");
    admin.args(["-c", create, &broker.addr]);
    run(admin, None);
    let value = "v".repeat(100);
    // Keys, then tombstones for two of them (`-Z`: an empty value is a
    // null), then a batch that fills their segment and one that rolls it.
    let first: String = ["a", "b", "c", "a", "b"]
        .iter()
        .enumerate()
        .map(|(i, k)| match i {
            0..=2 => format!("{k}:{value}\n"),
            _ => format!("{k}:\n"),
        })
        .collect();
    let produce = ["-P", "-t", "idle", "-K:", "-Z"];
    run(kcat(&broker.addr, &produce), Some(first.as_bytes()));
    let second = format!("c:{}\n", "w".repeat(1_200));
    run(kcat(&broker.addr, &produce), Some(second.as_bytes()));
    run(kcat(&broker.addr, &produce), Some(b"d:x\n"));
    let read = || {
        let args = [
            "-C",
            "-t",
            "idle",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-Z",
            "-f",
            "%k=%S\n",
        ];
        run(kcat(&broker.addr, &args), None)
    };
    let young = read();
    assert!(
        young.contains("a=-1") && young.contains("b=-1"),
        "the tombstones are there within delete.retention.ms: {young}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let old = loop {
        let now = read();
        if !now.contains("=-1") || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        old, "c=1200\nd=1\n",
        "only the last records of c and d are left"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_compacted_topics_transactions_leave_their_markers_behind_with_their_records() {
    let data = data_dir("compacted-txns");
    let saved = data.with_extension("seen.json");
    let saved = saved.to_str().unwrap();
    let cleaner = ["--log-cleaner-backoff-ms", "200"];
    let broker = BrokerProcess::start(&data, &cleaner);
    let mut write = python("compacted_transactions.py");
    write.args([&broker.addr, "changelog", saved]);
    let out = run(write, None);
    assert!(out.contains("compacted transactions ok"), "{out}");
    // 132 transactions wrote 124 commit and 8 abort markers. Left: the
    // commits of records still there (the last of each key and the
    // tail's uncompacted ones), none of the rest. Each abort goes on the
    // pass after the one that removed its records (the last such pass
    // leaves the log clean: the cleaner passes over it again for them).
    // Before, the aborts stayed for good, and before that every marker.
    let partition = data.join("topics/changelog/0");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (commits, aborts) = loop {
        let found = markers_in(&partition);
        if found.1 == 0 || Instant::now() > deadline {
            break found;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(aborts, 0, "abort markers left");
    assert!(commits <= 5 + 12 + 1, "{commits} commit markers left");
    // Killed: the next start reads the log back, gaps and all, and the
    // transactional id goes on.
    drop(broker);
    let broker = BrokerProcess::start(&data, &cleaner);
    let mut again = python("compacted_transactions.py");
    again.args([&broker.addr, "changelog", saved, "--again"]);
    let out = run(again, None);
    assert!(out.contains("compacted transactions ok"), "{out}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_file(saved);
}

#[test]
fn configs_tools_spell_out_are_accepted_max_message_bytes_bounds_each_batch_and_log_append_time_stamps(
) {
    // Before: `cleanup.policy=delete` (or `min.insync.replicas=1`, or
    // `message.timestamp.type=LogAppendTime`) at create was refused with
    // INVALID_CONFIG, and a 2 MB record went in whatever the topic's limit.
    passes_and_keeps(
        "limits",
        python("topic_limits.py"),
        "lim",
        "limits ok",
        "lim-big",
        &[
            "max.message.bytes=5242880",
            "message.timestamp.type=CreateTime",
        ],
    );
}

#[test]
fn topics_are_validated_and_grow_partitions_for_librdkafka_and_kafka_python_and_keep_them_after_a_restart(
) {
    let data = passes(
        "partitions",
        python("partitions.py"),
        "grown",
        "partitions ok",
    );
    // The growth is in the topic's properties: a restart keeps 5.
    let broker = BrokerProcess::start(&data, &["--no-auto-create"]);
    let listed = run(kcat(&broker.addr, &["-L", "-t", "grown"]), None);
    assert!(listed.contains("with 5 partitions"), "{listed}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn delete_records_moves_the_log_start_for_every_client_and_across_a_restart() {
    let data = passes(
        "delete-records",
        python("delete_records.py"),
        "cut",
        "deleted ok",
    );
    // `passes` stopped the broker with SIGKILL (`BrokerProcess`'s drop),
    // so nothing was written at a clean stop: the start is in the
    // log-start checkpoint synced before DeleteRecords was answered, and
    // after the restart the partition still begins at 60.
    let broker = BrokerProcess::start(&data, &["--no-auto-create"]);
    let first = run(
        kcat(
            &broker.addr,
            &[
                "-C",
                "-t",
                "cut",
                "-p",
                "0",
                "-o",
                "beginning",
                "-c",
                "1",
                "-f",
                "%o\n",
            ],
        ),
        None,
    );
    assert_eq!(first, "60\n");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn kcat_group_consumer_reads_everything_then_resumes_after_a_broker_restart() {
    let data = data_dir("kcat-group");
    let broker = BrokerProcess::start(&data, &["--partitions", "4"]);
    let batch = |from: usize| -> String {
        (from..from + 1000)
            .map(|i| format!("k{i}:v{i}\n"))
            .collect()
    };
    run(
        kcat(&broker.addr, &["-P", "-t", "g4", "-K", ":"]),
        Some(batch(0).as_bytes()),
    );
    let consume = |addr: &str| {
        let out = run(
            kcat(
                addr,
                &[
                    "-G",
                    "kcat-group",
                    "g4",
                    "-X",
                    "auto.offset.reset=earliest",
                    "-e",
                    "-q",
                    "-f",
                    "%s\n",
                ],
            ),
            None,
        );
        let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    let mut want: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(consume(&broker.addr), want);
    // Committed offsets are durable: after a restart the group resumes.
    drop(broker);
    let broker = BrokerProcess::start(&data, &["--partitions", "4"]);
    run(
        kcat(&broker.addr, &["-P", "-t", "g4", "-K", ":"]),
        Some(batch(1000).as_bytes()),
    );
    let mut want: Vec<String> = (1000..2000).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(
        consume(&broker.addr),
        want,
        "only what came after the commit"
    );
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn every_acknowledged_message_survives_kill_9_with_every_batch_flush() {
    let data = data_dir("kill9");
    let broker = BrokerProcess::start(&data, &["--flush", "every-batch"]);
    let mut producer = python("acked_producer.py")
        .args([&broker.addr, "durable"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = BufReader::new(producer.stdout.take().unwrap());
    let mut last_acked = -1i64;
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while last_acked < 3000 && Instant::now() < deadline {
        line.clear();
        if acked.read_line(&mut line).unwrap() == 0 {
            break;
        }
        last_acked = line.trim().parse().unwrap();
    }
    assert!(last_acked >= 3000, "the producer got going ({last_acked})");
    // Mid-stream: requests are in flight as the broker dies.
    drop(broker); // SIGKILL: no shutdown, no flush
    let _ = producer.wait();
    for rest in acked.lines() {
        if let Ok(n) = rest.unwrap().trim().parse::<i64>() {
            last_acked = last_acked.max(n);
        }
    }
    let broker = BrokerProcess::start(&data, &["--flush", "every-batch"]);
    let out = run(
        kcat(
            &broker.addr,
            &[
                "-C",
                "-t",
                "durable",
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%s\n",
            ],
        ),
        None,
    );
    let got: Vec<i64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert!(
        got.len() as i64 > last_acked,
        "every acknowledged message is there: {} messages, last acknowledged {last_acked}",
        got.len()
    );
    for (i, n) in got.iter().enumerate() {
        assert_eq!(*n, i as i64, "in order, nothing lost or doubled");
    }
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn idempotent_producers_retrying_through_lost_responses_write_each_message_once() {
    // The proxy listens on a port picked here, which the broker advertises
    // so that clients stay behind it after their first metadata request.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let data = data_dir("idempotent");
    let advertised = format!("127.0.0.1:{port}");
    let broker = BrokerProcess::start(&data, &["--advertise", &advertised]);
    let mut script = python("idempotent_retries.py");
    script.args([&broker.addr, "idem", &port.to_string()]);
    let out = run(script, None);
    // Before the producer state, librdkafka's log held 5,600 records for
    // 5,000 messages.
    assert!(out.contains("idempotent ok"), "{out}");
    // The control: without idempotence the same retries duplicate, so the
    // proxy did make clients resend batches the broker had appended.
    let control = out
        .lines()
        .find_map(|l| l.strip_prefix("control dropped "))
        .and_then(|l| l.split(" duplicates ").nth(1))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or_else(|| panic!("no control line: {out}"));
    assert!(control > 0, "{out}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn librdkafka_and_kafka_python_negotiate_flexible_versions_and_topic_ids() {
    // Before: every API stopped at its last classic version (Fetch v11,
    // Metadata v8, Produce v8), so both clients fell back to those.
    passes_and_clean(
        "versions",
        python("negotiated_versions.py"),
        "negotiated",
        "versions ok",
    );
}

#[test]
fn librdkafka_and_kafka_python_describe_the_cluster() {
    passes_and_clean(
        "cluster",
        python("describe_cluster.py"),
        "unused",
        "cluster ok",
    );
}

#[test]
fn librdkafka_consumers_on_the_consumer_group_protocol_hand_over_partitions_without_reading_twice()
{
    // Before: the broker did not serve ConsumerGroupHeartbeat, and a
    // consumer with group.protocol=consumer never joined.
    passes_running_the_broker(
        "consumer-protocol",
        python("consumer_protocol.py"),
        "consumer protocol ok 7200",
    );
}

#[test]
fn librdkafka_share_consumers_share_a_topic_each_record_once_with_releases_locks_and_a_restart() {
    // Before: the broker did not serve the share group APIs (KIP-932), and
    // a ShareConsumer never joined ("ShareGroupHeartbeatRequest not
    // supported by broker").
    passes_running_the_broker("share-groups", python("share_groups.py"), "share groups ok");
}

#[test]
fn feature_levels_are_described_changed_kept_and_turn_their_consumers_away_while_off() {
    // Before: ApiVersions listed no features and UpdateFeatures was not
    // served (kafka-python's update_features got UNSUPPORTED_VERSION).
    passes_running_the_broker("features", python("features.py"), "features ok");
}

#[test]
fn a_librdkafka_group_migrates_from_the_classic_protocol_to_the_consumer_protocol_and_back_online()
{
    // Before: a consumer-protocol member could not join a classic group
    // with members (GROUP_ID_NOT_FOUND), so upgrading a group meant
    // stopping all of it.
    let data = data_dir("migration");
    let broker = BrokerProcess::start(&data, &["--group-consumer-heartbeat-interval-ms", "300"]);
    let mut script = python("group_migration.py");
    script.args([&broker.addr, "migrating"]);
    let out = run(script, None);
    assert!(out.contains("migration ok 8000"), "{out}");
    drop(broker);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_classic_librdkafka_group_is_kept_across_a_broker_restart_under_its_members() {
    // Before: the broker forgot groups at a restart, so every member was
    // told it was unknown, the group rebalanced, and what the members had
    // read since their last commit was read again.
    passes_running_the_broker(
        "classic-restart",
        python("classic_restart.py"),
        "classic restart ok",
    );
}

#[test]
fn librdkafka_static_members_restart_without_a_rebalance_and_fence_a_duplicate() {
    // Before: a static member's new client was a new member, so the
    // group rebalanced (pod-b revoked) and the old member lingered until
    // its session expired.
    passes_running_the_broker(
        "static-members",
        python("static_members.py"),
        "static members ok",
    );
}

#[test]
fn a_librdkafka_transaction_open_across_a_broker_stop_or_kill_commits_after_it() {
    // Before: a start aborted every transaction the logs found open (its
    // epoch bumped), so the producer was fenced and its commit failed.
    passes_running_the_broker(
        "txn-restart",
        python("transactions_restart.py"),
        "transactions restart ok",
    );
}

#[test]
fn librdkafka_consumers_notice_records_they_read_were_cut_from_the_log() {
    // Before: every epoch was 0, so a consumer whose records a start cut
    // away (a power cut losing the log's unsynced tail) stayed at its
    // position past the cut and silently skipped the records written
    // there since.
    passes_running_the_broker(
        "log-truncation",
        python("log_truncation.py"),
        "log truncation ok",
    );
}

#[test]
fn kafka_python_pages_through_topic_partitions() {
    // Before: DescribeTopicPartitions (KIP-966) was not served, and
    // kafka-python's describe_topic_partitions failed.
    passes_and_clean(
        "topic-partitions",
        python("topic_partitions.py"),
        "dtp",
        "topic partitions ok",
    );
}
