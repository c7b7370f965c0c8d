"""A real build process with slow steps, for the kill test: ``python slow_build.py ROOT [JOBS]``.

Graph: src -> a -> b -> c, and src -> d. Each step writes its output in small chunks with pauses,
so a SIGKILL can land in the middle of a write. Prints the steps that ran, one per line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_actions import FileAction

from modelkit.core.engine import Engine
from modelkit.core.graph import Graph, Target
from modelkit.core.locks import FileLock
from modelkit.core.state import State


def expected(source: bytes) -> dict[str, bytes]:
    a = source * 200
    b = a[::-1]
    return {"a": a, "b": b, "c": b.upper() + b"!", "d": source.lower() * 300}


TRANSFORMS = {"a": lambda d: d * 200, "b": lambda d: d[::-1], "c": lambda d: d.upper() + b"!",
              "d": lambda d: d.lower() * 300}


def Slow(name: str, src: Path | None, read: Path | None, out: Path) -> FileAction:
    """Prints its name when it runs, then writes its output in twenty pieces with pauses."""
    def compute(params: dict[str, Any], sources: list[bytes], reads: list[bytes]) -> bytes:
        print(name, flush=True)
        return TRANSFORMS[name]((sources + reads)[0])

    return FileAction(out, [src] if src else [], [read] if read else [], params={"name": name}, compute=compute,
                      name=name, slow_write=0.005)


def main(root: Path, jobs: int) -> None:
    build = root / "build"
    graph = Graph([
        Target("a", Slow("a", root / "src", None, build / "a")),
        Target("b", Slow("b", None, build / "a", build / "b"), ("a",)),
        Target("c", Slow("c", None, build / "b", build / "c"), ("b",)),
        Target("d", Slow("d", root / "src", None, build / "d")),
    ])
    with FileLock(root / ".modelkit" / "build.lock"):
        result = Engine(graph, root, State(root / ".modelkit")).build(jobs=jobs)
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
