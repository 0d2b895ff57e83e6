"""A rolling upgrade of librdkafka (confluent-kafka) consumers from the
classic group protocol to the consumer group protocol (KIP-848) and back,
without stopping the group, as Kafka 4.0 allows: two classic members read
a topic; a consumer-protocol member joins (the group becomes a consumer
group, the classic members keep their partitions and are told to rejoin
to give some up); the classic members are replaced one by one; then a
classic member joins again and the consumer-protocol ones leave (the group
goes back to the classic protocol); then it is upgraded again while
rebalancing, as a rolling restart does it. Every record is read exactly
once throughout. Prints "migration ok"."""
import sys

from confluent_kafka import Consumer
from group_reads import NumberedTopic, Reads, parts

broker, topic = sys.argv[1], sys.argv[2]
GROUP, PARTITIONS = "migrating-" + topic, 4
records = NumberedTopic(broker, topic, PARTITIONS, keyed=False)
admin, produce = records.admin, records.produce


base = {
    "bootstrap.servers": broker,
    "group.id": GROUP,
    "auto.offset.reset": "earliest",
    # Offsets are committed when partitions are revoked (and on close),
    # so a record read twice shows a broken hand-over.
    "enable.auto.commit": True,
    "auto.commit.interval.ms": 600000,
}
classic = dict(base, **{"session.timeout.ms": 10000, "heartbeat.interval.ms": 250})
consumer = dict(base, **{"group.protocol": "consumer"})
reads = Reads()
seen = reads.seen


def spread(consumers):
    """Every partition owned, by exactly one member, each member some."""
    owned = [p for c in consumers for p in parts(c)]
    return sorted(owned) == list(range(PARTITIONS)) and all(parts(c) for c in consumers)


def read_all(consumers, what):
    reads.poll_all(consumers, lambda: len(seen) == records.produced and spread(consumers), 60, what)
    assert not reads.twice(), (what, "read twice", reads.twice())


produce(2000)
a, b = Consumer(classic), Consumer(classic)
a.subscribe([topic])
b.subscribe([topic])
read_all([a, b], "classic a and b read 2000")

# A consumer-protocol member joins the classic group: it becomes a
# consumer group, and the classic members give it its share.
c = Consumer(consumer)
c.subscribe([topic])
reads.poll_all([a, b, c], lambda: spread([a, b, c]), 60, "c gets a share from a and b")
produce(2000)
read_all([a, b, c], "a, b and c read 4000")

# The classic members are replaced by consumer-protocol ones.
reads.settle([a, b, c], admin, GROUP, "settled before a closes")
a.close()
d = Consumer(consumer)
d.subscribe([topic])
produce(1000)
read_all([b, c, d], "b, c and d read 5000")
reads.settle([b, c, d], admin, GROUP, "settled before b closes")
b.close()
produce(1000)
read_all([c, d], "c and d read 6000")

# And back: a classic member joins, the consumer-protocol members leave,
# and the group is classic again.
e = Consumer(classic)
e.subscribe([topic])
reads.poll_all([c, d, e], lambda: spread([c, d, e]), 60, "e gets a share from c and d")
reads.settle([c, d, e], admin, GROUP, "settled before c closes")
c.close()
reads.settle([d, e], admin, GROUP, "settled before d closes")
d.close()
produce(1000)
read_all([e], "e alone reads 7000")


def kind():
    groups = admin.list_consumer_groups().result(10).valid
    return [str(g.type) for g in groups if g.group_id == GROUP]


assert kind() and kind()[0].endswith("CLASSIC"), kind()

# Upgraded again in the middle of a rebalance, as a rolling restart does
# it: a classic member leaves (the other must rejoin) and a
# consumer-protocol member joins at once. librdkafka takes a refusal of
# its join as fatal, so the group converts whatever its state.
f = Consumer(classic)
f.subscribe([topic])
reads.poll_all([e, f], lambda: spread([e, f]), 60, "e and f share the partitions")
reads.settle([e, f], admin, GROUP, "settled before e closes")
e.close()
g = Consumer(consumer)
g.subscribe([topic])
produce(1000)
read_all([f, g], "f and g read 8000")
assert kind() and kind()[0].endswith("CONSUMER"), kind()
f.close()
g.close()
print("migration ok", records.produced)
