"""What runs on a cluster's worker for one step: inputs fetched by digest, the action run, outputs uploaded.

The action travels pickled with every absolute path moved under the worker's scratch folder
(``/work/p/build/x.gguf`` becomes ``<scratch>/root/work/p/build/x.gguf``): a step finds what it
reads where it expects it, beside what it expects, and nothing it did not declare (anything else
is simply not there). Tools are given names relative to the project (``steps.base.Recorded``), so
the bytes are the ones a local build makes. The outputs are uploaded under the action key as a
local build pushes them (blobs first, the manifest last), and the driver restores them as it
restores any remote-cache hit. This module imports no Ray: the driver wraps :func:`run_task`.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from modelkit.core.action import Action, StepContext
from modelkit.core.executor import Tools
from modelkit.core.hashing import sha256_file
from modelkit.core.remote_cache import RemoteCache
from modelkit.errors import ModelkitError, StepError, Unreachable, UserError

EVENTS_PER_SECOND = 4
_HERE = threading.local()


def _relocated(rel: str) -> Path:
    """Unpickling an absolute path on the worker: the same path under this task's scratch tree."""
    return Path(_HERE.root, rel)


class _Relocating(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, PurePath) and obj.is_absolute():
            return _relocated, (obj.as_posix().lstrip("/"),)
        return NotImplemented


