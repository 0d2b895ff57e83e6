"""confluent-kafka (librdkafka) re-authenticating its SASL sessions on the
connections it has (KIP-368): the broker gives each authentication a
lifetime of LIFETIME ms (SCRAM: the listener's; OAUTHBEARER: its token's,
which the oauth_cb reads from a token file a sidecar keeps fresh); a
producer sends records for about three lifetimes, then flushes. Every
record must be delivered; the Rust test beside this checks that the broker
accepted no more connections than librdkafka keeps (a client that did not
renew would be closed at its next request after each lifetime, and
connect again).

Arguments: SASL_PLAINTEXT address, topic, mechanism (SCRAM-SHA-256 or
OAUTHBEARER), credential (user:password, or the token file: the token,
then its expiry in seconds since the epoch), LIFETIME ms.
Prints "reauth ok <records>"."""
import sys
import time

import confluent_kafka

addr, topic, mechanism, credential, lifetime_ms = sys.argv[1:6]
lifetime = int(lifetime_ms) / 1000.0


def token(_config):
    with open(credential) as f:
        value, expires = f.read().split()
    return value, float(expires), "alice", {}


failed = []
config = {
    "bootstrap.servers": addr,
    "security.protocol": "SASL_PLAINTEXT",
    "sasl.mechanisms": mechanism,
    "linger.ms": 0,
    "error_cb": lambda err: failed.append(err),
}
if mechanism == "OAUTHBEARER":
    config["oauth_cb"] = token
else:
    config["sasl.username"], config["sasl.password"] = credential.split(":", 1)
p = confluent_kafka.Producer(config)
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
