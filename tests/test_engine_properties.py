"""Property test: over random graphs and random edits, incremental builds are correct and minimal.

Correctness: after every edit, the incremental build's outputs equal a clean build's.
Both hold whether steps run one at a time or four at once (``jobs``).
Minimality: exactly the actions whose parameters, source contents or upstream outputs changed (or
whose outputs went missing or were modified) run -- with early cutoff, and minus those whose
outputs the artifact cache still holds for the same inputs.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fake_actions import FileAction, digest_of_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelkit.core.engine import Engine
from modelkit.core.graph import Graph, Target
from modelkit.core.state import State

EXECUTED: list[str] = []


def compute(mode: str, param: int, sources: list[bytes], deps: list[bytes]) -> bytes:
    """The pure function each node computes; "mod" loses information, so early cutoff happens."""
    return digest_of_all({"mode": mode, "param": param}, sources, deps)


def Node(name: str, mode: str, param: int, sources: list[Path], reads: list[Path], out: Path) -> FileAction:
    return FileAction(out, sources, reads, params={"mode": mode, "param": param}, compute=digest_of_all, name=name,
                      ran=EXECUTED)


@dataclass
class Spec:
    """A random graph: node i reads some sources and some earlier nodes."""

    modes: list[str]
    params: list[int]
    sources: list[list[int]]
    deps: list[list[int]]
    contents: list[bytes]
    # The model of what the engine should know, per node: last built input state, cached states.
    last: dict[int, tuple] = field(default_factory=dict)
    cached: dict[int, set] = field(default_factory=dict)


def make_graph(spec: Spec, root: Path) -> Graph:
    graph = Graph()
    for i, mode in enumerate(spec.modes):
        graph.add(Target(f"n{i}", Node(f"n{i}", mode, spec.params[i], [root / f"s{j}" for j in spec.sources[i]],
                                       [root / "build" / f"n{d}" for d in spec.deps[i]], root / "build" / f"n{i}"),
                         tuple(f"n{d}" for d in spec.deps[i])))
    return graph


def write_sources(spec: Spec, root: Path) -> None:
    for j, content in enumerate(spec.contents):
        path = root / f"s{j}"
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)


def expected_outputs(spec: Spec) -> list[bytes]:
    outs: list[bytes] = []
    for i, mode in enumerate(spec.modes):
        outs.append(compute(mode, spec.params[i], [spec.contents[j] for j in spec.sources[i]],
                            [outs[d] for d in spec.deps[i]]))
    return outs


def expected_executions(spec: Spec, damaged: dict[int, str]) -> set[str]:
    """Which nodes must execute, and update the model as the engine should."""
    outs = expected_outputs(spec)
    run: set[str] = set()
    for i in range(len(spec.modes)):
        state = (spec.modes[i], spec.params[i], tuple(spec.contents[j] for j in spec.sources[i]),
                 tuple(outs[d] for d in spec.deps[i]))
        cached = spec.cached.setdefault(i, set())
        if damaged.get(i) == "modified":
            cached.discard(spec.last.get(i))  # a hard-linked cache entry is modified with it
        stale = spec.last.get(i) != state or i in damaged
        if stale and state not in cached:
            run.add(f"n{i}")
        spec.last[i] = state
        cached.add(state)
    return run


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    n_sources = draw(st.integers(1, 3))
    n_nodes = draw(st.integers(1, 6))
    return Spec(
        modes=[draw(st.sampled_from(["hash", "mod"])) for _ in range(n_nodes)],
        params=[draw(st.integers(0, 2)) for _ in range(n_nodes)],
        sources=[draw(st.lists(st.integers(0, n_sources - 1), max_size=2, unique=True)) for _ in range(n_nodes)],
        deps=[draw(st.lists(st.integers(0, i - 1), max_size=2, unique=True)) if i else [] for i in range(n_nodes)],
        contents=[draw(st.sampled_from([b"a", b"b", b"ab", b"ba"])) for _ in range(n_sources)],
    )


edits = st.one_of(
    st.tuples(st.just("source"), st.integers(0, 2), st.sampled_from([b"a", b"b", b"ab", b"ba", b"c"])),
    st.tuples(st.just("param"), st.integers(0, 5), st.integers(0, 2)),
    st.tuples(st.just("delete"), st.integers(0, 5), st.just(b"")),
    st.tuples(st.just("modify"), st.integers(0, 5), st.just(b"zz")),
    st.tuples(st.just("touch"), st.integers(0, 2), st.just(b"")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), steps=st.lists(edits, min_size=1, max_size=8), jobs=st.sampled_from([1, 4]))
def test_incremental_builds_are_correct_and_minimal(spec: Spec, steps: list[tuple[str, int, Any]], jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "incremental"
        root.mkdir()
        state = State(root / ".modelkit")
        write_sources(spec, root)
        EXECUTED.clear()
        Engine(make_graph(spec, root), root, state).build(jobs=jobs)
        assert sorted(EXECUTED) == sorted(expected_executions(spec, {}))
        for kind, index, value in steps:
            damaged: dict[int, str] = {}
            if kind == "source" and index < len(spec.contents):
                spec.contents[index] = value
                write_sources(spec, root)
            elif kind == "touch" and index < len(spec.contents):
                path = root / f"s{index}"
                path.write_bytes(path.read_bytes())
            elif kind == "param" and index < len(spec.params):
                spec.params[index] = value
            elif kind in ("delete", "modify") and index < len(spec.modes):
                out = root / "build" / f"n{index}"
                if kind == "delete":
                    out.unlink()
                    damaged[index] = "deleted"
                elif out.read_bytes() != value:
                    with open(out, "r+b") as f:  # in place, as an editor saving over it might
                        f.write(value)
                        f.truncate()
                    damaged[index] = "modified"
            EXECUTED.clear()
            result = Engine(make_graph(spec, root), root, state).build(jobs=jobs)
            assert result.ok
            assert sorted(EXECUTED) == sorted(expected_executions(spec, damaged)), (kind, index, value)
            # Correctness: the same bytes as a clean build in a fresh folder.
            clean = Path(tmp) / "clean"
            shutil.rmtree(clean, ignore_errors=True)
            clean.mkdir()
            write_sources(spec, clean)
            Engine(make_graph(spec, clean), clean, State(clean / ".modelkit")).build()
            for i in range(len(spec.modes)):
                assert (root / "build" / f"n{i}").read_bytes() == (clean / "build" / f"n{i}").read_bytes()
            assert not [p for p in os.listdir(root / "build") if "modelkit-tmp" in p]
        state.close()
