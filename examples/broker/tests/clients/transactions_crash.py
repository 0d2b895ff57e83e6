"""Transactions stay atomic across a broker killed with SIGKILL mid-run.

Starts the broker binary itself (arguments: the binary, a data folder),
then three librdkafka transactional producers each run transactions of
ten records over two partitions, committing seven in ten and aborting the
rest, while the broker is killed (`kill -9`) twice and started again on
the same folder and port. Each transaction's outcome, as its producer
heard it, is kept: committed, aborted, or unknown (the producer was
fenced or the broker went away before it heard); a transaction a kill
falls inside of is kept open by the restarted broker, so its producer
may still commit it. Then a read_committed
consumer reads everything and every transaction must show all ten of its
records or none, every committed one all ten, every aborted one none.
Prints "crash atomic ok" when all is right."""
import random
import socket
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

binary, data = sys.argv[1], sys.argv[2]
TOPIC = "atomic"
PRODUCERS = 3
PER_PRODUCER = 40
RECORDS = 10

s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
broker_addr = "127.0.0.1:%d" % port


def start_broker():
    proc = subprocess.Popen(
        [binary, "--listen", broker_addr, "--data", data],
        stdout=subprocess.PIPE,
        stderr=open(data + ".log", "a"),
    )
    line = proc.stdout.readline().decode()
    assert line.startswith("gyre-broker listening on"), line
    return proc


broker = start_broker()
admin = AdminClient({"bootstrap.servers": broker_addr})
for _, f in admin.create_topics([NewTopic(TOPIC, 2, 1)]).items():
    f.result(10)

outcomes = {}  # (producer, n) -> "committed" | "aborted" | "unknown"
counts_across = {}  # outcome -> transactions a kill fell inside of
kills = [0]
lock = threading.Lock()
done_count = [0]
# Records each producer has produced in the transaction it has open (0
# between transactions): a kill waits until one is well inside one.
in_txn = [0] * PRODUCERS


def new_producer(i):
    while True:
        p = Producer(
            {
                "bootstrap.servers": broker_addr,
                "transactional.id": "crash-%d" % i,
                "linger.ms": 2,
                "transaction.timeout.ms": 20000,
                "message.timeout.ms": 20000,
            }
        )
        try:
            p.init_transactions(30)
            return p
        except KafkaException:
            time.sleep(0.2)


def end(p, commit):
    """Ends the open transaction; what the producer knows of it."""
    for _ in range(10):
        try:
            if commit:
                p.commit_transaction(30)
                return "committed"
            p.abort_transaction(30)
            return "aborted"
        except KafkaException as e:
            err = e.args[0]
            if err.retriable():
                time.sleep(0.2)
                continue
            if err.txn_requires_abort() and commit:
                # The commit failed; an abort that succeeds ends it unseen.
                commit = False
                continue
            return "unknown"
    return "unknown"


def run(i):
    rng = random.Random(i)
    p = new_producer(i)
    for n in range(PER_PRODUCER):
        commit = rng.random() < 0.7
        kills_before = kills[0]
        try:
            p.begin_transaction()
            for k in range(RECORDS):
                p.produce(TOPIC, ("%d:%d:%d" % (i, n, k)).encode(), partition=k % 2)
                in_txn[i] = k + 1
                # Spread the transaction out, so a kill finds some of its
                # records at the broker and its marker not yet written.
                time.sleep(0.003)
            outcome = end(p, commit)
        except KafkaException:
            outcome = end(p, False)
        in_txn[i] = 0
        with lock:
            outcomes[(i, n)] = outcome
            done_count[0] += 1
            if kills[0] != kills_before:
                counts_across[outcome] = counts_across.get(outcome, 0) + 1
        if outcome == "unknown":
            # Fenced or fatal: a new instance takes the id over.
            p = new_producer(i)


threads = [threading.Thread(target=run, args=(i,)) for i in range(PRODUCERS)]
for t in threads:
    t.start()
for kill_at in (PRODUCERS * PER_PRODUCER // 4, PRODUCERS * PER_PRODUCER * 3 // 4):
    while done_count[0] < kill_at and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    # Mid-transaction: once a producer has sent a few records of the
    # transaction it has open (so the broker has them and their partitions
    # added), after a random few milliseconds more.
    waited = time.time()
    while max(in_txn) < 3 and time.time() - waited < 5:
        time.sleep(0.001)
    time.sleep(random.random() * 0.01)
    broker.kill()
    broker.wait()
    kills[0] += 1
    print("killed the broker after", done_count[0], "transactions")
    time.sleep(0.3)
    broker = start_broker()
for t in threads:
    t.join(300)
    assert not t.is_alive(), "a producer is stuck"

c = Consumer(
    {
        "bootstrap.servers": broker_addr,
        "group.id": "checker",
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
    }
)
c.subscribe([TOPIC])
seen = {}
idle_since = time.time()
deadline = time.time() + 60
while time.time() < deadline and time.time() - idle_since < 3:
    m = c.poll(0.5)
    if m is None or m.error():
        continue
    idle_since = time.time()
    i, n, _ = m.value().decode().split(":")
    seen[(int(i), int(n))] = seen.get((int(i), int(n)), 0) + 1
c.close()
broker.terminate()
broker.wait(30)

counts = {"committed": 0, "aborted": 0, "unknown": 0}
for key, outcome in outcomes.items():
    got = seen.get(key, 0)
    counts[outcome] += 1
    assert got in (0, RECORDS), ("torn transaction", key, outcome, got)
    if outcome == "committed":
        assert got == RECORDS, ("a committed transaction is missing", key, got)
    if outcome == "aborted":
        assert got == 0, ("an aborted transaction was read", key, got)
assert set(seen) <= set(outcomes), "records of a transaction nobody ran"
assert counts["committed"] > PRODUCERS * PER_PRODUCER // 3, counts
# The kills must have caught transactions open (else this test proved
# nothing): the restarts kept them open for their producers to end.
log = open(data + ".log").read()
left_open = log.count("keeping a transaction open across a stop")
assert left_open >= 1, "no kill caught a transaction open"
across = counts_across.get("committed", 0)
print("outcomes", counts, "visible", sum(1 for v in seen.values() if v),
      "kept open at restart", left_open, "committed across a kill", across)
print("crash atomic ok")
