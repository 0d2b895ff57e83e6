//! Random sequences of fetches against a plain model of what the
//! session must hold and what the client must hear.
use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

type Key = (String, i32);
/// The session id, the next epoch, and per partition its offset
/// and the high watermark the client was told.
type Model = (i32, i32, BTreeMap<Key, (i64, i64)>);

#[derive(Clone, Debug)]
enum Step {
    /// A full fetch (epoch 0, or -1 for none) of these partitions.
    Full(bool, Vec<(Key, i64)>),
    /// An incremental fetch: right epoch and id or not, partitions
    /// named, partitions forgotten.
    Incremental(bool, Vec<(Key, i64)>, Vec<Key>),
}

fn key() -> impl Strategy<Value = Key> {
    (prop::sample::select(vec!["a", "b", "c"]), 0..4i32).prop_map(|(t, p)| (t.to_owned(), p))
}

fn named() -> impl Strategy<Value = Vec<(Key, i64)>> {
    prop::collection::vec((key(), 0..100i64), 0..6)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), named()).prop_map(|(s, n)| Step::Full(s, n)),
        (
            prop::bool::weighted(0.9),
            named(),
            prop::collection::vec(key(), 0..3)
        )
            .prop_map(|(ok, n, f)| Step::Incremental(ok, n, f)),
    ]
}

fn request_of(epoch: i32, id: i32, named: &[(Key, i64)], forgotten: &[Key]) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.session_epoch = epoch;
    r.session_id = id;
    for ((t, p), offset) in named {
        let mut topic = FetchTopic::default();
        topic.topic = TopicName(StrBytes::from_string(t.clone()));
        let mut part = FetchPartition::default();
        part.partition = *p;
        part.fetch_offset = *offset;
        topic.partitions.push(part);
        r.topics.push(topic);
    }
    for (t, p) in forgotten {
        let mut f = kafka_protocol::messages::fetch_request::ForgottenTopic::default();
        f.topic = TopicName(StrBytes::from_string(t.clone()));
        f.partitions.push(*p);
        r.forgotten_topics_data.push(f);
    }
    r
}

proptest! {
    #[test]
    fn sessions_hold_and_answer_what_the_model_says(
        steps in prop::collection::vec((step(), any::<u64>()), 1..40),
    ) {
        let (slot, budget) = (SessionSlot::default(), SessionBudget::new(4, 1000));
        // The model: session id, next epoch, and per partition its
        // offset and the high watermark the client was told.
        let mut model: Option<Model> = None;
        for (step, seed) in steps {
            // Each partition's high watermark this time: a few
            // values, so some repeat what was told.
            let hw_of = |k: &Key| ((seed >> (k.1 * 3 + k.0.len() as i32)) % 3) as i64;
            let (mut r, planned_full) = match &step {
                Step::Full(session, named) => {
                    (request_of(if *session { 0 } else { -1 }, 0, named, &[]), true)
                }
                Step::Incremental(ok, named, forgotten) => {
                    let (id, epoch) = model.as_ref().map_or((5, 1), |m| (m.0, m.1));
                    let epoch = if *ok { epoch } else { epoch + 7 };
                    (request_of(epoch, id, named, forgotten), false)
                }
            };
            let step_plan = plan(&slot, &budget, 12, &mut r);
            let answer = answer_to(&r, &|t: &str, p: i32| hw_of(&(t.to_owned(), p)), &[]);
            let a = step_plan.answer(answer, none);
            match (&step, planned_full) {
                (Step::Full(open, named), _) => {
                    let mut held = BTreeMap::new();
                    for (k, offset) in named {
                        held.insert(k.clone(), (*offset, hw_of(k)));
                    }
                    prop_assert_eq!(heard(&a).len(), named.len());
                    model = (*open && !held.is_empty()).then_some((a.session_id, 1, held));
                    if let Some(m) = &model {
                        prop_assert_ne!(m.0, 0);
                    } else {
                        prop_assert_eq!(a.session_id, 0);
                    }
                }
                (Step::Incremental(ok, named, forgotten), _) => {
                    let Some(m) = model.as_mut().filter(|_| *ok) else {
                        prop_assert_ne!(a.error_code, 0);
                        prop_assert!(a.topics.is_empty());
                        continue;
                    };
                    prop_assert_eq!(a.error_code, 0);
                    for (k, offset) in named {
                        let told = m.2.get(k).map_or(-1, |e| e.1);
                        m.2.insert(k.clone(), (*offset, told));
                    }
                    for k in forgotten {
                        m.2.remove(k);
                    }
                    if m.2.is_empty() {
                        prop_assert_eq!(a.session_id, 0);
                        model = None;
                        continue;
                    }
                    // The request stood for the whole session.
                    let stood: BTreeMap<Key, i64> = named_of(&r);
                    let want: BTreeMap<Key, i64> =
                        m.2.iter().map(|(k, e)| (k.clone(), e.0)).collect();
                    prop_assert_eq!(stood, want);
                    // The client heard exactly the partitions whose
                    // high watermark it had not been told.
                    let mut expected: Vec<Key> = m
                        .2
                        .iter()
                        .filter(|(k, e)| e.1 != hw_of(k))
                        .map(|(k, _)| k.clone())
                        .collect();
                    let mut got = heard(&a);
                    expected.sort();
                    got.sort();
                    prop_assert_eq!(got, expected);
                    for (k, e) in m.2.iter_mut() {
                        e.1 = hw_of(k);
                    }
                    m.1 = next_epoch(m.1);
                    prop_assert_eq!(a.session_id, m.0);
                }
            }
            let in_use = model.as_ref().map_or((0, 0), |m| (1, m.2.len()));
            prop_assert_eq!(budget.in_use(), in_use);
        }
        drop(slot);
        prop_assert_eq!(budget.in_use(), (0, 0));
    }
}

fn named_of(r: &FetchRequest) -> BTreeMap<Key, i64> {
    let mut out = BTreeMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            let fresh = out.insert((t.topic.0.to_string(), p.partition), p.fetch_offset);
            assert!(fresh.is_none(), "a partition stood twice");
        }
    }
    out
}
