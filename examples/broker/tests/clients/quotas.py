"""Client quotas as librdkafka meets them. The broker has (set by the
Rust test through AlterClientQuotas) a produce and a fetch quota of
150 kB/s for client id "slow" and none for anyone else.

At once: a producer "slow" and a producer "fast" each write 3 MB (30,000
records of 100 bytes) to their own topic, and a consumer "slow" reads the
"fast" producer's topic as it fills. The slow producer and consumer are
held to their quota. As in Kafka, a rate is measured over the last eleven
1-second windows and never over less than ten, so a client may send ten
seconds' worth at once: 3 MB at 150 kB/s takes 20 s less those 10, and
each must take at least 5 s (its average over the time taken and the
ten seconds allowed within 1.3 times the quota); librdkafka's statistics
show the
broker throttled them (`throttle` > 0); the fast producer is never
throttled and finishes while the slow one is still held back (no client
starves another). Arguments: the broker's address, a topic prefix.
Prints "quotas ok"."""
import json
import sys
import threading
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

broker, prefix = sys.argv[1], sys.argv[2]
RECORDS, SIZE = 30_000, 100
slow_topic, fast_topic = prefix + "-slow", prefix + "-fast"
admin = AdminClient({"bootstrap.servers": broker})
for _, f in admin.create_topics([NewTopic(slow_topic, 1, 1), NewTopic(fast_topic, 1, 1)]).items():
    f.result(10)

throttled = {}  # client id -> the largest throttle librdkafka reported
done = {}       # what -> seconds taken


def stats_cb(client_id):
    def cb(raw):
        for b in json.loads(raw).get("brokers", {}).values():
            seen = b.get("throttle", {}).get("max", 0)
            throttled[client_id] = max(throttled.get(client_id, 0), seen)
    return cb


def produce(client_id, topic):
    p = Producer({"bootstrap.servers": broker, "client.id": client_id, "linger.ms": 5,
                  "statistics.interval.ms": 200, "stats_cb": stats_cb(client_id),
                  "message.timeout.ms": 120000})
    start = time.time()
    for _ in range(RECORDS):
        while True:
            try:
                p.produce(topic, b"x" * SIZE)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(120) == 0, "records left unsent"
    done["produce " + client_id] = time.time() - start
    # One more statistics report after the last answer.
    time.sleep(0.5)
    p.poll(0)


def consume(client_id, topic):
    c = Consumer({"bootstrap.servers": broker, "client.id": client_id,
                  "group.id": "quota-" + client_id, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "statistics.interval.ms": 200,
                  "stats_cb": stats_cb(client_id + "-consumer")})
    c.subscribe([topic])
    start, got = time.time(), 0
    while got < RECORDS and time.time() - start < 120:
        for m in c.consume(1000, 0.2):
            if not m.error():
                got += 1
    done["consume " + client_id] = time.time() - start
    c.close()
    assert got == RECORDS, ("consumed", got)


threads = [threading.Thread(target=produce, args=("slow", slow_topic)),
           threading.Thread(target=produce, args=("fast", fast_topic)),
           threading.Thread(target=consume, args=("slow", fast_topic))]
for t in threads:
    t.start()
for t in threads:
    t.join(180)
    assert not t.is_alive(), "a client is stuck"
print("taken", {k: round(v, 1) for k, v in done.items()}, "throttle max ms", throttled)
assert done["produce slow"] >= 5, done
assert done["consume slow"] >= 5, done
assert done["produce fast"] < done["produce slow"] / 2, done
assert throttled.get("slow", 0) > 0 and throttled.get("slow-consumer", 0) > 0, throttled
assert throttled.get("fast", 0) == 0, throttled
print("quotas ok")
