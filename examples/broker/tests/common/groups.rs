//! Group requests as the group tests send them: a consumer's JoinGroup
//! subscribed to topic `t`, a Heartbeat, a consumer-protocol member's
//! first ConsumerGroupHeartbeat, and a group's own configs set with
//! IncrementalAlterConfigs.

use super::Client;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{
    incremental_alter_configs_request, ApiKey, ConsumerGroupHeartbeatRequest, GroupId,
    HeartbeatRequest, HeartbeatResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, JoinGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

/// A consumer's JoinGroup into `group` (protocol `range`, version 0 of the
/// consumer protocol's subscription, to topic `t`), with a session of 10 s
/// and a rebalance timeout of 2 s.
pub fn classic_join(group: &str, member: &str, instance: Option<&str>) -> JoinGroupRequest {
    let mut j = JoinGroupRequest::default();
    j.group_id = GroupId(s(group));
    j.session_timeout_ms = 10_000;
    j.rebalance_timeout_ms = 2_000;
    j.member_id = s(member);
    j.group_instance_id = instance.map(s);
    j.protocol_type = s("consumer");
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    let mut md = vec![0, 0, 0, 0, 0, 1, 0, 1, b't'];
    md.extend_from_slice(&(-1i32).to_be_bytes());
    p.metadata = md.into();
    j.protocols.push(p);
    j
}

/// A Heartbeat v4 into `group`; its error code.
pub fn heartbeat(
    c: &mut Client,
    group: &str,
    (member, instance): (&str, Option<&str>),
    generation: i32,
) -> i16 {
    let mut r = HeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member);
    r.group_instance_id = instance.map(s);
    r.generation_id = generation;
    let resp: HeartbeatResponse = c.call(ApiKey::Heartbeat, 4, &r);
    resp.error_code
}

/// Sets `configs` on group `group` (resource type 32): the answer's error
/// code and message.
pub fn set_configs(c: &mut Client, group: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let mut res = incremental_alter_configs_request::AlterConfigsResource::default();
    res.resource_type = 32;
    res.resource_name = s(group);
    for (key, value) in configs {
        let mut a = incremental_alter_configs_request::AlterableConfig::default();
        a.name = s(key);
        a.config_operation = 0; // SET
        a.value = Some(s(value));
        res.configs.push(a);
    }
    let mut r = IncrementalAlterConfigsRequest::default();
    r.resources.push(res);
    let resp: IncrementalAlterConfigsResponse = c.call(ApiKey::IncrementalAlterConfigs, 1, &r);
    let result = &resp.responses[0];
    let message = result.error_message.as_ref().map_or("", |m| m.as_str());
    (result.error_code, message.to_owned())
}

/// A consumer-protocol member's first ConsumerGroupHeartbeat into
/// `group`, subscribed to topic `t`, owning nothing, with a rebalance
/// timeout of 30 s.
pub fn consumer_join(group: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    let mut r = ConsumerGroupHeartbeatRequest::default();
    r.group_id = GroupId(s(group));
    r.member_id = s(member);
    r.member_epoch = 0;
    r.rebalance_timeout_ms = 30_000;
    r.subscribed_topic_names = Some(vec![super::topic_name("t")]);
    r.topic_partitions = Some(Vec::new());
    r
}
