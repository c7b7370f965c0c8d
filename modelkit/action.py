"""What a build step is, as the engine sees it.

An :class:`Action` is a plain object: the parameters and source files that determine its result,
the files it writes, and ``run()``. The engine derives everything else (the action key, staleness,
atomic replacement of outputs, logs, progress) so that each step in ``modelkit/steps/`` is only
the code that is specific to it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from modelkit.errors import ModelkitError, StepError

if TYPE_CHECKING:
    from modelkit.toolchain import Toolchain


# The last line of a Python traceback: "ValueError: mmap length is greater than file size".
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt): ")


class Action(ABC):
    """One step of a build."""

    kind: ClassVar[str]
    tool: ClassVar[str | None] = None
    """Toolchain component whose fingerprint is part of the key ("convert", "quantize")."""
    atomic: ClassVar[bool] = True
    """Whether run() writes each output to ``ctx.tmp(output)`` for the engine to rename into place."""
    reproducible: ClassVar[bool] = True
    """Whether the outputs are the same bytes on every machine (recorded in modelkit.lock)."""

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

    def precheck(self) -> None:
        """Cheap checks that can fail before any work starts (e.g. an adapter for another base)."""

    def blocked(self) -> ModelkitError | None:
        """Why the action cannot run now for a reason outside the project (Ollama is not running),
        or None. A blocked target is deferred: it stays stale and the rest of the build goes on."""
        return None

    def external_staleness(self, digest: Callable[[Path], str]) -> str | None:
        """A reason the outputs are out of date outside modelkit's view (e.g. Ollama lost the
        model), or None. Only asked when everything modelkit can see is fresh. ``digest`` gives
        a file's digest through the stat cache."""
        return None


ProgressFn = Callable[[float | None, str], None]


@dataclass
class StepContext:
    """What a running action may use: temp output names, its log, progress and the toolchain."""

    name: str
    log_path: Path
    progress: ProgressFn
    toolchain_factory: Callable[[], Toolchain]
    tmp_paths: dict[Path, Path] = field(default_factory=dict)
    digest: Callable[[Path], str] = field(default=lambda path: "")
    """A file's digest through the stat cache (free for modelkit's own outputs)."""

    def tmp(self, output: Path) -> Path:
        """The temporary name to write ``output`` to; the engine renames it into place."""
        return self.tmp_paths[output]

    @property
    def toolchain(self) -> Toolchain:
        return self.toolchain_factory()

    def run_tool(self, cmd: Sequence[str | os.PathLike[str]], *, what: str,
                 progress_re: re.Pattern[str] | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        """Run an external tool, streaming its output to the log and its progress to the display.

        ``progress_re`` finds progress in the tool's output: a match with groups (done, total) or
        (percent,). On failure, raise :class:`StepError` carrying the last lines of the log.
        """
        argv = [str(c) for c in cmd]
        tail: deque[str] = deque(maxlen=15)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8", errors="replace") as log:
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            try:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env=env, cwd=cwd, start_new_session=True)
            except OSError as e:
                raise StepError(f"{what}: cannot run {argv[0]}: {e}", self.log_path) from None
            assert proc.stdout is not None
            try:
                pending = b""
                while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]
                    log.write(chunk.decode("utf-8", "replace"))
                    pending += chunk
                    *lines, pending = re.split(rb"[\r\n]", pending)
                    for raw in lines:
                        line = raw.decode("utf-8", "replace").strip()
                        if not line:
                            continue
                        tail.append(line)
                        self._report(line, progress_re)
                code = proc.wait()
            except BaseException:
                _kill(proc)
                raise
        if code != 0:
            if pending.strip():
                tail.append(pending.decode("utf-8", "replace").strip())
            tool = Path(argv[1] if "python" in Path(argv[0]).name and len(argv) > 1 else argv[0]).name
            reason = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            cause = next((line for line in reversed(tail) if _EXCEPTION.match(line)), None)
            detail = f": {cause}" if cause else ""
            raise StepError(f"{what} failed: {tool} {reason}{detail}", self.log_path, list(tail))

    def _report(self, line: str, progress_re: re.Pattern[str] | None) -> None:
        fraction = None
        if progress_re and (m := progress_re.search(line)):
            groups = [g for g in m.groups() if g is not None]
            if len(groups) >= 2 and float(groups[1]) > 0:
                fraction = float(groups[0]) / float(groups[1])
            elif groups:
                fraction = float(groups[0]) / 100
        self.progress(fraction, line[:120])


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Stop a tool and everything it started (it runs in its own session)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
