"""librdkafka (confluent-kafka) share consumers (KIP-932) against the
broker: two members of one share group read a topic together, each record
delivered to one of them once; a record released comes back and one
rejected never does; a member killed holding records gives them back when
its locks run out; and what was accepted stays accepted across a broker
restart; and a group's own configs apply and are described. The script runs the broker itself (argv: the binary, a data
folder) so it can restart it. Prints "share groups ok"."""
import multiprocessing
import os
import sys
import time
from collections import Counter

from confluent_kafka import AcknowledgeType, ShareConsumer
from group_reads import BrokerRun, NumberedTopic

binary, data = sys.argv[1], sys.argv[2]
run = BrokerRun(binary, data,
                "--group-share-heartbeat-interval-ms", "300",
                "--group-share-session-timeout-ms", "4000",
                "--group-share-record-lock-duration-ms", "2000",
                "--share-auto-offset-reset", "earliest")
broker = run.addr


def consumer(group, explicit=False, **extra):
    conf = {"bootstrap.servers": broker, "group.id": group}
    if explicit:
        conf["share.acknowledgement.mode"] = "explicit"
    conf.update(extra)
    c = ShareConsumer(conf)
    return c


def values(messages):
    out = []
    for m in messages:
        assert m.error() is None, m.error()
        out.append(int(m.value()[1:]))
    return out


def read_until(consumers, want, timeout, seen):
    """Polls `consumers` in turn (implicit acknowledgement) until `seen`
    holds `want` distinct values; returns who read how many."""
    by = Counter()
    deadline = time.time() + timeout
    while len(seen) < want and time.time() < deadline:
        for i, c in enumerate(consumers):
            got = values(c.poll(0.2))
            by[i] += len(got)
            seen.update(got)
    assert len(seen) >= want, "read %d of %d distinct records" % (len(seen), want)
    return by


