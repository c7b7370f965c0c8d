"""Where a step runs: the engine decides *what* runs and records it; an executor decides *where*.

The engine hands an executor a :class:`Job`: the action, its key and record, the files it reads
with their digests, and the temporary names its outputs go to. The executor leaves the outputs at
those names and returns their digests; the engine renames them into place and records them, as
always. :class:`LocalExecutor` runs the action in the calling thread (the scheduler's worker);
:class:`~modelkit.executors.ray_executor.RayExecutor` runs it as a task on a Ray cluster, whose worker
hands the outputs back through the remote cache (for the engine, a remote-cache hit).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from modelkit.core.action import Action, StepContext
from modelkit.core.graph import Target
from modelkit.core.process import Progress
from modelkit.core.resources import Machine
from modelkit.errors import StepError, UserError


@dataclass(frozen=True)
class Job:
    """One step to run: ``reads`` maps every file it reads (its inputs and its dependencies'
    outputs) to its digest; ``context`` is what the action is given where it runs here."""

    target: Target
    key: str
    record: dict[str, Any]
    tmp: dict[Path, Path]
    reads: dict[Path, str]
    context: StepContext
    cancelled: threading.Event | None = None

    @property
    def action(self) -> Action:
        return self.target.action


class Tools(Protocol):
    """The toolchain as a machine that runs steps finds it (picklable: it travels to workers), and
    the version of the code that runs them there. The core never names a tool: what the toolchain
    is, and how to get it where it is missing, is :meth:`describe`'s to say."""

    def toolchain(self, progress: Progress | None = None) -> Any:
        """The toolchain, installed first where it is missing (a step that names a tool asks)."""
    def fingerprint(self, component: str) -> dict[str, Any] | None:
        """What of the toolchain decides ``component``'s bytes; None where it is not installed here."""
    def describe(self) -> str:
        """The toolchain in a few words for a user: which one, or how to get it where it is missing."""
    def platform(self) -> str:
        """What decides the bytes of steps that are not reproducible across machines ("cpu", "cuda")."""
    def gpu(self) -> bool:
        """Whether the steps that can use a GPU do."""
    def version(self) -> str:
        """The version of the code that runs the steps."""


class NoTools:
    """The tools of an engine given none: a graph of plain steps (tests, benchmarks); a step that
    names a tool cannot run."""

    def toolchain(self, progress: Progress | None = None) -> Any:
        raise UserError("this step needs a toolchain, but the engine was given none")

    def fingerprint(self, component: str) -> dict[str, Any] | None:
        return None

    def describe(self) -> str:
        return "the engine was given none"

    def platform(self) -> str:
        return "any"

    def gpu(self) -> bool:
        return False

    def version(self) -> str:
        return "unknown"


class Executor(ABC):
    """Runs jobs somewhere; see the module docstring."""

    name: ClassVar[str]
    shares_outputs: ClassVar[bool] = False
    """Whether the outputs come back through the remote cache, already uploaded under the key."""

    def takes(self, action: Action) -> bool:
        """Whether this executor runs ``action``; the others run here."""
        return True

    def machine(self) -> Machine:
        """What the steps it runs share (the scheduler admits steps against it)."""
        return Machine.this()

    @abstractmethod
    def run(self, job: Job, digests: Callable[[list[Path]], dict[Path, str]]) -> dict[Path, str]:
        """Leave the outputs at ``job.tmp``'s names; return their digests (``digests`` hashes
        files here, through the stat cache)."""

    def summary(self) -> str | None:
        """One line of what running elsewhere cost, for the end of a build; None when nothing did."""
        return None

    def close(self) -> None:  # noqa: B027 - a hook: most executors hold nothing
        """Let go of what the executor holds (a cluster connection)."""


class LocalExecutor(Executor):
    """This machine, in the calling thread: today's build."""

    name = "local"

    def run(self, job: Job, digests: Callable[[list[Path]], dict[Path, str]]) -> dict[Path, str]:
        job.action.run(job.context)
        missing = [p for p in job.tmp.values() if not p.is_file()]
        if missing:
            raise StepError(f"{job.action.describe()}: finished without writing {missing[0].name}",
                            job.context.log_path)
        return digests(list(job.tmp.values()))
