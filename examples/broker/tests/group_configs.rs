//! A group's own configs (KIP-848 and KIP-932's group resource, type 32)
//! in a running broker, over raw requests: set with
//! IncrementalAlterConfigs, described with DescribeConfigs, refused when
//! a heartbeat would not stay below its session, kept across a restart,
//! and acted on: a consumer group's and a share group's members are told
//! the group's heartbeat interval and dropped after the group's session
//! timeout, not the broker's. librdkafka's view of them is in
//! `clients/share_groups.py`.

mod common;

use common::groups::set_configs as set;
use common::Client;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::time::{Duration, Instant};

const GROUP: i8 = 32;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// Group `group`'s configs as described: (name, value, set by the group).
fn described(c: &mut Client, group: &str) -> Vec<(String, String, bool)> {
    let mut res = describe_configs_request::DescribeConfigsResource::default();
    res.resource_type = GROUP;
    res.resource_name = s(group);
    res.configuration_keys = None; // all of them
    let mut r = DescribeConfigsRequest::default();
    r.resources.push(res);
    let resp: DescribeConfigsResponse = c.call(ApiKey::DescribeConfigs, 4, &r);
    resp.results[0]
        .configs
        .iter()
        .map(|e| {
            let value = e.value.as_ref().map_or("", |v| v.as_str()).to_owned();
            (e.name.as_str().to_owned(), value, e.config_source == 8)
        })
        .collect()
}

fn consumer_join(c: &mut Client, member: &str) -> ConsumerGroupHeartbeatResponse {
    let r = common::groups::consumer_join("cg", member);
    c.call(ApiKey::ConsumerGroupHeartbeat, 1, &r)
}

fn share_join(c: &mut Client, member: &str) -> ShareGroupHeartbeatResponse {
    let mut r = ShareGroupHeartbeatRequest::default();
    r.group_id = GroupId(s("sg"));
    r.member_id = s(member);
    r.member_epoch = 0;
    r.subscribed_topic_names = Some(vec![common::topic_name("t")]);
    c.call(ApiKey::ShareGroupHeartbeat, 1, &r)
}

/// The members of consumer group `cg` and of share group `sg`.
fn members(c: &mut Client) -> (usize, usize) {
    let mut d = ConsumerGroupDescribeRequest::default();
    d.group_ids.push(GroupId(s("cg")));
    let cg: ConsumerGroupDescribeResponse = c.call(ApiKey::ConsumerGroupDescribe, 0, &d);
    let mut d = ShareGroupDescribeRequest::default();
    d.group_ids.push(GroupId(s("sg")));
    let sg: ShareGroupDescribeResponse = c.call(ApiKey::ShareGroupDescribe, 1, &d);
    (cg.groups[0].members.len(), sg.groups[0].members.len())
}

#[test]
fn a_groups_session_and_heartbeat_are_set_described_kept_and_acted_on() {
    let tag = "group-configs";
    let config = common::config(tag);
    let b = common::start(&config);
    let mut c = Client::connect(b.local_addr());
    common::create_topic(&mut c, "t", 1);

    // A heartbeat at or above its session (the broker's 45 s here) is
    // refused with Kafka's reason, and nothing of the request applies.
    let (code, message) = set(
        &mut c,
        "cg",
        &[
            ("consumer.session.timeout.ms", "3000"),
            ("consumer.heartbeat.interval.ms", "3000"),
        ],
    );
    assert_eq!(code, 40, "INVALID_CONFIG: {message}");
    assert!(
        message.contains(
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        ),
        "{message}"
    );
    let (code, message) = set(&mut c, "cg", &[("consumer.session.timeout.ms", "10")]);
    assert_eq!(code, 40, "{message}");

    for (group, prefix) in [("cg", "consumer"), ("sg", "share")] {
        let session = format!("{prefix}.session.timeout.ms");
        let heartbeat = format!("{prefix}.heartbeat.interval.ms");
        let (code, message) = set(&mut c, group, &[(&session, "2000"), (&heartbeat, "400")]);
        assert_eq!(code, 0, "{message}");
        let all = described(&mut c, group);
        assert_eq!(all.len(), 7, "every key, set or not: {all:?}");
        assert!(all.contains(&(session, "2000".into(), true)), "{all:?}");
        assert!(all.contains(&(heartbeat, "400".into(), true)), "{all:?}");
    }
    drop(c);
    b.shutdown(Duration::from_secs(5));

    // Kept across a restart, and acted on.
    let b = common::start(&config);
    let mut c = Client::connect(b.local_addr());
    let all = described(&mut c, "cg");
    assert!(all.contains(&("consumer.session.timeout.ms".into(), "2000".into(), true)));
    let joined = consumer_join(&mut c, "m");
    assert_eq!((joined.error_code, joined.heartbeat_interval_ms), (0, 400));
    let joined = share_join(&mut c, "m");
    assert_eq!((joined.error_code, joined.heartbeat_interval_ms), (0, 400));
    assert_eq!(members(&mut c), (1, 1));
    // Silent: dropped after the groups' 2 s, long before the broker's 45 s.
    let started = Instant::now();
    while members(&mut c) != (0, 0) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "members still there: {:?}",
            members(&mut c)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
    drop(c);
    drop(b);
    let _ = std::fs::remove_dir_all(common::data_dir(tag));
}
