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
