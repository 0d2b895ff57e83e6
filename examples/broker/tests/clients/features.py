"""Feature levels (KIP-584) through kafka-python's describe_features and
update_features, and what they turn off for librdkafka (confluent-kafka):

- ApiVersions v4 lists group.version and share.version (0 to 1, finalized
  at 1) and transaction.version (0 to 0, not finalized), at epoch 0;
- refused with InvalidUpdateVersionError, nothing changed: a level above
  what the broker supports, a feature it does not have, a downgrade asked
  as an upgrade; a validate-only downgrade changes nothing;
- share.version 0: a share consumer fails with UNSUPPORTED_VERSION;
  group.version 0: a consumer on the consumer group protocol fails so
  while a classic one reads; both stay so across a clean restart and a
  kill -9 (the levels are on disk before the answer);
- both back at 1: the same consumers read every record.

The script runs the broker itself (argv: the binary, a data folder).
Prints "features ok"."""
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, ShareConsumer
from group_reads import BrokerRun, NumberedTopic
from kafka.admin import KafkaAdminClient
from kafka.errors import InvalidUpdateVersionError

binary, data = sys.argv[1], sys.argv[2]
run = BrokerRun(binary, data, "--share-auto-offset-reset", "earliest")
broker = run.addr


def admin():
    return KafkaAdminClient(bootstrap_servers=broker)


def finalized(described):
    return {name: f.get("finalized") for name, f in described.items()}


def reads(kind, group, want, timeout=20):
    """How many of `want` records a consumer of `kind` ("consumer",
    "classic" or "share") reads, and the first fatal error it met."""
    conf = {"bootstrap.servers": broker, "group.id": group}
    if kind == "share":
        c = ShareConsumer(conf)
    else:
        conf.update({"group.protocol": kind, "auto.offset.reset": "earliest"})
        c = Consumer(conf)
    c.subscribe(["feat"])
    got, fatal, deadline = 0, None, time.time() + timeout
    while got < want and fatal is None and time.time() < deadline:
        try:
            messages = c.poll(0.3) if kind == "share" else [c.poll(0.3)]
        except KafkaException as e:
            fatal = e.args[0]
            break
        for m in messages:
            if m is None:
                continue
            if m.error():
                if m.error().fatal() or m.error().code() == KafkaError._FATAL:
                    fatal = m.error()
                continue
            got += 1
    c.close()
    return got, fatal


def refused(kind, group):
    got, fatal = reads(kind, group, 1, timeout=10)
    assert got == 0 and fatal is not None, (kind, got, fatal)
    assert "API version not supported" in fatal.str(), fatal


try:
    topic = NumberedTopic(broker, "feat", 2)
    topic.produce(200)

    a = admin()
    described = a.describe_features()
    assert {n: f["supported"] for n, f in described.items()} == {
        "group.version": (0, 1), "share.version": (0, 1), "transaction.version": (0, 0)
    }, described
    assert finalized(described) == {
        "group.version": (1, 1), "share.version": (1, 1), "transaction.version": None
    }, described
    assert described["group.version"]["finalized_epoch"] == 0, described

    for bad, why in [({"transaction.version": 2}, "supports levels 0 to 0"),
                     ({"kraft.version": 1}, "does not support this feature"),
                     ({"group.version": 0}, "a downgrade needs")]:
        try:
            a.update_features(bad)
            raise SystemExit("taken: %s" % bad)
        except InvalidUpdateVersionError as e:
            assert why in str(e), e
    assert a.update_features({"group.version": ("SAFE_DOWNGRADE", 0)},
                             validate_only=True) == {"group.version": "OK"}
    assert a.describe_features() == described

    # Off: each protocol's consumers are refused; classic ones are not.
    assert a.update_features({"share.version": ("SAFE_DOWNGRADE", 0),
                              "group.version": ("UNSAFE_DOWNGRADE", 0)}) == {
        "share.version": "OK", "group.version": "OK"}
    after = a.describe_features()
    assert finalized(after) == {
        "group.version": None, "share.version": None, "transaction.version": None
    }, after
    a.close()
    refused("share", "feat-share")
    refused("consumer", "feat-new")
    assert reads("classic", "feat-classic", 200)[0] == 200
    print("off: share and consumer-protocol consumers refused, classic reads")

    # The levels are on disk: a clean restart, then a kill -9.
    for stop in (run.stop, run.kill):
        stop()
        run.start()
        a = admin()
        kept = a.describe_features()
        a.close()
        assert finalized(kept) == finalized(after), kept
        assert kept["share.version"]["supported"] == (0, 1), kept
        refused("consumer", "feat-new")
    print("kept across a clean restart and a kill -9")

    a = admin()
    assert a.update_features({"share.version": 1, "group.version": 1}) == {
        "share.version": "OK", "group.version": "OK"}
    back = a.describe_features()
    a.close()
    assert finalized(back) == finalized(described), back
    # Two changes since the first description.
    assert back["share.version"]["finalized_epoch"] == 2, back
    assert reads("consumer", "feat-new", 200)[0] == 200
    assert reads("share", "feat-share", 200)[0] == 200
    print("features ok")
finally:
    if run.proc.poll() is None:
        run.stop()
