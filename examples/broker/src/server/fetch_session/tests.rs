//! The session's behaviour step by step: what each fetch stands for,
//! what its answer keeps, and what the budget counts.

use super::answer::Answered;
use super::*;
use crate::protocol::fetch_response::FetchedTopic;
use gyre_zerocopy::{FileRegion, SharedFile};
use kafka_protocol::messages::fetch_request::ForgottenTopic;
use std::io::Write;
use std::time::{Duration, Instant};

fn request(epoch: i32, id: i32, topics: &[(&str, &[(i32, i64)])]) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.session_id = id;
    r.session_epoch = epoch;
    for (name, parts) in topics {
        let mut t = FetchTopic::default();
        t.topic = TopicName(StrBytes::from_string(name.to_string()));
        for &(partition, offset) in *parts {
            let mut p = FetchPartition::default();
            p.partition = partition;
            p.fetch_offset = offset;
            p.partition_max_bytes = 1 << 20;
            t.partitions.push(p);
        }
        r.topics.push(t);
    }
    r
}

/// What the request names now, as (topic, partition, offset).
fn named(r: &FetchRequest) -> Vec<(String, i32, i64)> {
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic.0.to_string(), p.partition, p.fetch_offset))
        })
        .collect()
}

fn region() -> FileRegion {
    let path = gyre_testkit::scratch_root().join(format!(
        "gyre-fetch-session-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"records!")
        .unwrap();
    let file = SharedFile::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    FileRegion::new(file, 0, 8).unwrap()
}

/// An answer to every partition `r` names: high watermark `hw` for
/// each, records where `with_records` names the partition.
fn answer_to(
    r: &FetchRequest,
    hw: &dyn Fn(&str, i32) -> i64,
    with_records: &[(&str, i32)],
) -> Vec<FetchedTopic> {
    r.topics
        .iter()
        .map(|t| {
            let name = t.topic.0.to_string();
            FetchedTopic {
                name: name.clone(),
                id: t.topic_id,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| FetchedPartition {
                        index: p.partition,
                        error_code: 0,
                        high_watermark: hw(&name, p.partition),
                        log_start_offset: 0,
                        last_stable_offset: hw(&name, p.partition),
                        aborted: Vec::new(),
                        records: with_records
                            .contains(&(name.as_str(), p.partition))
                            .then(region),
                        diverging_epoch: None,
                    })
                    .collect(),
            }
        })
        .collect()
}

fn heard(a: &Answered) -> Vec<(String, i32)> {
    a.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.index)))
        .collect()
}

fn none(_: &[FetchedTopic]) -> Duration {
    Duration::ZERO
}

fn flat(_: &str, _: i32) -> i64 {
    10
}

/// A connection with a session open on a0..a2 and b0, all at high
/// watermark 10; its id.
fn opened(slot: &SessionSlot, budget: &Arc<SessionBudget>) -> i32 {
    let mut r = request(0, 0, &[("a", &[(0, 0), (1, 0), (2, 0)]), ("b", &[(0, 0)])]);
    let step = plan(slot, budget, 12, &mut r);
    assert!(matches!(step, SessionStep::Open { .. }), "{step:?}");
    let a = step.answer(answer_to(&r, &flat, &[]), none);
    assert_eq!(heard(&a).len(), 4, "a full fetch answers every partition");
    assert_ne!(a.session_id, 0);
    a.session_id
}

#[test]
fn old_versions_and_the_final_epoch_have_no_session() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let mut r = request(0, 0, &[("a", &[(0, 0)])]);
    assert!(matches!(plan(&slot, &budget, 6, &mut r), SessionStep::None));
    let mut r = request(-1, 0, &[("a", &[(0, 0)])]);
    assert!(matches!(
        plan(&slot, &budget, 12, &mut r),
        SessionStep::None
    ));
    assert_eq!(budget.in_use(), (0, 0));
    let id = opened(&slot, &budget);
    // The final epoch closes the connection's session.
    let mut r = request(-1, id, &[("a", &[(0, 0)])]);
    let step = plan(&slot, &budget, 12, &mut r);
    assert_eq!(step.answer(answer_to(&r, &flat, &[]), none).session_id, 0);
    assert_eq!(budget.in_use(), (0, 0));
}

