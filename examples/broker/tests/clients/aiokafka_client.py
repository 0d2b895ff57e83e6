"""aiokafka (asyncio; its own protocol code) against the broker: topic
admin, AlterConfigs (the older, replacing API, the only one aiokafka
sends), an idempotent producer under every compression codec with keys
and headers, a batch built by hand, a consumer group of two that splits
the partitions and commits, a third member that resumes from the
commits, offset lookups, DeleteRecords seen in the produce response's
log start offset, and a transactional producer that commits one
transaction and aborts another, read by a read_committed consumer.
Prints "aiokafka ok" when all is right."""
import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.admin.records_to_delete import RecordsToDelete
from aiokafka.errors import KafkaError

broker, topic = sys.argv[1], sys.argv[2]
CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
PER_CODEC = 200
PARTITIONS = [TopicPartition(topic, p) for p in range(3)]


async def topic_configs(admin):
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)])
    [(code, message, _, _, entries)] = response.resources
    assert code == 0, message
    # (name, value, read_only, source, ...): source 1 is a topic's own value.
    return {e[0]: (e[1], e[3]) for e in entries}


async def alter(admin, configs):
    [response] = await admin.alter_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
    [(code, message, _, _)] = response.resources
    return code, message


async def configs_are_replaced(admin):
    code, message = await alter(admin, {"retention.ms": "3600000", "segment.bytes": "1048576"})
    assert code == 0, message
    c = await topic_configs(admin)
    assert c["retention.ms"] == ("3600000", 1), c
    assert c["segment.bytes"] == ("1048576", 1), c
    # AlterConfigs replaces: what it does not name goes back to the default.
    code, message = await alter(admin, {"retention.ms": "7200000"})
    assert code == 0, message
    c = await topic_configs(admin)
    assert c["retention.ms"] == ("7200000", 1), c
    assert c["segment.bytes"][1] != 1, ("segment.bytes not reset", c)
    code, message = await alter(admin, {"cleanup.policy": "shred"})
    assert code == 40, (code, message)  # INVALID_CONFIG, naming the key
    assert "cleanup.policy" in message, message
    assert (await topic_configs(admin))["retention.ms"] == ("7200000", 1)
    print("configs replaced")


async def produce_every_codec():
    sent = set()
    for codec in CODECS:
        p = AIOKafkaProducer(bootstrap_servers=broker, compression_type=codec,
                             enable_idempotence=True, linger_ms=5)
        await p.start()
        try:
            futures = []
            for i in range(PER_CODEC):
                value = b"%s-%d" % (str(codec).encode(), i)
                sent.add(value)
                futures.append(await p.send(topic, key=b"k%d" % i, value=value,
                                            headers=[("n", b"%d" % i)]))
            for md in await asyncio.gather(*futures):
                assert md.offset >= 0 and md.log_start_offset == 0, md
        finally:
            await p.stop()
    # A batch built by the caller, sent whole to one partition.
    p = AIOKafkaProducer(bootstrap_servers=broker)
    await p.start()
    try:
        batch = p.create_batch()
        for i in range(50):
            value = b"batch-%d" % i
            sent.add(value)
            assert batch.append(key=None, value=value, timestamp=None) is not None
        batch.close()
        md = await (await p.send_batch(batch, topic, partition=2))
        assert md.partition == 2 and md.offset >= 0, md
    finally:
        await p.stop()
    print("produced", len(sent))
    return sent


async def group_of_two_splits_and_commits(sent):
    seen = [[], []]
    assigned = [set(), set()]

    async def member(n, stop):
        c = AIOKafkaConsumer(topic, bootstrap_servers=broker, group_id="aio",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             heartbeat_interval_ms=300, session_timeout_ms=10000)
        await c.start()
        try:
            while not stop.is_set():
                for records in (await c.getmany(timeout_ms=200)).values():
                    for r in records:
                        batch = r.value.startswith(b"batch-")
                        assert batch or r.headers == (("n", r.key[1:]),), r
                        seen[n].append(r.value)
                assigned[n] = {tp.partition for tp in c.assignment()}
                if seen[n]:
                    try:
                        await c.commit()
                    except KafkaError:
                        pass  # a rebalance is under way: the next poll rejoins
            await c.commit()
        finally:
            await c.stop()

    stop = asyncio.Event()
    members = [asyncio.create_task(member(n, stop)) for n in (0, 1)]
    deadline = time.time() + 60
    while time.time() < deadline:
        await asyncio.sleep(0.1)
        if len(seen[0]) + len(seen[1]) >= len(sent) and assigned[0] and assigned[1] \
                and not assigned[0] & assigned[1]:
            break
    stop.set()
    await asyncio.gather(*members)
    got = seen[0] + seen[1]
    assert sorted(got) == sorted(sent), ("every message once", len(got), len(sent))
    assert assigned[0] and assigned[1] and not assigned[0] & assigned[1], assigned
    assert assigned[0] | assigned[1] == {0, 1, 2}, assigned
    print("group split", sorted(assigned[0]), sorted(assigned[1]))


