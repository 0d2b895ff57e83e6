"""Real admin clients under a controller mutation quota (KIP-599) of 2
partitions a second (a burst of 22), which the Rust test beside this sets
for client ids `mutator` (kafka-python) and `mutator-rd` (confluent-kafka)
before it runs this. Each asks for six topics of five partitions at once.
kafka-python's CreateTopics (v7) gets the first five (the fifth is asked
for with tokens left, and taken into debt) and THROTTLING_QUOTA_EXCEEDED
(89) for the sixth; librdkafka's (v4, before the error existed) gets all
six, told to wait. Prints "mutation quota ok"."""
import sys

from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient

addr = sys.argv[1]

kp = KafkaAdminClient(bootstrap_servers=addr, client_id="mutator")
topics = {f"kp{i}": {"num_partitions": 5, "replication_factor": 1} for i in range(6)}
result = kp.create_topics(topics, raise_errors=False)
codes = {t["name"]: t["error_code"] for t in result["topics"]}
assert [codes[f"kp{i}"] for i in range(6)] == [0, 0, 0, 0, 0, 89], codes
kp.close()

rd = AdminClient({"bootstrap.servers": addr, "client.id": "mutator-rd"})
futures = rd.create_topics([NewTopic(f"rd{i}", 5, 1) for i in range(6)])
for name, f in futures.items():
    f.result(30)  # raises if refused
print("mutation quota ok")
