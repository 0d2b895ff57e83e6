"""Reading partition 0 of a topic from its start to its end with
librdkafka (confluent-kafka), as the compaction scripts check what a
consumer sees: a helper module, imported by those scripts (their folder is
on Python's path when they run)."""
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition


def read_partition(broker, topic, **conf):
    """(offset, key, value) of every record of partition 0 of `topic` from
    the start to the end (a value of None for a tombstone); `conf` adds to
    the consumer's settings (an isolation level, say)."""
    settings = {"bootstrap.servers": broker, "group.id": topic + "-check",
                "enable.auto.commit": False, "enable.partition.eof": True}
    settings.update(conf)
    c = Consumer(settings)
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                break
            raise KafkaException(m.error())
        out.append((m.offset(), m.key().decode(),
                    None if m.value() is None else m.value().decode()))
    c.close()
    return out


def read_until(done, broker, topic, **conf):
    """What `read_partition` reads, once `done` (a test of it) holds;
    read again every half second for up to a minute."""
    deadline = time.time() + 60
    while True:
        seen = read_partition(broker, topic, **conf)
        if done(seen):
            return seen
        assert time.time() < deadline, ("never done", len(seen), seen[:30])
        time.sleep(0.5)


def read_settled(done, broker, topic, **conf):
    """What `read_until` reads, once the log stops changing: two reads a
    second apart the same. A cleaner that has compacted enough for `done`
    may still be compacting what came after (the segments closed since
    its pass began), so a read taken as soon as `done` holds can differ
    from the next one."""
    seen = read_until(done, broker, topic, **conf)
    deadline = time.time() + 60
    while True:
        time.sleep(1.0)
        again = read_partition(broker, topic, **conf)
        if again == seen and done(again):
            return seen
        assert time.time() < deadline, ("never settled", len(again), again[-5:])
        seen = again