#[test]
fn an_incremental_fetch_stands_for_the_session_and_hears_only_news() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    assert_eq!(budget.in_use(), (1, 4));
    // Nothing named, nothing changed: every partition is fetched and
    // none is answered.
    let mut r = request(1, id, &[]);
    let step = plan(&slot, &budget, 12, &mut r);
    assert_eq!(named(&r).len(), 4);
    let a = step.answer(answer_to(&r, &flat, &[]), none);
    assert_eq!((a.error_code, a.session_id), (0, id));
    assert!(heard(&a).is_empty());
    // a1's offset moved: the session fetches it from there; b0's
    // high watermark moved: it alone is answered.
    let mut r = request(2, id, &[("a", &[(1, 7)])]);
    let step = plan(&slot, &budget, 12, &mut r);
    assert!(named(&r).contains(&("a".into(), 1, 7)));
    let hw = |t: &str, p: i32| if (t, p) == ("b", 0) { 11 } else { 10 };
    let a = step.answer(answer_to(&r, &hw, &[]), none);
    assert_eq!(heard(&a), vec![("b".to_owned(), 0)]);
    // Told once, not again.
    let mut r = request(3, id, &[]);
    let step = plan(&slot, &budget, 12, &mut r);
    assert!(heard(&step.answer(answer_to(&r, &hw, &[]), none)).is_empty());
}

#[test]
fn partitions_that_returned_records_go_to_the_back() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    let mut r = request(1, id, &[]);
    let step = plan(&slot, &budget, 12, &mut r);
    let a = step.answer(answer_to(&r, &flat, &[("a", 0), ("a", 2)]), none);
    assert_eq!(heard(&a), vec![("a".to_owned(), 0), ("a".to_owned(), 2)]);
    let mut r = request(2, id, &[]);
    plan(&slot, &budget, 12, &mut r);
    let order: Vec<(String, i32)> = named(&r).into_iter().map(|(t, p, _)| (t, p)).collect();
    let expected = [("a", 1), ("b", 0), ("a", 0), ("a", 2)];
    assert_eq!(order, expected.map(|(t, p)| (t.to_owned(), p)));
    // The topic's partitions are no longer together: a runs twice.
    assert_eq!(r.topics.len(), 3);
}

#[test]
fn errors_are_always_answered_and_their_end_is_too() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    for epoch in 1..=2 {
        let mut r = request(epoch, id, &[]);
        let step = plan(&slot, &budget, 12, &mut r);
        let mut topics = answer_to(&r, &flat, &[]);
        topics[1].partitions[0].error_code = ec::KAFKA_STORAGE_ERROR;
        let a = step.answer(topics, none);
        assert_eq!(heard(&a), vec![("b".to_owned(), 0)], "epoch {epoch}");
    }
    // Healthy again at the same offsets: the client hears it.
    let mut r = request(3, id, &[]);
    let step = plan(&slot, &budget, 12, &mut r);
    let a = step.answer(answer_to(&r, &flat, &[]), none);
    assert_eq!(heard(&a), vec![("b".to_owned(), 0)]);
}

#[test]
fn a_session_fetches_with_each_partitions_epochs_and_answers_a_divergence() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    // a1 read on to 7, its last batch in epoch 3, knowing leader epoch 4.
    let mut r = request(1, id, &[("a", &[(1, 7)])]);
    r.topics[0].partitions[0].current_leader_epoch = 4;
    r.topics[0].partitions[0].last_fetched_epoch = 3;
    plan(&slot, &budget, 12, &mut r);
    // The next fetch names nothing, and stands for a1 with those epochs.
    let mut r = request(2, id, &[]);
    let step = plan(&slot, &budget, 12, &mut r);
    let epochs: Vec<(i32, i32)> = r
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.current_leader_epoch, p.last_fetched_epoch))
        .collect();
    assert_eq!(epochs, [(-1, -1), (4, 3), (-1, -1), (-1, -1)]);
    // A diverging epoch is news, though nothing else changed.
    let mut topics = answer_to(&r, &flat, &[]);
    topics[0].partitions[1].diverging_epoch = Some((3, 5));
    let a = step.answer(topics, none);
    assert_eq!(heard(&a), vec![("a".to_owned(), 1)]);
}

