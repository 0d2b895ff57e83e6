"""confluent-kafka (librdkafka) on SASL/OAUTHBEARER with signed tokens it
gets from its oauth_cb, which reads a token file a sidecar keeps fresh
(each token lives LIFETIME ms). The broker bounds each session by its
token's expiry, so librdkafka must renew the token and re-authenticate on
its connections (KIP-368); it produces for about three token lifetimes,
then flushes. Every record must be delivered; the Rust test beside this
checks how many connections the broker accepted.

Arguments: SASL_PLAINTEXT address, topic, token file, LIFETIME ms.
Prints "oauth ok <records>"."""
import sys
import time

import confluent_kafka

addr, topic, token_file, lifetime_ms = sys.argv[1:5]
lifetime = int(lifetime_ms) / 1000.0


def token(_config):
    # The file holds the token and its expiry (seconds since the epoch).
    with open(token_file) as f:
        value, expires = f.read().split()
    return value, float(expires), "alice", {}


failed = []
p = confluent_kafka.Producer({
    "bootstrap.servers": addr,
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanisms": "OAUTHBEARER",
    "oauth_cb": token,
    "linger.ms": 0,
    "error_cb": lambda err: failed.append(err),
})
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
print("oauth ok", sent)
