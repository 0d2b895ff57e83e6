"""Fetch-session eviction (Kafka's session cache rule) with kafka-python's
consumers, against a broker with one session slot and a short eviction
window (`--max-incremental-fetch-session-cache-slots 1
--min-incremental-fetch-session-eviction-ms 300`): two consumers of 12
partitions each take turns, and each, coming back, finds its session
evicted by the other, hears FETCH_SESSION_ID_NOT_FOUND, fetches in full
without a session while the other's is in use, and takes the slot back
once that one idles. Both read every record once and in order through
it. Prints "session eviction ok" and the counts."""
import sys
import time

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
produced = 0


def produce(count):
    global produced
    for i in range(produced, produced + count):
        producer.produce(topic, b"%d" % i, partition=i % PARTITIONS)
    assert producer.flush(30) == 0
    produced += count


def consumer(partitions):
    c = KafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
        max_partition_fetch_bytes=1024,
        fetch_max_bytes=4096,
    )
    c.assign([TopicPartition(topic, p) for p in partitions])
    return c


consumers = [consumer(range(0, 12)), consumer(range(12, 24))]
seen = {}  # partition -> values in the order read


def poll_for(c, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for tp, records in c.poll(timeout_ms=50).items():
            seen.setdefault(tp.partition, []).extend(int(r.value) for r in records)


def read():
    return sum(len(v) for v in seen.values())


# Turns: while one consumer polls, the other is idle (kafka-python fetches
# only inside poll), so its session ages past the window and the polling
# one's full fetches evict it.
for turn in range(6):
    produce(480)
    poll_for(consumers[turn % 2], 1.5)
polls = 0
while read() < produced:
    polls += 1
    assert polls < 400, ("stalled", read(), produced, lines.lines[-5:])
    for c in consumers:
        poll_for(c, 0.05)
for c in consumers:
    c.close()

for p, values in seen.items():
    assert values == sorted(values), ("out of order", p)
    assert len(values) == len(set(values)), ("read twice", p)
    assert all(v % PARTITIONS == p for v in values), ("in the wrong partition", p)
assert read() == produced, (read(), produced)

opened = lines.count("created a new incremental fetch session")
evicted = lines.count("FetchSessionIdNotFound")
without = lines.count("sent a full fetch response with")
incremental = lines.count("sent an incremental fetch response for session")
invalid = lines.count("invalid")
assert evicted >= 3, ("few evictions heard", evicted, opened)
assert opened >= evicted, ("a session was not opened again", evicted, opened)
assert without >= 1, "a consumer never went without a session while the other's was young"
assert incremental >= 10, ("few incremental answers", incremental)
assert invalid == 0, [l for l in lines.lines if "invalid" in l][:5]
print("session eviction ok: %d records, %d sessions opened, %d evictions heard, %d answers without a session, %d incremental"
      % (read(), opened, evicted, without, incremental))