#[test]
fn forgotten_partitions_leave_and_an_emptied_session_closes() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    let mut r = request(1, id, &[("c", &[(5, 0)])]);
    let mut forget = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
    forget.topic = TopicName(StrBytes::from_static_str("a"));
    forget.partitions = vec![0, 2, 9];
    r.forgotten_topics_data.push(forget);
    let step = plan(&slot, &budget, 12, &mut r);
    let names: Vec<(String, i32)> = named(&r).into_iter().map(|(t, p, _)| (t, p)).collect();
    assert_eq!(
        names,
        [("a", 1), ("b", 0), ("c", 5)].map(|(t, p)| (t.to_owned(), p))
    );
    assert_eq!(budget.in_use(), (1, 3));
    // The new partition is answered the first time.
    let a = step.answer(answer_to(&r, &flat, &[]), none);
    assert_eq!(heard(&a), vec![("c".to_owned(), 5)]);
    let mut r = request(2, id, &[]);
    let mut forget_all = Vec::new();
    for (topic, partitions) in [("a", vec![1]), ("b", vec![0]), ("c", vec![5])] {
        let mut f = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
        f.topic = TopicName(StrBytes::from_static_str(topic));
        f.partitions = partitions;
        forget_all.push(f);
    }
    r.forgotten_topics_data = forget_all;
    let step = plan(&slot, &budget, 12, &mut r);
    assert!(matches!(step, SessionStep::None));
    assert!(r.topics.is_empty());
    assert_eq!(budget.in_use(), (0, 0));
    let mut r = request(3, id, &[]);
    let step = plan(&slot, &budget, 12, &mut r);
    let a = step.answer(Vec::new(), none);
    assert_eq!(a.error_code, ec::FETCH_SESSION_ID_NOT_FOUND);
}

#[test]
fn a_wrong_epoch_id_or_topic_naming_is_refused() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    for (epoch, session, version, code) in [
        (2, id, 12, ec::INVALID_FETCH_SESSION_EPOCH),
        (1, id + 1, 12, ec::FETCH_SESSION_ID_NOT_FOUND),
        (1, id, 13, ec::FETCH_SESSION_TOPIC_ID_ERROR),
    ] {
        let mut r = request(epoch, session, &[]);
        let step = plan(&slot, &budget, version, &mut r);
        assert!(
            matches!(step, SessionStep::Refused(c) if c == code),
            "{step:?}"
        );
        let a = step.answer(Vec::new(), none);
        assert_eq!((a.error_code, a.session_id), (code, 0));
    }
    // None of them cost the session its place.
    let mut r = request(1, id, &[]);
    assert!(matches!(
        plan(&slot, &budget, 12, &mut r),
        SessionStep::Incremental { .. }
    ));
}

#[test]
fn a_throttled_answer_changes_nothing() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    let wait = |_: &[FetchedTopic]| Duration::from_millis(300);
    let hw = |t: &str, p: i32| if (t, p) == ("a", 1) { 12 } else { 10 };
    let mut r = request(1, id, &[]);
    let step = plan(&slot, &budget, 12, &mut r);
    let a = step.answer(answer_to(&r, &hw, &[("a", 1)]), wait);
    assert_eq!((a.session_id, a.throttle), (id, Duration::from_millis(300)));
    assert!(a.topics.is_empty());
    // The next fetch still has the news, in the same order.
    let mut r = request(2, id, &[]);
    let step = plan(&slot, &budget, 12, &mut r);
    assert_eq!(named(&r)[1], ("a".to_owned(), 1, 0));
    let a = step.answer(answer_to(&r, &hw, &[("a", 1)]), none);
    assert_eq!(heard(&a), vec![("a".to_owned(), 1)]);
    // A throttled full fetch opens no session.
    let mut r = request(0, 0, &[("a", &[(0, 0)])]);
    let step = plan(&slot, &budget, 12, &mut r);
    let a = step.answer(answer_to(&r, &flat, &[]), wait);
    assert_eq!(a.session_id, 0);
    assert_eq!(budget.in_use(), (0, 0));
}

