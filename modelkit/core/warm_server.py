"""The warm interpreter's server: imports a script's heavy modules once, then forks a child per run.

Started by :mod:`modelkit.core.warm` in the tool's own Python (which may not have modelkit), so it
uses the standard library only. It talks over one ``AF_UNIX`` ``SOCK_SEQPACKET`` socket (fd in
argv): each request is one JSON message (argv, environment, folder) carrying the pipe its output
goes to; it answers ``{"id", "pid"}`` when the child runs and ``{"pid", "status"}`` when it ends.
It exits when the socket closes (its client is gone) or after ``idle`` seconds with nothing to do.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import runpy
import select
import signal
import socket
import sys
import traceback
from typing import Any

MAX_MESSAGE = 1 << 20


def main() -> None:
    """``python warm_server.py FD IDLE PATH... -- PRELOAD...``."""
    fd, idle, *rest = sys.argv[1:]
    split = rest.index("--")
    sys.path[0:1] = rest[:split]  # where the scripts' own modules are, as their folder would be
    for name in rest[split + 1:]:
        _preload(name)
    serve(socket.socket(fileno=int(fd)), float(idle))


def _preload(name: str) -> None:
    """Import ``module`` or ``module:attribute`` (a lazy package's heavy part); a failure only
    leaves it cold, for the child to import (and fail on) as the script would."""
    module, _, attribute = name.partition(":")
    try:
        loaded = importlib.import_module(module)
        if attribute:
            getattr(loaded, attribute)
    except Exception:  # noqa: BLE001 - any failure to preload leaves the child to import it itself
        pass


def serve(sock: socket.socket, idle: float) -> None:
    """Fork a child per request until the client is gone or nothing happened for ``idle`` s."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    running: set[int] = set()
    while True:
        ready, _, _ = select.select([sock.fileno(), wake_r], [], [], None if running else idle)
        if not ready:
            return
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(sock, running)
        if sock.fileno() in ready:
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 1)
            if not data:
                return
            request = json.loads(data)
            session_r, session_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.setsid()  # before anything else: the client stops the run by its session
                os.close(session_w)
                os.close(session_r)
                _child(request, fds[0], sock, (wake_r, wake_w))
            os.close(fds[0])
            os.close(session_w)
            os.read(session_r, 1)  # EOF once the child has its session (or has died)
            os.close(session_r)
            running.add(pid)
            _send(sock, {"id": request["id"], "pid": pid})


def _reap(sock: socket.socket, running: set[int]) -> None:
    for pid in list(running):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            running.discard(pid)
            _send(sock, {"pid": pid, "status": os.waitstatus_to_exitcode(status)})


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    try:
        sock.send(json.dumps(message).encode())
    except OSError:
        pass  # the client is gone; the next select sees it


def _child(request: dict[str, Any], out: int, sock: socket.socket, wake: tuple[int, int]) -> None:
    """Become the script (already in its own session, stopped as a group like a cold tool): its
    output to ``out``, its argv, environment and folder; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        for fd in (sock.fileno(), *wake):
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
        os.chdir(request["cwd"] or ".")
        os.environ.clear()
        os.environ.update(request["env"])
        script, *args = request["argv"]
        _name_process(script)
        sys.argv = [script, *args]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, io.TextIOWrapper):
                stream.reconfigure(line_buffering=True, write_through=True)  # as PYTHONUNBUFFERED would
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else _said(e.code))
    except BaseException:  # noqa: BLE001 - the script's own failure, printed as Python would
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
        os._exit(code)


def _said(message: object) -> int:
    print(message, file=sys.stderr)
    return 1


def _name_process(script: str) -> None:
    """Call the child by its script's name (as ``ps`` and ``pgrep`` show it), not the server's."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, os.path.basename(script).encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


if __name__ == "__main__":
    main()
