"""Which protocol versions real clients negotiate with the broker, read
from their own protocol logs, while each produces ten messages and reads
them back in a consumer group that commits.

librdkafka (confluent-kafka's bundled 2.16) and kafka-python 3.0 must use
flexible versions (compact encodings, tagged fields) of every API where
they have one, and topic ids where they use them (librdkafka: Metadata
v10+ and Fetch v13+); both take Kafka 4.1's Metadata v13, kafka-python
its ListOffsets v10 and FindCoordinator v6; both batch OffsetFetch (v8)
and kafka-python batches FindCoordinator (v4+). The APIs where a client's own newest version is
classic (librdkafka's JoinGroup v5, SyncGroup v3, Heartbeat v3,
FindCoordinator v2, LeaveGroup v1) are checked at that newest version.
Prints each client's versions, then "versions ok".
"""
import collections
import logging
import re
import sys
import time

from confluent_kafka import Consumer, Producer
from kafka import KafkaConsumer, KafkaProducer

broker, prefix = sys.argv[1], sys.argv[2]


class Versions(logging.Handler):
    """Collects (API, version) from a client's request log lines."""

    def __init__(self, pattern):
        super().__init__(logging.DEBUG)
        self.pattern = re.compile(pattern)
        self.sent = collections.defaultdict(set)

    def emit(self, record):
        m = self.pattern.search(record.getMessage())
        if m:
            self.sent[m.group(1)].add(int(m.group(2)))


def check(client, sent, least):
    print(client, {api: sorted(v) for api, v in sorted(sent.items())}, flush=True)
    for api, version in least.items():
        assert api in sent, "%s sent no %s request" % (client, api)
        assert min(sent[api]) >= version, "%s: %s v%s, expected v%d or later" % (
            client, api, sorted(sent[api]), version)


# librdkafka.
rd = Versions(r"Sent (\w+)Request \(v(\d+)")
log = logging.getLogger("librdkafka")
log.setLevel(logging.DEBUG)
log.addHandler(rd)
topic = prefix + "-rd"
p = Producer({"bootstrap.servers": broker, "debug": "protocol", "logger": log})
for i in range(10):
    p.produce(topic, b"%d" % i)
assert p.flush(10) == 0
c = Consumer({"bootstrap.servers": broker, "group.id": topic, "debug": "protocol",
              "logger": log, "auto.offset.reset": "earliest",
              "enable.auto.commit": False})
c.subscribe([topic])
got, deadline = [], time.time() + 30
while len(got) < 10 and time.time() < deadline:
    m = c.poll(0.5)
    if m is not None and not m.error():
        got.append(int(m.value()))
c.commit(asynchronous=False)
c.close()
assert got == list(range(10)), got
check("librdkafka", rd.sent, {
    "ApiVersion": 3, "Metadata": 13, "Produce": 9, "Fetch": 13, "ListOffsets": 6,
    "OffsetCommit": 8, "OffsetFetch": 8, "JoinGroup": 5, "SyncGroup": 3,
    "Heartbeat": 3, "FindCoordinator": 2, "LeaveGroup": 1,
})

# kafka-python.
kp = Versions(r"Sending request \d+ (\w+)Request\(version=(\d+)")
logging.getLogger("kafka").setLevel(logging.DEBUG)
logging.getLogger("kafka").addHandler(kp)
topic = prefix + "-kp"
p = KafkaProducer(bootstrap_servers=broker)
for i in range(10):
    p.send(topic, b"%d" % i)
p.flush()
p.close()
c = KafkaConsumer(topic, bootstrap_servers=broker, group_id=topic,
                  auto_offset_reset="earliest", enable_auto_commit=False,
                  consumer_timeout_ms=5000)
got = [int(m.value) for m in c]
c.commit()
c.close()
assert got == list(range(10)), got
check("kafka-python", kp.sent, {
    "ApiVersions": 4, "Metadata": 13, "InitProducerId": 4, "Produce": 9, "Fetch": 12,
    "ListOffsets": 10, "FindCoordinator": 6, "JoinGroup": 6, "SyncGroup": 5,
    "Heartbeat": 4, "OffsetCommit": 8, "OffsetFetch": 8, "LeaveGroup": 5,
})
print("versions ok", flush=True)
