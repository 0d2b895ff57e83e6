"""librdkafka (confluent-kafka) consumers on the consumer group protocol
(KIP-848, `group.protocol=consumer`): the broker assigns the partitions,
members hand them over without stopping the group, and nothing is read
twice or lost across a join, a member killed without leaving, and a broker
restart (the group is kept: no member loses its partitions), and members asking for the range assignor get co-partitioned
ranges. The script runs the broker itself (argv: the binary, a data
folder) so it can restart it on the same port under live consumers.
Prints "consumer protocol ok"."""
import signal
import subprocess
import sys
import threading

from confluent_kafka import Consumer, ConsumerGroupType
from confluent_kafka.admin import NewTopic
from group_reads import BrokerRun, NumberedTopic, Reads, parts

binary, data = sys.argv[1], sys.argv[2]
TOPIC, GROUP, PARTITIONS = "cp", "cp-group", 6

run = BrokerRun(binary, data, "--group-consumer-heartbeat-interval-ms", "300",
                "--group-consumer-session-timeout-ms", "8000")
broker = run.addr
try:
    records = NumberedTopic(broker, TOPIC, PARTITIONS)
    admin, produce = records.admin, records.produce

    conf = {
        "bootstrap.servers": broker,
        "group.id": GROUP,
        "group.protocol": "consumer",
        "auto.offset.reset": "earliest",
        # Offsets are committed when partitions are revoked and where the
        # script says, so a record read twice shows a broken hand-over.
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 600000,
    }
    reads = Reads()
    seen = reads.seen
    twice = reads.twice

    # One member reads everything.
    produce(3000)
    lost = []

    def on_lost(consumer, partitions):
        lost.extend(tp.partition for tp in partitions)

    a = Consumer(dict(conf, **{"client.id": "member-a"}))
    a.subscribe([TOPIC], on_lost=on_lost)
    reads.poll_all([a], lambda: len(seen) == records.produced, 30, "a reads 3000")
    assert parts(a) == list(range(PARTITIONS)), parts(a)

    # A second joins: the broker gives it half, which a gives up first
    # (committing where it got to), so b starts where a stopped.
    b = Consumer(dict(conf, **{"client.id": "member-b"}))
    b.subscribe([TOPIC], on_lost=on_lost)
    reads.poll_all([a, b], lambda: len(parts(a)) == 3 and len(parts(b)) == 3, 30,
             "a and b share the partitions")
    assert not set(parts(a)) & set(parts(b)), (parts(a), parts(b))
    produce(3000)
    reads.poll_all([a, b], lambda: len(seen) == records.produced, 30, "a and b read 6000")
    assert not twice(), ("read twice", twice())
    a.commit(asynchronous=False)
    b.commit(asynchronous=False)

    # The admin client describes the group through ConsumerGroupDescribe
    # and lists it as a consumer-protocol group.
    desc = admin.describe_consumer_groups([GROUP])[GROUP].result(10)
    assert desc.type == ConsumerGroupType.CONSUMER, desc.type
    assert str(desc.state).endswith("STABLE"), desc.state
    described = sorted(tp.partition for m in desc.members
                       for tp in m.assignment.topic_partitions)
    assert described == list(range(PARTITIONS)), described
    assert sorted(m.client_id for m in desc.members) == ["member-a", "member-b"]
    listed = admin.list_consumer_groups(
        types={ConsumerGroupType.CONSUMER}).result(10).valid
    assert GROUP in [g.group_id for g in listed], listed
    classic = admin.list_consumer_groups(
        types={ConsumerGroupType.CLASSIC}).result(10).valid
    assert GROUP not in [g.group_id for g in classic], classic

    # A third member joins in another process and is killed without
    # leaving: after the session timeout its partitions go back to a and b.
    code = (
        "import sys,time\n"
        "from confluent_kafka import Consumer\n"
        "c=Consumer({'bootstrap.servers':sys.argv[1],'group.id':sys.argv[2],"
        "'group.protocol':'consumer','enable.auto.commit':False})\n"
        "c.subscribe([sys.argv[3]])\n"
        "t=time.time()\n"
        "while not c.assignment() and time.time()-t<30: c.poll(0.1)\n"
        # Partitions come one revocation at a time: the share is what it
        # holds once nothing has changed for 3 s (heartbeats every 0.3 s).
        "n,t=len(c.assignment()),time.time()\n"
        "while time.time()-t<3:\n"
        " c.poll(0.1)\n"
        " if len(c.assignment())!=n: n,t=len(c.assignment()),time.time()\n"
        "print(n,flush=True)\n"
        "time.sleep(600)\n")
    third = subprocess.Popen([sys.executable, "-c", code, broker, GROUP, TOPIC],
                             stdout=subprocess.PIPE)
    # a and b keep polling (a revocation runs in their poll) while the
    # third waits for its share.
    said = []
    reader = threading.Thread(target=lambda: said.append(third.stdout.readline()))
    reader.start()
    reads.poll_all([a, b], lambda: said, 40, "the third member gets partitions")
    got = int(said[0])
    assert got > 0, "the third member got no partitions"
    reads.poll_all([a, b], lambda: len(parts(a)) + len(parts(b)) == PARTITIONS - got,
             30, "a and b give the third its share")
    third.send_signal(signal.SIGKILL)
    third.wait()
    reads.poll_all([a, b], lambda: len(parts(a)) + len(parts(b)) == PARTITIONS, 30,
             "a and b take the killed member's partitions back")
    produce(600)
    reads.poll_all([a, b], lambda: len(seen) == records.produced, 30, "a and b read 6600")
    assert not twice(), ("read twice", twice())

    # The broker restarts under them. The group is kept, so they go on at
    # their epochs with their partitions: none is lost, and the 600 records
    # read since the last commit are not read again (a member the broker
    # forgot would be told it is unknown, lose its partitions and read
    # them again from the committed offsets).
    before = (parts(a), parts(b))
    run.restart()
    produce(600)
    reads.poll_all([a, b], lambda: len(seen) == records.produced, 60,
             "a and b read 7200 after the restart")
    assert not twice(), ("read twice after the restart", twice())
    assert not lost, ("partitions lost across the restart", lost)
    assert (parts(a), parts(b)) == before, ((parts(a), parts(b)), before)
    a.close()
    b.close()

    # Members that ask for the range assignor get co-partitioned ranges:
    # the same partition numbers of each topic.
    for t in ("left", "right"):
        admin.create_topics([NewTopic(t, num_partitions=3,
                                      replication_factor=1)])[t].result(10)
    ranged = dict(conf, **{"group.id": "ranged", "group.remote.assignor": "range"})
    r1, r2 = Consumer(ranged), Consumer(ranged)
    r1.subscribe(["left", "right"])
    reads.poll_all([r1], lambda: len(r1.assignment()) == 6, 30, "r1 gets both topics")
    r2.subscribe(["left", "right"])
    # The member whose id sorts first gets partitions 0-1 of each topic,
    # the other partition 2 of each.
    reads.poll_all([r1, r2], lambda: sorted([len(r1.assignment()), len(r2.assignment())]) == [2, 4],
             30, "r1 and r2 split both topics by range")
    for c in (r1, r2):
        by_topic = {}
        for tp in c.assignment():
            by_topic.setdefault(tp.topic, []).append(tp.partition)
        left, right = sorted(by_topic["left"]), sorted(by_topic["right"])
        assert left == right, by_topic
        assert left == list(range(left[0], left[0] + len(left))), by_topic
    r1.close()
    r2.close()
    print("consumer protocol ok", records.produced)
finally:
    # A third member left running (a failure before its kill) would hold
    # the test's output open for its ten minutes.
    if "third" in globals() and third.poll() is None:
        third.kill()
    run.stop()
