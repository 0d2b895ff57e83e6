"""DeleteRecords through confluent-kafka's and kafka-python's admin
clients: the log start moves (the low watermark answered), a consumer from
the beginning starts there, the earliest offset says so, and an offset
past the end is refused with OFFSET_OUT_OF_RANGE. Prints "deleted ok"."""
import sys

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartition as KpPartition
from kafka.admin import KafkaAdminClient

broker, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": broker})
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)
producer = Producer({"bootstrap.servers": broker, "linger.ms": 0})
for i in range(100):
    producer.produce(topic, b"r%d" % i, partition=0)
    if i % 10 == 9:
        producer.flush(10)  # ten batches of ten
assert producer.flush(10) == 0

[deleted] = admin.delete_records([TopicPartition(topic, 0, 40)]).values()
assert deleted.result(10).low_watermark == 40, vars(deleted.result(10))


def first_from_beginning():
    c = Consumer({"bootstrap.servers": broker, "group.id": "d-" + topic,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, -2)])  # OFFSET_BEGINNING
    m = c.poll(10)
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.close()
    assert m is not None and not m.error(), m
    return m.offset(), low, high


assert first_from_beginning() == (40, 40, 100), first_from_beginning()

kp = KafkaAdminClient(bootstrap_servers=broker)
result = kp.delete_records({KpPartition(topic, 0): 60})
assert result[KpPartition(topic, 0)]["low_watermark"] == 60, result
kp.close()
assert first_from_beginning() == (60, 60, 100), first_from_beginning()

[beyond] = admin.delete_records([TopicPartition(topic, 0, 500)]).values()
try:
    beyond.result(10)
    raise SystemExit("an offset past the end was accepted")
except KafkaException as e:
    assert e.args[0].name() == "OFFSET_OUT_OF_RANGE", e
print("deleted ok")
