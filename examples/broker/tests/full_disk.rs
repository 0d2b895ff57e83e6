//! The broker on a disk that fills up: a small `tmpfs` of its own, in a
//! user and mount namespace (`unshare`; the broker joins it through
//! `nsenter`), filled by another file as another program would fill a
//! shared disk.
//!
//! A produce that does not fit is answered `KAFKA_STORAGE_ERROR` and
//! leaves nothing behind, so the records after it take the next offsets
//! once space is freed; a topic that cannot be created, or an offset
//! that cannot be committed, is refused the same way and can be later;
//! reads go on throughout; a start
//! that cannot write says which file, and the next start, with space
//! again, serves every acknowledged record.
//!
//! Where the host allows no user namespaces (or no `tmpfs` in one), the
//! test says so and checks nothing.

mod common;

use common::process::BrokerProcess;
use common::{create_topic, produce_request, Client};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::*;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A `tmpfs` of a few MiB mounted at a folder, seen by a process that
/// holds its namespace open; whoever joins the namespace sees it there.
struct SmallDisk {
    holder: Child,
    /// Where it is mounted, inside the namespace.
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts one of `mib` MiB; `None` (said why) where the host cannot.
    fn mount(tag: &str, mib: u32) -> Option<SmallDisk> {
        let dir = common::data_dir(tag);
        std::fs::create_dir_all(&dir).unwrap();
        let script =
            format!("mount -t tmpfs -o size={mib}m tmpfs \"$0\" && echo mounted && exec sleep 600");
        let spawned = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut holder = match spawned {
            Ok(holder) => holder,
            Err(e) => {
                eprintln!("skipped: cannot run unshare: {e}");
                return None;
            }
        };
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let out = holder.wait_with_output().unwrap();
            eprintln!(
                "skipped: no tmpfs in a user namespace here: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Some(SmallDisk { holder, dir })
    }

    /// The mounted folder as this process sees it (through the holder's
    /// root).
    fn outside(&self) -> PathBuf {
        let inside = self.dir.strip_prefix("/").unwrap();
        Path::new(&format!("/proc/{}/root", self.holder.id())).join(inside)
    }

    /// A command that runs its arguments inside the namespace.
    fn enter(&self) -> Command {
        let mut nsenter = Command::new("nsenter");
        nsenter.args([
            "--target",
            &self.holder.id().to_string(),
            "--user",
            "--mount",
            "--preserve-credentials",
        ]);
        nsenter
    }

    /// Fills what space is left with a file of another program's.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let page = [0u8; 4096];
        loop {
            match f.write(&page) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => return,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
    }

    /// Removes that file.
    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.outside().join("filler")
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A batch of one record of `bytes` bytes (more than a page, so it
/// cannot fit in what a partly written page of the log has left).
fn record(bytes: usize) -> Vec<u8> {
    gyre_broker::log::batch::build(0, 1_000, &[&vec![b'r'; bytes][..]])
}

/// Produces one such batch to `topic`: the error code and base offset.
fn produce(c: &mut Client, topic: &str) -> (i16, i64) {
    let resp: ProduceResponse = c.call(ApiKey::Produce, 7, &produce_request(topic, record(16_384)));
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Creates `topic`: the error code and message.
fn create(c: &mut Client, topic: &str) -> (i16, String) {
    let mut t = CreatableTopic::default();
    t.name = common::topic_name(topic);
    t.num_partitions = 1;
    t.replication_factor = 1;
    let mut r = CreateTopicsRequest::default();
    r.topics.push(t);
    r.timeout_ms = 5000;
    let resp: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 5, &r);
    let t = &resp.topics[0];
    (
        t.error_code,
        t.error_message.as_deref().unwrap_or_default().to_owned(),
    )
}

/// The base offsets of the batches of partition 0 of `topic` from 0.
fn fetched_batches(c: &mut Client, topic: &str) -> Vec<i64> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let mut p = FetchPartition::default();
    p.partition_max_bytes = 1 << 20;
    let mut t = FetchTopic::default();
    t.topic = common::topic_name(topic);
    t.partitions.push(p);
    let mut r = FetchRequest::default();
    r.max_bytes = 1 << 20;
    r.replica_id = BrokerId(-1);
    r.topics.push(t);
    let resp: FetchResponse = c.call(ApiKey::Fetch, 4, &r);
    let mut records = resp.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    let mut bases = Vec::new();
    while !records.is_empty() {
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut records).unwrap();
        bases.extend(set.records.iter().map(|r| r.offset));
    }
    bases
}

/// Commits `offset` for partition 0 of `topic` in group `g` (as a
/// consumer outside any generation): the error code.
fn commit(c: &mut Client, topic: &str, offset: i64) -> i16 {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let mut p = OffsetCommitRequestPartition::default();
    p.committed_offset = offset;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = common::topic_name(topic);
    t.partitions.push(p);
    let mut r = OffsetCommitRequest::default();
    r.group_id = GroupId(kafka_protocol::protocol::StrBytes::from_static_str("g"));
    r.generation_id_or_member_epoch = -1;
    r.topics.push(t);
    let resp: OffsetCommitResponse = c.call(ApiKey::OffsetCommit, 2, &r);
    resp.topics[0].partitions[0].error_code
}

/// The offset group `g` committed for partition 0 of `topic`.
fn committed(c: &mut Client, topic: &str) -> i64 {
    use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let mut t = OffsetFetchRequestTopic::default();
    t.name = common::topic_name(topic);
    t.partition_indexes.push(0);
    let mut r = OffsetFetchRequest::default();
    r.group_id = GroupId(kafka_protocol::protocol::StrBytes::from_static_str("g"));
    r.topics = Some(vec![t]);
    let resp: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 2, &r);
    resp.topics[0].partitions[0].committed_offset
}

