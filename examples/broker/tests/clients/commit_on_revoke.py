"""librdkafka (confluent-kafka) group members that rebalance while
committing. Consumer A reads all of a 4-partition topic with auto commit on
a ten-minute interval, so only its commit on revocation stores where it got
to; then consumer B joins. librdkafka commits the revoked partitions while
the group prepares the rebalance, and Kafka accepts that commit from a
member of the current generation, so nothing is read twice after the
rebalance. Prints "redelivered N" (0 is right)."""
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

broker, topic = sys.argv[1], sys.argv[2]
N = 2000
admin = AdminClient({"bootstrap.servers": broker})
admin.create_topics(
    [NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(10)

producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
for i in range(N):
    producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i)
    producer.poll(0)
assert producer.flush(10) == 0, "messages left unsent"

conf = {
    "bootstrap.servers": broker,
    "group.id": "revoke-" + topic,
    "auto.offset.reset": "earliest",
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 600000,
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 250,
}
first = Consumer(conf)
first.subscribe([topic])
seen = set()
deadline = time.time() + 30
while len(seen) < N and time.time() < deadline:
    m = first.poll(0.2)
    if m is not None and not m.error():
        seen.add(m.value())
assert len(seen) == N, ("the first consumer read", len(seen))

second = Consumer(conf)
second.subscribe([topic])
redelivered = 0
settled_since = None
deadline = time.time() + 40
while time.time() < deadline:
    for c in (first, second):
        m = c.poll(0.05)
        if m is not None and not m.error():
            redelivered += 1
    both = first.assignment() and second.assignment()
    if both and settled_since is None:
        settled_since = time.time()
    if not both:
        settled_since = None
    # Both assigned, and long enough for fetches from the committed
    # offsets to have come back.
    if settled_since is not None and time.time() - settled_since > 3:
        break
assert settled_since is not None, "the group never settled with both members"
first.close()
second.close()
print("redelivered", redelivered)
