"""Describing the cluster: kafka-python's admin client sends DescribeCluster
(v2, Kafka 4.1's, a flexible-only API; its protocol log is checked for
it), librdkafka's
(confluent-kafka's describe_cluster) asks Metadata v12 instead. Both must
see a cluster of this one broker, its controller, with the cluster id
"gyre". Prints "cluster ok"."""
import logging
import re
import sys

from confluent_kafka.admin import AdminClient
from kafka.admin import KafkaAdminClient

broker, _topic = sys.argv[1], sys.argv[2]
host, port = broker.rsplit(":", 1)

admin = AdminClient({"bootstrap.servers": broker})
cluster = admin.describe_cluster(request_timeout=10).result()
assert cluster.cluster_id == "gyre", cluster.cluster_id
assert cluster.controller is not None and cluster.controller.id == 0, cluster.controller
[node] = cluster.nodes
assert (node.id, node.host, node.port) == (0, host, int(port)), node
print("librdkafka:", cluster.cluster_id, node)

sent = []


class Sent(logging.Handler):
    def emit(self, record):
        m = re.search(r"Sending request \d+ (\w+)Request\(version=(\d+)", record.getMessage())
        if m:
            sent.append((m.group(1), int(m.group(2))))


logging.getLogger("kafka").setLevel(logging.DEBUG)
logging.getLogger("kafka").addHandler(Sent())
kp = KafkaAdminClient(bootstrap_servers=broker)
described = kp.describe_cluster()
assert described["cluster_id"] == "gyre", described
assert described["controller_id"] == 0, described
assert [(b["broker_id"], b["port"]) for b in described["brokers"]] == [(0, int(port))], described
assert ("DescribeCluster", 2) in sent, sent
# v2 names fenced brokers (KIP-1073): this one is not.
assert [b["is_fenced"] for b in described["brokers"]] == [False], described
kp.close()
print("kafka-python: DescribeCluster v2", described["cluster_id"])
print("cluster ok")
