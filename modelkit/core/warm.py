"""Python scripts started warm: forked from an interpreter that imported their heavy modules once.

A Python tool that imports torch and transformers spends most of a small run importing them (a
tiny model's conversion: 7 of 8.7 s). A build runs such a script once per checkpoint, adapter
and variant, so the first run starts a server (:mod:`modelkit.core.warm_server`) in the tool's
Python that imports them, and every run forks from it: the child is the script, as if started
fresh (its own session, argv, environment, folder and ``sys.path``), but with those modules
already loaded. Scripts that differ in environment get servers of their own (a library reads
some variables at import); a server exits when its client does, or after :data:`IDLE_SECONDS`
with nothing to run. ``MODELKIT_WARM=0`` starts every script cold. A handle here looks like a
``Popen`` to :mod:`modelkit.core.process`: ``pid``, ``stdout``, ``wait``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

IDLE_SECONDS = 60.0
"""How long a server waits for the next run before it exits (a build's runs come in bursts)."""
SWITCH = "MODELKIT_WARM"


@dataclass(frozen=True)
class Warm:
    """How a script starts warm: ``paths`` lead ``sys.path`` (the folders its own modules are in),
    ``preload`` are imported once (``module``, or ``module:attribute`` for a lazy package's part)."""

    paths: tuple[str, ...]
    preload: tuple[str, ...]


class WarmProcess:
    """A script running as a child of a warm server: waited for through the server."""

    def __init__(self, pid: int, stdout: IO[bytes], ended: Future[int]) -> None:
        self.pid = pid
        self.stdout = stdout
        self._ended = ended

    def wait(self, timeout: float | None = None) -> int:
        """Its exit status (negative: the signal that ended it), as ``Popen.wait``."""
        try:
            return self._ended.result(timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(str(self.pid), timeout or 0) from None


class _Server:
    """One server process and the thread that reads what it says."""

    def __init__(self, python: str, warm: Warm, env: dict[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        server = str(Path(__file__).with_name("warm_server.py"))  # the tool's Python may not have modelkit
        try:
            self.proc = subprocess.Popen(
                [python, server, str(theirs.fileno()), str(IDLE_SECONDS), *warm.paths, "--", *warm.preload],
                pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()
        self.sock = ours
        self.alive = True
        self._lock = threading.Lock()
        self._next_id = 0
        self._starting: dict[int, Future[int]] = {}
        self._ending: dict[int, Future[int]] = {}
        threading.Thread(target=self._listen, name="warm-server", daemon=True).start()

    def start(self, argv: Sequence[str], env: dict[str, str], cwd: Path | None) -> WarmProcess | None:
        """Run ``argv`` (a script and its arguments) in a fork; None if the server is gone."""
        read_end, write_end = os.pipe()
        started: Future[int] = Future()
        try:
            with self._lock:
                if not self.alive:
                    return None
                self._next_id += 1
                self._starting[self._next_id] = started
                request = {"id": self._next_id, "argv": list(argv), "env": env, "cwd": str(cwd) if cwd else None}
                socket.send_fds(self.sock, [json.dumps(request).encode()], [write_end])
        except OSError:  # the server died: the listener sees it end and cleans up
            self.proc.kill()
            with self._lock:
                _settle(started, -1)
        finally:
            os.close(write_end)
        pid = started.result()
        if pid < 0:
            os.close(read_end)
            return None
        with self._lock:
            ended = self._ending.setdefault(pid, Future())
        return WarmProcess(pid, os.fdopen(read_end, "rb"), ended)

    def _listen(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                return self._gone()
            message: dict[str, Any] = json.loads(data)
            with self._lock:
                if "id" in message:
                    if (started := self._starting.pop(message["id"], None)) is not None:
                        _settle(started, message["pid"])
                else:
                    _settle(self._ending.setdefault(message["pid"], Future()), message["status"])

    def _gone(self) -> None:
        """The server exited (idle, or killed): runs not started are retried on a new one; runs
        it can no longer report on count as killed."""
        with self._lock:
            self.alive = False
            for started in self._starting.values():
                _settle(started, -1)
            for ended in self._ending.values():
                _settle(ended, -signal.SIGKILL)
            self._starting.clear()
        self.sock.close()
        self.proc.wait()


def _settle(future: Future[int], value: int) -> None:
    if not future.done():
        future.set_result(value)


_SERVERS: dict[tuple[str, Warm, frozenset[tuple[str, str]]], _Server] = {}
_SERVERS_LOCK = threading.Lock()


def start(python: str, argv: Sequence[str], warm: Warm, env: dict[str, str] | None,
          cwd: Path | None) -> WarmProcess | None:
    """Start ``python argv`` warm; None when warm starts are off or no server could start (the
    caller then starts it cold, as always)."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    environment = dict(os.environ if env is None else env)
    key = (python, warm, frozenset(environment.items()))
    for _ in range(2):  # a server that exited idle as the request came is replaced once
        with _SERVERS_LOCK:
            server = _SERVERS.get(key)
            if server is None or not server.alive:
                try:
                    server = _SERVERS[key] = _Server(python, warm, environment)
                except OSError:
                    return None
        running = server.start(argv, environment, cwd)
        if running is not None:
            return running
    return None
