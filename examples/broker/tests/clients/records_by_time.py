"""ListOffsets by timestamp finds the record, not its batch: 100 records
produced in one batch with timestamps one second apart, under each
compression librdkafka offers; looking up record #42's timestamp (and a
time between #41's and #42's) must answer offset 42 with #42's timestamp,
to confluent-kafka's and kafka-python's offsets_for_times alike, as Kafka
does. Prints "by time ok"."""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpPartition

broker, prefix = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": broker})
T0 = 1_700_000_000_000

for compression in ["none", "gzip", "snappy", "lz4", "zstd"]:
    topic = "%s-%s" % (prefix, compression)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)
    p = Producer({"bootstrap.servers": broker, "linger.ms": 2000,
                  "compression.type": compression, "batch.num.messages": 1000})
    for i in range(100):
        p.produce(topic, b"r%d" % i, partition=0, timestamp=T0 + i * 1000)
    assert p.flush(15) == 0

    c = Consumer({"bootstrap.servers": broker, "group.id": "t-" + topic})
    # Linger 2 s: the hundred go in one batch. Read back: offsets 0-99 with
    # their own timestamps.
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < 100:
        m = c.poll(5)
        assert m is not None, ("read back", len(got))
        got.append((m.offset(), m.timestamp()[1]))
    assert got == [(i, T0 + i * 1000) for i in range(100)], got[:3]

    for target, want in [(T0 + 42_000, 42), (T0 + 41_500, 42), (T0, 0), (T0 + 99_000, 99)]:
        [tp] = c.offsets_for_times([TopicPartition(topic, 0, target)], timeout=10)
        assert tp.offset == want, (compression, "librdkafka", target - T0, tp.offset)
        kc = KafkaConsumer(bootstrap_servers=broker)
        found = kc.offsets_for_times({KpPartition(topic, 0): target})[KpPartition(topic, 0)]
        kc.close()
        assert found.offset == want and found.timestamp == T0 + want * 1000, (
            compression, "kafka-python", target - T0, found)
    [late] = c.offsets_for_times([TopicPartition(topic, 0, T0 + 100_000)], timeout=10)
    assert late.offset == -1, ("after every record: the end (-1)", late.offset)
    c.close()
    print(compression, "ok")
print("by time ok")
