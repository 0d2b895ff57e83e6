"""kafka-python's describe_topic_partitions (DescribeTopicPartitions v0,
KIP-966; the Java admin client's describeTopics sends it too): topics in
name order, a page of at most `response_partition_limit` partitions, and a
cursor to the next page; each partition led by this broker at its leader
epoch; a topic that does not exist answered UNKNOWN_TOPIC_OR_PARTITION.
Arguments: the broker's address and a topic-name prefix. Prints
"topic partitions ok"."""
import sys

from kafka.admin import KafkaAdminClient, NewTopic

broker, prefix = sys.argv[1], sys.argv[2]
a, b = prefix + "-a", prefix + "-b"
admin = KafkaAdminClient(bootstrap_servers=broker)
admin.create_topics([NewTopic(a, 3, 1), NewTopic(b, 2, 1)])


def parts(topic):
    return [p["partition_index"] for p in topic["partitions"]]


first = admin.describe_topic_partitions([b, a, prefix + "-none"], response_partition_limit=4)
got = [(t["name"], t["error_code"], parts(t)) for t in first["topics"]]
assert got == [(a, 0, [0, 1, 2]), (b, 0, [0])], got
assert first["next_cursor"] == {"topic_name": b, "partition_index": 1}, first["next_cursor"]
leaders = {(p["leader_id"], p["leader_epoch"] > 0, tuple(p["replica_nodes"]))
           for t in first["topics"] for p in t["partitions"]}
assert leaders == {(0, True, (0,))}, leaders

rest = admin.describe_topic_partitions([b, a, prefix + "-none"], response_partition_limit=4,
                                       cursor=first["next_cursor"])
got = [(t["name"], t["error_code"], parts(t)) for t in rest["topics"]]
assert got == [(b, 0, [1]), (prefix + "-none", 3, [])], got
assert rest["next_cursor"] is None, rest["next_cursor"]

# Every topic, when none is named.
every = admin.describe_topic_partitions([])
assert [t["name"] for t in every["topics"]] == [a, b], every
admin.close()
print("topic partitions ok")
