//! Incremental fetch sessions (KIP-227) over a real socket, hand-built
//! with `kafka-protocol`: a full fetch opens a session, an incremental
//! fetch that names nothing stands for all of it and hears only the
//! partitions with news, a long poll wakes for any partition of the
//! session, the answer to 200 quiet partitions shrinks to its header,
//! wrong epochs and ids are refused, forgetting every partition closes
//! the session, a session by topic id (v13+) works as one by name, and
//! with every slot taken a new session evicts an idle one, whose client
//! hears so.
//! kafka-python's consumer, which uses sessions, is in `clients.rs`.

mod common;

use common::{create_topic, produce_request, topic_name, Client};
use gyre_broker::log::batch;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;
use std::time::{Duration, Instant};
use uuid::Uuid;

const PARTITIONS: i32 = 200;

/// Fetch v12 (the last by name) of session `id` at `epoch`, naming
/// `parts` (partition, offset) of `topic`; waits at most `wait_ms` for a
/// byte.
fn fetch(epoch: i32, id: i32, topic: &str, parts: &[(i32, i64)], wait_ms: i32) -> FetchRequest {
    let mut t = FetchTopic::default();
    t.topic = topic_name(topic);
    for &(partition, offset) in parts {
        let mut p = FetchPartition::default();
        p.partition = partition;
        p.fetch_offset = offset;
        p.partition_max_bytes = 1 << 20;
        p.current_leader_epoch = -1;
        p.last_fetched_epoch = -1;
        t.partitions.push(p);
    }
    let mut r = FetchRequest::default();
    r.session_id = id;
    r.session_epoch = epoch;
    r.max_wait_ms = wait_ms;
    r.min_bytes = 1;
    r.max_bytes = 1 << 20;
    if !parts.is_empty() {
        r.topics.push(t);
    }
    r
}

/// The response and its size on the wire.
fn call_sized(c: &mut Client, version: i16, r: &FetchRequest) -> (FetchResponse, usize) {
    let id = c.send(ApiKey::Fetch, version, r);
    let (got, mut frame) = c.receive().unwrap();
    assert_eq!(got, id);
    let size = frame.len() + 8;
    assert_eq!(bytes::Buf::get_u8(&mut frame), 0, "no tagged fields");
    (FetchResponse::decode(&mut frame, version).unwrap(), size)
}

/// (partition, high watermark, record bytes) of each partition answered.
fn answered(r: &FetchResponse) -> Vec<(i32, i64, usize)> {
    r.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            let bytes = p.records.as_ref().map_or(0, |b| b.len());
            (p.partition_index, p.high_watermark, bytes)
        })
        .collect()
}

fn produce_to(c: &mut Client, topic: &str, partition: i32, value: &[u8]) {
    let mut r = produce_request(topic, batch::build(0, 1_700_000_000_000, &[value]));
    r.topic_data[0].partition_data[0].index = partition;
    let resp: ProduceResponse = c.call(ApiKey::Produce, 8, &r);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "{p:?}");
}

