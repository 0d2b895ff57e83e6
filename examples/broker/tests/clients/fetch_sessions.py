"""kafka-python's incremental fetch sessions (KIP-227, on by default in its
consumer) against the broker: a consumer of 24 partitions reads every
record once and in order while the broker answers its fetches from a
session, through records produced while it reads and through an
assignment that shrinks (the partitions left are forgotten by the
session). The consumer's own log says what the broker answered: a
session opened, incremental answers, and no session error or invalid
answer. Prints "fetch sessions ok" and the counts."""
import re
import sys
import threading

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, TopicPartition

from fetcher_log import fetcher_lines

broker, topic = sys.argv[1], sys.argv[2]
PARTITIONS = 24
lines = fetcher_lines()

admin = AdminClient({"bootstrap.servers": broker})
admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(10)
producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})


def produce(first, count, partitions):
    for i in range(first, first + count):
        producer.produce(topic, b"%d" % i, partition=partitions[i % len(partitions)])
    assert producer.flush(30) == 0


everything = list(range(PARTITIONS))
produce(0, 2400, everything)

consumer = KafkaConsumer(
    bootstrap_servers=broker,
    enable_auto_commit=False,
    auto_offset_reset="earliest",
    fetch_max_wait_ms=100,
    # Small fetches: many of them, each cut short by the byte limit, so
    # the session's order decides which partitions are read first.
    max_partition_fetch_bytes=1024,
    fetch_max_bytes=4096,
)
consumer.assign([TopicPartition(topic, p) for p in everything])

seen = {}  # partition -> values in the order read


def read_until(total, deadline_polls=600):
    got = sum(len(v) for v in seen.values())
    polls = 0
    while got < total:
        polls += 1
        assert polls < deadline_polls, ("stalled", got, total, lines.lines[-5:])
        for tp, records in consumer.poll(timeout_ms=200).items():
            seen.setdefault(tp.partition, []).extend(int(r.value) for r in records)
            got += len(records)
    return got


read_until(2400)
# Records produced while the consumer reads: only six partitions get them,
# so most of the session's partitions have nothing to say.
writer = threading.Thread(target=produce, args=(2400, 1200, list(range(6))))
writer.start()
read_until(3600)
writer.join()

# The assignment shrinks to twelve partitions: the session forgets the
# others, and records produced to them now are not read.
consumer.assign([TopicPartition(topic, p) for p in range(12)])
before = {p: len(v) for p, v in seen.items()}
produce(3600, 2400, everything)
read_until(3600 + 1200)
for _ in range(5):
    for tp, records in consumer.poll(timeout_ms=200).items():
        seen.setdefault(tp.partition, []).extend(int(r.value) for r in records)
for p in range(12, PARTITIONS):
    assert len(seen[p]) == before[p], ("read a partition no longer assigned", p)

# Every record once, in order, in its partition.
for p, values in seen.items():
    assert values == sorted(values), ("out of order", p)
    assert len(values) == len(set(values)), ("read twice", p)
    for v in values:
        expected = v % PARTITIONS if v < 2400 or v >= 3600 else v % 6
        assert expected == p, ("in the wrong partition", v, p)
total = sum(len(v) for v in seen.values())
assert total == 4800, total
consumer.close()

opened = lines.count("created a new incremental fetch session")
incremental = lines.count("sent an incremental fetch response for session")
refused = lines.count("was unable to process the fetch request")
invalid = lines.count("invalid")
assert opened >= 1, ("no session opened", lines.lines[:20])
assert incremental >= 10, ("few incremental answers", incremental)
# Answers that left out partitions with nothing new (the point of it).
implied = [int(m.group(1)) for m in (re.search(r"response partitions \((\d+) implied\)", l) for l in lines.lines) if m]
assert any(n > 0 for n in implied), ("no answer left anything out", implied[:10])
assert refused == 0 and invalid == 0, [l for l in lines.lines if "unable" in l or "invalid" in l][:5]
print("fetch sessions ok: %d records, %d session(s), %d incremental answers, %d partitions left out" % (total, opened, incremental, sum(implied)))
