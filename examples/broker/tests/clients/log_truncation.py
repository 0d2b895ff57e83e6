"""librdkafka's and kafka-python's consumers notice that records they read
were cut from the log (KIP-320), as against Kafka: a broker start after a
power cut lost the log's unsynced tail, and new records took the lost
offsets.

Ten records, one batch each, are read by four consumers that stay up
across the broker's restart. Meanwhile the log is cut to its first six
batches (as a power cut leaves a log whose last batches were not synced)
and four new records are written at offsets 6-9. Each consumer's
position is 10 in the epoch it read in; the broker's epoch is now a new
one, so the consumer's next fetch is fenced, it asks OffsetForLeaderEpoch
where its epoch ended (6), and:
  - with `auto.offset.reset=earliest` it moves back to 6 and reads the
    four new records, none twice (a broker without epochs leaves it at
    10, where it never sees them);
  - with `auto.offset.reset=error` it is told: an `_AUTO_OFFSET_RESET`
    error saying "Partition log truncation detected at offset 10";
and the same for kafka-python (`auto_offset_reset='none'` raises
`LogTruncationError`). A consumer group's offset 10, committed by
kafka-python with the epoch it was read in, is answered with that epoch
after the restart (Java's consumer checks a committed offset by it before
starting there; librdkafka and kafka-python 3.0 do not).
Arguments: the broker binary, a data folder. Prints "log truncation ok".
"""
import os
import struct
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from group_reads import BrokerRun
import kafka
import kafka.errors

binary, data = sys.argv[1], sys.argv[2]
TOPIC = "cut"
run = BrokerRun(binary, data)


def produce(values):
    producer = Producer({"bootstrap.servers": run.addr, "linger.ms": 0})
    for v in values:
        producer.produce(TOPIC, value=v)
        # One batch each: the cut below goes between batches.
        assert producer.flush(10) == 0, "a message left unsent"


def consumer(reset):
    c = Consumer({"bootstrap.servers": run.addr, "group.id": "reader-" + reset,
                  "auto.offset.reset": reset, "enable.auto.commit": False,
                  "topic.metadata.refresh.interval.ms": 1000})
    c.assign([TopicPartition(TOPIC, 0, 0)])
    return c


class PythonConsumer:
    """kafka-python's consumer of partition 0, polled as librdkafka's is:
    (offset, value, leader epoch) of each record, errors raised."""

    def __init__(self, reset):
        self.c = kafka.KafkaConsumer(bootstrap_servers=run.addr, group_id=None,
                                     auto_offset_reset=reset, enable_auto_commit=False,
                                     metadata_max_age_ms=1000, retry_backoff_ms=100)
        tp = kafka.TopicPartition(TOPIC, 0)
        self.c.assign([tp])
        # From the start: `none` has no policy to find one by.
        self.c.seek(tp, 0)

    def poll_into(self, reads, errors):
        try:
            for records in self.c.poll(timeout_ms=200).values():
                reads.extend((r.offset, r.value, r.leader_epoch) for r in records)
        except kafka.errors.KafkaError as e:
            errors.append(e)

    def close(self):
        self.c.close()


def group_member(group):
    """A kafka-python member of `group` subscribed to the topic, offsets
    committed by hand."""
    c = PythonConsumer.__new__(PythonConsumer)
    c.c = kafka.KafkaConsumer(TOPIC, bootstrap_servers=run.addr, group_id=group,
                              auto_offset_reset="earliest", enable_auto_commit=False,
                              metadata_max_age_ms=1000, retry_backoff_ms=100)
    return c


def poll_until(c, done, seconds, what):
    """Polls `c`, collecting (offset, value, leader epoch) and errors,
    until `done(reads, errors)` or the time is up."""
    reads, errors = [], []
    deadline = time.time() + seconds
    while time.time() < deadline and not done(reads, errors):
        if isinstance(c, PythonConsumer):
            c.poll_into(reads, errors)
            continue
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            errors.append(m.error())
        else:
            reads.append((m.offset(), m.value(), m.leader_epoch()))
    assert done(reads, errors), (what, reads, [str(e) for e in errors[-3:]])
    return reads, errors


def keep_batches(segment, n):
    """Cuts the segment file after its first `n` batches."""
    with open(segment, "r+b") as f:
        at = 0
        for _ in range(n):
            f.seek(at + 8)
            (length,) = struct.unpack(">i", f.read(4))
            at += 12 + length
        f.truncate(at)


try:
    admin = AdminClient({"bootstrap.servers": run.addr})
    admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(10)
    produce([b"v%d" % i for i in range(10)])
    lenient, strict = consumer("earliest"), consumer("error")
    py_lenient, py_strict = PythonConsumer("earliest"), PythonConsumer("none")
    first = {}
    for c in (lenient, strict, py_lenient, py_strict):
        reads, _ = poll_until(c, lambda r, e: len(r) == 10, 30, "the first ten")
        assert [r[0] for r in reads] == list(range(10)), reads
        epochs = {r[2] for r in reads}
        assert len(epochs) == 1 and epochs.pop() > 0, ("one epoch, set", reads)
        first[c] = reads[0][2]

    member = group_member("committer")
    poll_until(member, lambda r, e: len(r) == 10, 30, "a group member reads ten")
    member.c.commit()
    member.close()

    run.stop()
    keep_batches(os.path.join(data, "topics", TOPIC, "0", "%020d.log" % 0), 6)
    # A power cut leaves no clean-stop marker: every batch is checked.
    os.remove(os.path.join(data, ".clean-shutdown"))
    run.start()
    produce([b"n%d" % i for i in range(4)])

    for c in (lenient, py_lenient):
        reads, errors = poll_until(c, lambda r, e: len(r) >= 4, 30,
                                   "a lenient consumer reads the new records")
        assert [(r[0], r[1]) for r in reads] == [(6 + i, b"n%d" % i) for i in range(4)], reads
        assert all(r[2] > first[c] for r in reads), ("a newer epoch", reads)
        assert not errors, [str(e) for e in errors]
    # Nothing more comes: no record was read twice.
    extra = lenient.poll(2)
    assert extra is None or extra.error(), ("read again", extra.offset(), extra.value())
    more = []
    py_lenient.poll_into(more, [])
    assert not more, ("read again", more)

    asker = Consumer({"bootstrap.servers": run.addr, "group.id": "committer"})
    (committed,) = asker.committed([TopicPartition(TOPIC, 0)], timeout=10)
    assert (committed.offset, committed.leader_epoch) == (10, first[lenient]), committed
    asker.close()

    # librdkafka reports it as a failed offset reset, naming the cause.
    _, errors = poll_until(strict, lambda r, e: any(
        x.code() == KafkaError._AUTO_OFFSET_RESET
        and "log truncation detected at offset 10" in x.str() for x in e), 30,
        "the strict consumer is told of the truncation")
    _, errors = poll_until(py_strict, lambda r, e: any(
        isinstance(x, kafka.errors.LogTruncationError) for x in e), 30,
        "kafka-python's strict consumer is told of the truncation")
    for c in (lenient, strict, py_lenient, py_strict):
        c.close()
    print("log truncation ok")
finally:
    run.stop()
