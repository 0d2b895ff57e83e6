"""The replica and log-directory admin APIs of a one-broker cluster, as
the clients that have them use them:

- kafka-python's describe_log_dirs: the broker's one directory (the data
  folder), every partition with its size on disk (a partition written to
  holds more than an empty one; asking for chosen partitions returns just
  those that exist), and the file system's total and usable bytes;
- kafka-python's alter_replica_log_dirs: a replica asked into that
  directory is already there, another path is LOG_DIR_NOT_FOUND, an
  unknown partition UNKNOWN_TOPIC_OR_PARTITION;
- confluent-kafka's elect_leaders: ELECTION_NOT_NEEDED for each named
  partition (every leader is its only replica), UNKNOWN_TOPIC_OR_PARTITION
  for a partition that does not exist, and nothing to report for all.

Arguments: the broker's address, a topic name. Prints "replicas ok"."""
import sys

from confluent_kafka import ElectionType, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartitionReplica
from kafka.admin import KafkaAdminClient
from kafka.errors import LogDirNotFoundError, NoError, UnknownTopicOrPartitionError

broker, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": broker})
admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(10)
p = Producer({"bootstrap.servers": broker, "linger.ms": 5})
for _ in range(1000):
    p.produce(topic, b"x" * 100, partition=0)
assert p.flush(10) == 0

kp = KafkaAdminClient(bootstrap_servers=broker)
dirs = kp.describe_log_dirs()
assert len(dirs) == 1 and dirs[0]["broker"] == 0, dirs
(log_dir,) = dirs[0]["log_dirs"]
assert log_dir["error_code"] == 0 and log_dir["log_dir"].startswith("/"), log_dir
assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"], log_dir
(mine,) = [t for t in log_dir["topics"] if t["name"] == topic]
sizes = {q["partition_index"]: q["partition_size"] for q in mine["partitions"]}
assert sorted(sizes) == [0, 1, 2], sizes
assert sizes[0] > 1000 * 100 > sizes[1] == sizes[2] == 0, sizes
chosen = kp.describe_log_dirs({topic: [2, 7]})[0]["log_dirs"][0]["topics"]
assert [(t["name"], [q["partition_index"] for q in t["partitions"]]) for t in chosen] \
    == [(topic, [2])], chosen
print("log dir", log_dir["log_dir"], "sizes", sizes)

moved = kp.alter_replica_log_dirs({
    TopicPartitionReplica(topic, 0, 0): log_dir["log_dir"],
    TopicPartitionReplica(topic, 1, 0): "/somewhere/else",
    TopicPartitionReplica(topic, 9, 0): log_dir["log_dir"],
})
assert moved == {
    TopicPartitionReplica(topic, 0, 0): NoError,
    TopicPartitionReplica(topic, 1, 0): LogDirNotFoundError,
    TopicPartitionReplica(topic, 9, 0): UnknownTopicOrPartitionError,
}, moved
kp.close()

elected = admin.elect_leaders(ElectionType.PREFERRED,
                              [TopicPartition(topic, 0), TopicPartition(topic, 9)]).result(10)
codes = {tp.partition: e.code() for tp, e in elected.items()}
assert codes == {0: KafkaError.ELECTION_NOT_NEEDED,
                 9: KafkaError.UNKNOWN_TOPIC_OR_PART}, codes
assert admin.elect_leaders(ElectionType.UNCLEAN, None).result(10) == {}
print("replicas ok")
