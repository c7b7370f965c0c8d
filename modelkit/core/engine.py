"""The make-like engine: decide what is stale, by content, and rebuild only that.

A target's **action key** is the sha256 of a canonical record of its action's kind and
parameters, the toolchain fingerprint it depends on, the digests of the source files it reads
and the output digests of the targets it depends on. A target is fresh when the state holds a
record with the current key and its outputs still have the recorded digests.

Because a target's key depends on its dependencies' *output digests*, not their keys, a rebuilt
dependency that produces the same bytes leaves its dependents fresh (early cutoff).

Outputs are written to temporary names beside their final place and renamed into place only
when the action succeeded; the state record is written after the rename. An interrupted build
therefore leaves either the previous good artifact or nothing a later build could take for fresh.

Targets whose prerequisites are done run at once (``jobs``), each when the machine has room for
what its action demands; :mod:`modelkit.core.scheduler` holds that loop, and every promise above
holds there too: a key is computed only from recorded dependency outputs.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from modelkit.core.action import StepContext
from modelkit.core.artifact_cache import ArtifactCache
from modelkit.core.executor import Executor, Job, LocalExecutor, NoTools, Tools
from modelkit.core.graph import Graph, Target
from modelkit.core.hashing import FreeDigest, Hasher
from modelkit.core.records import MISSING, changes, record_key, short, short_digest
from modelkit.core.remote_cache import RemoteCache
from modelkit.core.resources import Grant, Machine, default_jobs
from modelkit.core.results import BuildResult as BuildResult
from modelkit.core.results import Pin as Pin
from modelkit.core.results import Status as Status
from modelkit.core.scheduler import Build
from modelkit.core.state import State, TargetRecord
from modelkit.core.units import human_size
from modelkit.errors import ModelkitError, StepError, UserError

TMP_MARK = ".modelkit-tmp-"


class Reporter(Protocol):
    """What the engine tells the user while it works (the CLI draws it with rich)."""

    def hashing(self, target: Target, done: int, total: int) -> None: ...
    def fresh(self, target: Target) -> None: ...
    def start(self, target: Target, reason: str) -> None: ...
    def progress(self, target: Target, fraction: float | None, text: str) -> None: ...
    def note(self, target: Target, text: str) -> None: ...
    def done(self, target: Target, seconds: float, changed: bool) -> None: ...
    def failed(self, target: Target, error: ModelkitError) -> None: ...


class QuietReporter:
    """A reporter that says nothing (tests, the Python API)."""

    def hashing(self, target: Target, done: int, total: int) -> None: pass
    def fresh(self, target: Target) -> None: pass
    def start(self, target: Target, reason: str) -> None: pass
    def progress(self, target: Target, fraction: float | None, text: str) -> None: pass
    def note(self, target: Target, text: str) -> None: pass
    def done(self, target: Target, seconds: float, changed: bool) -> None: pass
    def failed(self, target: Target, error: ModelkitError) -> None: pass


class Engine:
    """Plans and runs builds of a :class:`Graph` for one project."""

    def __init__(self, graph: Graph, root: Path, state: State, *, tools: Tools | None = None,
                 reporter: Reporter | None = None,
                 logs: Path | None = None, cache: bool = True, free_digest: FreeDigest | None = None,
                 remote: RemoteCache | None = None, jobs: int | None = None, machine: Machine | None = None,
                 pinned: Mapping[str, Pin] | None = None, locked: bool = False,
                 executor: Executor | None = None, remove_intermediates: bool = False,
                 disk_hint: Callable[[], str] | None = None) -> None:
        """``tools``: the toolchain steps that name a tool run (its fingerprint is part of their
        key; default: none). ``free_digest``: digests known without reading files (see :class:`Hasher`); ``remote``:
        a shared cache asked after the local one, and given what this machine built; ``jobs``:
        steps at once (default: :func:`default_jobs`); ``machine``: what they share (default: this one).

        Actions that are not :attr:`~Action.reproducible` have ``tools.platform()`` in their key (what
        decides their bytes here: "cpu", "cuda"). ``pinned`` gives, per target, the platform the
        lock's bytes came from and their key: when that is another platform, the target is
        restored from a cache under that platform's key if one holds it, else computed here; with
        ``locked``, never computed here (a :class:`UserError` says so, at the plan when the
        lock's key is nowhere). ``executor``: where steps run (default: here, see
        :mod:`modelkit.core.executor`); steps it does not take run here.

        ``remove_intermediates``: remove an intermediate target's outputs (and its artifact cache
        entry) once every target that reads them is up to date (see :class:`Target`); an
        intermediate removed before is made again when needed either way. ``disk_hint``: what would
        free space, said when a step's outputs cannot fit (see :meth:`Action.output_bytes`)."""
        self.graph = graph
        self.root = root
        self.state = state
        self.hasher = Hasher(state, free_digest=free_digest)
        self.cache = ArtifactCache(state.directory / "cache", self.hasher) if cache else None
        self.tools: Tools = tools or NoTools()
        self.reporter = reporter or QuietReporter()
        self.logs = logs or state.directory / "logs"
        self.remote = remote
        self.jobs = jobs
        self.machine = machine
        self.pinned = dict(pinned or {})
        self.locked = locked
        self.local = LocalExecutor()
        self.executor = executor or self.local
        self.remove_intermediates = remove_intermediates
        self.disk_hint = disk_hint or (lambda: "free some space")
        self._dropped: list[str] = []

    # -- planning ------------------------------------------------------------------------------

    def status(self, target: Target, pending: set[str], forced: bool = False,
               predicted: dict[str, list[str]] | None = None) -> Status:
        """Why ``target`` must run, or that it need not. ``pending``: targets that will run first;
        ``predicted``: output digests of those that will be restored from the remote."""
        action = target.action
        old = self.state.target(target.name)
        waiting = [d for d in target.deps if d in pending and d not in (predicted or {})]
        record = self._record(target, with_deps=not waiting, predicted=predicted)
        if waiting:
            own_change = _first_difference(old.record if old else None, record, deps=False, tools=self.tools)
            if old is None or own_change:
                return Status(target.name, "stale", own_change or "never built")
            return Status(target.name, "pending", f"runs if {waiting[0]} changes its output")
        key = record_key(record)
        if forced:
            return Status(target.name, "stale", "forced", key, record)
        if old is None:
            return Status(target.name, "stale", "never built", key, record)
        if old.key != key:
            reason = _first_difference(old.record, record, deps=True, tools=self.tools) or "action key changed"
            return Status(target.name, "stale", reason, key, record)
        problem = self._output_problem(old)
        if problem and target.intermediate and self._all_missing(old):
            return Status(target.name, "removed", "intermediate (removed)", key, record)
        if problem:
            return Status(target.name, "stale", problem, key, record)
        external = action.external_staleness(self.hasher.digest)
        if external:
            return Status(target.name, "stale", external, key, record)
        return Status(target.name, "fresh", "up to date", key, record)

    def plan(self, names: Iterable[str] | None = None, force: Iterable[str] = ()) -> list[Status]:
        """The status of every target needed for ``names`` (default: all), in build order."""
        force = set(force)
        pending: set[str] = set()
        predicted: dict[str, list[str]] = {}
        out = []
        for target in self.graph.closure(names):
            status = self.status(target, pending, forced=target.name in force, predicted=predicted)
            if status.state == "removed":  # its recorded digests stand for it
                predicted[target.name] = self.promise(target, status) or []
            elif not status.fresh:
                pending.add(target.name)
                status = self._remote_plan(target, status, predicted)
                promised = self.promise(target, status)
                if promised is not None:
                    predicted[target.name] = promised
                    status = Status(status.name, status.state, f"{status.reason}; runs only if a target that "
                                    "reads it is not restored", status.key, status.record)
            out.append(status)
        return out

    def promise(self, target: Target, status: Status) -> list[str] | None:
        """The output digests (as a dependency's record lists them) of a stale target whose
        outputs are promised, when a remote cache may make running it unnecessary, or of a
        removed intermediate (those it recorded); else None."""
        if status.state == "removed":
            old = self.state.target(target.name)
            return [digest for _, digest in sorted(old.outputs.items())] if old else None
        promised = target.action.promised_outputs() if self.remote is not None else None
        if promised is None or status.reason == "forced" or set(promised) != set(target.action.outputs()):
            return None
        return [promised[path] for path in sorted(promised, key=self._rel)]

    def restorable(self, status: Status) -> bool:
        """Whether a stale target's outputs can be restored (local cache or remote) instead of run."""
        return status.key is not None and status.reason != "forced" and self._holds(status.key)

    def _holds(self, key: str) -> bool:
        """Whether the local cache or the remote holds outputs for ``key``."""
        if self.cache is not None and self.cache.has(key):
            return True
        return self.remote is not None and self.remote.lookup(key) is not None

    def _remote_plan(self, target: Target, status: Status, predicted: dict[str, list[str]]) -> Status:
        """``status``, saying "restore from remote" when the remote holds its key; the outputs'
        digests go to ``predicted``, so that its dependents' keys can be looked up too."""
        action = target.action
        if self.remote is None or status.key is None or status.state != "stale" or status.reason == "forced" \
                or not (action.atomic and action.cacheable):
            return status
        if self.cache is not None and self.cache.has(status.key):
            return status
        entries = self.remote.lookup(status.key)
        by_name = {e.name: e.digest for e in entries or []}
        outputs = {self._rel(p): by_name.get(p.name) for p in action.outputs()}
        if entries is None or len(entries) != len(outputs) or None in outputs.values():
            return status
        predicted[target.name] = [str(digest) for _, digest in sorted(outputs.items())]
        return Status(status.name, status.state, f"restore from remote ({status.reason})", status.key, status.record)

    # -- building ------------------------------------------------------------------------------

    def build(self, names: Iterable[str] | None = None, force: Iterable[str] = (),
              keep_going: bool = False, jobs: int | None = None) -> BuildResult:
        """Bring the targets needed for ``names`` up to date; return what ran. ``jobs``: how many
        steps may run at once (default: one per core, at least two), each only when the machine
        has room for what its action demands (see :mod:`modelkit.core.scheduler`). A removed
        intermediate named in ``names`` is made again, as make makes an intermediate it is asked for."""
        names = list(names) if names is not None else None
        targets = self.graph.closure(names)
        if self.locked:  # what the lock pins from another platform must be somewhere, before anything runs
            for target in targets:
                if not target.action.reproducible:
                    self._platform_for(target, {})
        self._clean_temporaries(targets)
        machine = self.machine or self.executor.machine()
        build = Build(self, targets, BuildResult(), force=set(force), keep_going=keep_going,
                      wanted={self.graph.resolve(n) for n in names or ()},
                      jobs=jobs or self.jobs or default_jobs(machine), machine=machine)
        return build.run()

    def run_step(self, target: Target, status: Status, grant: Grant | None = None,
             cancelled: threading.Event | None = None) -> bool:
        """Run one action (or restore its outputs from the artifact cache); return whether its
        outputs' bytes changed. ``grant``: the cores it may use; ``cancelled``: set when the build
        was interrupted, so that nothing finished after that is put in place."""
        action = target.action
        self.reporter.start(target, status.reason)
        started = time.monotonic()
        outputs = action.outputs()
        log = self._start_log(target, status.reason)
        tmp = {out: out.with_name(f".{out.name}{TMP_MARK}{os.getpid()}") if action.atomic else out for out in outputs}
        record = status.record or self._record(target, with_deps=True)
        key = record_key(record)
        try:
            for out in outputs:
                out.parent.mkdir(parents=True, exist_ok=True)
            digests = self._restore(target, key, tmp, status.reason)
            if digests is None:
                self._check_room(target, outputs)
                digests = self._execute(target, key, record, tmp, log, grant.threads if grant else 1, cancelled)
            if cancelled is not None and cancelled.is_set():
                raise StepError(f"{action.describe()}: interrupted", log)
            final = self._put_in_place(action.atomic, key, tmp, digests)
        except OSError as e:
            problem = "a file is in the way of a folder" if isinstance(e, (FileExistsError, NotADirectoryError)) \
                else (e.strerror or str(e))
            raise UserError(f"{target.name}: cannot write {e.filename or 'its outputs'}: {problem}") from None
        finally:
            if action.atomic:
                for path in tmp.values():
                    try:
                        path.unlink(missing_ok=True)
                    except OSError:
                        pass
        recorded = {self._rel(out): final[out] for out in outputs}
        old = self.state.target(target.name)
        self.state.set_target(target.name, key, record, recorded)
        changed = old is None or old.outputs != recorded
        self.reporter.done(target, time.monotonic() - started, changed)
        return changed

    def _check_room(self, target: Target, outputs: list[Path]) -> None:
        """Refuse, before it starts, a step whose outputs cannot fit in their folder's free space
        (and a margin): it would fill the disk after minutes of work, and other programs with it."""
        need = target.action.output_bytes()
        if not need or not outputs:
            return
        folder = outputs[0].parent
        free = shutil.disk_usage(folder).free
        margin = max(need // 20, 64 << 20)
        if free < need + margin:
            raise UserError(f"{target.name}: {target.action.describe()} writes about {human_size(need)} to "
                            f"{self._rel(folder)}/, and {human_size(free)} is free there (it needs "
                            f"{human_size(need + margin)} with a margin): {self.disk_hint()}")

    def remove_intermediate(self, target: Target) -> bool:
        """Remove an intermediate's outputs (every target reading them is up to date), and its
        artifact cache entry (after the build, while uploads may read it), when the engine removes
        intermediates. Its record stays: its digests stand for it. Whether anything was removed."""
        if not self.remove_intermediates:
            return False
        old = self.state.target(target.name)
        present = [self.root / rel for rel in (old.outputs if old else {}) if (self.root / rel).exists()]
        for path in present:
            path.unlink(missing_ok=True)
        if old is not None and self.cache is not None:
            if self.remote is not None and self.remote.pushing:
                self._dropped.append(old.key)
            else:
                self.cache.remove(old.key)
        return bool(present)

    def finish_removals(self) -> None:
        """Drop from the artifact cache the intermediates whose removal waited for the uploads."""
        if self.cache is not None:
            for key in self._dropped:
                self.cache.remove(key)
        self._dropped.clear()

    def _start_log(self, target: Target, reason: str) -> Path:
        log = self.logs / f"{_safe(target.name)}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"# {target.name}: {target.action.describe()}\n# why: {reason}\n")
        return log

    def _restore(self, target: Target, key: str, tmp: dict[Path, Path], reason: str) -> dict[Path, str] | None:
        """The outputs' digests if the artifact cache held them (now linked at their temporary names)."""
        action = target.action
        if self.cache is None or not (action.atomic and action.cacheable) or reason == "forced":
            return None
        restored = self.cache.restore(key, list(tmp), tmp)
        if restored is not None:
            self.reporter.progress(target, 1.0, "restored from the artifact cache")
        elif self.remote is not None:
            restored = self.remote.fetch(key, list(tmp), tmp, lambda f, text: self.reporter.progress(target, f, text))
            if restored is not None:
                self.reporter.note(target, f"restored from the remote cache {self.remote.url}")
                self.cache.store(key, {out: (tmp[out], restored[tmp[out]]) for out in tmp})
        return restored

    def _memo(self, name: str) -> bytes | None:
        """A step's small record: kept here (``.modelkit/memo/``), else by the remote cache."""
        local = self.state.directory / "memo" / name
        try:
            return local.read_bytes()
        except OSError:
            pass
        data = self.remote.recall(name) if self.remote is not None else None
        if data is not None:
            self._keep_here(local, data)
        return data

    def _keep(self, name: str, data: bytes) -> None:
        self._keep_here(self.state.directory / "memo" / name, data)
        if self.remote is not None:
            self.remote.remember(name, data)

    @staticmethod
    def _keep_here(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def _execute(self, target: Target, key: str, record: dict[str, Any], tmp: dict[Path, Path], log: Path,
                 threads: int, cancelled: threading.Event | None) -> dict[Path, str]:
        """Run the action (where the executor says) into its temporary names; digest the outputs
        and keep them in the cache, and in the remote unless the executor left them there."""
        action = target.action
        ctx = StepContext(name=target.name, log_path=log, toolchain_factory=self.tools.toolchain,
                          progress=lambda fraction, text: self.reporter.progress(target, fraction, text),
                          note=lambda text: self.reporter.note(target, text), tmp_paths=tmp, digest=self.hasher.digest,
                          threads=threads, memo=self._memo, keep=self._keep)
        executor = self.executor if self.executor.takes(action) else self.local
        job = Job(target, key, record, tmp, self._reads(target) if executor is not self.local else {}, ctx, cancelled)
        digests = executor.run(job, lambda paths: self.hasher.digests(paths, trusted=True))
        if self.cache and action.atomic and action.cacheable:
            stored = self.cache.store(key, {out: (tmp[out], digests[tmp[out]]) for out in tmp})
            if self.remote is not None and not executor.shares_outputs:
                # uploaded from the cache entry: it keeps its name while tmp is renamed
                held = self.cache.paths(key, list(tmp)) if stored else {out: tmp[out] for out in tmp}
                self.remote.push(key, {out: (held[out], digests[tmp[out]]) for out in tmp}, background=stored)
        return digests

    def _reads(self, target: Target) -> dict[Path, str]:
        """Every file ``target`` reads, with its digest: its inputs and its dependencies' outputs
        (what a step running on another machine must be given)."""
        inputs = list(target.action.inputs().values())
        reads = dict(self.hasher.digests(inputs))
        for dep in target.deps:
            rec = self.state.target(dep)
            for rel, digest in (rec.outputs if rec else {}).items():
                reads[self.root / rel] = digest
        return reads

    def _put_in_place(self, atomic: bool, key: str, tmp: dict[Path, Path], digests: dict[Path, str]) -> dict[Path, str]:
        """Rename the outputs into place; return their final digests, recorded in the stat cache."""
        if atomic:
            for out, path in tmp.items():
                os.replace(path, out)
        final = {out: digests[path] for out, path in tmp.items()}
        # Linking and renaming change ctime: record the stat of each file in its final place.
        for out, digest in final.items():
            self.hasher.record(out, digest)
        if self.cache and atomic:
            self.cache.record(key)
        return final

    def _clean_temporaries(self, targets: list[Target]) -> None:
        """Remove temporaries left by an interrupted build (the project lock says none is running)."""
        folders = {out.parent for t in targets if t.action.atomic for out in t.action.outputs()}
        for folder in folders:
            if folder.is_dir():
                for leftover in folder.glob(f"*{TMP_MARK}*"):
                    if leftover.is_dir() and not leftover.is_symlink():
                        shutil.rmtree(leftover, ignore_errors=True)  # a step's scratch folder
                    else:
                        leftover.unlink(missing_ok=True)

    # -- records -------------------------------------------------------------------------------

    def _record(self, target: Target, with_deps: bool,
                predicted: dict[str, list[str]] | None = None) -> dict[str, Any]:
        """The canonical record an action key is the hash of (``predicted``: see :meth:`status`)."""
        action = target.action
        inputs = action.inputs()
        try:
            digests = self.hasher.digests(inputs.values(), progress=self._hashing(target))
        except FileNotFoundError as e:
            name = next((n for n, p in inputs.items() if str(p) == e.filename), e.filename)
            raise UserError(f"{target.name}: input {name} is missing ({e.filename})") from None
        record: dict[str, Any] = {
            "kind": action.kind,
            "params": action.params(),
            "outputs": sorted(self._rel(p) for p in action.outputs()),
            "tool": self.tools.fingerprint(action.tool) if action.tool else None,
            "inputs": {name: digests[path] for name, path in sorted(inputs.items())},
        }
        if with_deps:
            # Digests only, not paths: a dependency's outputs may live outside the project (the
            # Hugging Face cache), and keys must not depend on where a machine keeps them.
            deps: dict[str, list[str] | None] = {}
            for dep in target.deps:
                rec = self.state.target(dep)
                if predicted and dep in predicted:
                    deps[dep] = predicted[dep]
                else:
                    deps[dep] = [digest for _, digest in sorted(rec.outputs.items())] if rec else None
            record["deps"] = deps
        if not action.reproducible:
            record["platform"] = self._platform_for(target, record)
        return record

    def _platform_for(self, target: Target, record: dict[str, Any]) -> str:
        """The platform in a machine-bound target's key: this machine's, or the one the lock pins
        when a cache holds its bytes (always, with ``locked``: those bytes or none)."""
        here, pin = self.tools.platform(), self.pinned.get(target.name)
        if pin is None or pin.platform == here:
            return here
        # Its key is known once its dependencies are; until then the lock's key stands for it.
        key = record_key({**record, "platform": pin.platform}) if "deps" in record else pin.key
        if self._holds(key):
            return pin.platform
        if self.locked:
            raise UserError(f"{target.name}: the lock pins bytes computed on {pin.platform} (key {short_digest(key)}), "
                            f"which this machine ({here}) computes differently, and no cache holds them: set the "
                            "remote cache the lock's builder pushed to ([cache] remote), or build without --locked")
        return here

    def _hashing(self, target: Target) -> Callable[[int, int], None]:
        """Progress for reading inputs the first time (a 16 GB model takes a while)."""
        return lambda done, total: self.reporter.hashing(target, done, total)

    def _all_missing(self, old: TargetRecord) -> bool:
        return bool(old.outputs) and not any((self.root / rel).exists() for rel in old.outputs)

    def _output_problem(self, old: TargetRecord) -> str | None:
        for rel, digest in old.outputs.items():
            path = self.root / rel
            if not path.is_file():
                return f"output missing: {rel}"
            if self.hasher.digest(path) != digest:
                return f"output modified: {rel}"
        return None

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def _first_difference(old: dict[str, Any] | None, new: dict[str, Any], deps: bool, tools: Tools) -> str | None:
    """The first reason, in the order a user cares about, that ``new`` differs from ``old``
    (``tools`` says what the toolchain is where the new record found none)."""
    if old is None:
        return None
    if old.get("kind") != new["kind"]:
        return f"action changed: {old.get('kind')} -> {new['kind']}"
    if old.get("tool") != new["tool"]:
        if new["tool"] is None:
            return f"toolchain not installed: {tools.describe()}"
        return f"toolchain changed: {_diff_keys(old.get('tool') or {}, new['tool'] or {})}"
    if old.get("platform") != new.get("platform"):
        return f"platform changed: {old.get('platform')} -> {new.get('platform')}"
    if old.get("params") != new["params"]:
        return f"params changed: {_diff_keys(old.get('params') or {}, new['params'])}"
    if old.get("outputs") != new["outputs"]:
        return "outputs renamed"
    if old.get("inputs") != new["inputs"]:
        before, after = old.get("inputs") or {}, new["inputs"]
        for name in sorted(set(before) | set(after)):
            if name not in before:
                return f"input added: {name}"
            if name not in after:
                return f"input removed: {name}"
            if before[name] != after[name]:
                return f"input changed: {name} ({short_digest(before[name])} -> {short_digest(after[name])})"
    if deps and old.get("deps") != new.get("deps"):
        before, after = old.get("deps") or {}, new.get("deps") or {}
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                return f"dependency changed: {name}"
    return None


def _diff_keys(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``a.b 1 -> 2, c "x" -> "y"``: the changed leaves of two nested records."""
    shown = [f"{c.path} {_show(c.before)} -> {_show(c.after)}" for c in changes(old, new)]
    return ", ".join(shown) or "(reordered)"


def _show(value: Any) -> str:
    if isinstance(value, str) and value.startswith("sha256:"):
        return short_digest(value)
    return short(None if value is MISSING else value, 40)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
