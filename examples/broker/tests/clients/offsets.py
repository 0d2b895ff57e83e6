"""kafka-python lists offsets: earliest, latest and by time."""
import sys

from kafka import KafkaConsumer, TopicPartition

broker, topic, expected_end = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = KafkaConsumer(bootstrap_servers=broker)
tp = TopicPartition(topic, 0)
assert c.beginning_offsets([tp])[tp] == 0
assert c.end_offsets([tp])[tp] == expected_end, c.end_offsets([tp])
found = c.offsets_for_times({tp: 0})[tp]
assert found is not None and found.offset == 0, found
assert c.offsets_for_times({tp: 2**62})[tp] is None
# Consume from a given offset.
c.assign([tp])
c.seek(tp, expected_end - 10)
got = []
while len(got) < 10:
    for records in c.poll(timeout_ms=1000).values():
        got.extend(records)
assert [r.offset for r in got] == list(range(expected_end - 10, expected_end)), got
print("offsets ok")
