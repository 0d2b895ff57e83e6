"""Records/s a librdkafka (confluent-kafka) ShareConsumer (one member,
implicit acknowledgements) and a classic Consumer read from one topic of a
running broker, one after the other. No peer: a Kafka 4.1 broker cannot
be installed on these hosts. Run against a broker started with
`--share-auto-offset-reset earliest`:

    python3 benches/python/share_rate.py 127.0.0.1:19093 300000
"""
import sys, time
import confluent_kafka as ck
from confluent_kafka.admin import AdminClient, NewTopic
broker = sys.argv[1]; N = int(sys.argv[2])
a = AdminClient({'bootstrap.servers': broker})
a.create_topics([NewTopic('rate', 1)])['rate'].result()
p = ck.Producer({'bootstrap.servers': broker, 'linger.ms': 5, 'batch.num.messages': 10000})
for i in range(N):
    p.produce('rate', value=b'x' * 100)
    if i % 10000 == 0: p.poll(0)
p.flush()
c = ck.Consumer({'bootstrap.servers': broker, 'group.id': 'classic', 'auto.offset.reset': 'earliest'})
c.subscribe(['rate']); n = 0; t0 = None
while n < N:
    ms = c.consume(10000, 1.0)
    if ms and t0 is None: t0 = time.time()
    n += sum(1 for m in ms if not m.error())
classic = N / (time.time() - t0); c.close()
s = ck.ShareConsumer({'bootstrap.servers': broker, 'group.id': 'share'})
s.subscribe(['rate']); n = 0; t0 = None
while n < N:
    ms = s.poll(1.0)
    if len(ms) and t0 is None: t0 = time.time()
    n += sum(1 for m in ms if not m.error())
share = N / (time.time() - t0); s.close()
print("classic %.0f records/s, share %.0f records/s, share/classic %.2f" % (classic, share, share / classic))
