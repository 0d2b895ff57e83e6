"""CreateTopics and CreatePartitions through confluent-kafka's and
kafka-python's admin clients: a validate-only creation is answered as the
creation would be and makes nothing (before, INVALID_REQUEST "no answer"
for every topic); a topic grows from 2 to 4 partitions and the new ones
take and serve records; a validate-only request changes nothing; shrinking
is refused with INVALID_PARTITIONS. Prints "partitions ok"."""
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.admin import NewPartitions as KpNewPartitions
from kafka.admin import NewTopic as KpNewTopic
from kafka.errors import InvalidConfigurationError, InvalidPartitionsError, TopicAlreadyExistsError

broker, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": broker})
kp = KafkaAdminClient(bootstrap_servers=broker)


def listed():
    return topic in admin.list_topics(timeout=10).topics


admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)],
                    validate_only=True)[topic].result(10)
kp.create_topics([KpNewTopic(topic, 2, 1)], validate_only=True)
assert not listed(), "a validate-only creation made the topic"
try:
    admin.create_topics([NewTopic(topic, num_partitions=2, config={"cleanup.policy": "shred"})],
                        validate_only=True)[topic].result(10)
    raise SystemExit("a bad config was validated")
except KafkaException as e:
    assert e.args[0].name() == "INVALID_CONFIG", e
try:
    kp.create_topics([KpNewTopic(topic, 0, 1)], validate_only=True)
    raise SystemExit("no partitions was validated")
except InvalidPartitionsError:
    pass
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(10)


def partitions():
    return len(admin.list_topics(topic, timeout=10).topics[topic].partitions)


admin.create_partitions([NewPartitions(topic, 4)])[topic].result(10)
assert partitions() == 4, partitions()
admin.create_partitions([NewPartitions(topic, 6)], validate_only=True)[topic].result(10)
assert partitions() == 4, ("validate only changed the topic", partitions())
try:
    admin.create_partitions([NewPartitions(topic, 3)])[topic].result(10)
    raise SystemExit("shrinking was accepted")
except KafkaException as e:
    assert e.args[0].name() == "INVALID_PARTITIONS", e

producer = Producer({"bootstrap.servers": broker})
producer.produce(topic, b"in the new partition", partition=3)
assert producer.flush(10) == 0
consumer = Consumer({"bootstrap.servers": broker, "group.id": "p-" + topic})
consumer.assign([TopicPartition(topic, 3, 0)])
m = consumer.poll(10)
assert m is not None and not m.error() and m.value() == b"in the new partition", m
consumer.close()
try:
    kp.create_topics([KpNewTopic(topic, 2, 1)], validate_only=True)
    raise SystemExit("an existing topic was validated")
except TopicAlreadyExistsError:
    pass
try:
    kp.create_topics([KpNewTopic(topic + "-bad", -1, -1, topic_configs={"retention.ms": "soon"})],
                     validate_only=True)
    raise SystemExit("a bad config was validated")
except InvalidConfigurationError:
    pass

kp.create_partitions({topic: KpNewPartitions(total_count=5)})
assert partitions() == 5, partitions()
try:
    kp.create_partitions({topic: KpNewPartitions(total_count=5)})
    raise SystemExit("a growth to the same count was accepted")
except InvalidPartitionsError:
    pass
kp.close()
print("partitions ok")
