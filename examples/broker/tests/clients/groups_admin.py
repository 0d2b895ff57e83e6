"""The group admin APIs (ListGroups, DescribeGroups, DeleteGroups,
OffsetDelete) through kafka-python's and confluent-kafka's admin clients: a
running group is listed and described as Stable with its member's client
id, host and assignment, and can be neither deleted nor lose the offsets of
the topic it reads; once the member leaves, the group (its offsets kept) is
Empty; one partition's offset is deleted, then the group, after which it is
not found, as a group nobody has heard of is. Prints "groups ok"."""
import sys
import time

from confluent_kafka import Consumer, ConsumerGroupState, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartition as KpPartition
from kafka.admin import KafkaAdminClient

broker, topic = sys.argv[1], sys.argv[2]
group = "admin-" + topic
admin = AdminClient({"bootstrap.servers": broker})
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(10)
producer = Producer({"bootstrap.servers": broker})
for i in range(10):
    producer.produce(topic, b"m%d" % i, partition=i % 2)
assert producer.flush(10) == 0

consumer = Consumer({
    "bootstrap.servers": broker, "group.id": group, "client.id": "describer",
    "auto.offset.reset": "earliest", "enable.auto.commit": False,
})
consumer.subscribe([topic])
read = 0
deadline = time.time() + 30
while (read < 10 or not consumer.assignment()) and time.time() < deadline:
    m = consumer.poll(0.2)
    if m is not None and not m.error():
        read += 1
assert read == 10, read
consumer.commit(asynchronous=False)

# kafka-python.
kp = KafkaAdminClient(bootstrap_servers=broker)
listed = kp.list_groups()
# kafka-python negotiates ListGroups v5 (flexible), which carries the
# state (v4) and the type (v5).
assert {"group_id": group, "protocol_type": "consumer", "group_state": "Stable",
        "group_type": "classic"} in listed, listed
described = kp.describe_groups([group])[group]
assert described["error"] is None, described
assert described["group_state"] == "Stable", described
assert described["protocol_type"] == "consumer", described
assert described["protocol_data"], described
[member] = described["members"]
assert member["client_id"] == "describer", member
assert member["client_host"] == "/127.0.0.1", member
assert member["member_metadata"]["topics"] == [topic], member
[assigned] = member["member_assignment"]["assigned_partitions"]
assert assigned == {"topic": topic, "partitions": [0, 1]}, assigned
print("kafka-python:", described["group_state"], member["client_id"], member["client_host"])

# confluent-kafka (librdkafka's admin API).
result = admin.list_consumer_groups().result(10)
assert group in [g.group_id for g in result.valid], result.valid
# The state filter (ListGroups v4+).
stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(10)
assert group in [g.group_id for g in stable.valid], stable.valid
empty = admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(10)
assert group not in [g.group_id for g in empty.valid], empty.valid
desc = admin.describe_consumer_groups([group])[group].result(10)
assert desc.state == ConsumerGroupState.STABLE, desc.state
[m] = desc.members
assert m.client_id == "describer" and m.host == "/127.0.0.1", (m.client_id, m.host)
parts = sorted(tp.partition for tp in m.assignment.topic_partitions)
assert parts == [0, 1], parts
print("confluent-kafka:", desc.state, m.client_id, m.host, parts)

# A running group can be neither deleted nor lose a subscribed topic's
# offsets.
def error_name(e):
    return getattr(e, "__name__", str(e))


assert kp.delete_groups([group]) == {group: "NonEmptyGroupError"}
refused = kp.delete_group_offsets(group, [KpPartition(topic, 0)])
assert error_name(refused[KpPartition(topic, 0)]) == "GroupSubscribedToTopicError", refused

# The member leaves: the group, its offsets kept, is Empty and still listed.
consumer.close()
deadline = time.time() + 10
while time.time() < deadline:
    after = kp.describe_groups([group])[group]
    if after["group_state"] == "Empty":
        break
    time.sleep(0.2)
assert after["group_state"] == "Empty" and not after["members"], after
assert group in [g["group_id"] for g in kp.list_groups()]
# kafka-python describes with DescribeGroups v6: a group nobody has heard
# of is GROUP_ID_NOT_FOUND, as Kafka 4 answers (Dead before v6).
nobody = kp.describe_groups(["never-" + topic])["never-" + topic]
assert "GroupIdNotFound" in (nobody["error"] or ""), nobody

# OffsetDelete, then DeleteGroups (confluent-kafka's admin client).
done = kp.delete_group_offsets(group, [KpPartition(topic, 0)])
assert error_name(done[KpPartition(topic, 0)]) == "NoError", done
left = kp.list_group_offsets({group: None})[group]
assert sorted(tp.partition for tp in left) == [1], left
admin.delete_consumer_groups([group])[group].result(10)
gone = kp.describe_groups([group])[group]
assert "GroupIdNotFound" in (gone["error"] or ""), gone
assert group not in [g["group_id"] for g in kp.list_groups()]
assert kp.list_group_offsets({group: None})[group] == {}
kp.close()
print("groups ok")
