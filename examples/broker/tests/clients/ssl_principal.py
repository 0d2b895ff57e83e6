"""On an SSL listener that requires client certificates, the certificate's
subject is the principal (Kafka's default: User:CN=alice): an ACL for
User:CN=alice lets alice's certificate write, bob's is refused, and a
client with no certificate does not get through the handshake.

With "mapped" as a fourth argument the broker runs with
ssl.principal.mapping.rules taking the CN alone, so the principal is
User:alice.

Arguments: SSL address, CA file of the broker's certificate, then the
folder holding admin.pem/admin.key, alice.pem/alice.key, bob.pem/bob.key,
then "mapped" or nothing."""
import os
import sys

import confluent_kafka
from confluent_kafka import KafkaError
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

addr, ca, certs = sys.argv[1:4]
alice = "User:alice" if sys.argv[4:] == ["mapped"] else "User:CN=alice"


def conf(user, **extra):
    c = {"bootstrap.servers": addr, "security.protocol": "SSL", "ssl.ca.location": ca, **extra}
    if user:
        c["ssl.certificate.location"] = os.path.join(certs, f"{user}.pem")
        c["ssl.key.location"] = os.path.join(certs, f"{user}.key")
    return c


admin = AdminClient(conf("admin"))
for _, f in admin.create_topics([NewTopic("signed", 1, 1)]).items():
    f.result(10)
for _, f in admin.create_acls([AclBinding(ResourceType.TOPIC, "signed", ResourcePatternType.LITERAL,
                                          alice, "*", AclOperation.WRITE,
                                          AclPermissionType.ALLOW)]).items():
    f.result(10)

p = confluent_kafka.Producer(conf("alice"))
p.produce("signed", b"from alice's certificate")
assert p.flush(10) == 0

reports = []
p = confluent_kafka.Producer(conf("bob", **{"message.timeout.ms": 5000}))
p.produce("signed", b"bob", on_delivery=lambda err, msg: reports.append(err))
p.flush(10)
assert reports and reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports

errors = []
p = confluent_kafka.Producer(conf(None, error_cb=lambda e: errors.append(e)))
p.poll(3)
assert errors, "a client without a certificate got through"
print("ssl principal ok")
