"""kafka-python and confluent-kafka over SASL: SCRAM-SHA-256 and -512 on
SASL_PLAINTEXT, PLAIN and SCRAM on SASL_SSL, and a wrong password refused.

Arguments: SASL_PLAINTEXT address, SASL_SSL address, CA file, topic, user,
password."""
import sys

import confluent_kafka
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError

plain_addr, ssl_addr, ca, topic, user, password = sys.argv[1:7]
sent = []

# kafka-python: SCRAM-SHA-512 in clear text, SCRAM-SHA-256 over TLS.
for addr, extra, mechanism in [
    (plain_addr, {}, "SCRAM-SHA-512"),
    (ssl_addr, {"ssl_cafile": ca, "ssl_check_hostname": True}, "SCRAM-SHA-256"),
]:
    protocol = "SASL_SSL" if extra else "SASL_PLAINTEXT"
    p = KafkaProducer(bootstrap_servers=addr, security_protocol=protocol,
                      sasl_mechanism=mechanism, sasl_plain_username=user,
                      sasl_plain_password=password, **extra)
    value = f"kafka-python {mechanism} {protocol}".encode()
    p.send(topic, value).get(timeout=10)
    p.close()
    sent.append(value)

# confluent-kafka (its own librdkafka): PLAIN over TLS, SCRAM-SHA-512 in clear.
for addr, conf in [
    (ssl_addr, {"security.protocol": "SASL_SSL", "ssl.ca.location": ca, "sasl.mechanisms": "PLAIN"}),
    (plain_addr, {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512"}),
]:
    conf.update({"bootstrap.servers": addr, "sasl.username": user, "sasl.password": password})
    p = confluent_kafka.Producer(conf)
    value = f"confluent-kafka {conf['sasl.mechanisms']} {conf['security.protocol']}".encode()
    p.produce(topic, value)
    assert p.flush(10) == 0, "delivered"
    sent.append(value)

# Read it all back over TLS with PLAIN.
c = KafkaConsumer(topic, bootstrap_servers=ssl_addr, security_protocol="SASL_SSL",
                  ssl_cafile=ca, sasl_mechanism="PLAIN", sasl_plain_username=user,
                  sasl_plain_password=password, auto_offset_reset="earliest",
                  consumer_timeout_ms=5000, group_id="sasl-readers")
got = [m.value for m in c]
c.close()
assert got == sent, (got, sent)

# A wrong password: kafka-python cannot get in.
try:
    KafkaProducer(bootstrap_servers=plain_addr, security_protocol="SASL_PLAINTEXT",
                  sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=user,
                  sasl_plain_password=password + "x", max_block_ms=3000)
    raise SystemExit("a wrong password was accepted")
except KafkaError as e:
    print("wrong password refused:", type(e).__name__)

# And neither can librdkafka: its error callback reports the failure.
errors = []
p = confluent_kafka.Producer({"bootstrap.servers": plain_addr,
                              "security.protocol": "SASL_PLAINTEXT",
                              "sasl.mechanisms": "SCRAM-SHA-256",
                              "sasl.username": user, "sasl.password": "nope",
                              "error_cb": lambda e: errors.append(e)})
p.poll(3)
assert any(e.code() == confluent_kafka.KafkaError._AUTHENTICATION for e in errors), errors
print("sasl ok", len(got))
