"""What a build step is, as the engine sees it.

An :class:`Action` is a plain object: the parameters and source files that determine its result,
the files it writes, and ``run()``. The engine derives everything else (the action key, staleness,
atomic replacement of outputs, logs, progress) so that each step in ``modelkit/steps/`` is only
the code that is specific to it. Because an action is described by data (kind, parameters, input
digests, output names), it could run anywhere its tools exist.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from modelkit.core import process
from modelkit.core.process import Progress
from modelkit.core.resources import Demand
from modelkit.core.warm import Warm
from modelkit.errors import DeferredError


class Action(ABC):
    """One step of a build. A subclass may declare its class attributes in its header:
    ``class Quantize(Step, kind="quantize", tool="quantize")``."""

    kind: ClassVar[str]
    tool: ClassVar[str | None] = None
    """Toolchain component whose fingerprint is part of the key ("convert", "quantize")."""
    atomic: ClassVar[bool] = True
    """Whether run() writes each output to ``ctx.tmp(output)`` for the engine to rename into place."""
    reproducible: ClassVar[bool] = True
    """Whether every machine computes the same bytes for the same key. One that may not (a step
    that runs on the GPU where there is one: a GPU's floating-point order is not a CPU's) has the
    machine's platform in its key (the engine's ``platform``), and modelkit.lock pins the platform
    its bytes came from: another machine restores them from a cache rather than computing other
    bytes, and under ``--locked`` never computes them (see :class:`~modelkit.core.engine.Engine`)."""
    cacheable: ClassVar[bool] = True
    """Whether earlier outputs for the same key may be restored instead of running, and are pinned
    by modelkit.lock. Not for an action whose output records something outside the project (a
    registration's receipt says what a server held then; restoring it would claim what the
    server may no longer hold, and another machine has another server)."""

    outside: ClassVar[bool] = False
    """Whether its freshness depends on something outside the project's files (see
    :meth:`external_staleness`): a build that has one must ask, never answer from a stamp."""

    def __init_subclass__(cls, kind: str | None = None, tool: str | None = None, atomic: bool | None = None,
                          reproducible: bool | None = None, cacheable: bool | None = None,
                          outside: bool | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        given = {"kind": kind, "tool": tool, "atomic": atomic, "reproducible": reproducible, "cacheable": cacheable,
                 "outside": outside}
        for name, value in given.items():
            if value is not None:
                setattr(cls, name, value)

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-able parameters that, with the inputs, determine the outputs."""

    def inputs(self) -> dict[str, Path]:
        """Source files the action reads directly, by a stable logical name (``base/config.json``)."""
        return {}

    @abstractmethod
    def outputs(self) -> list[Path]:
        """The files the action writes (absolute paths)."""

    @abstractmethod
    def describe(self) -> str:
        """A short phrase for progress lines: "convert base to GGUF (f16)"."""

    @abstractmethod
    def run(self, ctx: StepContext) -> None:
        """Make the outputs; raise :class:`StepError` or :class:`UserError` on failure."""

    def demand(self) -> Demand:
        """What the action holds of the machine while it runs (cores, the GPU, memory), so the
        engine can run it beside others without overcommitting; by default one busy core."""
        return Demand()

    def precheck(self) -> None:  # noqa: B027 - a hook with nothing to check by default, not an abstract method
        """Cheap checks that can fail before any work starts (e.g. an adapter for another base)."""

    def blocked(self) -> DeferredError | None:
        """Why the action cannot run now for a reason outside the project (Ollama is not running),
        or None. A blocked target is deferred: it stays stale and the rest of the build goes on."""
        return None

    def promised_outputs(self) -> dict[Path, str] | None:
        """The digest each output will have, when that is known before running (a download pinned
        by commit and sha256), else None. With a remote cache such a target is run only if a
        target that reads it cannot be restored: a laptop restoring everything downloads nothing."""
        return None

    def lock_entry(self) -> dict[str, Any]:
        """What the lock file says of this target's outputs besides their key and digests, for a
        person reading it (a search's choice); read from the outputs, so it changes with them."""
        return {}

    def output_bytes(self) -> int | None:
        """About how many bytes its outputs take, known before it runs (from its inputs' headers),
        or None: the engine refuses to start a step whose outputs do not fit where they go."""
        return None

    def external_staleness(self, digest: Callable[[Path], str]) -> str | None:
        """A reason the outputs are out of date outside modelkit's view (e.g. Ollama lost the
        model), or None. Only asked when everything modelkit can see is fresh. ``digest`` gives
        a file's digest through the stat cache."""
        return None


@dataclass
class StepContext:
    """What a running action may use: temp output names, its log, progress and the toolchain."""

    name: str
    log_path: Path
    progress: Progress
    toolchain_factory: Callable[[], Any]
    note: Callable[[str], None] = field(default=lambda text: None)
    """Tell the user something worth keeping on screen (not a progress line)."""
    tmp_paths: dict[Path, Path] = field(default_factory=dict)
    digest: Callable[[Path], str] = field(default=lambda path: "")
    """A file's digest through the stat cache (free for modelkit's own outputs)."""
    threads: int = 1
    """The cores the engine granted the step (see :meth:`Action.demand`): its tool's thread count."""
    memo: Callable[[str], bytes | None] = field(default=lambda name: None)
    """A small record the step kept under ``name`` (on this machine, or through the remote cache
    on another), or None: for work inside one step worth keeping apart from its outputs."""
    keep: Callable[[str, bytes], None] = field(default=lambda name, data: None)
    """Keep a small record under ``name``, a digest of everything that decides it."""

    def tmp(self, output: Path) -> Path:
        """The temporary name to write ``output`` to; the engine renames it into place."""
        return self.tmp_paths[output]

    @property
    def toolchain(self) -> Any:
        """The toolchain the project uses, installed on first use."""
        return self.toolchain_factory()

    def run_tool(self, cmd: Sequence[str | os.PathLike[str]], *, what: str,
                 progress_re: re.Pattern[str] | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None, on_line: Callable[[str], None] | None = None,
                 warm: Warm | None = None) -> None:
        """Run an external tool into the step's log, its progress to the display (``progress_re``:
        see :func:`~modelkit.core.process.fraction_in`; or each line to ``on_line``, for a step
        that reads the tool's output); :class:`StepError` when it fails. ``warm``: a Python
        script, started warm (:mod:`modelkit.core.warm`)."""
        def show(line: str) -> None:
            self.progress(process.fraction_in(line, progress_re), line[:120])

        process.run(cmd, self.log_path, what, on_line=on_line or show, env=env, cwd=cwd, warm=warm)
