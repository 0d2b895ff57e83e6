"""A kafka-python consumer group of two on a 4-partition topic: the
partitions are split between them, every message is consumed once, the
offsets are committed, and a consumer started afterwards in the same group
resumes from the committed offsets (it sees only newer messages)."""
import sys
import threading
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError
from kafka.admin import KafkaAdminClient, NewTopic

broker, topic = sys.argv[1], sys.argv[2]
KafkaAdminClient(bootstrap_servers=broker).create_topics(
    [NewTopic(topic, num_partitions=4, replication_factor=1)])

producer = KafkaProducer(bootstrap_servers=broker, linger_ms=5)
for i in range(4000):
    producer.send(topic, key=b"k%d" % i, value=b"first-%d" % i)
producer.flush()

seen = [[], []]
assigned = [set(), set()]
done = threading.Event()


def consume(n):
    c = KafkaConsumer(topic, bootstrap_servers=broker, group_id="split",
                      auto_offset_reset="earliest", enable_auto_commit=False,
                      session_timeout_ms=10000, heartbeat_interval_ms=500)
    deadline = time.time() + 60
    while not done.is_set() and time.time() < deadline:
        for tp, records in c.poll(timeout_ms=200).items():
            seen[n].extend(r.value for r in records)
        assigned[n] = {tp.partition for tp in c.assignment()}
        try:
            c.commit()
        except CommitFailedError:
            pass  # a rebalance is under way, as with Kafka: poll rejoins
        if len(seen[0]) + len(seen[1]) >= 4000 and assigned[0] and assigned[1]:
            done.set()
    for _ in range(50):
        try:
            c.commit()
            break
        except CommitFailedError:
            c.poll(timeout_ms=100)  # rejoin, then commit again
    c.close()


threads = [threading.Thread(target=consume, args=(n,)) for n in (0, 1)]
for t in threads:
    t.start()
for t in threads:
    t.join()
all_values = sorted(seen[0] + seen[1])
assert len(all_values) == 4000, len(all_values)
assert all_values == sorted(b"first-%d" % i for i in range(4000)), "every message exactly once"
assert assigned[0] and assigned[1], assigned
assert not (assigned[0] & assigned[1]), ("disjoint", assigned)
assert assigned[0] | assigned[1] == {0, 1, 2, 3}, assigned
print("split", sorted(assigned[0]), sorted(assigned[1]))

for i in range(400):
    producer.send(topic, key=b"k%d" % i, value=b"second-%d" % i)
producer.flush()
c = KafkaConsumer(topic, bootstrap_servers=broker, group_id="split",
                  auto_offset_reset="earliest", enable_auto_commit=False)
got = []
deadline = time.time() + 30
while len(got) < 400 and time.time() < deadline:
    for records in c.poll(timeout_ms=200).values():
        got.extend(r.value for r in records)
c.close()
assert sorted(got) == sorted(b"second-%d" % i for i in range(400)), (len(got), got[:3])
print("resumed", len(got))