async def a_new_member_resumes():
    p = AIOKafkaProducer(bootstrap_servers=broker)
    await p.start()
    try:
        for i in range(30):
            await p.send(topic, value=b"later-%d" % i)
    finally:
        await p.stop()
    c = AIOKafkaConsumer(topic, bootstrap_servers=broker, group_id="aio",
                         auto_offset_reset="earliest", enable_auto_commit=False)
    await c.start()
    got = []
    try:
        deadline = time.time() + 30
        while len(got) < 30 and time.time() < deadline:
            for records in (await c.getmany(timeout_ms=200)).values():
                got.extend(r.value for r in records)
        committed = {tp.partition: await c.committed(tp) for tp in PARTITIONS}
    finally:
        await c.stop()
    assert sorted(got) == sorted(b"later-%d" % i for i in range(30)), (len(got), got[:3])
    assert all(o is not None and o > 0 for o in committed.values()), committed
    print("resumed", len(got))


async def offsets_and_deleted_records(admin):
    c = AIOKafkaConsumer(bootstrap_servers=broker)
    await c.start()
    try:
        begin = await c.beginning_offsets(PARTITIONS)
        end = await c.end_offsets(PARTITIONS)
        assert all(begin[tp] == 0 for tp in PARTITIONS), begin
        total = sum(end.values())
        assert total == len(CODECS) * PER_CODEC + 50 + 30, end
        hour_ago = int(time.time() * 1000) - 3600_000
        found = await c.offsets_for_times({tp: hour_ago for tp in PARTITIONS})
        assert all(found[tp].offset == 0 for tp in PARTITIONS), found
        future = await c.offsets_for_times({PARTITIONS[0]: hour_ago * 2})
        assert future[PARTITIONS[0]] is None, future
        await admin.delete_records({PARTITIONS[0]: RecordsToDelete(before_offset=10)})
        assert (await c.beginning_offsets([PARTITIONS[0]]))[PARTITIONS[0]] == 10
    finally:
        await c.stop()
    p = AIOKafkaProducer(bootstrap_servers=broker)
    await p.start()
    try:
        md = await p.send_and_wait(topic, b"after-delete", partition=0)
        assert md.log_start_offset == 10, md
    finally:
        await p.stop()
    print("offsets", end)


async def transactions_commit_and_abort():
    t = topic + "-txn"
    p = AIOKafkaProducer(bootstrap_servers=broker, transactional_id="aio-" + topic)
    await p.start()
    try:
        async with p.transaction():
            for i in range(5):
                await p.send(t, b"kept%d" % i, partition=0)
        try:
            async with p.transaction():
                for i in range(5):
                    await p.send(t, b"dropped%d" % i, partition=0)
                raise RuntimeError("abort")
        except RuntimeError:
            pass
        async with p.transaction():
            await p.send(t, b"last", partition=0)
    finally:
        await p.stop()
    c = AIOKafkaConsumer(
        t,
        bootstrap_servers=broker,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await c.start()
    got = []
    try:
        deadline = time.time() + 20
        while len(got) < 6 and time.time() < deadline:
            batches = await c.getmany(timeout_ms=500)
            for records in batches.values():
                got.extend(r.value.decode() for r in records)
    finally:
        await c.stop()
    assert got == ["kept%d" % i for i in range(5)] + ["last"], got
    print("transactions: read_committed read", len(got))


async def main():
    admin = AIOKafkaAdminClient(bootstrap_servers=broker)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        await configs_are_replaced(admin)
        sent = await produce_every_codec()
        await group_of_two_splits_and_commits(sent)
        await a_new_member_resumes()
        await offsets_and_deleted_records(admin)
        await transactions_commit_and_abort()
    finally:
        await admin.close()
    print("aiokafka ok")


asyncio.run(main())
