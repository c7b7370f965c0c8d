"""The engine running steps at once: overlap, failures, order, and what the machine allows.

Overlap is read from the start and end times each action records itself, never from how long the
test took, so a loaded machine can slow these tests but not fail them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from fake_actions import FileAction

from modelkit.core.action import StepContext
from modelkit.core.engine import Engine
from modelkit.core.graph import Graph, Target
from modelkit.core.resources import ALL_CORES, Demand, Grant, Machine, Pool
from modelkit.core.state import State

ONE_CORE = Demand()

class Timed(FileAction):
    """A :class:`FileAction` that sleeps ``seconds``, records when it ran, what it was granted,
    and whether its dependencies' outputs were recorded (with the bytes on disk) when it started."""

    def __init__(self, out: Path, reads: list[Path], *, seconds: float, spans: dict[str, Any],
                 demand: Demand = ONE_CORE, deps: tuple[str, ...] = (), state: State | None = None,
                 fail: bool = False) -> None:
        super().__init__(out, reads=reads, params={"name": out.name}, name=out.name, fail=fail)
        self.seconds, self.spans, self._demand, self.deps, self.state = seconds, spans, demand, deps, state

    def demand(self) -> Demand:
        return self._demand

    def run(self, ctx: StepContext) -> None:
        start = time.monotonic()
        recorded = all(self._recorded(dep) for dep in self.deps)
        time.sleep(self.seconds)
        self.spans[self.name] = {"start": start, "end": time.monotonic(), "threads": ctx.threads,
                                 "deps_recorded": recorded}
        super().run(ctx)

    def _recorded(self, dep: str) -> bool:
        """The state holds ``dep``'s record and its outputs on disk have the recorded bytes."""
        import hashlib

        assert self.state is not None
        record = self.state.target(dep)
        if record is None:
            return False
        return all(hashlib.sha256((self.out.parent.parent / rel).read_bytes()).hexdigest() == digest.split(":")[1]
                   for rel, digest in record.outputs.items())


def overlapped(spans: dict[str, Any], a: str, b: str) -> bool:
    return spans[a]["start"] < spans[b]["end"] and spans[b]["start"] < spans[a]["end"]


def fan(root: Path, spans: dict[str, Any], state: State, *, demand: Demand = ONE_CORE, fail: str | None = None,
        seconds: float = 0.3) -> Graph:
    """src -> three independent steps x, y, z -> a join step reading all three."""
    (root / "src").write_text("s")
    build = root / "build"
    graph = Graph()
    for name in ("x", "y", "z"):
        graph.add(Target(name, Timed(build / name, [root / "src"], seconds=seconds, spans=spans, demand=demand,
                                     fail=name == fail)))
    graph.add(Target("join", Timed(build / "join", [build / n for n in "xyz"], seconds=0.0, spans=spans,
                                   deps=("x", "y", "z"), state=state), ("x", "y", "z")))
    return graph


def engine(graph: Graph, root: Path, state: State, cores: int = 4, memory: int = 1 << 40) -> Engine:
    return Engine(graph, root, state, machine=Machine(cores, memory))


def test_independent_steps_overlap_and_the_join_waits_for_their_records(tmp_path: Path) -> None:
    spans: dict[str, Any] = {}
    state = State(tmp_path / ".modelkit")
    result = engine(fan(tmp_path, spans, state), tmp_path, state).build(jobs=3)
    assert result.ok and sorted(result.ran) == ["join", "x", "y", "z"]
    assert overlapped(spans, "x", "y") and overlapped(spans, "y", "z") and overlapped(spans, "x", "z")
    assert spans["join"]["start"] >= max(spans[n]["end"] for n in "xyz")
    assert spans["join"]["deps_recorded"]
    assert (tmp_path / "build" / "join").read_text() == "sss"


def test_one_job_runs_one_step_at_a_time_in_graph_order(tmp_path: Path) -> None:
    spans: dict[str, Any] = {}
    state = State(tmp_path / ".modelkit")
    result = engine(fan(tmp_path, spans, state, seconds=0.05), tmp_path, state).build(jobs=1)
    assert result.ran == ["x", "y", "z", "join"]
    ordered = sorted(spans.values(), key=lambda s: s["start"])
    assert all(a["end"] <= b["start"] for a, b in zip(ordered, ordered[1:]))


