"""ACLs through confluent-kafka's admin client, and what they allow:
alice may write `orders`, bob may read it in group `readers`; alice (in
that group too) cannot read the topic, bob cannot write, commit offsets of
a topic he may not read, or join another group (by either group
protocol), a regular expression subscribes him only to topics he may
describe, and he sees only his group
in ListGroups and is told what he may do to it when he describes it; alice may not alter the topic's configs (by AlterConfigs
or IncrementalAlterConfigs); alice may use a transactional id only once
granted WRITE on it; bob may not list the config resources (the super
user may), nor abort a transaction or change a feature level until granted ALTER
on the cluster; neither may manage ACLs; DescribeAcls lists
them and DeleteAcls takes alice's back.

Arguments: SASL_PLAINTEXT address, then the password every user has
(admin is a super user)."""
import sys

import confluent_kafka
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic, ResourcePatternType, ResourceType)

addr, password = sys.argv[1:3]


def conf(user, **extra):
    return {"bootstrap.servers": addr, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": user,
            "sasl.password": password, **extra}


def first_error(consumer, polls=10):
    """The code of the first error `consumer` reports within `polls` s."""
    for _ in range(polls):
        m = consumer.poll(1)
        if m is not None and m.error() is not None:
            return m.error().code()
    return None


def allow(principal, rtype, name, operation):
    return AclBinding(rtype, name, ResourcePatternType.LITERAL, principal, "*",
                      operation, AclPermissionType.ALLOW)


admin = AdminClient(conf("admin"))
for _, f in admin.create_topics([NewTopic("orders", 1, 1)]).items():
    f.result(10)
bindings = [
    allow("User:alice", ResourceType.TOPIC, "orders", AclOperation.WRITE),
    allow("User:bob", ResourceType.TOPIC, "orders", AclOperation.READ),
    allow("User:bob", ResourceType.GROUP, "readers", AclOperation.READ),
    # alice may use the group, so what stops her reading is the topic.
    allow("User:alice", ResourceType.GROUP, "readers", AclOperation.READ),
]
for _, f in admin.create_acls(bindings).items():
    f.result(10)
listed = admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY,
                                              None, None, AclOperation.ANY,
                                              AclPermissionType.ANY)).result(10)
assert sorted(str(b) for b in listed) == sorted(str(b) for b in bindings), listed

# alice writes.
p = confluent_kafka.Producer(conf("alice"))
p.produce("orders", b"order 1")
assert p.flush(10) == 0

# bob may not write: the delivery report says so.
reports = []
p = confluent_kafka.Producer(conf("bob", **{"message.timeout.ms": 5000}))
p.produce("orders", b"not allowed", on_delivery=lambda err, msg: reports.append(err))
p.flush(10)
assert reports and reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports

# bob reads in his group and commits.
c = confluent_kafka.Consumer(conf("bob", **{"group.id": "readers", "auto.offset.reset": "earliest"}))
c.subscribe(["orders"])
got = None
for _ in range(30):
    m = c.poll(1)
    if m is not None and m.error() is None:
        got = m.value()
        break
assert got == b"order 1", got
c.commit(asynchronous=False)
c.close()

# bob may not commit offsets of a topic he may not read, even in his group.
for _, f in admin.create_topics([NewTopic("secret", 1, 1)]).items():
    f.result(10)
c = confluent_kafka.Consumer(conf("bob", **{"group.id": "readers"}))
try:
    result = c.commit(offsets=[TopicPartition("secret", 0, 1)], asynchronous=False)
    codes = [tp.error.code() for tp in result if tp.error is not None]
except confluent_kafka.KafkaException as e:
    codes = [e.args[0].code()]
c.close()
assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes, codes

# A regular expression subscription (the consumer group protocol) matches
# only topics bob may describe: the broker assigns him orders, never
# secret (which he could not read, and no member who may would get).
c = confluent_kafka.Consumer(conf("bob", **{"group.id": "readers", "group.protocol": "consumer",
                                             "client.id": "bob-regex"}))
c.subscribe(["^(orders|secret)$"])
errors = []
for _ in range(40):
    m = c.poll(0.25)
    if m is not None and m.error() is not None:
        errors.append(m.error())
    if c.assignment():
        break
described = admin.describe_consumer_groups(["readers"])["readers"].result(10)
# What bob may do to the group, as a describe says when asked (READ, and
# the DESCRIBE it implies); the super user may do all of it.
bob_admin = AdminClient(conf("bob"))
mine = bob_admin.describe_consumer_groups(
    ["readers"], include_authorized_operations=True)["readers"].result(10)
assert sorted(o.name for o in mine.authorized_operations) == ["DESCRIBE", "READ"], \
    mine.authorized_operations
