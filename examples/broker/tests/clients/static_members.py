"""Static members of a classic group (KIP-345: librdkafka's
`group.instance.id`), as a rolling restart meets them. Members pod-a and
pod-b share a topic; pod-a's client closes (a static member sends no
LeaveGroup) and a new client with the same instance id takes its place:
it gets the partitions pod-a had, the group does not rebalance (pod-b is
never revoked or assigned anything), and nothing is read twice. Then a
second client with pod-a's instance id starts while the first runs: it
takes the place, and the first is fenced (librdkafka raises a fatal
FENCED_INSTANCE_ID). Arguments: the broker binary, a data folder. Prints
"static members ok"."""
import sys
import time

from confluent_kafka import Consumer, KafkaError
from group_reads import BrokerRun, NumberedTopic, Reads, parts

binary, data = sys.argv[1], sys.argv[2]
TOPIC, PARTITIONS = "static", 4
run = BrokerRun(binary, data)
try:
    records = NumberedTopic(run.addr, TOPIC, PARTITIONS)
    conf = {"bootstrap.servers": run.addr, "group.id": "static-group",
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 10000, "heartbeat.interval.ms": 250}

    def member(instance, **callbacks):
        c = Consumer({**conf, "group.instance.id": instance})
        c.subscribe([TOPIC], **callbacks)
        return c

    changes = []  # what pod-b was told
    on_b = {"on_assign": lambda c, ps: changes.append(("assigned", len(ps))),
            "on_revoke": lambda c, ps: changes.append(("revoked", len(ps))),
            "on_lost": lambda c, ps: changes.append(("lost", len(ps)))}
    reads = Reads()
    a, b = member("pod-a"), member("pod-b", **on_b)
    records.produce(2000)
    reads.poll_all([a, b], lambda: len(reads.seen) == 2000 and
                   len(parts(a)) == len(parts(b)) == 2, 60, "a and b read 2000")
    a.commit(asynchronous=False)
    b.commit(asynchronous=False)
    before = parts(a)
    changes.clear()

    # A rolling restart of pod-a.
    a.close()
    records.produce(1000)
    a2 = member("pod-a")
    reads.poll_all([a2, b], lambda: len(reads.seen) == 3000, 60,
                   "pod-a's new client and pod-b read 3000")
    assert parts(a2) == before, ("pod-a's partitions moved", parts(a2), before)
    assert not reads.twice(), ("read twice", reads.twice())
    # Some time for a late rebalance to show.
    deadline = time.time() + 2
    while time.time() < deadline:
        for c in (a2, b):
            c.poll(0.05)
    assert not changes, ("pod-b saw a rebalance", changes)
    a2.commit(asynchronous=False)

    # A second client with pod-a's instance id fences the first.
    # librdkafka raises the fatal error on the fenced client's queue:
    # consume() returns it as _FATAL, and fatal_error() names the cause.
    a3 = member("pod-a")
    fenced = None
    deadline = time.time() + 30
    while fenced is None and time.time() < deadline:
        for c in (a3, b):
            c.poll(0.05)
        for m in a2.consume(100, 0.05):
            if m.error() and m.error().code() == KafkaError._FATAL:
                fenced = m.error()
    assert fenced is not None, "the older client was not fenced"
    assert "group.instance.id" in fenced.str(), fenced
    records.produce(500)
    reads.poll_all([a3, b], lambda: len(reads.seen) == 3500, 60,
                   "the newest pod-a client and pod-b read 3500")
    assert parts(a3) == before, ("pod-a's partitions moved", parts(a3), before)
    assert not reads.twice(), ("read twice", reads.twice())
    for c in (a3, b):
        c.close()
    print("fenced:", fenced)
    print("static members ok")
finally:
    run.stop()