fn connect(broker: &BrokerProcess) -> Client {
    Client::connect(broker.addr.parse().unwrap())
}

#[test]
fn a_full_disk_refuses_what_does_not_fit_keeps_what_was_acknowledged_and_recovers_when_freed() {
    let Some(disk) = SmallDisk::mount("full-disk", 4) else {
        return;
    };
    let data = disk.dir.join("data");
    let mut broker = BrokerProcess::start_through(disk.enter(), &data, &[]);
    let mut c = connect(&broker);
    create_topic(&mut c, "t", 1);
    for offset in 0..3 {
        assert_eq!(produce(&mut c, "t"), (0, offset));
    }

    disk.fill();
    assert_eq!(
        produce(&mut c, "t").0,
        56,
        "KAFKA_STORAGE_ERROR for a batch the disk has no room for"
    );
    assert_eq!(
        commit(&mut c, "t", 2),
        56,
        "an offset not kept is not acknowledged"
    );
    let (code, why) = create(&mut c, "u");
    assert_eq!(code, 56, "{why}");
    assert!(why.contains("No space left on device"), "{why}");
    assert_eq!(
        fetched_batches(&mut c, "t"),
        [0, 1, 2],
        "reads go on, and the refused batch is not among them"
    );

    disk.free();
    assert_eq!(
        produce(&mut c, "t"),
        (0, 3),
        "the next batch takes the next offset: nothing of the refused one was kept"
    );
    assert_eq!(
        create(&mut c, "u").0,
        0,
        "the refused topic can be made now"
    );
    assert_eq!(commit(&mut c, "t", 3), 0);
    assert_eq!(committed(&mut c, "t"), 3);
    assert!(broker.stop(libc::SIGTERM).success());

    // A start with no room: refused, naming the file it could not write.
    disk.fill();
    let out = disk
        .enter()
        .arg(common::process::BIN)
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("leader-epoch") && said.contains("No space left on device"),
        "{said}"
    );

    disk.free();
    let broker = BrokerProcess::start_through(disk.enter(), &data, &[]);
    let mut c = connect(&broker);
    assert_eq!(fetched_batches(&mut c, "t"), [0, 1, 2, 3]);
    assert_eq!(committed(&mut c, "t"), 3);
    assert_eq!(produce(&mut c, "u"), (0, 0));
}