everything = admin.describe_consumer_groups(
    ["readers"], include_authorized_operations=True)["readers"].result(10)
assert sorted(o.name for o in everything.authorized_operations) == [
    "ALTER_CONFIGS", "DELETE", "DESCRIBE", "DESCRIBE_CONFIGS", "READ"], \
    everything.authorized_operations
# And to a topic (Metadata's topic_authorized_operations).
from confluent_kafka import TopicCollection
topic = bob_admin.describe_topics(TopicCollection(["orders"]),
                                  include_authorized_operations=True)["orders"].result(10)
assert sorted(o.name for o in topic.authorized_operations) == ["DESCRIBE", "READ"], \
    topic.authorized_operations
topic = admin.describe_topics(TopicCollection(["orders"]),
                              include_authorized_operations=True)["orders"].result(10)
assert sorted(o.name for o in topic.authorized_operations) == [
    "ALTER", "ALTER_CONFIGS", "CREATE", "DELETE", "DESCRIBE", "DESCRIBE_CONFIGS", "READ",
    "WRITE"], topic.authorized_operations
on_broker = sorted({tp.topic for m in described.members if m.client_id == "bob-regex"
                    for tp in m.assignment.topic_partitions})
c.close()
assert on_broker == ["orders"] and not errors, (on_broker, errors)

# bob may not join another group.
c = confluent_kafka.Consumer(conf("bob", **{"group.id": "others", "auto.offset.reset": "earliest"}))
c.subscribe(["orders"])
code = first_error(c)
c.close()
assert code == KafkaError.GROUP_AUTHORIZATION_FAILED, code
# Nor through the consumer group protocol (ConsumerGroupHeartbeat).
c = confluent_kafka.Consumer(conf("bob", **{"group.id": "others", "group.protocol": "consumer"}))
c.subscribe(["orders"])
code = first_error(c)
c.close()
assert code == KafkaError.GROUP_AUTHORIZATION_FAILED, code

# alice may not read: the fetch is refused.
c = confluent_kafka.Consumer(conf("alice", **{"group.id": "readers"}))
c.assign([TopicPartition("orders", 0, 0)])
code = first_error(c)
c.close()
assert code == KafkaError.TOPIC_AUTHORIZATION_FAILED, code

# ListGroups shows each principal only the groups it may describe.
c = confluent_kafka.Consumer(conf("admin", **{"group.id": "admins-only"}))
c.commit(offsets=[TopicPartition("orders", 0, 1)], asynchronous=False)
c.close()


def groups(user):
    client = AdminClient(conf(user))
    return sorted(g.group_id for g in client.list_consumer_groups().result(10).valid)


assert groups("bob") == ["readers"], groups("bob")
assert "admins-only" in groups("admin"), groups("admin")

# alice may not alter the topic's configs, by either API; admin may.
alice_admin = AdminClient(conf("alice"))


def alter_retention(client, incremental):
    if incremental:
        entry = ConfigEntry("retention.ms", "3600000",
                            incremental_operation=AlterConfigOpType.SET)
        resource = ConfigResource(ResourceType.TOPIC, "orders", incremental_configs=[entry])
        [(_, f)] = client.incremental_alter_configs([resource]).items()
    else:
        resource = ConfigResource(ResourceType.TOPIC, "orders",
                                  set_config={"retention.ms": "3600000"})
        [(_, f)] = client.alter_configs([resource]).items()
    f.result(10)


for incremental in (True, False):
    try:
        alter_retention(alice_admin, incremental)
        raise SystemExit("alice altered a topic's configs")
    except confluent_kafka.KafkaException as e:
        assert e.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, e
    alter_retention(admin, incremental)

# A transactional id needs WRITE on it: refused at init_transactions
# until granted, then alice's transaction commits.
def transactional(user):
    return confluent_kafka.Producer(conf(user, **{"transactional.id": "alice-tx"}))


try:
    transactional("alice").init_transactions(10)
    raise SystemExit("alice used a transactional id without WRITE on it")
except confluent_kafka.KafkaException as e:
    assert e.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, e
tx_acl = allow("User:alice", ResourceType.TRANSACTIONAL_ID, "alice-tx", AclOperation.WRITE)
for _, f in admin.create_acls([tx_acl]).items():
    f.result(10)
p = transactional("alice")
p.init_transactions(10)
p.begin_transaction()
p.produce("orders", b"in a transaction")
p.commit_transaction(10)
for _, f in admin.delete_acls([AclBindingFilter(ResourceType.TRANSACTIONAL_ID, "alice-tx",
                                                ResourcePatternType.LITERAL, None, None,
                                                AclOperation.ANY, AclPermissionType.ANY)]).items():
    assert len(f.result(10)) == 1

