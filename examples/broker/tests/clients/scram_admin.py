"""confluent-kafka's admin client manages SCRAM users through
AlterUserScramCredentials and DescribeUserScramCredentials: a new user
can then log in, a deleted one cannot.

Arguments: SASL_PLAINTEXT address, admin user, admin password."""
import sys

import confluent_kafka
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion, UserScramCredentialUpsertion)

addr, admin_user, admin_password = sys.argv[1:4]


def conf(user, password, mechanism="SCRAM-SHA-256"):
    return {"bootstrap.servers": addr, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password}


admin = AdminClient(conf(admin_user, admin_password))
info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
for user, fut in admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("carol", info, b"c4rol-pw")]).items():
    fut.result(10)

described = admin.describe_user_scram_credentials(["carol"])
infos = described["carol"].result(10).scram_credential_infos
assert [(i.mechanism, i.iterations) for i in infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)], infos

# Too few iterations: refused with Kafka's error.
try:
    bad = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 100)
    for _, fut in admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("dave", bad, b"x")]).items():
        fut.result(10)
    raise SystemExit("100 iterations were accepted")
except confluent_kafka.KafkaException as e:
    assert e.args[0].code() == confluent_kafka.KafkaError.UNACCEPTABLE_CREDENTIAL, e

p = confluent_kafka.Producer(conf("carol", "c4rol-pw"))
p.produce("carol-topic", b"carol was here")
assert p.flush(10) == 0, "carol can produce"

for _, fut in admin.alter_user_scram_credentials(
        [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)]).items():
    fut.result(10)
errors = []
p = confluent_kafka.Producer({**conf("carol", "c4rol-pw"), "error_cb": lambda e: errors.append(e)})
p.poll(3)
assert any(e.code() == confluent_kafka.KafkaError._AUTHENTICATION for e in errors), errors
print("scram admin ok")
