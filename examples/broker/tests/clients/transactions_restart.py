"""A transaction open while the broker stops goes on when it comes back,
as Kafka's coordinator keeps its ongoing transactions: a librdkafka
consume-transform-produce producer begins a transaction, writes outputs
and sends its group's offsets with it, the broker stops (SIGINT, then in
the next round SIGKILL) and starts again on the same folder and port, and
the producer writes more to the same partitions and commits: the commit
succeeds, a read_committed reader sees every output of the transaction,
and the group's offsets are those sent with it. A transaction aborted
after a restart leaves neither outputs nor offsets. (A broker that aborted
open transactions at start fenced the producer: its commit failed.)
Arguments: the broker binary, a data folder. Prints "transactions restart
ok"."""
import signal
import sys
import time


def step(*what):
    print(time.strftime('%H:%M:%S'), *what, file=sys.stderr, flush=True)

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from group_reads import BrokerRun, NumberedTopic

binary, data = sys.argv[1], sys.argv[2]
signal.alarm(240)  # a client that hangs fails the test rather than the suite
IN, OUT = "restart-in", "restart-out"
run = BrokerRun(binary, data)
try:
    NumberedTopic(run.addr, IN, 2, keyed=False).produce(60)
    admin = AdminClient({"bootstrap.servers": run.addr})
    admin.create_topics([NewTopic(OUT, 2, 1)])[OUT].result(10)

    group = Consumer({"bootstrap.servers": run.addr, "group.id": "restart-ctp",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "session.timeout.ms": 30000, "heartbeat.interval.ms": 500})
    group.subscribe([IN])
    xp = Producer({"bootstrap.servers": run.addr, "transactional.id": "restart-xp",
                   "linger.ms": 2, "transaction.timeout.ms": 60000,
                   # librdkafka 2.16 re-bootstraps when its one broker goes
                   # away and keeps the decommissioned handle as the group
                   # coordinator: send_offsets_to_transaction then hangs
                   # past its timeout (confluentinc/librdkafka#5511, #5456),
                   # against Kafka as against us.
                   "metadata.recovery.strategy": "none"})
    xp.init_transactions(20)

    def take(n):
        """The next `n` input records of the group's member."""
        got = []
        deadline = time.time() + 30
        while len(got) < n and time.time() < deadline:
            for m in group.consume(n - len(got), 0.5):
                if not m.error():
                    got.append(m)
        assert len(got) == n, ("inputs read", len(got))
        return got

    def positions():
        return sorted(((tp.partition, tp.offset)
                       for tp in group.position(group.assignment())))

    def committed():
        tps = [TopicPartition(IN, 0), TopicPartition(IN, 1)]
        return sorted((tp.partition, tp.offset)
                      for tp in group.committed(tps, timeout=10))

    def outputs():
        """Every output a read_committed reader sees, sorted."""
        c = Consumer({"bootstrap.servers": run.addr,
                      "group.id": "restart-reader-%f" % time.time(),
                      "auto.offset.reset": "earliest",
                      "isolation.level": "read_committed",
                      "enable.auto.commit": False})
        c.subscribe([OUT])
        got, idle_since, deadline = [], time.time(), time.time() + 30
        while time.time() < deadline and time.time() - idle_since < 2:
            for m in c.consume(100, 0.3):
                if not m.error():
                    got.append(m.value().decode())
                    idle_since = time.time()
        c.close()
        return sorted(got)

    expected = []
    for round_, stop, commit in ((0, run.stop, True), (1, run.kill, True),
                                 (2, run.kill, False)):
        step('round', round_, 'take')
        inputs = take(20)
        sent = positions()
        xp.begin_transaction()
        # Half the outputs before the stop, on both partitions: the
        # transaction has records at the broker and offsets pending.
        first = ["r%d-%s" % (round_, m.value().decode()) for m in inputs]
        for i, v in enumerate(first[:10]):
            xp.produce(OUT, v.encode(), partition=i % 2)
        assert xp.flush(20) == 0, "outputs unsent"
        step('flushed')
        xp.send_offsets_to_transaction(
            [TopicPartition(IN, p, o) for p, o in sent],
            group.consumer_group_metadata(), 20)
        step('offsets sent')
        stop()
        time.sleep(0.3)
        run.start()
        # The rest after it, on the same partitions (no new AddPartitions).
        for i, v in enumerate(first[10:]):
            xp.produce(OUT, v.encode(), partition=i % 2)
        step('restarted')
        if commit:
            xp.commit_transaction(60)
            expected += first
        else:
            xp.abort_transaction(60)
        step('ended')
        got = outputs()
        step('read')
        assert got == sorted(expected), ("round", round_, "outputs",
                                         len(got), "expected", len(expected),
                                         sorted(set(got) ^ set(expected))[:5])
        if commit:
            assert committed() == sent, ("round", round_, committed(), sent)
            last_sent = sent
        else:
            assert committed() == last_sent, ("an abort commits no offsets",
                                              committed(), last_sent)
        print("round", round_, stop.__name__, "committed" if commit else "aborted",
              "outputs", len(got), "offsets", committed())
    group.close()
    kept = open(run.log).read().count("keeping a transaction open across a stop")
    assert kept >= 3, ("the broker's log names every kept transaction", kept)
    run.stop()
    print("transactions restart ok")
except BaseException:
    run.proc.kill()
    raise