# The replica and log-directory admin APIs ask CLUSTER ACLs, as Kafka's
# do: alice may neither elect leaders (ALTER) nor list the log
# directories (DESCRIBE); admin may.
election = alice_admin.elect_leaders(confluent_kafka.ElectionType.PREFERRED,
                                     [TopicPartition("orders", 0)])
try:
    election.result(10)
    raise SystemExit("alice elected leaders")
except confluent_kafka.KafkaException as e:
    assert e.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, e
elected = admin.elect_leaders(confluent_kafka.ElectionType.PREFERRED,
                              [TopicPartition("orders", 0)]).result(10)
assert [e.code() for e in elected.values()] == [KafkaError.ELECTION_NOT_NEEDED], elected


def kafka_python_admin(user):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=addr, security_protocol="SASL_PLAINTEXT",
                            sasl_mechanism="SCRAM-SHA-256", sasl_plain_username=user,
                            sasl_plain_password=password)


def log_dirs(user):
    client = kafka_python_admin(user)
    try:
        return client.describe_log_dirs()[0]
    finally:
        client.close()


# (kafka-python drops the answer's CLUSTER_AUTHORIZATION_FAILED; alice sees
# no directory.)
refused = log_dirs("alice")
assert refused["log_dirs"] == [], refused
dirs = log_dirs("admin")["log_dirs"]
assert [t["name"] for t in dirs[0]["topics"]].count("orders") == 1, dirs

# Listing the config resources takes DESCRIBE_CONFIGS on the cluster.
from kafka.errors import ClusterAuthorizationFailedError  # noqa: E402

lister = kafka_python_admin("bob")
try:
    lister.list_config_resources()
    raise SystemExit("bob listed the config resources")
except ClusterAuthorizationFailedError:
    pass
finally:
    lister.close()
lister = kafka_python_admin("admin")
assert "orders" in lister.list_config_resources(["TOPIC"])["topic"]
lister.close()

# An operator's abort of a transaction (WriteTxnMarkers) takes
# CLUSTER_ACTION or, since KIP-1037, ALTER on the cluster: bob is refused
# until he has ALTER, and then writes the marker (which ends nothing here:
# the producer has no transaction open, as Kafka takes it too).
from kafka.admin import AbortTransactionSpec  # noqa: E402
from kafka.structs import TopicPartition as KTopicPartition  # noqa: E402

for _, f in admin.create_topics([NewTopic("markers", 1, 1)]).items():
    f.result(10)
# (DESCRIBE on the topic, for the admin client to find its leader.)
seen = allow("User:bob", ResourceType.TOPIC, "markers", AclOperation.DESCRIBE)
for _, f in admin.create_acls([seen]).items():
    f.result(10)
abort = AbortTransactionSpec(KTopicPartition("markers", 0), 4242, 0, 0)
aborter = kafka_python_admin("bob")
try:
    aborter.abort_transaction(abort)
    raise SystemExit("bob aborted a transaction")
except ClusterAuthorizationFailedError:
    pass
# UpdateFeatures takes ALTER on the cluster too (validated only here).
share_off = {"share.version": ("SAFE_DOWNGRADE", 0)}
try:
    aborter.update_features(share_off, validate_only=True)
    raise SystemExit("bob changed a feature level")
except ClusterAuthorizationFailedError:
    pass
cluster_alter = allow("User:bob", ResourceType.BROKER, "kafka-cluster", AclOperation.ALTER)
for _, f in admin.create_acls([cluster_alter]).items():
    f.result(10)
aborter.abort_transaction(abort)
assert aborter.update_features(share_off, validate_only=True) == {"share.version": "OK"}
assert aborter.describe_features()["share.version"].get("finalized") == (1, 1)
aborter.close()
taken_back = AclBindingFilter(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL,
                              "User:bob", "*", AclOperation.ALTER, AclPermissionType.ALLOW)
for _, f in admin.delete_acls([taken_back]).items():
    assert len(f.result(10)) == 1

# Neither may manage ACLs.
try:
    for _, f in alice_admin.create_acls(
            [allow("User:alice", ResourceType.TOPIC, "orders", AclOperation.READ)]).items():
        f.result(10)
    raise SystemExit("alice created an ACL")
except confluent_kafka.KafkaException as e:
    assert e.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED, e

# Taking alice's ACL back stops her writing.
for _, f in admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "orders",
                                                ResourcePatternType.LITERAL, "User:alice", None,
                                                AclOperation.ANY, AclPermissionType.ANY)]).items():
    assert len(f.result(10)) == 1
reports = []
p = confluent_kafka.Producer(conf("alice", **{"message.timeout.ms": 5000}))
p.produce("orders", b"after the delete", on_delivery=lambda err, msg: reports.append(err))
p.flush(10)
assert reports and reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, reports
print("acls ok")
