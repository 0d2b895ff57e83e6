"""Transactions are not built: a transactional producer must be refused at
once, at init_transactions, never left to time out later with messages
stuck. librdkafka (confluent-kafka) and kafka-python each try; an
idempotent producer (a producer id without a transactional id) still
works. Prints "refused fast" when all is right."""
import sys
import time

from confluent_kafka import KafkaException, Producer

broker, topic = sys.argv[1], sys.argv[2]

# librdkafka: a fatal error within a second.
p = Producer({"bootstrap.servers": broker, "transactional.id": "tx-" + topic})
started = time.time()
try:
    p.init_transactions(30)
    raise SystemExit("librdkafka: init_transactions succeeded")
except KafkaException as e:
    err = e.args[0]
    took = time.time() - started
    assert took < 2, ("librdkafka waited", took, err.str())
    assert err.fatal() and not err.retriable(), err.str()
    print("librdkafka refused in %.2f s: %s" % (took, err.str()))

# kafka-python: its transactional producer's init fails the same way.
from kafka import KafkaProducer  # noqa: E402
from kafka.errors import KafkaError  # noqa: E402

kp = KafkaProducer(bootstrap_servers=broker, transactional_id="kp-" + topic)
started = time.time()
try:
    kp.init_transactions()
    raise SystemExit("kafka-python: init_transactions succeeded")
except KafkaError as e:
    took = time.time() - started
    assert took < 2, ("kafka-python waited", took, e)
    print("kafka-python refused in %.2f s: %r" % (took, e))
finally:
    kp.close(timeout=1)

# An idempotent producer still gets its producer id and delivers.
idem = Producer({"bootstrap.servers": broker, "enable.idempotence": True})
delivered = []
idem.produce(topic, b"once", on_delivery=lambda err, msg: delivered.append(err))
assert idem.flush(10) == 0 and delivered == [None], delivered
print("refused fast")