#[test]
fn an_answer_overtaken_by_a_pipelined_fetch_does_not_touch_the_session() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    let mut first = request(1, id, &[]);
    let step1 = plan(&slot, &budget, 12, &mut first);
    let mut second = request(2, id, &[]);
    let step2 = plan(&slot, &budget, 12, &mut second);
    let a = step1.answer(answer_to(&first, &flat, &[("a", 0)]), none);
    assert_eq!(a.error_code, ec::INVALID_FETCH_SESSION_EPOCH);
    let a = step2.answer(answer_to(&second, &flat, &[("a", 0)]), none);
    assert_eq!((a.error_code, heard(&a)), (0, vec![("a".to_owned(), 0)]));
    // A full fetch behind a full fetch: the first's session is gone.
    let mut one = request(0, 0, &[("a", &[(0, 0)])]);
    let open1 = plan(&slot, &budget, 12, &mut one);
    let mut two = request(0, 0, &[("b", &[(0, 0)])]);
    let open2 = plan(&slot, &budget, 12, &mut two);
    assert_eq!(
        open1.answer(answer_to(&one, &flat, &[]), none).session_id,
        0
    );
    assert_ne!(
        open2.answer(answer_to(&two, &flat, &[]), none).session_id,
        0
    );
    assert_eq!(budget.in_use(), (1, 1));
}

#[test]
fn the_budget_bounds_sessions_and_partitions_and_gets_all_back() {
    let budget = SessionBudget::new(1, 5);
    let (one, two) = (SessionSlot::default(), SessionSlot::default());
    let id = opened(&one, &budget);
    // A second connection finds no room and goes without.
    let mut r = request(0, 0, &[("a", &[(0, 0)])]);
    assert!(matches!(plan(&two, &budget, 12, &mut r), SessionStep::None));
    // Growing past the partitions ends the session.
    let mut r = request(1, id, &[("c", &[(0, 0), (1, 0)])]);
    let step = plan(&one, &budget, 12, &mut r);
    assert!(matches!(
        step,
        SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND)
    ));
    assert_eq!(budget.in_use(), (0, 0));
    // A full fetch of more than the partitions opens none.
    let mut r = request(
        0,
        0,
        &[("a", &[(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (5, 0)])],
    );
    assert!(matches!(plan(&one, &budget, 12, &mut r), SessionStep::None));
    assert_eq!(budget.in_use(), (0, 0));
    // Sessions off.
    let off = SessionBudget::new(0, 100);
    let mut r = request(0, 0, &[("a", &[(0, 0)])]);
    assert!(matches!(plan(&one, &off, 12, &mut r), SessionStep::None));
    // A dropped connection gives its session back.
    opened(&one, &budget);
    drop(one);
    assert_eq!(budget.in_use(), (0, 0));
}

#[test]
fn sessions_name_topics_by_id_from_v13() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id_a = Uuid::from_u128(7);
    let mut r = request(0, 0, &[("", &[(0, 0), (1, 0)])]);
    r.topics[0].topic_id = id_a;
    let step = plan(&slot, &budget, 13, &mut r);
    let id = step.answer(answer_to(&r, &flat, &[]), none).session_id;
    let mut r = request(1, id, &[]);
    let mut forget = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
    forget.topic_id = id_a;
    forget.partitions = vec![0];
    r.forgotten_topics_data.push(forget);
    plan(&slot, &budget, 13, &mut r);
    assert_eq!(r.topics.len(), 1);
    assert_eq!(r.topics[0].topic_id, id_a);
    assert_eq!(r.topics[0].partitions.len(), 1);
    assert_eq!(r.topics[0].partitions[0].partition, 1);
}

#[test]
fn a_session_keeps_no_view_of_the_requests_that_named_its_partitions() {
    // The server's request memory is given back when the last view of a
    // request's bytes goes: a session must not hold one.
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let frame = bytes::Bytes::from(b"many-partitions".to_vec());
    let mut r = request(0, 0, &[]);
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_utf8(frame.slice(..4)).unwrap());
    let mut p = FetchPartition::default();
    p.partition = 0;
    t.partitions.push(p);
    r.topics.push(t);
    let step = plan(&slot, &budget, 12, &mut r);
    assert!(matches!(step, SessionStep::Open { .. }));
    drop((r, step));
    assert!(frame.is_unique(), "the session holds a view of the request");
    assert_eq!(budget.in_use(), (1, 1));
}

