"""One cheap action for testing and benchmarking the engine: no model, no tool, just files.

:class:`FileAction` writes a pure function of its parameters, its source files and the files it
reads from other targets (``reads``) to one output, and counts its runs; options make it fail
after a partial write, write slowly (for the kill test), or log its name when it runs. The engine
tests, the property test, the kill test's build script and ``bench/engine.py`` all use it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelkit.core.action import Action, StepContext
from modelkit.errors import StepError

Compute = Callable[[dict[str, Any], list[bytes], list[bytes]], bytes]


def join(params: dict[str, Any], sources: list[bytes], reads: list[bytes]) -> bytes:
    """The default: the sources' bytes, then the read files' bytes."""
    return b"".join(sources + reads)


def digest_of_all(params: dict[str, Any], sources: list[bytes], reads: list[bytes]) -> bytes:
    """A digest of everything the action sees, so any change shows (unless ``mode`` is "mod")."""
    data = b"|".join([repr(sorted(params.items())).encode(), *sources, b"#", *reads])
    if params.get("mode") == "mod":  # loses information, so rebuilt outputs often repeat
        return str(sum(data) % 3).encode()
    return hashlib.sha256(data).hexdigest()[:8].encode()


class FileAction(Action):
    kind = "file"

    def __init__(self, out: Path, sources: Sequence[Path] = (), reads: Sequence[Path] = (), *,
                 params: dict[str, Any] | None = None, compute: Compute = join, name: str | None = None,
                 tool: str | None = None, fail: bool = False, slow_write: float = 0.0,
                 ran: list[str] | None = None) -> None:
        """``ran``: a list the action appends its name to when it runs; ``slow_write``: seconds to
        pause after each twentieth of the output; ``fail``: write part of the output, then fail."""
        self.out, self.sources, self.reads = out, list(sources), list(reads)
        self._params = params or {}
        self.compute, self.name, self.fail, self.slow_write, self.ran = compute, name or out.name, fail, slow_write, ran
        self.tool = tool
        self.runs = 0

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def inputs(self) -> dict[str, Path]:
        return {p.name: p for p in self.sources}

    def outputs(self) -> list[Path]:
        return [self.out]

    def describe(self) -> str:
        return f"make {self.name}"

    def run(self, ctx: StepContext) -> None:
        self.runs += 1
        if self.ran is not None:
            self.ran.append(self.name)
        data = self.compute(self._params, [p.read_bytes() for p in self.sources], [p.read_bytes() for p in self.reads])
        if self.fail:
            ctx.tmp(self.out).write_bytes(b"partial")
            raise StepError("boom")
        step = max(1, len(data) // 20)
        with open(ctx.tmp(self.out), "wb") as f:
            for i in range(0, len(data), step):
                f.write(data[i:i + step])
                if self.slow_write:
                    f.flush()
                    time.sleep(self.slow_write)
