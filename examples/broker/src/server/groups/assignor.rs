//! The server-side assignors of the consumer group protocol (KIP-848):
//! given each member's subscribed topics and each topic's partition count,
//! a target assignment for every member. `uniform` (the default, as in
//! Kafka) balances partitions across the members that subscribe to them
//! and keeps each member's previous partitions where balance allows;
//! `range` gives each member a contiguous range of every topic it
//! subscribes to, so members subscribed to co-partitioned topics get the
//! same partition numbers of each. Plain functions over plain data.

use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A topic partition, by topic id.
pub type TopicPartition = (Uuid, i32);

/// A set of partitions (ordered, so answers list them in order).
pub type Partitions = BTreeSet<TopicPartition>;

/// The assignors served, by the names clients ask for.
pub const NAMES: [&str; 2] = ["uniform", "range"];

/// One member's view for an assignor.
#[derive(Debug)]
pub struct MemberSpec<'a> {
    /// The member id.
    pub id: &'a str,
    /// The subscribed topics (that exist).
    pub topics: BTreeSet<Uuid>,
    /// Its partitions in the previous target (stickiness).
    pub previous: Option<&'a Partitions>,
}

/// Runs the assignor called `name` (one of [`NAMES`]); `topics` gives each
/// topic's partition count.
pub fn assign(
    name: &str,
    members: &[MemberSpec<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Partitions> {
    if name == "range" {
        range(members, topics)
    } else {
        uniform(members, topics)
    }
}

/// Every member of `members` gets a share of the partitions of the topics
/// it subscribes to: each keeps what it had and may still have, a
/// partition nobody has goes to the subscribed member with the fewest,
/// then partitions move one at a time from a member with more to a
/// subscribed member with at least two fewer until no move narrows a gap.
/// Members are worked on by index, so a group of thousands of partitions
/// is assigned in milliseconds.
fn uniform(
    members: &[MemberSpec<'_>],
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Partitions> {
    let n = members.len();
    let mut out: Vec<Partitions> = vec![Partitions::new(); n];
    // Ties go to the member whose id sorts first.
    let mut by_id: Vec<usize> = (0..n).collect();
    by_id.sort_by_key(|&i| members[i].id);
    let exists = |tp: &TopicPartition| topics.get(&tp.0).is_some_and(|&c| tp.1 >= 0 && tp.1 < c);
    // Keep what each member had and may still have, each partition once.
    let mut taken: std::collections::HashSet<TopicPartition> = std::collections::HashSet::new();
    for &i in &by_id {
        for tp in members[i].previous.into_iter().flatten() {
            if members[i].topics.contains(&tp.0) && exists(tp) && taken.insert(*tp) {
                out[i].insert(*tp);
            }
        }
    }
    // Hand out the rest, each to the subscriber with the fewest.
    for (&topic, &count) in topics {
        let subscribers: Vec<usize> = by_id
            .iter()
            .copied()
            .filter(|&i| members[i].topics.contains(&topic))
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        for p in 0..count {
            if taken.contains(&(topic, p)) {
                continue;
            }
            let least = *subscribers
                .iter()
                .min_by_key(|&&i| out[i].len())
                .expect("not empty");
            out[least].insert((topic, p));
        }
    }
    // Balance: each move lowers the sum of squared loads, so this ends.
    loop {
        let mut order = by_id.clone();
        order.sort_by_key(|&i| std::cmp::Reverse(out[i].len()));
        let mut moved = None;
        'from: for &from in &order {
            // The least loaded first; past the first that is not two
            // below `from`, none is.
            for &to in order.iter().rev() {
                if out[to].len() + 1 >= out[from].len() {
                    break;
                }
                let eligible = out[from]
                    .iter()
                    .rev()
                    .find(|tp| members[to].topics.contains(&tp.0));
                if let Some(&tp) = eligible {
                    moved = Some((from, to, tp));
                    break 'from;
                }
            }
        }
        let Some((from, to, tp)) = moved else { break };
        out[from].remove(&tp);
        out[to].insert(tp);
    }
    members
        .iter()
        .zip(out)
        .map(|(m, parts)| (m.id.to_owned(), parts))
        .collect()
}

/// For each topic, its subscribers sorted by member id split its
/// partitions into contiguous ranges, the first `count % members` one
/// longer.
fn range(members: &[MemberSpec<'_>], topics: &BTreeMap<Uuid, i32>) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = members
        .iter()
        .map(|m| (m.id.to_owned(), Partitions::new()))
        .collect();
    for (&topic, &count) in topics {
        let mut subscribers: Vec<&str> = members
            .iter()
            .filter(|m| m.topics.contains(&topic))
            .map(|m| m.id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        subscribers.sort_unstable();
        let n = subscribers.len() as i32;
        let (share, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, id) in subscribers.into_iter().enumerate() {
            let len = share + i32::from((i as i32) < extra);
            let set = out.get_mut(id).expect("every member");
            set.extend((next..next + len).map(|p| (topic, p)));
            next += len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn spec<'a>(id: &'a str, topics: &[Uuid], previous: Option<&'a Partitions>) -> MemberSpec<'a> {
        MemberSpec {
            id,
            topics: topics.iter().copied().collect(),
            previous,
        }
    }

    fn sizes(a: &BTreeMap<String, Partitions>) -> Vec<usize> {
        a.values().map(BTreeSet::len).collect()
    }

    /// Every partition of the subscribed topics is assigned exactly once.
    fn covers_once(a: &BTreeMap<String, Partitions>, topics: &BTreeMap<Uuid, i32>) {
        let mut all: Vec<TopicPartition> = a.values().flatten().copied().collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "a partition given twice: {a:?}");
        assert_eq!(n as i32, topics.values().sum::<i32>(), "{a:?}");
    }

    #[test]
    fn uniform_balances_and_keeps_what_members_had() {
        let (t1, t2) = (topic(1), topic(2));
        let topics = BTreeMap::from([(t1, 6), (t2, 3)]);
        let first = assign("uniform", &[spec("a", &[t1, t2], None)], &topics);
        assert_eq!(sizes(&first), [9]);
        covers_once(&first, &topics);
        // A second member: balanced 5/4 (or 4/5), and the first keeps
        // every partition it still has.
        let a_had = first["a"].clone();
        let second = assign(
            "uniform",
            &[
                spec("a", &[t1, t2], Some(&a_had)),
                spec("b", &[t1, t2], None),
            ],
            &topics,
        );
        covers_once(&second, &topics);
        let mut s = sizes(&second);
        s.sort();
        assert_eq!(s, [4, 5]);
        assert!(second["a"].is_subset(&a_had));
        // A third: 3/3/3, and the first two lose only what balance needs.
        let (a2, b2) = (second["a"].clone(), second["b"].clone());
        let third = assign(
            "uniform",
            &[
                spec("a", &[t1, t2], Some(&a2)),
                spec("b", &[t1, t2], Some(&b2)),
                spec("c", &[t1, t2], None),
            ],
            &topics,
        );
        covers_once(&third, &topics);
        assert_eq!(sizes(&third), [3, 3, 3]);
        assert!(third["a"].is_subset(&a2) && third["b"].is_subset(&b2));
    }

    #[test]
    fn uniform_gives_each_partition_only_to_its_subscribers() {
        let (t1, t2) = (topic(1), topic(2));
        let topics = BTreeMap::from([(t1, 4), (t2, 4)]);
        let a = assign(
            "uniform",
            &[
                spec("a", &[t1], None),
                spec("b", &[t1, t2], None),
                spec("c", &[t2], None),
            ],
            &topics,
        );
        covers_once(&a, &topics);
        assert!(a["a"].iter().all(|tp| tp.0 == t1));
        assert!(a["c"].iter().all(|tp| tp.0 == t2));
        let mut s = sizes(&a);
        s.sort();
        assert!(s[2] - s[0] <= 1, "{a:?}");
        // A member subscribed to nothing that exists gets nothing; a topic
        // nobody subscribes to is not assigned.
        let lone = assign("uniform", &[spec("a", &[topic(9)], None)], &topics);
        assert!(lone["a"].is_empty());
        // A previous partition that no longer exists is dropped.
        let gone = Partitions::from([(t1, 7)]);
        let kept = assign(
            "uniform",
            &[spec("a", &[t1], Some(&gone))],
            &BTreeMap::from([(t1, 2)]),
        );
        assert_eq!(kept["a"], Partitions::from([(t1, 0), (t1, 1)]));
    }

    #[test]
    fn random_groups_get_every_subscribed_partition_once_and_only_to_subscribers() {
        use rand::Rng;
        let mut rng = rand::rng();
        for case in 0..300 {
            let topics: BTreeMap<Uuid, i32> = (0..rng.random_range(1..5u8))
                .map(|t| (topic(t + 1), rng.random_range(0..13)))
                .collect();
            let ids: Vec<String> = (0..rng.random_range(1..7))
                .map(|m| format!("m{m}"))
                .collect();
            let homogeneous = case % 2 == 0;
            let subs: Vec<Vec<Uuid>> = ids
                .iter()
                .map(|_| {
                    topics
                        .keys()
                        .copied()
                        .filter(|_| homogeneous || rng.random_bool(0.6))
                        .collect()
                })
                .collect();
            // A previous assignment that may be stale or overlapping.
            let previous: Vec<Partitions> = ids
                .iter()
                .map(|_| {
                    (0..rng.random_range(0..6))
                        .map(|_| (topic(rng.random_range(1..6)), rng.random_range(0..15)))
                        .collect()
                })
                .collect();
            let specs: Vec<MemberSpec<'_>> = ids
                .iter()
                .zip(&subs)
                .zip(&previous)
                .map(|((id, t), p)| spec(id, t, Some(p)))
                .collect();
            for name in NAMES {
                let a = assign(name, &specs, &topics);
                let wanted: BTreeMap<Uuid, i32> = topics
                    .iter()
                    .filter(|(t, _)| subs.iter().any(|s| s.contains(t)))
                    .map(|(t, n)| (*t, *n))
                    .collect();
                covers_once(&a, &wanted);
                for (m, s) in specs.iter().zip(&subs) {
                    assert!(a[m.id].iter().all(|tp| s.contains(&tp.0)), "{name}: {a:?}");
                }
                if homogeneous && name == "uniform" {
                    let mut sz = sizes(&a);
                    sz.sort();
                    assert!(sz[sz.len() - 1] - sz[0] <= 1, "{a:?}");
                }
            }
        }
    }

    #[test]
    fn range_gives_contiguous_ranges_of_every_topic_in_member_order() {
        let (t1, t2) = (topic(1), topic(2));
        let topics = BTreeMap::from([(t1, 5), (t2, 5)]);
        let a = assign(
            "range",
            &[spec("b", &[t1, t2], None), spec("a", &[t1, t2], None)],
            &topics,
        );
        covers_once(&a, &topics);
        let parts = |m: &str, t: Uuid| -> Vec<i32> {
            a[m].iter().filter(|tp| tp.0 == t).map(|tp| tp.1).collect()
        };
        assert_eq!(parts("a", t1), [0, 1, 2]);
        assert_eq!(parts("b", t1), [3, 4]);
        // Co-partitioned: the same numbers of each topic.
        assert_eq!(parts("a", t2), parts("a", t1));
        assert_eq!(parts("b", t2), parts("b", t1));
    }
}
