"""A real build process with slow steps, for the kill test: ``python slow_build.py ROOT``.

Graph: src -> a -> b -> c, and src -> d. Each step writes its output in small chunks with pauses,
so a SIGKILL can land in the middle of a write. Prints the steps that ran, one per line.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from modelkit.action import Action, StepContext
from modelkit.engine import Engine
from modelkit.graph import Graph, Target
from modelkit.project import BuildLock
from modelkit.state import State


def expected(source: bytes) -> dict[str, bytes]:
    a = source * 200
    b = a[::-1]
    return {"a": a, "b": b, "c": b.upper() + b"!", "d": source.lower() * 300}


class Slow(Action):
    kind = "slow"

    def __init__(self, name: str, src: Path | None, read: Path | None, out: Path) -> None:
        self.name, self.src, self.read, self.out = name, src, read, out

    def params(self) -> dict[str, Any]:
        return {"name": self.name}

    def inputs(self) -> dict[str, Path]:
        return {"src": self.src} if self.src else {}

    def outputs(self) -> list[Path]:
        return [self.out]

    def describe(self) -> str:
        return self.name

    def run(self, ctx: StepContext) -> None:
        print(self.name, flush=True)
        data = (self.src or self.read).read_bytes()  # type: ignore[union-attr]
        data = {"a": lambda d: d * 200, "b": lambda d: d[::-1], "c": lambda d: d.upper() + b"!",
                "d": lambda d: d.lower() * 300}[self.name](data)
        with open(ctx.tmp(self.out), "wb") as f:
            for i in range(0, len(data), max(1, len(data) // 20)):
                f.write(data[i:i + max(1, len(data) // 20)])
                f.flush()
                time.sleep(0.005)


def main(root: Path) -> None:
    build = root / "build"
    graph = Graph([
        Target("a", Slow("a", root / "src", None, build / "a")),
        Target("b", Slow("b", None, build / "a", build / "b"), ("a",)),
        Target("c", Slow("c", None, build / "b", build / "c"), ("b",)),
        Target("d", Slow("d", root / "src", None, build / "d")),
    ])
    with BuildLock(root / ".modelkit"):
        result = Engine(graph, root, State(root / ".modelkit"), fingerprint=lambda c: {}).build()
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