def test_whole_machine_steps_take_turns_and_are_given_the_cores(tmp_path: Path) -> None:
    spans: dict[str, Any] = {}
    state = State(tmp_path / ".modelkit")
    graph = fan(tmp_path, spans, state, demand=Demand(cpu=ALL_CORES), seconds=0.1)
    assert engine(graph, tmp_path, state, cores=2).build(jobs=4).ok
    assert not any(overlapped(spans, a, b) for a, b in (("x", "y"), ("y", "z"), ("x", "z")))
    assert {spans[n]["threads"] for n in "xyz"} == {2}


def test_steps_that_do_not_fit_in_memory_together_do_not_overlap(tmp_path: Path) -> None:
    spans: dict[str, Any] = {}
    state = State(tmp_path / ".modelkit")
    graph = fan(tmp_path, spans, state, demand=Demand(cpu=1, memory=600), seconds=0.1)
    assert engine(graph, tmp_path, state, memory=1000).build(jobs=4).ok
    assert not any(overlapped(spans, a, b) for a, b in (("x", "y"), ("y", "z"), ("x", "z")))
    spans.clear()
    state2 = State(tmp_path / "other" / ".modelkit")
    (tmp_path / "other").mkdir(exist_ok=True)
    graph = fan(tmp_path / "other", spans, state2, demand=Demand(cpu=1, memory=600), seconds=0.3)
    assert engine(graph, tmp_path / "other", state2, memory=1200).build(jobs=4).ok
    assert overlapped(spans, "x", "y")  # two fit in 1200 bytes, the third waits
    assert not overlapped(spans, "x", "z") or not overlapped(spans, "y", "z")


def test_a_failure_with_four_jobs_leaves_its_siblings_correct(tmp_path: Path) -> None:
    spans: dict[str, Any] = {}
    state = State(tmp_path / ".modelkit")
    result = engine(fan(tmp_path, spans, state, fail="y"), tmp_path, state).build(jobs=4)
    assert [name for name, _ in result.failed] == ["y"]
    assert sorted(result.ran) == ["x", "z"]  # already running when y failed: they finish and are recorded
    for name in "xz":
        assert (tmp_path / "build" / name).read_text() == "s"
    assert not (tmp_path / "build" / "y").exists() and not (tmp_path / "build" / "join").exists()
    assert not [p for p in os.listdir(tmp_path / "build") if "modelkit-tmp" in p]
    spans.clear()
    again = engine(fan(tmp_path, spans, state), tmp_path, state).build(jobs=4)
    assert sorted(again.ran) == ["join", "y"] and sorted(again.fresh) == ["x", "z"]


def test_keep_going_builds_everything_that_does_not_need_the_failure(tmp_path: Path) -> None:
    spans: dict[str, Any] = {}
    state = State(tmp_path / ".modelkit")
    graph = fan(tmp_path, spans, state, fail="x", seconds=0.05)
    result = engine(graph, tmp_path, state).build(jobs=1, keep_going=True)
    assert result.ran == ["y", "z"] and result.skipped == ["join"]
    result = engine(graph, tmp_path, state).build(jobs=1)
    assert result.ran == [] and [n for n, _ in result.failed] == ["x"]  # y and z fresh, join never started


def test_order_only_prerequisites_still_come_first(tmp_path: Path) -> None:
    spans: dict[str, Any] = {}
    state = State(tmp_path / ".modelkit")
    (tmp_path / "src").write_text("s")
    build = tmp_path / "build"
    check = Timed(build / "check", [tmp_path / "src"], seconds=0.2, spans=spans)
    work = Timed(build / "work", [tmp_path / "src"], seconds=0.0, spans=spans)
    graph = Graph([Target("check", check), Target("work", work, after=("check",))])
    assert engine(graph, tmp_path, state).build(jobs=4).ok
    assert spans["work"]["start"] >= spans["check"]["end"]


def test_pool_grants_an_idle_machine_anything() -> None:
    pool = Pool(Machine(cores=2, memory=100))
    big = pool.take(Demand(cpu=8, memory=1000, gpu=True))
    assert big is not None and pool.take(Demand(cpu=0, gpu=True)) is None
    pool.give(big)
    first = pool.take(Demand(cpu=ALL_CORES))
    assert first is not None and first.threads == 2 and pool.take(Demand(cpu=1)) is None
    assert pool.take(Demand(cpu=0)) is not None  # a download holds no core


