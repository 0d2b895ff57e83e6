"""Produces numbered messages one request at a time (acks=1) and prints
each number once the broker has acknowledged it, until killed or the
broker goes away."""
import sys

from kafka import KafkaProducer

broker, topic = sys.argv[1], sys.argv[2]
p = KafkaProducer(bootstrap_servers=broker, acks=1, retries=0,
                  max_in_flight_requests_per_connection=1, linger_ms=0)
i = 0
while True:
    try:
        p.send(topic, value=b"%d" % i).get(timeout=10)
    except Exception as e:  # the broker was killed
        print("stopped", e, file=sys.stderr)
        break
    print(i, flush=True)
    i += 1
