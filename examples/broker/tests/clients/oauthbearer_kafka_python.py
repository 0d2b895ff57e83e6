"""kafka-python on SASL/OAUTHBEARER with signed tokens its token provider
reads from a token file a sidecar keeps fresh (each token lives LIFETIME
ms). The broker bounds each session by its token's expiry, so kafka-python
must re-authenticate on its connections (KIP-368) with a fresh token; a
producer sends a record every 50 ms for about three token lifetimes, each
acknowledged. The Rust test beside this checks how many connections the
broker accepted.

Arguments: SASL_PLAINTEXT address, topic, token file, LIFETIME ms.
Prints "oauth ok <records>"."""
import sys
import time

from kafka import KafkaProducer
from kafka.net.sasl.oauth import AbstractTokenProvider

addr, topic, token_file, lifetime_ms = sys.argv[1:5]
lifetime = int(lifetime_ms) / 1000.0


class FileToken(AbstractTokenProvider):
    """The token the file holds now (then its expiry, unused here)."""

    def token(self):
        with open(token_file) as f:
            return f.read().split()[0]


p = KafkaProducer(bootstrap_servers=addr, security_protocol="SASL_PLAINTEXT",
                  sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=FileToken(),
                  linger_ms=0)
sent = 0
end = time.time() + 3 * lifetime
while time.time() < end:
    p.send(topic, f"record {sent}".encode()).get(timeout=10)
    sent += 1
    time.sleep(0.05)
p.close()
print("oauth ok", sent)