SLEEPER = '''
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from modelkit.core.action import Action
from modelkit.core.engine import Engine
from modelkit.core.graph import Graph, Target
from modelkit.core.resources import Demand
from modelkit.core.state import State

class Sleep(Action):
    kind = "sleep"
    def __init__(self, out): self.out = out
    def demand(self): return Demand(cpu=0)  # a sleep holds no core: all three run at once on 2 cores
    def params(self): return {"out": self.out.name}
    def outputs(self): return [self.out]
    def describe(self): return "sleep"
    def run(self, ctx):
        ctx.tmp(self.out).write_text("partial")
        ctx.run_tool(["sleep", sys.argv[3]], what="sleep")

root = Path(sys.argv[1])
graph = Graph([Target(n, Sleep(root / "build" / n)) for n in ("a", "b", "c")])
print("started", flush=True)
Engine(graph, root, State(root / ".modelkit")).build(jobs=3)
'''


def test_ctrl_c_stops_every_running_tool_and_leaves_nothing_fresh(tmp_path: Path) -> None:
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    duration = f"{59 + os.getpid() % 1000 / 1000:.3f}"  # names this test's sleeps among any others
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(ROOT), duration], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "started\n"
    logs = tmp_path / ".modelkit" / "logs"
    deadline = time.monotonic() + 30
    def started() -> int:
        return sum(1 for p in logs.glob("*.log") if "$ sleep" in p.read_text())

    while time.monotonic() < deadline and started() < 3:
        time.sleep(0.05)  # polling for all three tools to start, not timing anything
    assert started() == 3, "the three steps never ran at once: nothing would be left to stop"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    left = subprocess.run(["pgrep", "-f", f"^sleep {duration}$"], capture_output=True, text=True).stdout.split()
    assert left == []
    assert not (tmp_path / "build").exists() or os.listdir(tmp_path / "build") == []
    state = State(tmp_path / ".modelkit")
    assert state.target_names() == []


def test_state_writes_from_many_threads_all_land(tmp_path: Path) -> None:
    state = State(tmp_path / ".modelkit")

    def write(i: int) -> None:
        for j in range(50):
            state.set_target(f"t{i}.{j}", "k", {"i": i}, {"o": f"sha256:{j}"})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(state.target_names()) == 400


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> Any:
    yield
    assert not [t for t in threading.enumerate() if t.name.startswith("modelkit-step")]


def test_two_conversions_of_a_16_gb_model_wait_for_each_other_on_24_gb(tmp_path: Path) -> None:
    from modelkit.steps.convert import Convert
    from modelkit.steps.quantize import Quantize

    gb = 1 << 30
    folders = []
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        for shard in range(2):
            with open(folder / f"model-{shard}.safetensors", "wb") as f:
                f.truncate(8 * gb)  # sparse: no disk used
        (folder / "config.json").write_text("{}")
        folders.append(folder)
    converts = [Convert(out=tmp_path / f"{f.name}.gguf", folder=f, files={}, outtype="f16") for f in folders]
    assert converts[0].demand() == Demand(cpu=1, memory=16 * gb)
    small = Pool(Machine(cores=8, memory=24 * gb))
    assert small.take(converts[0].demand()) is not None and small.take(converts[1].demand()) is None
    big = Pool(Machine(cores=8, memory=40 * gb))
    assert big.take(converts[0].demand()) is not None and big.take(converts[1].demand()) is not None
    quantize = Quantize(out=tmp_path / "q.gguf", src=tmp_path / "a.gguf", qtype="Q4_K_M")
    assert big.take(quantize.demand()) == Grant(cpu=6, gpu=False, memory=0)  # the cores left, as its threads


def test_steps_that_name_one_thing_to_hold_alone_take_turns() -> None:
    pool = Pool(Machine(cores=4, memory=100))
    first = pool.take(Demand(cpu=0, alone="server"))
    assert first is not None and pool.take(Demand(cpu=0, alone="server")) is None
    assert pool.take(Demand(cpu=0, alone="other")) is not None and pool.take(Demand(cpu=0)) is not None
    pool.give(first)
    assert pool.take(Demand(cpu=0, alone="server")) is not None
