"""A request_percentage quota as librdkafka meets it. The broker has (set
by the Rust test through AlterClientQuotas) a request_percentage of 0.2
for client id "greedy" and none for anyone else.

Two consumers of an empty topic poll it as fast as they can
(fetch.wait.max.ms=0: every fetch is answered at once, empty, and the
next one follows), one "greedy" and one "calm", for three seconds. The
greedy one takes its loop time over its quota: librdkafka's statistics
show the broker throttled it (`throttle` > 0) and it gets far fewer
fetches answered than the calm one, which is never throttled.
Arguments: the broker's address, a topic. Prints "request quota ok"."""
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

broker, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": broker})
for _, f in admin.create_topics([NewTopic(topic, 1, 1)]).items():
    f.result(10)

throttled = {}  # client id -> the largest throttle librdkafka reported
fetches = {}    # client id -> fetch responses, as librdkafka counted them


def stats_cb(client_id):
    def cb(raw):
        for b in json.loads(raw).get("brokers", {}).values():
            if b.get("nodeid", -1) < 0:
                continue
            seen = b.get("throttle", {}).get("max", 0)
            throttled[client_id] = max(throttled.get(client_id, 0), seen)
            fetches[client_id] = b.get("req", {}).get("Fetch", 0)
    return cb


def consumer(client_id):
    c = Consumer({"bootstrap.servers": broker, "client.id": client_id,
                  "group.id": client_id, "fetch.wait.max.ms": 0,
                  "statistics.interval.ms": 200, "stats_cb": stats_cb(client_id)})
    c.assign([TopicPartition(topic, 0, 0)])
    return c


greedy, calm = consumer("greedy"), consumer("calm")
deadline = time.time() + 3
while time.time() < deadline:
    greedy.poll(0.02)
    calm.poll(0.02)
time.sleep(0.3)
greedy.poll(0)
calm.poll(0)
greedy.close()
calm.close()
print("throttled", throttled, "fetches", fetches)
assert throttled.get("greedy", 0) > 0, throttled
assert throttled.get("calm", 0) == 0, throttled
assert fetches["greedy"] * 4 < fetches["calm"], fetches
print("request quota ok")
