"""What the group tests share (imported by consumer_protocol.py,
group_migration.py, classic_restart.py and transactions_restart.py): the
broker binary run on a
fixed port (so it can be restarted under live consumers), a topic of
numbered records, how often each value was read, polling several members
in turn, and which partitions a member owns."""
import signal
import socket
import subprocess
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


class BrokerRun:
    """The broker binary on a free port of its own, restartable there."""

    def __init__(self, binary, data, *args):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.addr = "127.0.0.1:%d" % port
        self.command = [binary, "--listen", self.addr, "--data", data, *args]
        self.log = data + ".log"
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                     stderr=open(self.log, "ab"))
        line = self.proc.stdout.readline().decode()
        assert line.startswith("gyre-broker listening on"), line

    def stop(self):
        """A clean stop (SIGINT); fails if the broker did not stop cleanly."""
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(30) == 0

    def kill(self):
        """An unclean stop (SIGKILL)."""
        self.proc.kill()
        self.proc.wait(30)

    def restart(self):
        self.stop()
        self.start()


class NumberedTopic:
    """A topic created with `partitions` partitions, and numbered records
    written to it: values v0, v1, ... (keys k0, k1, ... when `keyed`)."""

    def __init__(self, broker, name, partitions, keyed=True):
        self.admin = AdminClient({"bootstrap.servers": broker})
        self.admin.create_topics([NewTopic(name, num_partitions=partitions,
                                           replication_factor=1)])[name].result(10)
        self.producer = Producer({"bootstrap.servers": broker, "linger.ms": 5})
        self.name, self.keyed, self.produced = name, keyed, 0

    def produce(self, n):
        """The next `n` records, all acknowledged."""
        for i in range(self.produced, self.produced + n):
            key = b"k%d" % i if self.keyed else None
            self.producer.produce(self.name, key=key, value=b"v%d" % i)
            self.producer.poll(0)
        assert self.producer.flush(10) == 0, "messages left unsent"
        self.produced += n


def parts(consumer):
    """The partitions `consumer` is assigned, sorted."""
    return sorted(tp.partition for tp in consumer.assignment())


class Reads:
    """Counts each record value read by any member."""

    def __init__(self):
        self.seen = {}

    def poll_all(self, consumers, until, timeout, what):
        """Polls `consumers` in turn until `until()` holds, or fails
        naming `what` after `timeout` seconds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in consumers:
                # A batch each turn: an idle member's wait is not paid per
                # record.
                for m in c.consume(500, 0.02):
                    if not m.error():
                        self.seen[m.value()] = self.seen.get(m.value(), 0) + 1
            if until():
                return
        raise AssertionError("timed out: %s: read %d, partitions %s" % (
            what, len(self.seen), [parts(c) for c in consumers]))

    def settle(self, consumers, admin, group, what, timeout=60):
        """Polls `consumers` until the broker describes `group` as stable:
        every member has reached its target, so none has a revocation
        its application has not yet served.

        A librdkafka member closed with such a revocation pending (its
        heartbeat said to rejoin, and the revoke waits for the next poll)
        sends its LeaveGroup first and then commits what it read under
        the member id it just gave up; Kafka refuses that commit
        (UNKNOWN_MEMBER_ID), as the broker does, and its partitions are
        read again from the last commit. A test closing a member mid-run
        waits for this first, as an application that wants its last
        offsets kept must."""
        def stable():
            described = admin.describe_consumer_groups([group])[group].result(10)
            return str(described.state).endswith("STABLE")
        self.poll_all(consumers, stable, timeout, what)

    def twice(self):
        """Up to five values read more than once."""
        return sorted(v for v, n in self.seen.items() if n > 1)[:5]
