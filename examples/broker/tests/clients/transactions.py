"""Transactions as Kafka runs them, with librdkafka (confluent-kafka) and
kafka-python:

- a transactional producer commits one transaction and aborts the next
  across two partitions; a read_committed consumer reads exactly the
  committed records (never an aborted one, never a control record) and
  a read_uncommitted one reads both, and read_committed latest offsets
  stop at the last stable offset while a transaction is open;
- consume-transform-produce: offsets sent with the transaction are
  committed only when it commits;
- a second producer with the same transactional id fences the first
  (its next send fails fatally) and aborts what it left open;
- kafka-python's transactional producer commits too, and its admin
  client lists and describes an open transaction, and the partition's
  producers with where its transaction started (KIP-664);
- an operator aborts a transaction left open (KIP-664's
  `abort_transaction`, `kafka-transactions.sh abort`): an older producer
  epoch is refused, then the abort marker lets read_committed readers
  past it, its records stay aborted when the producer later commits,
  and the records the same producer writes in its next transaction are
  read.

Prints "transactions ok" when all is right."""
import sys
import time

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

broker, topic = sys.argv[1], sys.argv[2]
out = topic + "-out"
admin = AdminClient({"bootstrap.servers": broker})
for _, f in admin.create_topics([NewTopic(topic, 2, 1), NewTopic(out, 2, 1)]).items():
    f.result(10)


def producer(txn_id, **extra):
    conf = {"bootstrap.servers": broker, "transactional.id": txn_id, "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(20)
    return p


def read_all(t, isolation, expect_at_least, timeout=20):
    c = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": "reader-%s-%s-%f" % (t, isolation, time.time()),
            "auto.offset.reset": "earliest",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    c.subscribe([t])
    got = []
    deadline = time.time() + timeout
    idle_until = None
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            if len(got) >= expect_at_least:
                # Stay a little longer: nothing more may come.
                idle_until = idle_until or time.time() + 2
                if time.time() > idle_until:
                    break
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise SystemExit("consumer error: %s" % m.error())
        got.append(m.value().decode())
    c.close()
    return sorted(got)


# 1. Commit one transaction, abort the next, over two partitions.
p = producer("tx-" + topic)
p.begin_transaction()
for i in range(10):
    p.produce(topic, b"c%d" % i, partition=i % 2)
p.commit_transaction(20)
p.begin_transaction()
for i in range(10):
    p.produce(topic, b"a%d" % i, partition=i % 2)
p.flush(10)
# While it is open, read_committed's latest offset is the last stable one.
lso = Consumer(
    {"bootstrap.servers": broker, "group.id": "lso", "isolation.level": "read_committed"}
)
_, high_committed = lso.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
lso.close()
unc = Consumer(
    {"bootstrap.servers": broker, "group.id": "lso2", "isolation.level": "read_uncommitted"}
)
_, high_all = unc.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
unc.close()
print("open transaction: latest read_committed", high_committed, "read_uncommitted", high_all)
assert high_all > high_committed, (high_all, high_committed)
p.abort_transaction(20)

committed = sorted("c%d" % i for i in range(10))
got = read_all(topic, "read_committed", 10)
assert got == committed, got
got_all = read_all(topic, "read_uncommitted", 20)
assert got_all == sorted(committed + ["a%d" % i for i in range(10)]), got_all
print("read_committed saw", len(got), "read_uncommitted saw", len(got_all))

# 2. Consume-transform-produce: the group's offsets go with the
# transaction, committed only if it commits.
group = "ctp-" + topic
c = Consumer(
    {
        "bootstrap.servers": broker,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    }
)
c.subscribe([topic])
seen = []
deadline = time.time() + 20
while len(seen) < 10 and time.time() < deadline:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    seen.append(m)
assert len(seen) == 10, len(seen)
xp = producer("ctp-" + topic)


def positions():
    return [TopicPartition(topic, tp.partition, tp.offset) for tp in c.position(c.assignment())]


def transform(commit):
    """Writes the outputs and the group's positions in one transaction;
    returns the group's committed offsets after it ends."""
    xp.begin_transaction()
    for m in seen:
        xp.produce(out, m.value().upper())
    xp.send_offsets_to_transaction(positions(), c.consumer_group_metadata(), 20)
    if commit:
        xp.commit_transaction(20)
    else:
        xp.abort_transaction(20)
    return c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)


# An aborted transaction commits no offsets; a committed one does.
stored = transform(False)
assert all(tp.offset < 0 for tp in stored), stored
stored = transform(True)
assert sorted(tp.offset for tp in stored) == sorted(tp.offset for tp in positions()), stored
c.close()
outs = read_all(out, "read_committed", 10)
assert outs == sorted("C%d" % i for i in range(10)), outs
print("consume-transform-produce: offsets", [tp.offset for tp in stored], "outputs", len(outs))

# 3. A second producer with the same id fences the first and aborts what
# it left open.
old = producer("fence-" + topic)
old.begin_transaction()
old.produce(topic, b"zombie", partition=0)
old.flush(10)
new = producer("fence-" + topic)
try:
    old.produce(topic, b"zombie2", partition=0)
    old.commit_transaction(10)
    raise SystemExit("the fenced producer committed")
except KafkaException as e:
    err = e.args[0]
    print("fenced:", err.str())
    assert err.fatal() or err.txn_requires_abort(), err.str()
