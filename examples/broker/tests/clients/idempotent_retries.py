"""Idempotent producers retrying through a proxy that loses produce
responses (see retry_proxy.py): every message must be in the log exactly
once and in order.

librdkafka (confluent-kafka, enable.idempotence) and kafka-python
(enable_idempotence) each produce 5,000 numbered messages through the
proxy, which kills the connection instead of delivering every fourth
produce response, six times. Then, as a control that the proxy does cause
retries of appended batches, librdkafka produces the same with idempotence
off: the log must then hold duplicates. Prints "idempotent ok" and the
control's duplicate count.

Arguments: the broker's address, a topic prefix, and the port the proxy
listens on (the broker advertises it).

No client can be made to send an older epoch than its current one (the
zombie producer INVALID_PRODUCER_EPOCH fences) or a sequence gap: those
rules are tested on the producer state itself, in
`src/log/producers.rs` and `tests/log.rs`.
"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaProducer

from retry_proxy import RetryProxy

broker, prefix, proxy_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
proxy_addr = "127.0.0.1:%d" % proxy_port
proxy = RetryProxy(proxy_port, broker)
N = 5000


def read_back(topic):
    c = Consumer({"bootstrap.servers": proxy_addr, "group.id": "check-" + topic,
                  "enable.auto.commit": False})
    low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.assign([TopicPartition(topic, 0, low)])
    values, offsets = [], []
    deadline = time.time() + 60
    while len(values) < high - low and time.time() < deadline:
        for m in c.consume(1000, timeout=1):
            if m.error():
                raise RuntimeError(m.error())
            values.append(int(m.value()))
            offsets.append(m.offset())
    c.close()
    assert offsets == list(range(low, high)), "offsets follow on"
    return values


def reset():
    with proxy.lock:
        proxy.produce_responses, proxy.dropped = 0, 0


def librdkafka(topic, idempotent):
    reset()
    failed = []
    p = Producer({"bootstrap.servers": proxy_addr, "enable.idempotence": idempotent,
                  "acks": "all", "linger.ms": 5, "batch.num.messages": 100,
                  "max.in.flight.requests.per.connection": 5,
                  "reconnect.backoff.ms": 10, "retry.backoff.ms": 10})
    for i in range(N):
        p.produce(topic, value=b"%d" % i,
                  on_delivery=lambda err, msg: err and failed.append(err))
        p.poll(0)
    left = p.flush(60)
    assert left == 0 and not failed, (left, failed[:3])
    return proxy.dropped


def kafka_python(topic):
    reset()
    p = KafkaProducer(bootstrap_servers=proxy_addr, enable_idempotence=True,
                      linger_ms=5, batch_size=600, retry_backoff_ms=10,
                      max_in_flight_requests_per_connection=5)
    futures = [p.send(topic, value=b"%d" % i) for i in range(N)]
    p.flush(60)
    for f in futures:
        f.get(timeout=1)
    p.close()
    return proxy.dropped


for name, produce in [("librdkafka", lambda t: librdkafka(t, True)),
                      ("kafka-python", kafka_python)]:
    topic = "%s-%s" % (prefix, name)
    dropped = produce(topic)
    assert dropped > 0, "%s: the proxy dropped no response" % name
    values = read_back(topic)
    assert values == list(range(N)), "%s: %d records, %d distinct, first wrong at %s" % (
        name, len(values), len(set(values)),
        next((i for i, v in enumerate(values) if v != i), None))
    print(name, "dropped", dropped, "responses; no duplicate", flush=True)
print("idempotent ok", flush=True)

topic = prefix + "-plain"
dropped = librdkafka(topic, False)
values = read_back(topic)
assert set(values) == set(range(N)), "the control lost messages"
print("control dropped", dropped, "duplicates", len(values) - N, flush=True)
