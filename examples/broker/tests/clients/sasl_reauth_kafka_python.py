"""kafka-python re-authenticating its SASL sessions on the connections it
has (KIP-368): the broker gives each authentication a lifetime of
LIFETIME ms (SCRAM: the listener's; OAUTHBEARER: its token's, which the
token provider reads from a token file a sidecar keeps fresh); a producer
sends a record every 50 ms for about three lifetimes, each acknowledged.
The Rust test beside this checks how many connections the broker
accepted.

Arguments: SASL_PLAINTEXT address, topic, mechanism (SCRAM-SHA-256 or
OAUTHBEARER), credential (user:password, or the token file: the token,
then its expiry), LIFETIME ms. Prints "reauth ok <records>"."""
import sys
import time

from kafka import KafkaProducer
from kafka.net.sasl.oauth import AbstractTokenProvider

addr, topic, mechanism, credential, lifetime_ms = sys.argv[1:6]
lifetime = int(lifetime_ms) / 1000.0


class FileToken(AbstractTokenProvider):
    """The token the file holds now (then its expiry, unused here)."""

    def token(self):
        with open(credential) as f:
            return f.read().split()[0]


if mechanism == "OAUTHBEARER":
    auth = {"sasl_oauth_token_provider": FileToken()}
else:
    user, password = credential.split(":", 1)
    auth = {"sasl_plain_username": user, "sasl_plain_password": password}
p = KafkaProducer(bootstrap_servers=addr, security_protocol="SASL_PLAINTEXT",
                  sasl_mechanism=mechanism, linger_ms=0, **auth)
sent = 0
end = time.time() + 3 * lifetime
while time.time() < end:
    p.send(topic, f"record {sent}".encode()).get(timeout=10)
    sent += 1
    time.sleep(0.05)
p.close()
print("reauth ok", sent)