/// A session of `partitions` partitions of topic `t` (offset 0), opened
/// at `at` on `slot`, answered; its id, or `None` if the budget gave it
/// none.
fn open_at(
    slot: &SessionSlot,
    budget: &Arc<SessionBudget>,
    partitions: i32,
    at: Instant,
) -> Option<i32> {
    let named: Vec<(i32, i64)> = (0..partitions).map(|p| (p, 0)).collect();
    let mut r = request(0, 0, &[("t", &named)]);
    let step = plan_at(slot, budget, 12, &mut r, at);
    let a = step.answer(answer_to(&r, &flat, &[]), none);
    assert_eq!(heard(&a).len(), partitions as usize);
    (a.session_id != 0).then_some(a.session_id)
}

/// An incremental fetch of session `id` at `epoch` at `at` that adds
/// nothing; the top-level error code it is answered.
fn fetch_at(
    slot: &SessionSlot,
    budget: &Arc<SessionBudget>,
    id: i32,
    epoch: i32,
    at: Instant,
) -> i16 {
    let mut r = request(epoch, id, &[]);
    let step = plan_at(slot, budget, 12, &mut r, at);
    step.answer(answer_to(&r, &flat, &[]), none).error_code
}

#[test]
fn an_idle_session_makes_room_for_a_new_one_and_its_client_hears_so() {
    let budget = SessionBudget::with_min_eviction(1, 100, Duration::from_secs(10));
    let (one, two) = (SessionSlot::default(), SessionSlot::default());
    let t0 = Instant::now();
    let first = open_at(&one, &budget, 3, t0).unwrap();
    assert_eq!(fetch_at(&one, &budget, first, 1, t0 + secs(4)), ec::NONE);
    // Fetched 9 s ago: not idle long enough.
    assert_eq!(open_at(&two, &budget, 2, t0 + secs(13)), None);
    assert_eq!(budget.in_use(), (1, 3));
    // Idle for 10 s: evicted, its memory with it.
    let second = open_at(&two, &budget, 2, t0 + secs(14)).unwrap();
    assert_ne!(second, first);
    assert_eq!(budget.in_use(), (1, 2));
    assert!(lock(&one).is_none(), "the evicted session is still held");
    assert_eq!(
        fetch_at(&one, &budget, first, 2, t0 + secs(15)),
        ec::FETCH_SESSION_ID_NOT_FOUND
    );
    // The evicted client's full fetch finds the new session too young to
    // evict, and goes without.
    assert_eq!(open_at(&one, &budget, 3, t0 + secs(15)), None);
    assert_eq!(fetch_at(&two, &budget, second, 1, t0 + secs(15)), ec::NONE);
    drop(one);
    assert_eq!(budget.in_use(), (1, 2));
    drop(two);
    assert_eq!(budget.in_use(), (0, 0));
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_larger_session_takes_the_place_of_smaller_ones_open_long_enough() {
    let budget = SessionBudget::with_min_eviction(2, 100, Duration::from_secs(10));
    let slots: Vec<SessionSlot> = (0..4).map(|_| SessionSlot::default()).collect();
    let t0 = Instant::now();
    let small = open_at(&slots[0], &budget, 2, t0).unwrap();
    let large = open_at(&slots[1], &budget, 4, t0).unwrap();
    // Both in use (fetched a second ago) and open for 12 s.
    let at = t0 + secs(12);
    assert_eq!(
        fetch_at(&slots[0], &budget, small, 1, at - secs(1)),
        ec::NONE
    );
    assert_eq!(
        fetch_at(&slots[1], &budget, large, 1, at - secs(1)),
        ec::NONE
    );
    // No larger than the smallest: no room.
    assert_eq!(open_at(&slots[2], &budget, 2, at), None);
    // Larger than the smallest: it goes, and only it.
    let third = open_at(&slots[2], &budget, 3, at).unwrap();
    assert_eq!(budget.in_use(), (2, 7));
    assert!(lock(&slots[0]).is_none());
    assert_eq!(fetch_at(&slots[1], &budget, large, 2, at), ec::NONE);
    // The new one is too young to be evicted for its size, and the large
    // one is larger than what asks.
    assert_eq!(open_at(&slots[3], &budget, 3, at + secs(1)), None);
    assert_eq!(budget.in_use(), (2, 7));
    assert_eq!(
        fetch_at(&slots[2], &budget, third, 1, at + secs(1)),
        ec::NONE
    );
}

#[test]
fn sessions_evicted_for_their_size_hold_fewer_partitions_than_the_new_one() {
    // Room for 7 partitions, 6 of them held by three sessions of 2 open
    // long enough and in use. A session of 4 needs two of them gone: 4
    // partitions for 4, not worth it. One of 5 needs the same two: 4
    // partitions for 5.
    let budget = SessionBudget::with_min_eviction(10, 7, Duration::from_secs(10));
    let slots: Vec<SessionSlot> = (0..4).map(|_| SessionSlot::default()).collect();
    let t0 = Instant::now();
    let at = t0 + secs(12);
    for slot in &slots[..3] {
        let id = open_at(slot, &budget, 2, t0).unwrap();
        assert_eq!(fetch_at(slot, &budget, id, 1, at), ec::NONE);
    }
    assert_eq!(open_at(&slots[3], &budget, 4, at), None);
    assert_eq!(budget.in_use(), (3, 6));
    open_at(&slots[3], &budget, 5, at).unwrap();
    assert_eq!(budget.in_use(), (2, 7));
    assert_eq!(slots[..3].iter().filter(|s| lock(s).is_none()).count(), 2);
}

#[test]
fn an_evicted_session_whose_slot_is_busy_goes_at_its_own_next_fetch() {
    let budget = SessionBudget::with_min_eviction(1, 100, Duration::from_secs(10));
    let (one, two) = (SessionSlot::default(), SessionSlot::default());
    let t0 = Instant::now();
    let first = open_at(&one, &budget, 3, t0).unwrap();
    {
        // One's loop is in the middle of something with its slot.
        let _busy = lock(&one);
        open_at(&two, &budget, 1, t0 + secs(11)).unwrap();
    }
    assert!(lock(&one).is_some(), "the busy slot was waited for");
    assert_eq!(
        budget.in_use(),
        (1, 1),
        "the evicted session is still counted"
    );
    assert_eq!(
        fetch_at(&one, &budget, first, 1, t0 + secs(12)),
        ec::FETCH_SESSION_ID_NOT_FOUND
    );
    assert!(lock(&one).is_none());
    drop(one);
    assert_eq!(
        budget.in_use(),
        (1, 1),
        "the evicted session was counted off twice"
    );
}

#[test]
fn a_growing_session_evicts_idle_ones_but_none_for_their_size() {
    let budget = SessionBudget::with_min_eviction(10, 5, Duration::from_secs(10));
    let (idle, busy, growing) = (
        SessionSlot::default(),
        SessionSlot::default(),
        SessionSlot::default(),
    );
    let t0 = Instant::now();
    open_at(&idle, &budget, 2, t0).unwrap();
    let b = open_at(&busy, &budget, 1, t0).unwrap();
    let g = open_at(&growing, &budget, 1, t0).unwrap();
    let at = t0 + secs(11);
    assert_eq!(fetch_at(&busy, &budget, b, 1, at), ec::NONE);
    // Two more partitions fit once the idle session goes.
    let mut r = request(1, g, &[("u", &[(0, 0), (1, 0)])]);
    let step = plan_at(&growing, &budget, 12, &mut r, at);
    assert!(matches!(step, SessionStep::Incremental { .. }), "{step:?}");
    assert_eq!(budget.in_use(), (2, 4));
    assert!(lock(&idle).is_none());
    // Two more do not fit without evicting the busy (smaller) one.
    let mut r = request(2, g, &[("v", &[(0, 0), (1, 0)])]);
    let step = plan_at(&growing, &budget, 12, &mut r, at);
    assert!(matches!(
        step,
        SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND)
    ));
    assert_eq!(budget.in_use(), (1, 1));
    assert!(lock(&busy).is_some());
}