new.begin_transaction()
new.produce(topic, b"fresh", partition=0)
new.commit_transaction(20)
got = read_all(topic, "read_committed", 11)
assert "zombie" not in got and "zombie2" not in got and "fresh" in got, got
print("fenced producer's records never read; the new one's are")

# 4. kafka-python's transactional producer.
from kafka import KafkaProducer  # noqa: E402

kp = KafkaProducer(bootstrap_servers=broker, transactional_id="kp-" + topic)
kp.init_transactions()
kp.begin_transaction()
for i in range(3):
    kp.send(topic, b"kp%d" % i, partition=1)
kp.commit_transaction()
kp.close(timeout=5)
got = read_all(topic, "read_committed", 14)
assert all("kp%d" % i in got for i in range(3)), got
print("kafka-python committed 3")

# 5. kafka-python's transaction admin (KIP-664): an open transaction is
# listed and described with its partitions, then seen complete.
from kafka.admin import KafkaAdminClient  # noqa: E402

held = producer("admin-" + topic)
held.begin_transaction()
held.produce(topic, b"listed", partition=1)
held.flush(10)
admin_kp = KafkaAdminClient(bootstrap_servers=broker)
listed = admin_kp.list_transactions(state_filters=["Ongoing"])
print("listed:", listed)
entries = [e for per_broker in listed.values() for e in per_broker]
assert [(e.transactional_id, e.state.value) for e in entries] == [
    ("admin-" + topic, "Ongoing")
], entries

def described():
    return admin_kp.describe_transactions(["admin-" + topic])["admin-" + topic]


d = described()
print("described:", d)
assert d.state.value == "Ongoing" and d.transaction_timeout_ms == 60000, d
assert [(tp.topic, tp.partition) for tp in d.topic_partitions] == [(topic, 1)], d
assert d.transaction_start_time_ms > 0, d
# The partition knows the open transaction's producer and where its
# transaction started.
from kafka.structs import TopicPartition as KTopicPartition  # noqa: E402

producers = admin_kp.describe_producers([KTopicPartition(topic, 1)])
print("producers:", producers)
states = [s for part in producers.values() for s in part.active_producers]
mine = [s for s in states if s.producer_id == d.producer_id]
assert len(mine) == 1 and mine[0].current_transaction_start_offset >= 0, states
held.commit_transaction(20)
deadline = time.time() + 10
while described().state.value != "CompleteCommit":
    assert time.time() < deadline, described()
    time.sleep(0.1)

# 6. An operator's abort of a transaction left open (KIP-664).
from kafka.admin import AbortTransactionSpec  # noqa: E402
from kafka.errors import InvalidProducerEpochError  # noqa: E402

stuck_topic = topic + "-stuck"
for _, f in admin.create_topics([NewTopic(stuck_topic, 1, 1)]).items():
    f.result(10)
stuck = producer("stuck-" + topic)
stuck.begin_transaction()
stuck.produce(stuck_topic, b"before", partition=0)
stuck.commit_transaction(20)
stuck.begin_transaction()
for i in range(3):
    stuck.produce(stuck_topic, b"stuck%d" % i, partition=0)
stuck.flush(10)
stp = KTopicPartition(stuck_topic, 0)
[state] = [s for part in admin_kp.describe_producers([stp]).values() for s in part.active_producers]
print("stuck producer:", state)
assert state.current_transaction_start_offset >= 0, state


def latest_committed():
    c = Consumer(
        {"bootstrap.servers": broker, "group.id": "lso-stuck", "isolation.level": "read_committed"}
    )
    try:
        return c.get_watermark_offsets(TopicPartition(stuck_topic, 0), timeout=10)[1]
    finally:
        c.close()


assert latest_committed() == state.current_transaction_start_offset, latest_committed()
spec = AbortTransactionSpec(stp, state.producer_id, state.producer_epoch - 1, state.coordinator_epoch)
try:
    admin_kp.abort_transaction(spec)
    raise SystemExit("an abort at an older producer epoch was taken")
except InvalidProducerEpochError:
    pass
assert latest_committed() == state.current_transaction_start_offset
# As kafka-transactions.sh does: the epochs DescribeProducers gave.
admin_kp.abort_transaction(spec._replace(producer_epoch=state.producer_epoch))
[after] = [s for part in admin_kp.describe_producers([stp]).values() for s in part.active_producers]
assert after.current_transaction_start_offset == -1, after
unc = Consumer({"bootstrap.servers": broker, "group.id": "end-stuck"})
_, end = unc.get_watermark_offsets(TopicPartition(stuck_topic, 0), timeout=10)
unc.close()
assert latest_committed() == end, (latest_committed(), end)
assert read_all(stuck_topic, "read_committed", 1) == ["before"]
print("aborted by an operator: read_committed reads to", end)
# The producer knew nothing of it: its commit goes through, and what it
# had written before the abort stays aborted; its next transaction's
# records are read.
stuck.commit_transaction(20)
stuck.begin_transaction()
stuck.produce(stuck_topic, b"after", partition=0)
stuck.commit_transaction(20)
assert read_all(stuck_topic, "read_committed", 2) == ["after", "before"]
assert len(read_all(stuck_topic, "read_uncommitted", 5)) == 5
admin_kp.close()
print("transactions ok")
