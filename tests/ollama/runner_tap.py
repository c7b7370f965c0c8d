"""Ollama's runner, tapped: started by Ollama as ``llama-server``, it runs the real one and records
what Ollama sends it.

Usage (from the ``llama-server`` script a tapped install puts beside Ollama, see
``real_ollama.py``): ``python runner_tap.py REAL_LLAMA_SERVER TAP_DIR ARGS...``. Without
``--port`` (Ollama asking for devices) it becomes the real binary. With one, the real server gets
another free port and a :class:`~tcp_relay.Relay` listens on Ollama's, writing each connection's
client bytes to ``TAP_DIR/<pid>-<n>.bin`` (and Ollama's port to ``TAP_DIR/<pid>.port``); the real
server is killed with the tap (its parent death signal), as Ollama kills its runner. Nothing
that passes is changed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tcp_relay import Relay

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str]) -> int:
    real, tap, args = argv[0], Path(argv[1]), argv[2:]
    if "--port" not in args:
        os.execv(real, [real, *args])
    at = args.index("--port") + 1
    port, backend = int(args[at]), _free_port()
    args[at] = str(backend)
    server = subprocess.Popen([real, *args], preexec_fn=_die_with_parent)
    tap.mkdir(parents=True, exist_ok=True)
    (tap / f"{os.getpid()}.port").write_text(str(port))

    def record(number: int, data: bytes) -> None:
        with open(tap / f"{os.getpid()}-{number}.bin", "ab") as f:
            f.write(data)

    relay = Relay(backend, record, listen=port)
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    code = server.wait()
    relay.close()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