#[test]
fn loops_evicting_each_others_sessions_never_wait_on_each_other_or_miscount() {
    // Every session is idle at once (no window), so each open evicts
    // another thread's: slots are taken out under their owners, tried
    // while their owners hold them, and dropped by either side.
    let budget = SessionBudget::with_min_eviction(3, 12, Duration::ZERO);
    let start = Arc::new(std::sync::Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (budget, start) = (budget.clone(), start.clone());
            std::thread::spawn(move || {
                let slot = SessionSlot::default();
                start.wait();
                let (mut id, mut epoch, mut evicted) = (0, 0, 0);
                for i in 0..3000u32 {
                    let size = (i * 7 + t) % 5 + 1;
                    // Every fourth fetch a full one: it opens a new session.
                    let mut r = if id == 0 || i % 4 == 0 {
                        let named: Vec<(i32, i64)> = (0..size as i32).map(|p| (p, 0)).collect();
                        request(0, 0, &[("t", &named)])
                    } else {
                        request(epoch, id, &[("u", &[(size as i32, 0)])])
                    };
                    let step = plan(&slot, &budget, 12, &mut r);
                    let a = step.answer(answer_to(&r, &flat, &[]), none);
                    match a.error_code {
                        ec::NONE if a.session_id != 0 => {
                            epoch = if id == a.session_id { epoch + 1 } else { 1 };
                            id = a.session_id;
                        }
                        ec::NONE => id = 0,
                        ec::FETCH_SESSION_ID_NOT_FOUND => {
                            id = 0;
                            evicted += 1;
                        }
                        other => panic!("answered {other}"),
                    }
                    let (open, held) = budget.in_use();
                    assert!(
                        open <= 3 && held <= 12,
                        "{open} sessions of {held} partitions"
                    );
                    if i % 8 == 0 {
                        // Interleave on one core too.
                        std::thread::yield_now();
                    }
                }
                evicted
            })
        })
        .collect();
    let evicted: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(evicted > 20, "only {evicted} sessions were evicted");
    assert_eq!(budget.in_use(), (0, 0));
}