#[test]
fn an_incremental_fetch_stands_for_its_session_and_hears_only_news() {
    let config = common::config("fetch-sessions");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let mut producer = Client::connect(broker.local_addr());
    create_topic(&mut c, "many", PARTITIONS);
    produce_to(&mut producer, "many", 3, b"three");
    produce_to(&mut producer, "many", 150, b"one fifty");

    // A full fetch of every partition opens a session and answers all.
    let all: Vec<(i32, i64)> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let (full, full_size) = call_sized(&mut c, 12, &fetch(0, 0, "many", &all, 0));
    assert_eq!(full.error_code, 0);
    let session = full.session_id;
    assert_ne!(session, 0, "a session was opened");
    let parts = answered(&full);
    assert_eq!(parts.len(), PARTITIONS as usize);
    let with_records: Vec<i32> = parts.iter().filter(|p| p.2 > 0).map(|p| p.0).collect();
    assert_eq!(with_records, vec![3, 150]);

    // The client read partitions 3 and 150: it names their new offsets
    // and nothing else. Nothing is new, so nothing is answered, and the
    // answer is a sliver of the full one.
    let moved = fetch(1, session, "many", &[(3, 1), (150, 1)], 0);
    let (quiet, quiet_size) = call_sized(&mut c, 12, &moved);
    assert_eq!((quiet.error_code, quiet.session_id), (0, session));
    assert!(answered(&quiet).is_empty(), "{:?}", answered(&quiet));
    assert!(
        quiet_size * 50 < full_size,
        "{quiet_size} bytes against {full_size}"
    );

    // A record in partition 77: the next incremental fetch, naming
    // nothing, answers partition 77 alone.
    produce_to(&mut producer, "many", 77, b"seventy-seven");
    let (news, _) = call_sized(&mut c, 12, &fetch(2, session, "many", &[], 0));
    assert_eq!(answered(&news).len(), 1, "{:?}", answered(&news));
    assert_eq!(answered(&news)[0].0, 77);
    assert!(answered(&news)[0].2 > 0);

    // A long poll covers every partition of the session: a record in
    // partition 9 ends it, long before its 10 s.
    let poll = fetch(3, session, "many", &[(77, 1)], 10_000);
    let started = Instant::now();
    let id = c.send(ApiKey::Fetch, 12, &poll);
    std::thread::sleep(Duration::from_millis(200));
    produce_to(&mut producer, "many", 9, b"nine");
    let (got, mut frame) = c.receive().unwrap();
    assert_eq!(got, id);
    bytes::Buf::get_u8(&mut frame);
    let woke = FetchResponse::decode(&mut frame, 12).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        answered(&woke).iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![9]
    );

    // Wrong epochs and ids are refused with the session's errors; none
    // costs the session its place.
    for (epoch, id, code) in [(9, session, 71), (4, session + 1, 70)] {
        let (r, _) = call_sized(&mut c, 12, &fetch(epoch, id, "many", &[], 0));
        assert_eq!((r.error_code, r.session_id), (code, 0));
        assert!(r.responses.is_empty());
    }

    // Forgetting every partition closes the session.
    let mut forget = fetch(4, session, "many", &[], 0);
    let mut f = ForgottenTopic::default();
    f.topic = topic_name("many");
    f.partitions = (0..PARTITIONS).collect();
    forget.forgotten_topics_data.push(f);
    let (closed, _) = call_sized(&mut c, 12, &forget);
    assert_eq!((closed.error_code, closed.session_id), (0, 0));
    let (gone, _) = call_sized(&mut c, 12, &fetch(5, session, "many", &[], 0));
    assert_eq!(gone.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");

    // The final epoch: a full fetch without a session.
    let (sessionless, _) = call_sized(&mut c, 12, &fetch(-1, 0, "many", &all, 0));
    assert_eq!(sessionless.session_id, 0);
    assert_eq!(answered(&sessionless).len(), PARTITIONS as usize);
}

