"""What kafka-python's fetchers log, kept for the fetch-session scripts
(fetch_sessions.py, fetch_session_eviction.py) to count what the broker
answered: sessions opened, incremental answers, session errors."""
import logging


class Lines(logging.Handler):
    """Keeps every message of the logger it is attached to."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    def count(self, text):
        return sum(text in line for line in self.lines)


def fetcher_lines():
    """Starts keeping kafka-python's fetcher log; the lines kept."""
    lines = Lines()
    log = logging.getLogger("kafka.consumer.fetcher")
    log.setLevel(logging.DEBUG)
    log.addHandler(lines)
    return lines