#[test]
fn a_session_holds_each_topic_name_once_and_lets_it_go_with_its_last_partition() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let id = opened(&slot, &budget);
    // Each request brings its own copy of "a"; the session keeps one.
    for (epoch, partition) in [(1, 7), (2, 8)] {
        let mut r = request(epoch, id, &[("a", &[(partition, 0)])]);
        plan(&slot, &budget, 12, &mut r);
    }
    {
        let held = lock(&slot);
        let session = held.as_ref().unwrap();
        assert_eq!(session.names.len(), 2, "a and b");
        assert_eq!(session.names[&StrBytes::from_static_str("a")], 5);
        let pointers: std::collections::HashSet<*const u8> = session
            .entries
            .iter()
            .flatten()
            .filter_map(|c| match &c.topic {
                TopicKey::Name(n) if n.as_str() == "a" => Some(n.as_str().as_ptr()),
                _ => None,
            })
            .collect();
        assert_eq!(pointers.len(), 1, "a's name is held more than once");
    }
    let mut r = request(3, id, &[]);
    let mut t = ForgottenTopic::default();
    t.topic = TopicName(StrBytes::from_static_str("b"));
    t.partitions = vec![0];
    r.forgotten_topics_data.push(t);
    plan(&slot, &budget, 12, &mut r);
    let held = lock(&slot);
    let names: Vec<&str> = held
        .as_ref()
        .unwrap()
        .names
        .keys()
        .map(|n| n.as_str())
        .collect();
    assert_eq!(names, ["a"], "b went with its last partition");
}

#[test]
fn a_name_no_topic_can_have_opens_no_session_and_ends_one() {
    let (slot, budget) = (SessionSlot::default(), SessionBudget::new(10, 100));
    let long = "x".repeat(250);
    let mut r = request(0, 0, &[(long.as_str(), &[(0, 0)])]);
    assert!(matches!(
        plan(&slot, &budget, 12, &mut r),
        SessionStep::None
    ));
    assert_eq!(budget.in_use(), (0, 0));
    assert_eq!(named(&r).len(), 1, "answered in full");
    let id = opened(&slot, &budget);
    let mut r = request(1, id, &[(long.as_str(), &[(0, 0)])]);
    assert!(matches!(
        plan(&slot, &budget, 12, &mut r),
        SessionStep::Refused(ec::FETCH_SESSION_ID_NOT_FOUND)
    ));
    assert_eq!(budget.in_use(), (0, 0));
    // 249 bytes, the longest a topic's name can be, is kept.
    let longest = "y".repeat(249);
    let mut r = request(0, 0, &[(longest.as_str(), &[(0, 0)])]);
    assert!(matches!(
        plan(&slot, &budget, 12, &mut r),
        SessionStep::Open { .. }
    ));
}

#[test]
fn epochs_wrap_past_the_largest_to_one() {
    assert_eq!(next_epoch(1), 2);
    assert_eq!(next_epoch(i32::MAX), 1);
}

mod model;