def pack(action: Action) -> bytes:
    """``action`` pickled so that its absolute paths land under the worker's scratch tree."""
    buffer = io.BytesIO()
    _Relocating(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(action)
    return buffer.getvalue()


def relocate(path: str, root: Path) -> Path:
    return root / path.lstrip("/")


@dataclass(frozen=True)
class Task:
    """One step, as the driver sends it: paths are the driver's (absolute)."""

    name: str
    what: str
    action: bytes
    key: str
    reads: tuple[tuple[str, str, int], ...]
    """Every file the step reads: (path, digest, size)."""
    outputs: tuple[tuple[str, str], ...]
    """(output, temporary name) for each output."""
    remote: str
    threads: int
    tools: Tools
    tool: str | None = None
    fingerprint: dict[str, Any] | None = None
    platform: str | None = None
    version: str = ""
    events: Any = None
    """The driver's event sink (a Ray actor handle with ``put``), or None."""


@dataclass(frozen=True)
class Outcome:
    """What a worker says back: the outputs' digests (by the driver's output path), or an error
    (its family, "user", "unreachable" or "step", and its line); the step's log either way."""

    node: str
    digests: dict[str, str] = field(default_factory=dict)
    log: str = ""
    error: tuple[str, str] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    bytes_moved: int = 0


SCRATCH = "modelkit-step-"


def run_task(task: Task, node: str) -> Outcome:
    """Run ``task`` here, on the node named ``node``; never raises a :class:`ModelkitError`."""
    remove_orphans(Path(tempfile.gettempdir()))
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH}{os.getpid()}-"))
    root, log = scratch / "root", scratch / "step.log"
    log.write_text("")
    remote = RemoteCache(task.remote)
    say = _Events(task, node, root)
    seconds: dict[str, float] = {}
    try:
        with _timed(seconds, "fetch"):
            _check_tools(task, node, say)
            _fetch(task, remote, root, say)
        with _timed(seconds, "run"):
            digests = _run(task, remote, root, log, say)
        with _timed(seconds, "upload"):
            _upload(task, remote, root, digests)
        return Outcome(node, digests, log.read_text(errors="replace"), seconds=seconds,
                       bytes_moved=remote.bytes_down + remote.bytes_up)
    except ModelkitError as e:
        family = "user" if isinstance(e, UserError) else "unreachable" if isinstance(e, Unreachable) else "step"
        message = str(e).replace(str(root), "")
        return Outcome(node, log=log.read_text(errors="replace"), error=(family, message), seconds=seconds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def remove_orphans(folder: Path) -> None:
    """Remove the scratch folders of workers that died mid-step (killed: no ``finally`` ran),
    which name their process: a dead one's folder can only be garbage."""
    for path in folder.glob(f"{SCRATCH}*-*"):
        pid = path.name.removeprefix(SCRATCH).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


class _Events:
    """Progress lines sent to the driver, at most a few a second, each saying the node; paths in
    them as the driver knows them (without the scratch tree ``root``)."""

    def __init__(self, task: Task, node: str, root: Path) -> None:
        self.task, self.node, self.root, self.last = task, node, str(root), 0.0

    def __call__(self, fraction: float | None, text: str, *, always: bool = False) -> None:
        now = time.monotonic()
        if self.task.events is None or (not always and now - self.last < 1 / EVENTS_PER_SECOND):
            return
        self.last = now
        self.task.events.put.remote(self.task.name, False, fraction, f"on {self.node}: {text.replace(self.root, '')}")

    def note(self, text: str) -> None:
        """A line the user should keep (a step's warning), as the step said it."""
        if self.task.events is not None:
            self.task.events.put.remote(self.task.name, True, None, text.replace(self.root, ""))


@contextmanager
def _timed(seconds: dict[str, float], what: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        seconds[what] = time.monotonic() - started


def _check_tools(task: Task, node: str, say: _Events) -> None:
    """This node's modelkit and toolchain are the ones the step's key names (else other bytes)."""
    here = task.tools.version()
    if task.version != here:
        raise UserError(f"{task.name}: node {node} has modelkit {here}, the build runs {task.version}: "
                        "install the same version on every node")
    if task.tool is None:
        return
    task.tools.toolchain(lambda fraction, text: say(fraction, f"toolchain: {text}"))
    fingerprint = task.tools.fingerprint(task.tool)
    if fingerprint != task.fingerprint:
        raise UserError(f"{task.name}: node {node} has another toolchain ({task.tools.describe()}) than the "
                        f"build's key names ({fingerprint} vs {task.fingerprint}): install the same one on every node")
    if task.platform is not None and task.tools.platform() != task.platform:
        raise UserError(f"{task.name}: node {node} computes on {task.tools.platform()}, the build's key on "
                        f"{task.platform}: give the step a node with the same backend")


def _fetch(task: Task, remote: RemoteCache, root: Path, say: _Events) -> None:
    total = sum(size for _, _, size in task.reads)
    done = 0
    for path, digest, size in task.reads:
        dest = relocate(path, root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        say(done / total if total else None, f"fetching {dest.name}", always=done == 0)
        remote.take(digest, size, dest)
        done += size


def _run(task: Task, remote: RemoteCache, root: Path, log: Path, say: _Events) -> dict[str, str]:
    """Run the action under ``root``; the digests of its outputs, by the driver's output path."""
    _HERE.root = root
    action: Action = pickle.loads(task.action)
    tmp = {relocate(out, root): relocate(name, root) for out, name in task.outputs}
    for path in tmp:
        path.parent.mkdir(parents=True, exist_ok=True)
    ctx = StepContext(name=task.name, log_path=log, progress=say,
                      toolchain_factory=lambda: task.tools.toolchain(say),
                      note=say.note, tmp_paths=tmp, digest=sha256_file,
                      threads=task.threads, memo=remote.recall, keep=remote.remember)
    say(None, "running", always=True)
    action.run(ctx)
    digests = {}
    for out, name in task.outputs:
        made = relocate(name, root)
        if not made.is_file():
            raise StepError(f"{task.what}: finished without writing {Path(out).name}")
        digests[out] = sha256_file(made)
    return digests


def _upload(task: Task, remote: RemoteCache, root: Path, digests: dict[str, str]) -> None:
    """The outputs under the step's key, as a local build pushes them; checked, since a push
    that fails only says so."""
    said: list[str] = []
    remote.notify = said.append
    files = {relocate(out, root): (relocate(name, root), digests[out]) for out, name in task.outputs}
    remote.push(task.key, files, background=False)
    remote.finish()
    if remote.lookup(task.key) is None:
        raise Unreachable(f"{task.what}: its outputs could not be uploaded to the remote cache {task.remote} "
                          f"({'; '.join(said) or 'no manifest after the upload'})")
