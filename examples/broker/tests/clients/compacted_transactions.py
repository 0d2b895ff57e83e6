"""Transactions on a compacted topic, as Kafka Streams' exactly-once
changelogs write them, through confluent-kafka (librdkafka) and
kafka-python: a transactional producer commits 120 transactions of one
record each over five keys (every fifteenth aborted instead), then closes
their segments with a last committed round. The broker's cleaner (short
backoff, `delete.retention.ms=0`) compacts the topic until a
read_committed reader from the start finds each key once before the last
round, at its last committed value, and no aborted value anywhere; the
transactions' markers go with their records, the aborts' a pass later
(the test around this counts the markers left in the partition's files).

`compacted_transactions.py BROKER TOPIC FILE` writes and compacts, then
saves what a reader sees to FILE; with `--again` (after the broker was
killed and started again) it reads it back, checks it is the same for
both clients, and commits one more transaction with the same
transactional id. Prints "compacted transactions ok"."""
import json
import sys

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpPartition
from partition_reader import read_partition, read_settled

broker, topic, saved = sys.argv[1], sys.argv[2], sys.argv[3]
again = "--again" in sys.argv
KEYS, TXNS = 5, 120


def producer():
    p = Producer({"bootstrap.servers": broker, "transactional.id": "changelog",
                  "linger.ms": 0})
    p.init_transactions(30)
    return p


def transaction(p, key, value, commit=True):
    p.begin_transaction()
    p.produce(topic, key=key, value=value)
    if commit:
        p.commit_transaction(30)
    else:
        p.flush(10)
        p.abort_transaction(30)


def read_librdkafka():
    """(offset, key, value) of every committed record from the start."""
    return read_partition(broker, topic, **{"isolation.level": "read_committed"})


def read_kafka_python():
    c = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                      isolation_level="read_committed", consumer_timeout_ms=3000)
    tp = KpPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out = [(m.offset, m.key.decode(), m.value.decode()) for m in c]
    c.close()
    return out


def compacted(records):
    """Each key once before the last round, at its last committed value;
    nothing aborted."""
    before = [r for r in records if not r[2].startswith("last-")]
    keys = [k for _, k, _ in before]
    return (len(keys) == len(set(keys)) == KEYS
            and all(v == committed_last[k] for _, k, v in before)
            and not any(v.startswith("aborted") for _, _, v in records))


if not again:
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(topic, 1, 1, config={
        "cleanup.policy": "compact", "segment.bytes": "1024",
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"})])[topic].result(10)
    p = producer()
    committed_last = {}
    for i in range(TXNS):
        key = "k%d" % (i % KEYS)
        if i % 15 == 7:
            transaction(p, key, "aborted-%d" % i, commit=False)
        else:
            transaction(p, key, "v%d-%s" % (i, "x" * 40))
            committed_last[key] = "v%d-%s" % (i, "x" * 40)
    # Enough more to close every segment the transactions are in.
    for i in range(12):
        transaction(p, "tail", "last-%d-%s" % (i, "y" * 150))
    seen = read_settled(compacted, broker, topic, **{"isolation.level": "read_committed"})
    with open(saved, "w") as f:
        json.dump(seen, f)
else:
    with open(saved) as f:
        expected = [tuple(r) for r in json.load(f)]
    seen = read_librdkafka()
    assert seen == expected, (seen, expected)
    # The transactional id goes on after the restart: its producer is
    # fenced and bumped as usual, and its next transaction commits.
    p = producer()
    transaction(p, "after", "after-restart")
    after = read_librdkafka()
    assert after[:-1] == seen and after[-1][1:] == ("after", "after-restart"), after[-3:]
    seen = after

assert read_kafka_python() == seen, "kafka-python reads what librdkafka reads"
print("compacted transactions ok", len(seen))
