"""DescribeConfigs through confluent-kafka's and kafka-python's admin
clients: a topic's override is reported as a topic config (with the
broker default as its synonym), the rest as defaults, the broker's own
defaults under their broker names, and an unknown topic as an error.
Prints "configs ok"."""
import sys

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType
from kafka.admin import ConfigResource as KpResource
from kafka.admin import ConfigResourceType, KafkaAdminClient

broker, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": broker})
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                              config={"retention.ms": "60000"})])[topic].result(10)

[(_, future)] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).items()
configs = future.result(10)
retention = configs["retention.ms"]
assert retention.value == "60000", retention
assert retention.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, retention.source
assert "log.retention.ms" in retention.synonyms, retention.synonyms
assert configs["retention.ms"].is_default is False
assert configs["segment.bytes"].value == "134217728" and configs["segment.bytes"].is_default
assert configs["cleanup.policy"].value == "delete" and configs["cleanup.policy"].is_read_only

[(_, future)] = admin.describe_configs([ConfigResource(ResourceType.BROKER, "0")]).items()
assert future.result(10)["log.retention.ms"].value == "604800000"

[(_, future)] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "no-such-" + topic)]).items()
try:
    future.result(10)
    raise SystemExit("an unknown topic was described")
except KafkaException as e:
    assert "does not exist" in e.args[0].str() or e.args[0].code() == 3, e

kp = KafkaAdminClient(bootstrap_servers=broker)
described = kp.describe_configs([KpResource(ConfigResourceType.TOPIC, topic)])
assert described["topic"][topic]["retention.ms"]["value"] == "60000", described
kp.close()
print("configs ok")
