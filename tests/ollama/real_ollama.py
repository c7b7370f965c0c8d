"""The real Ollama for tests: found, started on a free loopback port with a model store of its own,
read back from its own log, stopped by its pid.

Where: ``../shared/ollama/ollama-path`` (Ollama 0.32.15, CPU, unpacked once into the user cache) or
an ``ollama`` on PATH. :func:`find_ollama` says why not when neither is there, for the skip.

What the tests read is the server's own account, never modelkit's: its request log (``[GIN] … |
POST "/api/create"``, one line per request), its ``template selection`` line per model loaded,
and — with ``tap`` — the prompt it sends its runner. For the tap, the server runs from a copy of
its install (the binary hard-linked, its libraries linked) whose ``llama-server`` is
``runner_tap.py`` in front of the real one. The server's ``HOME`` is the test's: Ollama writes its
key there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tcp_relay import Request, http_requests

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent.parent / "shared" / "ollama" / "ollama-path"
_GIN = re.compile(r'^\[GIN\] [^|]*\|\s*(\d{3})\s*\|[^|]*\|\s*(\S+)\s*\|\s*(GET|POST|HEAD|DELETE|PUT)\s+"([^"]+)"',
                  re.MULTILINE)
_SELECTION = re.compile(r'msg="template selection" model=(\S+) selected=(\S+)')


def find_ollama() -> tuple[Path | None, str]:
    """The real ``ollama`` binary, or None and why there is none."""
    if SHARED.is_file():
        try:
            out = subprocess.run([str(SHARED)], capture_output=True, text=True, timeout=300, check=True).stdout
            return Path(out.strip().splitlines()[-1]), ""
        except (OSError, subprocess.SubprocessError) as e:
            return None, f"{SHARED} did not give an ollama binary ({e})"
    found = shutil.which("ollama")
    if found:
        return Path(found), ""
    return None, f"no real Ollama: neither {SHARED} nor an `ollama` on PATH"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Logged:
    """One request in the server's log: status, client, method, path."""

    status: int
    method: str
    path: str


class RealOllama:
    """``ollama serve`` on 127.0.0.1:``port`` with models in ``root/models``; a context manager."""

    def __init__(self, exe: Path, root: Path, *, tap: bool = False, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.root, self.port = root, port or free_port()
        self.models, self.log_path, self.tap_dir = root / "models", root / "serve.log", root / "tap"
        self.exe = self._tapped_install(exe) if tap else exe
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment a client (modelkit, the ollama CLI) uses to reach this server."""
        return {**os.environ, "OLLAMA_HOST": self.host, "NO_PROXY": "127.0.0.1,localhost",
                "PATH": f"{self.exe.parent}{os.pathsep}{os.environ['PATH']}"}

    def __enter__(self) -> RealOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> RealOllama:
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        env = {**self.env(), "OLLAMA_HOST": f"127.0.0.1:{self.port}", "OLLAMA_MODELS": str(self.models),
               "HOME": str(self.root / "home"), "OLLAMA_KEEP_ALIVE": "1m", **self.extra_env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(self.exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ollama serve did not come up on {self.host}: see {self.log_path}")
            time.sleep(0.1)  # polling for the port, bounded by the deadline
        return self

    def stop(self) -> None:
        """Stop the server and the runners it started (its process group), by its pid."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.host}/api/version", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def api(self, path: str, body: dict[str, object] | None = None, timeout: float = 300) -> dict[str, object]:
        """One JSON request to the server (POST with ``body``, else GET)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.host}{path}", data=data, method="POST" if data else "GET",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return json.loads(r.read())

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """The real ``ollama`` CLI against this server."""
        return subprocess.run([str(self.exe), *args], env=self.env(), capture_output=True, text=True, timeout=timeout)

    # -- what the server says ------------------------------------------------------------------

    def mark(self) -> int:
        """Where the log ends now: read what came after with ``since=``."""
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log(self, since: int = 0) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def requests(self, since: int = 0) -> list[Logged]:
        return [Logged(int(m[1]), m[3], m[4]) for m in _GIN.finditer(self.log(since))]

    def creates(self, since: int = 0) -> int:
        return sum(1 for r in self.requests(since) if (r.method, r.path) == ("POST", "/api/create"))

    def uploaded(self, since: int = 0) -> list[str]:
        """The digests of the blobs clients uploaded (``POST /api/blobs/sha256:…`` answered 201)."""
        return [r.path.rsplit("/", 1)[1] for r in self.requests(since)
                if r.method == "POST" and r.path.startswith("/api/blobs/") and r.status == 201]

    def selections(self, since: int = 0) -> dict[str, str]:
        """Model (``tiny-support:q8_0``) -> the engine Ollama chose to render it."""
        return {m[1].rsplit("/", 1)[-1]: m[2] for m in _SELECTION.finditer(self.log(since))}

    def runner_requests(self) -> list[tuple[int, Request]]:
        """Every completion the server asked of its runners, oldest first, with the runner's port:
        ``POST /completion`` (a prompt Ollama rendered: its Go TEMPLATE) or ``POST
        /v1/chat/completions`` (messages: native chat mode, the runner renders the GGUF's Jinja)."""
        found = []
        for path in sorted(self.tap_dir.glob("*.bin"), key=lambda p: p.stat().st_mtime_ns):
            port = int((self.tap_dir / f"{path.name.split('-')[0]}.port").read_text())
            found += [(port, r) for r in http_requests(path.read_bytes())
                      if r.method == "POST" and r.path in ("/completion", "/v1/chat/completions")]
        return found

    def runner_prompts(self, since: int = 0) -> list[str]:
        """The prompt of each completion after the first ``since`` (see :meth:`runner_requests`):
        the text Ollama sent, or the text its runner renders from the messages it sent (the same
        runner's ``/apply-template``, asked again with what Ollama sent: so ask while it is loaded)."""
        prompts = []
        for port, request in self.runner_requests()[since:]:
            if request.path == "/completion":
                prompt = json.loads(request.body)["prompt"]
                prompts.append(prompt if isinstance(prompt, str) else json.dumps(prompt))
            else:
                prompts.append(self._rendered_by_runner(port, request.body))
        return prompts

    @staticmethod
    def _rendered_by_runner(port: int, body: bytes) -> str:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/apply-template", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            return str(json.loads(r.read())["prompt"])

    def _tapped_install(self, exe: Path) -> Path:
        """A copy of the install around ``exe`` whose ``llama-server`` is the tap (see the module)."""
        real_lib = exe.resolve().parent.parent / "lib" / "ollama"
        install = self.root / "install"
        (install / "bin").mkdir(parents=True, exist_ok=True)
        lib = install / "lib" / "ollama"
        lib.mkdir(parents=True, exist_ok=True)
        copy = install / "bin" / "ollama"
        if not copy.exists():
            try:
                os.link(exe.resolve(), copy)  # a hard link: Ollama finds its libraries from its own path
            except OSError:
                shutil.copy2(exe.resolve(), copy)
        for item in real_lib.iterdir():
            if item.name != "llama-server" and not (lib / item.name).exists():
                (lib / item.name).symlink_to(item)
        tap = lib / "llama-server"
        tap.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{HERE / "runner_tap.py"}" '
                       f'"{real_lib / "llama-server"}" "{self.tap_dir}" "$@"\n')
        tap.chmod(0o755)
        return copy