#[test]
fn a_session_by_topic_id_works_as_one_by_name() {
    let config = common::config("fetch-sessions-ids");
    let broker = common::start(&config);
    let mut c = Client::connect(broker.local_addr());
    let mut producer = Client::connect(broker.local_addr());
    create_topic(&mut c, "ided", 4);
    let mut m = MetadataRequest::default();
    let mut t = kafka_protocol::messages::metadata_request::MetadataRequestTopic::default();
    t.name = Some(topic_name("ided"));
    m.topics = Some(vec![t]);
    let meta: MetadataResponse = c.call(ApiKey::Metadata, 12, &m);
    let id = meta.topics[0].topic_id;
    assert!(!id.is_nil());

    let mut full = fetch(0, 0, "", &[(0, 0), (1, 0), (2, 0), (3, 0)], 0);
    full.topics[0].topic = Default::default();
    full.topics[0].topic_id = id;
    let opened: FetchResponse = c.call(ApiKey::Fetch, 17, &full);
    assert_ne!(opened.session_id, 0);
    assert_eq!(answered(&opened).len(), 4);
    assert_eq!(opened.responses[0].topic_id, id);

    produce_to(&mut producer, "ided", 2, b"two");
    let next = fetch(1, opened.session_id, "", &[], 0);
    let news: FetchResponse = c.call(ApiKey::Fetch, 17, &next);
    assert_eq!(news.error_code, 0);
    assert_eq!(
        answered(&news).iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(news.responses[0].topic_id, id);

    // The same session asked by name (v12) is refused: it names topics
    // by id.
    let by_name = fetch(2, opened.session_id, "ided", &[], 0);
    let refused: FetchResponse = c.call(ApiKey::Fetch, 12, &by_name);
    assert_eq!(refused.error_code, 106, "FETCH_SESSION_TOPIC_ID_ERROR");

    // An unknown topic id stays in the session and is answered, with
    // its error, every time. (Partition 2 moves past what it read.)
    let mut add = fetch(2, opened.session_id, "", &[(2, 1)], 0);
    add.topics[0].topic_id = id;
    let mut unknown_topic = add.topics[0].clone();
    unknown_topic.topic_id = Uuid::from_u128(42);
    unknown_topic.partitions[0].partition = 0;
    add.topics.push(unknown_topic);
    let r: FetchResponse = c.call(ApiKey::Fetch, 17, &add);
    assert_eq!(r.error_code, 0);
    let unknown: Vec<i16> = r
        .responses
        .iter()
        .filter(|t| t.topic_id == Uuid::from_u128(42))
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    assert_eq!(unknown, vec![100], "UNKNOWN_TOPIC_ID");
    let again: FetchResponse = c.call(ApiKey::Fetch, 17, &fetch(3, opened.session_id, "", &[], 0));
    assert_eq!(answered(&again).len(), 1, "{:?}", answered(&again));
    assert_eq!(again.responses[0].topic_id, Uuid::from_u128(42));
}

#[test]
fn a_new_session_evicts_an_idle_one_whose_next_fetch_hears_so() {
    let mut config = common::config("fetch-session-eviction");
    config.fetch_sessions.max_sessions = 1;
    config.fetch_sessions.min_eviction = Duration::from_secs(1);
    let broker = common::start(&config);
    let (mut idle, mut late) = (
        Client::connect(broker.local_addr()),
        Client::connect(broker.local_addr()),
    );
    create_topic(&mut idle, "evict", 4);
    let all: Vec<(i32, i64)> = (0..4).map(|p| (p, 0)).collect();
    let (first, _) = call_sized(&mut idle, 12, &fetch(0, 0, "evict", &all, 0));
    assert_ne!(first.session_id, 0);

    // The only slot is taken and its session was just used: no session.
    let (refused, _) = call_sized(&mut late, 12, &fetch(0, 0, "evict", &all, 0));
    assert_eq!((refused.error_code, refused.session_id), (0, 0));
    assert_eq!(answered(&refused).len(), 4, "answered in full all the same");

    // Idle past the window, it makes room.
    std::thread::sleep(Duration::from_millis(1100));
    let (second, _) = call_sized(&mut late, 12, &fetch(0, 0, "evict", &all, 0));
    assert_eq!(second.error_code, 0);
    assert_ne!(second.session_id, 0, "the idle session was not evicted");
    assert_ne!(second.session_id, first.session_id);

    // The evicted client hears so and starts again, without a session
    // while the new one is young.
    let (gone, _) = call_sized(&mut idle, 12, &fetch(1, first.session_id, "evict", &[], 0));
    assert_eq!(gone.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");
    let (again, _) = call_sized(&mut idle, 12, &fetch(0, 0, "evict", &all, 0));
    assert_eq!((again.error_code, again.session_id), (0, 0));
    let (kept, _) = call_sized(&mut late, 12, &fetch(1, second.session_id, "evict", &[], 0));
    assert_eq!((kept.error_code, kept.session_id), (0, second.session_id));
    let counted = broker.fetch_sessions();
    assert_eq!(
        (counted.open, counted.partitions, counted.evictions),
        (1, 4, 1)
    );
    drop(late);
    let deadline = Instant::now() + Duration::from_secs(5);
    while broker.fetch_sessions().open > 0 {
        assert!(
            Instant::now() < deadline,
            "a closed connection kept its session"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
