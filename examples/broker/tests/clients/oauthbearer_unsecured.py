"""librdkafka's own unsecured OAUTHBEARER tokens (alg none, its
enable.sasl.oauthbearer.unsecure.jwt), as Kafka's default validator takes
them: a producer claiming principal alice, a super user of the broker's
authorizer, delivers a record; one claiming bob, who may do nothing, is
refused the topic. Against a broker that checks signatures, the same
client cannot authenticate at all.

Arguments: SASL_PLAINTEXT address, topic. Prints "unsecured ok alice", or
"refused" when authentication fails."""
import sys

import confluent_kafka

addr, topic = sys.argv[1:3]
auth_failed = []


def producer(principal):
    return confluent_kafka.Producer({
        "bootstrap.servers": addr,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": "OAUTHBEARER",
        "enable.sasl.oauthbearer.unsecure.jwt": True,
        "sasl.oauthbearer.config": f"principal={principal} lifeSeconds=60",
        "message.timeout.ms": 4000,
        "error_cb": lambda err: err.code() == confluent_kafka.KafkaError._AUTHENTICATION
        and auth_failed.append(err),
    })


def deliver(principal):
    """The delivery error of one record sent as `principal`, or None."""
    p = producer(principal)
    result = []
    p.produce(topic, b"hello", on_delivery=lambda err, msg: result.append(err))
    p.flush(10)
    return result[0] if result else "undelivered"


alice = deliver("alice")
if auth_failed:
    print("refused", auth_failed[0])
    sys.exit(0)
assert alice is None, alice
bob = deliver("bob")
assert bob is not None and bob.code() == confluent_kafka.KafkaError.TOPIC_AUTHORIZATION_FAILED, bob
print("unsecured ok alice")
