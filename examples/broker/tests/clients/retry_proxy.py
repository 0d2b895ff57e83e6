"""A TCP proxy in front of a Kafka broker that loses produce responses.

It forwards every request and response, and every `every`-th produce
response it drops and closes both sides of that connection instead, up to
`limit` times: the broker has appended the batch but the client never
hears so, and must retry it (and every other request in flight) on a new
connection. A broker without idempotent-producer state appends each retry
again; with it, the retry gets its original offsets.

The broker must advertise the proxy's address (`--advertise`), or clients
would bypass it after their first metadata request.
"""
import socket
import struct
import threading

PRODUCE = 0


def _read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _read_frame(sock):
    size = _read_exact(sock, 4)
    if size is None:
        return None
    body = _read_exact(sock, struct.unpack(">i", size)[0])
    return None if body is None else size + body


class RetryProxy:
    def __init__(self, port, upstream, every=4, limit=6):
        host, up_port = upstream.rsplit(":", 1)
        self.upstream = (host, int(up_port))
        self.every, self.limit = every, limit
        self.produce_responses = 0
        self.dropped = 0
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.server.accept()
            broker = socket.create_connection(self.upstream)
            pending = {}
            threading.Thread(target=self._requests, args=(client, broker, pending),
                             daemon=True).start()
            threading.Thread(target=self._responses, args=(client, broker, pending),
                             daemon=True).start()

    @staticmethod
    def _close(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _requests(self, client, broker, pending):
        try:
            while True:
                frame = _read_frame(client)
                if frame is None:
                    break
                api_key, _, corr = struct.unpack(">hhi", frame[4:12])
                pending[corr] = api_key
                broker.sendall(frame)
        except OSError:
            pass
        self._close(client, broker)

    def _responses(self, client, broker, pending):
        try:
            while True:
                frame = _read_frame(broker)
                if frame is None:
                    break
                corr = struct.unpack(">i", frame[4:8])[0]
                if pending.pop(corr, None) == PRODUCE:
                    with self.lock:
                        self.produce_responses += 1
                        drop = (self.dropped < self.limit
                                and self.produce_responses % self.every == 0)
                        if drop:
                            self.dropped += 1
                    if drop:
                        break
                client.sendall(frame)
        except OSError:
            pass
        self._close(client, broker)
