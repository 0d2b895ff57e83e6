"""confluent-kafka (librdkafka) re-authenticating its SASL sessions on the
connections it has (KIP-368): the broker gives each authentication a
lifetime of LIFETIME ms; a producer sends records for about three
lifetimes, then flushes. Every record must be delivered; the Rust test
beside this checks that the broker accepted no more connections than
librdkafka keeps (a client that did not renew would be closed at its next
request after each lifetime, and connect again).

Arguments: SASL_PLAINTEXT address, topic, user, password, LIFETIME ms.
Prints "reauth ok <records>"."""
import sys
import time

import confluent_kafka

addr, topic, user, password, lifetime_ms = sys.argv[1:6]
lifetime = int(lifetime_ms) / 1000.0

p = confluent_kafka.Producer({
    "bootstrap.servers": addr,
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanisms": "SCRAM-SHA-256",
    "sasl.username": user,
    "sasl.password": password,
    "linger.ms": 0,
})
failed = []
sent = 0
end = time.time() + 3 * lifetime
while time.time() < end:
    p.produce(topic, f"record {sent}".encode(),
              on_delivery=lambda err, msg: err and failed.append(err))
    sent += 1
    p.poll(0.05)
    time.sleep(0.05)
assert p.flush(15) == 0, "all delivered"
p.poll(0.5)
assert not failed, failed
print("reauth ok", sent)
