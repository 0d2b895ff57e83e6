"""Topic configs as tools set them, through confluent-kafka (librdkafka):
configs spelled out at the value the broker runs with (min.insync.replicas=1,
compression.type=producer, ...) are accepted at create; a cleanup policy
the broker does not know is refused saying what it takes; a 2 MB record is refused with MSG_SIZE_TOO_LARGE under
the default max.message.bytes and taken (and read back whole by a
consumer with a 1 MB partition fetch size) on a topic that raises it, at
create or by an incremental alter; a LogAppendTime topic gives its
records the broker's time, in the delivery report and to the consumer;
and the admin client lists the topics. Prints "limits ok"."""
import sys
import time

from confluent_kafka import (TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   ConfigSource, NewTopic, ResourceType)

broker, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": broker})
big_topic, spelled = topic + "-big", topic + "-spelled"


def create(name, config):
    admin.create_topics([NewTopic(name, 1, 1, config=config)])[name].result(10)


create(topic, {})
create(spelled, {"cleanup.policy": "delete", "min.insync.replicas": "1",
                 "compression.type": "producer", "unclean.leader.election.enable": "false",
                 "message.timestamp.type": "CreateTime", "retention.ms": "86400000"})
stamped = topic + "-stamped"
create(stamped, {"message.timestamp.type": "LogAppendTime"})
try:
    create(topic + "-shredded", {"cleanup.policy": "compact,shred"})
    raise SystemExit("a topic with an unknown cleanup policy was created")
except KafkaException as e:
    assert e.args[0].name() == "INVALID_CONFIG", e
    assert "a list of delete and compact" in e.args[0].str(), e.args[0].str()
create(big_topic, {"max.message.bytes": "5242880"})
# The admin client's all-topics Metadata v12 ends with three bytes more
# than its body; Kafka ignores them, and so must the broker.
listed = admin.list_topics(timeout=10).topics
assert {topic, spelled, stamped, big_topic} <= set(listed), sorted(listed)

[(_, f)] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, big_topic)]).items()
configs = f.result(10)
assert configs["max.message.bytes"].value == "5242880", configs["max.message.bytes"]
assert configs["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
assert configs["min.insync.replicas"].value == "1" and configs["min.insync.replicas"].is_read_only
[(_, f)] = admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")]).items()
assert f.result(10)["message.max.bytes"].value == "1048588"

value = bytes(range(256)) * (2_000_000 // 256)


def produce(name):
    p = Producer({"bootstrap.servers": broker, "message.max.bytes": 10_000_000,
                  "compression.type": "none"})
    reports = []
    p.produce(name, value, on_delivery=lambda err, msg: reports.append(err))
    assert p.flush(10) == 0
    return reports[0]


err = produce(topic)
assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
assert produce(big_topic) is None

# Raised by an incremental alter, the same record goes in.
resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
    ConfigEntry("max.message.bytes", "3000000", incremental_operation=AlterConfigOpType.SET)])
[(_, f)] = admin.incremental_alter_configs([resource]).items()
f.result(10)
assert produce(topic) is None

for name in (topic, big_topic):
    c = Consumer({"bootstrap.servers": broker, "group.id": "limits-" + name,
                  "max.partition.fetch.bytes": 1_048_576, "enable.auto.commit": False})
    c.assign([TopicPartition(name, 0, 0)])
    m = c.poll(15)
    assert m is not None and m.error() is None, m and m.error()
    assert m.value() == value and m.offset() == 0, (m.offset(), len(m.value()))
    c.close()

# The producer's clock says 2001; a LogAppendTime topic says now.
old = 1_000_000_000_000
p = Producer({"bootstrap.servers": broker})
reports = []
before = int(time.time() * 1000)
for name in (spelled, stamped):
    p.produce(name, b"when", timestamp=old, on_delivery=lambda err, msg: reports.append(msg))
assert p.flush(10) == 0
after = int(time.time() * 1000)
assert [m.error() for m in reports] == [None, None], reports
by_topic = {m.topic(): m.timestamp() for m in reports}
assert by_topic[spelled] == (TIMESTAMP_CREATE_TIME, old), by_topic
kind, at = by_topic[stamped]
assert kind == TIMESTAMP_LOG_APPEND_TIME and before <= at <= after, (by_topic, before, after)
for name, expected in ((spelled, (TIMESTAMP_CREATE_TIME, old)), (stamped, by_topic[stamped])):
    c = Consumer({"bootstrap.servers": broker, "group.id": "when-" + name})
    c.assign([TopicPartition(name, 0, 0)])
    m = c.poll(15)
    assert m is not None and m.error() is None, m and m.error()
    assert m.timestamp() == expected, (name, m.timestamp(), expected)
    c.close()
print("limits ok")
