"""A compacted topic through confluent-kafka (librdkafka), kafka-python and
aiokafka: created with cleanup.policy=compact and small segments, its
configs described back; a key written once, then 20 keys written 30 times
each (every codec), then
tombstones for five of them and a last round that closes their segment;
the broker's cleaner (started with a short backoff) compacts it until a
reader from the start finds each live key once, at its last value, and
the deleted keys not at all, over offsets with gaps. A record without a
key is refused (INVALID_RECORD), and so is DeleteRecords (POLICY_VIOLATION:
a compacted topic's old records go only by compaction, as in Kafka).

`compaction.py BROKER TOPIC FILE` writes and compacts, then saves what a
reader sees to FILE; `compaction.py BROKER TOPIC FILE --again` (after the
broker was killed and started again) reads it back and checks it is the
same. Prints "compaction ok"."""
import asyncio
import json
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition as AioPartition
from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic, ResourceType
from kafka import KafkaConsumer
from kafka import TopicPartition as KpPartition
from partition_reader import read_partition, read_settled

broker, topic, saved = sys.argv[1], sys.argv[2], sys.argv[3]
again = "--again" in sys.argv
KEYS, ROUNDS, DELETED = 20, 30, {"k0", "k1", "k2", "k3", "k4"}


def read_librdkafka():
    """(offset, key, value) of every record from the start, to the end."""
    return read_partition(broker, topic)


def read_kafka_python():
    c = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False, consumer_timeout_ms=3000)
    tp = KpPartition(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    out = [(m.offset, m.key.decode(), None if m.value is None else m.value.decode()) for m in c]
    c.close()
    return out


async def read_aiokafka():
    c = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await c.start()
    try:
        tp = AioPartition(topic, 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        end = (await c.end_offsets([tp]))[tp]
        out = []
        while await c.position(tp) < end:
            for msgs in (await c.getmany(timeout_ms=1000)).values():
                out += [(m.offset, m.key.decode(), None if m.value is None else m.value.decode())
                        for m in msgs]
        return out
    finally:
        await c.stop()


def compacted(records):
    """Whether `records` is the compacted log: each live key once, at its
    last value; no deleted key. A key whose last value is in the active
    segment (never compacted) also keeps its last value before that."""
    last = {}
    for _, k, v in records:
        last[k] = v
    closed = [r for r in records if not (r[2] or "").startswith("final-")]
    keys = [k for _, k, _ in closed]
    return (len(keys) == len(set(keys))
            and not DELETED & set(keys)
            and all(last["k%d" % i].startswith("final-%d-" % i) for i in range(5, KEYS)))


if not again:
    admin = AdminClient({"bootstrap.servers": broker})
    admin.create_topics([NewTopic(topic, 1, 1, config={
        "cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "0"})])[topic].result(10)
    [(_, f)] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).items()
    configs = f.result(10)
    assert configs["cleanup.policy"].value == "compact", configs["cleanup.policy"]
    assert configs["cleanup.policy"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["delete.retention.ms"].value == "0"
    assert configs["min.compaction.lag.ms"].value == "0" and configs["min.compaction.lag.ms"].is_default

    # A key written once, first: it stays, at offset 0, before a gap.
    p = Producer({"bootstrap.servers": broker})
    p.produce(topic, key="stay", value="stay")
    p.flush(10)
    written = 1
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        p = Producer({"bootstrap.servers": broker, "compression.type": codec, "linger.ms": 2})
        for r in range(ROUNDS // 5):
            for i in range(KEYS):
                p.produce(topic, key="k%d" % i, value="%s-%d-%d" % (codec, r, i))
                written += 1
            p.flush(10)
    p = Producer({"bootstrap.servers": broker, "linger.ms": 0})
    for k in sorted(DELETED):
        p.produce(topic, key=k, value=None)
    p.flush(10)
    # A record without a key: refused, nothing appended.
    reports = []
    p.produce(topic, value=b"keyless", on_delivery=lambda err, msg: reports.append(err))
    p.flush(10)
    assert reports and reports[0].code() == KafkaError.INVALID_RECORD, reports
    # Enough after the tombstones to close their segment.
    for i in range(5, KEYS):
        p.produce(topic, key="k%d" % i, value="x" * 100)
        p.flush(10)
    # The last values, one a batch and padded, so more than two segments'
    # worth: every record before them is in a closed segment, compacted.
    for i in range(5, KEYS):
        p.produce(topic, key="k%d" % i, value="final-%d-%s" % (i, "y" * 150))
        p.flush(10)

    [f] = admin.delete_records([TopicPartition(topic, 0, 5)]).values()
    try:
        f.result(10)
        raise SystemExit("DeleteRecords was taken on a compacted topic")
    except KafkaException as e:
        assert e.args[0].code() == KafkaError.POLICY_VIOLATION, e

    seen = read_settled(compacted, broker, topic)
    offsets = [o for o, _, _ in seen]
    # Offsets increase, over a gap where compaction removed whole batches.
    assert offsets == sorted(offsets) and seen[0] == (0, "stay", "stay"), seen[:3]
    assert any(b - a > 1 for a, b in zip(offsets, offsets[1:])), offsets
    assert len(seen) < written // 4, (len(seen), written)
    with open(saved, "w") as f:
        json.dump(seen, f)
else:
    with open(saved) as f:
        expected = [tuple(r) for r in json.load(f)]
    seen = read_librdkafka()
    assert seen == expected, (seen, expected)

assert read_kafka_python() == seen, "kafka-python reads what librdkafka reads"
assert asyncio.run(read_aiokafka()) == seen, "aiokafka reads what librdkafka reads"
print("compaction ok", len(seen))
