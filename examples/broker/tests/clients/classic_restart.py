"""A classic consumer group (librdkafka, eager `range`, offsets committed
only by hand) kept across a broker restart under its members, as Kafka
keeps groups: they go on heartbeating in their generation, no partition is
revoked or lost, and what they read since their last commit is not read
again (a broker that forgot the group would answer UNKNOWN_MEMBER_ID,
and the rebalance would start them over from the committed offsets).
Arguments: the broker binary, a data folder. Prints "classic restart ok"."""
import sys

from confluent_kafka import Consumer
from group_reads import BrokerRun, NumberedTopic, Reads, parts

binary, data = sys.argv[1], sys.argv[2]
TOPIC, PARTITIONS = "kept", 4
run = BrokerRun(binary, data)
try:
    records = NumberedTopic(run.addr, TOPIC, PARTITIONS)
    produce = records.produce

    conf = {"bootstrap.servers": run.addr, "group.id": "kept-group",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 250}
    changes = []

    def revoked(consumer, partitions):
        changes.append(("revoked", [tp.partition for tp in partitions]))

    def lost(consumer, partitions):
        changes.append(("lost", [tp.partition for tp in partitions]))

    reads = Reads()
    a, b = Consumer(conf), Consumer(conf)
    for c in (a, b):
        c.subscribe([TOPIC], on_revoke=revoked, on_lost=lost)
    produce(2000)
    reads.poll_all([a, b], lambda: len(reads.seen) == 2000 and
                   len(parts(a)) == len(parts(b)) == 2, 60, "a and b read 2000")
    a.commit(asynchronous=False)
    b.commit(asynchronous=False)
    produce(1000)
    reads.poll_all([a, b], lambda: len(reads.seen) == 3000, 60, "a and b read 3000")
    changes.clear()
    before = (parts(a), parts(b))

    run.restart()
    produce(1000)
    reads.poll_all([a, b], lambda: len(reads.seen) == 4000, 60,
                   "a and b read 4000 after the restart")
    assert not reads.twice(), ("read twice after the restart", reads.twice())
    assert not changes, ("the group rebalanced across the restart", changes)
    assert (parts(a), parts(b)) == before, ((parts(a), parts(b)), before)
    a.close()
    b.close()
    print("classic restart ok")
finally:
    run.stop()
