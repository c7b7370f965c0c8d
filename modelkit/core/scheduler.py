"""The parallel build loop: targets whose prerequisites are done run at once, as the machine allows.

One thread (the caller's) decides everything: which targets are ready, which fit the machine now
(:class:`~modelkit.core.resources.Pool`), what a result means for the rest. Worker threads only
*check* a target (its status: hashing inputs, reading state) and *run* it (the engine's
``_run``: execute into temporary names, digest, rename, record). So a target's key is computed
only after every dependency's outputs are recorded, outputs are still renamed into place before
their record is written, and the state store is written from workers under its own lock.

Checks need no resources and run beside the steps (at most ``CHECKS`` at once), so hashing a
big input never stops an unrelated step from starting. With ``jobs == 1`` steps run in graph
order, one at a time, exactly as a sequential build.

A failure stops new work from starting; steps already running finish and are recorded (their
outputs are correct). With ``keep_going`` only what depends on the failure is skipped. An
interrupt (Ctrl-C) stops every running tool (:func:`~modelkit.core.process.stop_all`), waits for
the workers to clean up their temporaries, and is raised again: nothing half-written is renamed
into place or recorded.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from modelkit.core import process
from modelkit.core.graph import Graph, Target
from modelkit.core.resources import Grant, Machine, Pool
from modelkit.core.results import BuildResult, Status
from modelkit.errors import DeferredError, ModelkitError


class Engine(Protocol):
    """What the scheduler asks of the engine (:class:`modelkit.core.engine.Engine`): the engine
    decides what a target needs, the scheduler when it runs and beside what."""

    reporter: Any
    graph: Graph

    def status(self, target: Target, pending: set[str], forced: bool = False,
               predicted: dict[str, list[str]] | None = None) -> Status: ...
    def restorable(self, status: Status) -> bool: ...
    def promise(self, target: Target, status: Status) -> list[str] | None: ...
    def run_step(self, target: Target, status: Status, grant: Grant | None = None,
                 cancelled: threading.Event | None = None) -> bool: ...
    def remove_intermediate(self, target: Target) -> bool: ...

CHECKS = 4
STOP_GRACE_S = 10.0


@dataclass
class _Checked:
    """A check's verdict: fresh, to run (with its status), or deferred (with why); ``promised``:
    its outputs' digests when it may not need to run at all; ``needs``: the put-off targets it
    reads, which must run first because it cannot be restored."""

    fresh: bool
    status: Status | None = None
    deferred: DeferredError | None = None
    promised: list[str] | None = None
    needs: list[str] = field(default_factory=list)


class Build:
    """One build of ``targets`` (a closure, in graph order) by ``engine``."""

    def __init__(self, engine: Engine, targets: list[Target], result: BuildResult, *, force: set[str],
                 keep_going: bool, jobs: int, machine: Machine, wanted: set[str] | None = None) -> None:
        self.engine, self.result, self.force, self.keep_going = engine, result, force, keep_going
        self.jobs = max(1, jobs)
        self.pool = Pool(machine)
        self.order = {t.name: i for i, t in enumerate(targets)}
        self.unchecked = list(targets)
        self.ok: set[str] = set()
        self.blocked: set[str] = set()
        self.queued: list[tuple[Target, Status]] = []
        self.checking: dict[Future[_Checked], Target] = {}
        self.running: dict[Future[bool], tuple[Target, Grant]] = {}
        self.stopping = False
        self.cancelled = threading.Event()
        self.put_off: dict[str, tuple[Target, Status]] = {}
        self.predicted: dict[str, list[str]] = {}
        self.wanted: set[str] = set(wanted or ())
        """Removed intermediates a target that must run reads: made again (or restored) first."""

    def run(self) -> BuildResult:
        with ThreadPoolExecutor(self.jobs + CHECKS, thread_name_prefix="modelkit-step") as workers:
            try:
                while True:
                    if not self.stopping:
                        self._start_checks(workers)
                        self._start_runs(workers)
                    futures: set[Future[Any]] = set(self.checking) | set(self.running)
                    if not futures:
                        assert self.stopping or not self.queued, f"never admitted: {self.queued[0][0].name}"
                        break
                    done, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in sorted(done, key=self._position):
                        self._finish(future)
            except BaseException:
                self._cancel(workers)
                raise
        for name, (_, status) in self.put_off.items():
            (self.result.removed if status.state == "removed" else self.result.unneeded).append(name)
        return self.result

    def _position(self, future: Future[Any]) -> int:
        target = self.checking.get(future) or self.running[future][0]
        return self.order[target.name]

    def _start_checks(self, workers: ThreadPoolExecutor) -> None:
        """Check each target whose prerequisites are all done; skip those behind a failure."""
        waiting = []
        for target in self.unchecked:
            if any(d in self.blocked for d in target.prerequisites):
                self.blocked.add(target.name)
                self.result.skipped.append(target.name)
            elif len(self.checking) < CHECKS and all(d in self.ok for d in target.prerequisites):
                self.checking[workers.submit(self._check, target)] = target
            else:
                waiting.append(target)
        self.unchecked = waiting

    def _check(self, target: Target) -> _Checked:
        """In a worker: whether ``target`` is fresh, must run, or cannot run now."""
        status = self.engine.status(target, set(), forced=target.name in self.force, predicted=self.predicted)
        if status.fresh:
            return _Checked(True)
        if status.state == "removed" and target.name in self.wanted:
            status = Status(target.name, "stale", "intermediate, needed again", status.key, status.record)
        target.action.precheck()
        reads = [d for d in target.deps if d in self.put_off]
        runs = status.state != "removed"  # a removed intermediate needs nothing until it is wanted
        needs = reads if runs and reads and not self.engine.restorable(status) else []
        return _Checked(False, status, target.action.blocked(), self.engine.promise(target, status), needs)

    def _start_runs(self, workers: ThreadPoolExecutor) -> None:
        """Start queued targets, earliest first, while a job slot is free and the machine has room."""
        self.queued.sort(key=lambda item: self.order[item[0].name])
        for item in list(self.queued):
            if len(self.running) >= self.jobs:
                return
            target, status = item
            if self.jobs == 1 and not self._first_in_order(target):
                return
            grant = self.pool.take(target.action.demand())
            if grant is None:  # never while nothing runs: an idle machine grants every demand
                if self.jobs == 1:
                    return
                continue
            self.queued.remove(item)
            self.running[workers.submit(self._execute, target, status, grant)] = (target, grant)

    def _first_in_order(self, target: Target) -> bool:
        """Sequential builds keep graph order: no earlier target is still to be checked. (An
        earlier unchecked target's prerequisites are earlier still, so it is never waiting on
        ``target``: this cannot stall.)"""
        position = self.order[target.name]
        return all(self.order[t.name] > position for t in [*self.checking.values(), *self.unchecked])

    def _execute(self, target: Target, status: Status, grant: Grant) -> bool:
        return self.engine.run_step(target, status, grant, self.cancelled)

    def _finish(self, future: Future[Any]) -> None:
        """Take in one finished check or run."""
        if future in self.checking:
            target = self.checking.pop(future)
            try:
                checked: _Checked = future.result()
            except ModelkitError as e:
                self._failed(target, e)
                return
            if checked.fresh:
                self.engine.reporter.fresh(target)
                self.result.fresh.append(target.name)
                self.ok.add(target.name)
                self._remove_what_was_read(target)
            elif checked.deferred is not None:
                self.result.deferred.append((target.name, checked.deferred))
                self.blocked.add(target.name)
            elif checked.needs:
                self._bring_back(checked.needs, target)
            elif checked.promised is not None:
                self._put_off(target, checked)
            else:
                assert checked.status is not None
                self.queued.append((target, checked.status))
            return
        target, grant = self.running.pop(future)
        self.pool.give(grant)
        try:
            changed = future.result()
        except ModelkitError as e:
            self._failed(target, e)
            return
        self.ok.add(target.name)
        self.result.ran.append(target.name)
        if not changed:
            self.result.unchanged.append(target.name)
        self._remove_what_was_read(target)

    def _remove_what_was_read(self, target: Target) -> None:
        """Remove the intermediates ``target`` read once every target reading them is up to date
        in this build (one reader outside it, or failed, keeps them)."""
        for name in target.deps:
            dep = self.engine.graph[name]
            if not dep.intermediate or name in self.put_off:
                continue
            readers_done = all(reader in self.ok for reader in self.engine.graph.readers(name))
            if readers_done and self.engine.remove_intermediate(dep):
                self.result.removed.append(name)

    def _put_off(self, target: Target, checked: _Checked) -> None:
        """Count a target with promised outputs as done for now: its dependents are checked with
        the promised digests, and it runs only if one of them cannot be restored."""
        assert checked.status is not None and checked.promised is not None
        self.put_off[target.name] = (target, checked.status)
        self.predicted[target.name] = checked.promised
        self.ok.add(target.name)

    def _bring_back(self, names: list[str], dependent: Target) -> None:
        """``dependent`` must run and reads put-off targets: run them (a removed intermediate is
        checked again, as wanted: it may read removed ones itself), then check it again."""
        again = []
        for name in names:
            if name in self.put_off:
                target, status = self.put_off.pop(name)
                del self.predicted[name]
                self.ok.discard(name)
                if status.state == "removed":
                    self.wanted.add(name)
                    again.append(target)
                else:
                    self.queued.append((target, status))
        self.unchecked[:0] = [*again, dependent]

    def _failed(self, target: Target, error: ModelkitError) -> None:
        self.engine.reporter.failed(target, error)
        self.blocked.add(target.name)
        if isinstance(error, DeferredError):
            self.result.deferred.append((target.name, error))
            return
        self.result.failed.append((target.name, error))
        if not self.keep_going:
            self.stopping = True

    def _cancel(self, workers: ThreadPoolExecutor) -> None:
        """Interrupted: start nothing more, stop every running tool, wait for the workers to clean up."""
        self.cancelled.set()
        workers.shutdown(wait=False, cancel_futures=True)
        process.stop_all()
        busy: set[Future[Any]] = set(self.running) | set(self.checking)
        _, still = wait(busy, timeout=STOP_GRACE_S)
        if still:
            import signal

            process.stop_all(signal.SIGKILL)
            wait(still)