try:
    # 1. Two members share a topic: every record once, both read some.
    shared = NumberedTopic(broker, "sq", 3)
    shared.produce(3000)
    a, b = consumer("sq-group"), consumer("sq-group")
    a.subscribe(["sq"])
    b.subscribe(["sq"])
    seen = Counter()
    by = read_until([a, b], 3000, 60, seen)
    # A moment more: a record delivered twice would show now.
    read_until([a, b], 3000, 1, seen)
    twice = [v for v, n in seen.items() if n > 1]
    assert not twice, "delivered twice: %s" % twice[:10]
    assert sorted(seen) == list(range(3000)), "lost records"
    assert by[0] > 0 and by[1] > 0, "one member read nothing: %s" % by
    a.close()
    b.close()

    # 2. Explicit acknowledgement: released records come back, rejected
    # ones never do.
    small = NumberedTopic(broker, "sx", 1)
    small.produce(100)
    c = consumer("sx-group", explicit=True)
    c.subscribe(["sx"])
    counts = Counter()
    deadline = time.time() + 60
    while time.time() < deadline and len(counts) < 100:
        for m in c.poll(0.5):
            v = int(m.value()[1:])
            counts[v] += 1
            if v % 10 == 0 and counts[v] == 1:
                c.acknowledge(m, AcknowledgeType.RELEASE)
            elif v % 10 == 1:
                c.acknowledge(m, AcknowledgeType.REJECT)
            else:
                c.acknowledge(m, AcknowledgeType.ACCEPT)
        c.commit_sync()
    end = time.time() + 3
    while time.time() < end:
        for m in c.poll(0.3):
            counts[int(m.value()[1:])] += 1
            c.acknowledge(m, AcknowledgeType.ACCEPT)
        c.commit_sync()
    released = [v for v in range(0, 100, 10)]
    assert all(counts[v] == 2 for v in released), {v: counts[v] for v in released}
    assert all(counts[v] == 1 for v in range(100) if v % 10), \
        {v: n for v, n in counts.items() if v % 10 and n != 1}
    c.close()

    # 3. A member killed holding records: they come back to the other
    # once its locks run out.
    held = NumberedTopic(broker, "sk", 1)
    held.produce(200)

    def hold_and_die(addr, pipe):
        d = ShareConsumer({"bootstrap.servers": addr, "group.id": "sk-group",
                           "share.acknowledgement.mode": "explicit"})
        d.subscribe(["sk"])
        got = []
        deadline = time.time() + 30
        while not got and time.time() < deadline:
            got = [int(m.value()[1:]) for m in d.poll(0.5)]
        pipe.send(got)
        os._exit(9)

    here, there = multiprocessing.Pipe()
    dying = multiprocessing.Process(target=hold_and_die, args=(broker, there))
    dying.start()
    taken = here.recv()
    dying.join()
    assert taken, "the member that dies read nothing"
    survivor = consumer("sk-group")
    survivor.subscribe(["sk"])
    got = Counter()
    read_until([survivor], 200, 60, got)
    assert sorted(got) == list(range(200)), "records the dead member held were lost"
    survivor.close()

    # 4. Accepted records stay accepted across a restart; the rest are
    # delivered after it.
    kept = NumberedTopic(broker, "sr", 1)
    kept.produce(400)
    r = consumer("sr-group", explicit=True)
    r.subscribe(["sr"])
    accepted = set()
    deadline = time.time() + 60
    while len(accepted) < 200 and time.time() < deadline:
        for m in r.poll(0.5):
            v = int(m.value()[1:])
            if v < 200:
                accepted.add(v)
                r.acknowledge(m, AcknowledgeType.ACCEPT)
            else:
                r.acknowledge(m, AcknowledgeType.RELEASE)
        r.commit_sync()
    assert len(accepted) == 200, len(accepted)
    r.close()
    run.restart()
    again = consumer("sr-group")
    again.subscribe(["sr"])
    after = Counter()
    read_until([again], 200, 60, after)
    read_until([again], 200, 1, after)
    assert sorted(after) == list(range(200, 400)), \
        "after the restart: %s" % sorted(set(after) & accepted)[:10]
    again.close()

    # 5. Group configs (IncrementalAlterConfigs on a GROUP resource): a
    # group set to latest skips what was written before it started; the
    # configs are described as set.
    from confluent_kafka.admin import (AdminClient, AlterConfigOpType,
                                       ConfigEntry, ConfigResource,
                                       ResourceType)
    admin = AdminClient({"bootstrap.servers": broker})

    def set_group(group, key, value):
        res = ConfigResource(ResourceType.GROUP, group, incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
        admin.incremental_alter_configs([res])[res].result(10)

    def group_configs(group):
        res = ConfigResource(ResourceType.GROUP, group)
        return admin.describe_configs([res])[res].result(10)

    set_group("late-group", "share.auto.offset.reset", "latest")
    try:
        set_group("late-group", "share.auto.offset.reset", "sometime")
        raise AssertionError("a bad value was taken")
    except Exception as e:
        assert "INVALID_CONFIG" in str(e) or "invalid" in str(e).lower(), e
    described = group_configs("late-group")
    assert described["share.auto.offset.reset"].value == "latest", described
    assert described["share.record.lock.duration.ms"].value == "2000", described
    late_topic = NumberedTopic(broker, "sl", 1)
    late_topic.produce(50)
    late = consumer("late-group")
    late.subscribe(["sl"])
    got = Counter()
    end = time.time() + 3
    while time.time() < end:
        got.update(values(late.poll(0.3)))
    assert not got, "a latest group read what came before it: %s" % sorted(got)[:5]
    late_topic.produce(50)
    read_until([late], 50, 30, got)
    assert sorted(got) == list(range(50, 100)), sorted(got)[:5]
    late.close()

    # read_committed is checked on the broker (`share::tests`): the share
    # consumer of librdkafka drops aborted records itself whatever the
    # group's isolation level, so it cannot show it.
    set_group("committed-group", "share.isolation.level", "read_committed")
    assert group_configs("committed-group")["share.isolation.level"].value == "read_committed"

    # A start by duration, and a group's session and heartbeat, through
    # the same admin API; a heartbeat not below its session is refused.
    set_group("timed-group", "share.auto.offset.reset", "by_duration:P1DT30M")
    set_group("timed-group", "consumer.heartbeat.interval.ms", "1000")
    set_group("timed-group", "consumer.session.timeout.ms", "3000")
    try:
        set_group("timed-group", "share.heartbeat.interval.ms", "60000")
        raise AssertionError("a heartbeat above its session was taken")
    except Exception as e:
        assert "must be greater than" in str(e), e
    described = group_configs("timed-group")
    assert described["share.auto.offset.reset"].value == "by_duration:PT24H30M", described
    assert described["consumer.session.timeout.ms"].value == "3000", described
    # The broker's, as this test starts it: the refused change took nothing.
    assert described["share.heartbeat.interval.ms"].value == "300", described
    print("share groups ok")
finally:
    run.kill()
