"""DescribeConfigs and IncrementalAlterConfigs through confluent-kafka's
and kafka-python's admin clients: a topic's override is reported as a
topic config (with the broker default as its synonym), the rest as
defaults, the broker's own defaults under their broker names, and an
unknown topic as an error; configs are set, put back to the default
(DELETE), checked without change (validate only), and a cleanup policy,
or a config, the broker does not know is refused with a message saying what it
does. kafka-python's list_config_resources (ListConfigResources, KIP-1142)
lists the topic, the broker and a group while it has a config of its own,
and is refused an unknown resource type. Prints "configs ok"."""
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
assert configs["cleanup.policy"].value == "delete" and configs["cleanup.policy"].is_default
assert configs["min.insync.replicas"].value == "1" and configs["min.insync.replicas"].is_read_only

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

# IncrementalAlterConfigs (confluent-kafka).
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry  # noqa: E402


def alter(entries, validate_only=False):
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    [(_, f)] = admin.incremental_alter_configs([resource], validate_only=validate_only).items()
    return f.result(10)


def value(key):
    [(_, f)] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).items()
    return f.result(10)[key]


alter([ConfigEntry("retention.bytes", "1048576", incremental_operation=AlterConfigOpType.SET),
       ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
assert value("retention.bytes").value == "1048576", value("retention.bytes")
assert value("retention.bytes").source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
assert value("retention.ms").value == "604800000" and value("retention.ms").is_default
alter([ConfigEntry("segment.bytes", "4096", incremental_operation=AlterConfigOpType.SET)],
      validate_only=True)
assert value("segment.bytes").value == "134217728", "validate only changed the topic"


def refused(key, value, says):
    """Setting `key` to `value` fails with INVALID_CONFIG saying `says`."""
    try:
        alter([ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
        raise SystemExit("%s=%s was accepted" % (key, value))
    except KafkaException as e:
        assert e.args[0].name() == "INVALID_CONFIG", e
        assert says in e.args[0].str(), e.args[0].str()


refused("cleanup.policy", "shred", "a list of delete and compact")
refused("flush.ms", "10", "retention.ms")
refused("retention.ms", "soon", "not a whole number")

# ListConfigResources (KIP-1142), through kafka-python: every topic, the
# broker, and the groups with a config of their own; one type asked for
# lists that type; a type that is no config resource is refused.
from kafka.errors import UnsupportedVersionError  # noqa: E402

group = topic + "-configured"
res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
    ConfigEntry("share.record.lock.duration.ms", "20000",
                incremental_operation=AlterConfigOpType.SET)])
[(_, f)] = admin.incremental_alter_configs([res]).items()
f.result(10)
kp = KafkaAdminClient(bootstrap_servers=broker)
listed = kp.list_config_resources()
assert topic in listed["topic"], listed
assert listed["broker"] == ["0"], listed
assert group in listed["group"], listed
assert kp.list_config_resources(["GROUP"]) == {"group": listed["group"]}
try:
    kp.list_config_resources(["UNKNOWN"])
    raise SystemExit("an unknown resource type was listed")
except UnsupportedVersionError:
    pass
# Back to the defaults, the group has no configs to list.
res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
    ConfigEntry("share.record.lock.duration.ms", None,
                incremental_operation=AlterConfigOpType.DELETE)])
[(_, f)] = admin.incremental_alter_configs([res]).items()
f.result(10)
assert group not in kp.list_config_resources(["GROUP"]).get("group", []), "reset group listed"
kp.close()
print("configs ok")
