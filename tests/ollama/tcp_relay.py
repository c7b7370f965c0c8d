"""A TCP relay on loopback that hands every byte a client sends to a callback on its way to the server.

Two uses in the real-Ollama tests, neither changing what goes through: the runner tap (between
Ollama and its llama-server, to read the prompt Ollama sends) and an Ollama that goes away in the
middle of a build (the callback says stop, and the relay closes every connection and its port,
as a server that was killed does). :func:`http_requests` reads the recorded client bytes back as
HTTP/1.1 requests.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass


class Stop(Exception):
    """Raised by a relay's callback: close everything now, as a server that died."""


@dataclass
class Relay:
    """Listen on ``listen`` (0: any free port) and relay each connection to ``backend`` (a port on
    127.0.0.1); ``seen(connection_number, data)`` gets what each client sends, first."""

    backend: int
    seen: Callable[[int, bytes], None]
    listen: int = 0
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.listen))
        self.port = self._server.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._count = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop listening and cut every connection."""
        self.stopped.set()
        with self._lock:
            sockets, self._open = [self._server, *self._open], []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            with self._lock:
                self._count += 1
                number = self._count
            threading.Thread(target=self._serve, args=(client, number), daemon=True).start()

    def _serve(self, client: socket.socket, number: int) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.backend), timeout=self.connect_timeout)
        except OSError:  # the server is not up yet: as if nothing listened
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._open += [client, upstream]
        threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()
        self._pump(client, upstream, number)

    def _pump(self, source: socket.socket, sink: socket.socket, number: int | None) -> None:
        try:
            while data := source.recv(65536):
                if number is not None:
                    self.seen(number, data)
                sink.sendall(data)
        except Stop:
            self.close()
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes


def http_requests(stream: bytes) -> list[Request]:
    """The HTTP/1.1 requests in what one client sent on one connection (bodies by Content-Length
    or chunked, as Go's client sends them)."""
    requests = []
    while stream:
        head, sep, rest = stream.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        method, path = lines[0].split(" ")[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    rest = rest.partition(b"\r\n")[2]
                    break
                body, rest = body + rest[:size], rest[size + 2:]
        else:
            length = int(headers.get("content-length", "0"))
            body, rest = rest[:length], rest[length:]
        requests.append(Request(method, path, body))
        stream = rest
    return requests
