"""CreatePartitions through confluent-kafka's and kafka-python's admin
clients: a topic grows from 2 to 4 partitions and the new ones take and
serve records; a validate-only request changes nothing; shrinking is
refused with INVALID_PARTITIONS. Prints "partitions ok"."""
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient
from kafka.admin import NewPartitions as KpNewPartitions
from kafka.errors import InvalidPartitionsError

broker, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": broker})
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

kp = KafkaAdminClient(bootstrap_servers=broker)
kp.create_partitions({topic: KpNewPartitions(total_count=5)})
assert partitions() == 5, partitions()
try:
    kp.create_partitions({topic: KpNewPartitions(total_count=5)})
    raise SystemExit("a growth to the same count was accepted")
except InvalidPartitionsError:
    pass
kp.close()
print("partitions ok")
