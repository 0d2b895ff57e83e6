"""What the group tests share (imported by consumer_protocol.py and
group_migration.py): how often each value was read, polling several
members in turn, and which partitions a member owns."""
import time


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

    def twice(self):
        """Up to five values read more than once."""
        return sorted(v for v, n in self.seen.items() if n > 1)[:5]
