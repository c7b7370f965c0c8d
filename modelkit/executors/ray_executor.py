"""Steps run as Ray tasks on a cluster, their files exchanged through the remote cache by digest.

The engine still decides everything on the driver (keys, freshness, early cutoff, state, the
lock); this executor only decides where a step runs. For each step it uploads what the step reads
that the remote cache does not hold yet (sources too, once per content), submits one Ray task
whose resources are the step's :class:`~modelkit.core.resources.Demand` (``num_cpus``,
``num_gpus``, ``memory``), and waits; the task (:mod:`modelkit.executors.ray_worker`) fetches, runs and
uploads under the action key, and the engine then restores the outputs exactly as a remote-cache
hit: temporary name, digest check, rename, record.

Faults: a worker or node that dies mid-step is retried by Ray (``max_retries``), then the step
fails saying so; nothing is recorded or uploaded under a key unless the step finished. A demand
no node can meet fails at once (Ray would wait for such a node forever). Ctrl-C cancels the
running tasks. Steps that write outside the build (a download into the Hugging Face cache, a
registration with Ollama) run on this machine.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelkit.core.action import Action
from modelkit.core.executor import Executor, Job, Tools
from modelkit.core.remote_cache import RemoteCache
from modelkit.core.resources import ALL_CORES, Machine
from modelkit.core.units import human_size
from modelkit.errors import StepError, Unreachable, UserError
from modelkit.executors.ray_worker import Outcome, Task, pack, run_task

RETRIES = 2
"""Tries after the first when the worker or its node dies (Ray's ``max_retries``)."""
POLL_S = 0.25
CANCEL_GRACE_S = 3.0
CONNECT_TIMEOUT_S = 5.0
CLIENT_INIT_TRIES = 3
CLIENT_SERVER_DIED = "Initialization failure from server"
"""What Ray Client says when the server process for a connection did not start (see ``_init``)."""
HINT = "start one with `ray start --head`, or give its address (--executor ray://HOST:10001, or $RAY_ADDRESS)"


def address(executor: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The cluster to connect to for ``executor`` ("ray" or "ray://host:port"): the address given,
    else ``$RAY_ADDRESS`` (as Ray reads it), else a cluster started on this machine ("auto")."""
    if executor.startswith("ray://"):
        return executor
    return environ.get("RAY_ADDRESS") or "auto"


class RayExecutor(Executor):
    """Runs steps on the Ray cluster at ``where`` (see :func:`address`)."""

    name = "ray"
    shares_outputs = True

    def __init__(self, where: str, remote: RemoteCache, tools: Tools) -> None:
        self.where, self.remote, self.tools = where, remote, tools
        self._ray: Any = None
        self._task: Any = None
        self._events: Any = None
        self._owned = False
        self._jobs: dict[str, Job] = {}
        self._offered: set[str] = set()
        self._lock = threading.Lock()
        self.outcomes: list[Outcome] = []
        """What each step's worker said (node, seconds fetching, running and uploading, bytes)."""

    # -- the cluster -----------------------------------------------------------------------------

    def connect(self) -> None:
        """Join the cluster; :class:`Unreachable`, one line, when there is none to join."""
        if self._ray is not None:
            return
        _probe(self.where)
        try:
            import ray
        except ImportError:
            raise UserError("the ray executor needs Ray: pip install 'modelkit[ray]'") from None
        self._owned = not ray.is_initialized()  # a library user's own connection is kept, not shut down
        if self._owned:
            try:
                self._init(ray)
            except (ConnectionError, RuntimeError, ValueError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise Unreachable(f"Ray cluster {self._shown()} cannot be reached ({first}): {HINT}") from None
        self._ray = ray
        self._task = ray.remote(_run_on_node)
        self._events = ray.remote(_EventSink).options(num_cpus=0).remote()

    def _init(self, ray: Any) -> None:
        """``ray.init``, tried again where Ray Client's server lost the process that was to serve
        this connection: it forks one per connection from a multi-threaded gRPC server, and about
        one in fifteen dies at birth (ray-project/ray#63202); the next try forks another."""
        for tries_left in reversed(range(CLIENT_INIT_TRIES)):
            try:
                ray.init(address=self.where, logging_level=logging.ERROR, log_to_driver=False, namespace="modelkit")
                return
            except ConnectionAbortedError as e:
                if not tries_left or not str(e).startswith(CLIENT_SERVER_DIED):
                    raise
                ray.shutdown()

    def _shown(self) -> str:
        return "on this machine" if self.where == "auto" else self.where

    def _nodes(self) -> list[dict[str, float]]:
        return [n["Resources"] for n in self._ray.nodes() if n.get("Alive")]

    def machine(self) -> Machine:
        """The whole cluster, for the scheduler: Ray places each step on one node. Without GPUs,
        a step that would offload holds all of a node's cores instead: one per node at a time."""
        self.connect()
        nodes = self._nodes()
        gpus = int(sum(n.get("GPU", 0) for n in nodes)) if self.tools.gpu() else len(nodes)
        return Machine(cores=max(1, int(sum(n.get("CPU", 0) for n in nodes))),
                       memory=int(sum(n.get("memory", 0) for n in nodes)), gpus=gpus)

    def takes(self, action: Action) -> bool:
        return action.atomic and action.cacheable

    def summary(self) -> str | None:
        """One line of what ran on the cluster: steps, nodes, and per step the seconds a worker
        spent fetching and uploading (the cost of running elsewhere) and the bytes it moved."""
        done = self.outcomes
        if not done:
            return None
        def mean(what: str) -> float:
            return sum(o.seconds.get(what, 0.0) for o in done) / len(done)
        nodes = len({o.node for o in done})
        return (f"ray cluster: {len(done)} steps on {nodes} node{'s' * (nodes != 1)}; per step {mean('fetch'):.2f} s "
                f"fetching, {mean('run'):.2f} s running, {mean('upload'):.2f} s uploading; workers moved "
                f"{human_size(sum(o.bytes_moved for o in done))}")

    def close(self) -> None:
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        self._ray = None

    # -- one step --------------------------------------------------------------------------------

    def run(self, job: Job, digests: Callable[[list[Path]], dict[Path, str]]) -> dict[Path, str]:
        self.connect()
        action, progress = job.action, job.context.progress
        options, threads = self._options(job)
        self._offer(job.reads, progress)
        record = job.record
        task = Task(name=job.target.name, what=action.describe(), action=pack(action), key=job.key,
                    reads=tuple((str(p), d, p.stat().st_size) for p, d in sorted(job.reads.items())),
                    outputs=tuple((str(out), str(tmp)) for out, tmp in job.tmp.items()), remote=self.remote.url,
                    threads=threads, tools=self.tools, tool=action.tool, fingerprint=record.get("tool"),
                    platform=record.get("platform"), version=self.tools.version(), events=self._events)
        with self._lock:
            self._jobs[job.target.name] = job
        try:
            outcome = self._wait(self._task.options(**options).remote(task), job)
        finally:
            with self._lock:
                self._jobs.pop(job.target.name, None)
        self.outcomes.append(outcome)
        with open(job.context.log_path, "a", encoding="utf-8") as log:
            log.write(f"# ran on {outcome.node}\n{outcome.log}")
        if outcome.error is not None:
            family, message = outcome.error
            error = {"user": UserError, "unreachable": Unreachable}.get(family)
            raise error(message) if error else StepError(message, job.context.log_path)
        restored = self.remote.fetch(job.key, list(job.tmp), job.tmp, progress, counted=False)
        if restored is None:
            raise Unreachable(f"{action.describe()}: ran on {outcome.node}, but its outputs could not be restored "
                              f"from the remote cache {self.remote.url}")
        return restored

    def _options(self, job: Job) -> tuple[dict[str, Any], int]:
        """Ray's resources for the step, and its thread count; a :class:`UserError` when no node
        of the cluster can meet its demand (Ray would wait for one forever)."""
        demand, nodes = job.action.demand(), self._nodes()
        largest = max((int(n.get("CPU", 0)) for n in nodes), default=0)
        cpus = min(job.context.threads, largest) if demand.cpu == ALL_CORES else demand.cpu
        gpus = 1 if demand.gpu and self.tools.gpu() else 0
        if not any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus and n.get("memory", 0) >= demand.memory
                   for n in nodes):
            wants = ", ".join([f"{max(cpus, 1)} core{'s' * (max(cpus, 1) != 1)}"] + (["a GPU"] if gpus else [])
                              + ([f"{human_size(demand.memory)} of memory"] if demand.memory else []))
            best = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("memory", 0)), default={})
            raise UserError(f"{job.target.name}: needs {wants}, and no node of the Ray cluster {self._shown()} has "
                            f"that (the largest: {int(best.get('CPU', 0))} cores, {int(best.get('GPU', 0))} GPUs, "
                            f"{human_size(int(best.get('memory', 0)))}): add such a node, or build locally")
        options = {"num_cpus": cpus, "num_gpus": gpus, "max_retries": RETRIES, "retry_exceptions": False,
                   "name": f"modelkit {job.target.name}"}
        if demand.memory:
            options["memory"] = demand.memory
        return options, max(1, cpus)

    def _offer(self, reads: dict[Path, str], progress: Callable[[float | None, str], None]) -> None:
        """Upload what the step reads and the remote cache may not hold (each content once)."""
        for path, digest in sorted(reads.items()):
            with self._lock:
                if digest in self._offered:
                    continue
            progress(None, f"sharing {path.name} ({human_size(path.stat().st_size)}) through the remote cache")
            self.remote.offer(path, digest)
            with self._lock:
                self._offered.add(digest)

    def _wait(self, ref: Any, job: Job) -> Outcome:
        """The task's outcome; progress passed on meanwhile; cancelled when the build is."""
        ray = self._ray
        while not ray.wait([ref], timeout=POLL_S)[0]:
            self._pass_on_progress()
            if job.cancelled is not None and job.cancelled.is_set():
                ray.cancel(ref)
                if not ray.wait([ref], timeout=CANCEL_GRACE_S)[0]:
                    ray.cancel(ref, force=True)
                raise StepError(f"{job.action.describe()}: interrupted")
        self._pass_on_progress()
        try:
            outcome: Outcome = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            raise StepError(f"{job.action.describe()}: interrupted") from None
        except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.OutOfMemoryError, ray.exceptions.ActorDiedError) as e:
            raise StepError(f"{job.action.describe()}: the Ray worker running it died {RETRIES + 1} times "
                            f"({type(e).__name__}); nothing of it was kept", job.context.log_path) from None
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if e.cause is not None else e
            raise StepError(f"{job.action.describe()}: failed on the cluster ({type(cause).__name__}: "
                            f"{str(cause).strip().splitlines()[-1] if str(cause).strip() else ''})",
                            job.context.log_path) from None
        return outcome

    def _pass_on_progress(self) -> None:
        """Hand the workers' progress lines to their steps' reporters (any waiting thread may)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            for name, note, fraction, text in self._ray.get(self._events.drain.remote()):
                job = self._jobs.get(name)
                if job is not None and note:
                    job.context.note(text)
                elif job is not None:
                    job.context.progress(fraction, text)
        finally:
            self._lock.release()


def _probe(where: str) -> None:
    """Fail fast, in one line, when the cluster's port refuses connections (Ray itself retries
    for a minute and prints its own warnings)."""
    target = where.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if where == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise Unreachable(f"Ray cluster {where} cannot be reached ({why}): {HINT}") from None


def _run_on_node(task: Task) -> Outcome:
    """The Ray task: one step on the node Ray chose."""
    import ray

    context = ray.get_runtime_context()
    ip = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]  # Ray leaves it unannotated
    return run_task(task, f"{ip}/{context.get_node_id()[:6]}")


class _EventSink:
    """A Ray actor the workers send progress lines to, and the driver takes them from."""

    def __init__(self) -> None:
        self.items: list[tuple[str, bool, float | None, str]] = []

    def put(self, name: str, note: bool, fraction: float | None, text: str) -> None:
        """A step's progress line, or (``note``) a line worth keeping on screen."""
        self.items.append((name, note, fraction, text))

    def drain(self) -> list[tuple[str, bool, float | None, str]]:
        items, self.items = self.items, []
        return items
