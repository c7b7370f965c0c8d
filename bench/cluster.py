"""A sweep on a Ray cluster vs on this machine: what running a step elsewhere costs, and what N nodes would give.

The sweep: the tiny example's base with 4 checkpoints of its LoRA, each merged and shipped as
Q4_K_M and Q8_0 (27 steps). Built twice in the same run, from nothing: here (default ``-j``), and
with ``--executor ray`` on a loopback cluster of two one-CPU nodes with moto's S3 server as the
remote cache. On one machine the cluster cannot be faster; printed are the overhead per step
(a step's time on the driver, cluster minus here: submitting, fetching its inputs, uploading and
restoring its outputs), the bytes moved, and a projection to N nodes from those figures:
``max(critical path + overhead × its depth, (work + overhead × steps) / N)``, with the work
measured here, one step per node at a time.

``MODELKIT_BENCH_TINY``: a folder made by ``examples/tiny/make_tiny.py`` to reuse.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from modelkit import Project
from modelkit.core.engine import QuietReporter
from modelkit.core.graph import Target
from modelkit.core.remote_cache import ENV
from modelkit.executors.ray_executor import RayExecutor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from checkpoints import make_checkpoints  # noqa: E402 - after the sys.path entry that finds it
from ray_cluster import ray_cluster  # noqa: E402 - after the sys.path entry that finds it
from s3_server import client_env, make_bucket, moto_server  # noqa: E402 - after the sys.path entry that finds it

from bench.remote import tiny_model  # noqa: E402 - the same tiny model maker

CHECKPOINTS = 4
NODES = (1, 2, 4, 8, 16)


class StepTimes(QuietReporter):
    """Each step's seconds on the driver, from start to recorded."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def done(self, target: Target, seconds: float, changed: bool) -> None:
        self.seconds[target.name] = seconds


def build(folder: Path, executor: str | None) -> tuple[Project, float, StepTimes]:
    project = Project.open(folder, register="off")
    times = StepTimes()
    started = time.perf_counter()
    result = project.build(reporter=times, executor=executor)
    assert result.ok, result.failed
    return project, time.perf_counter() - started, times


def critical_path(project: Project, seconds: dict[str, float], overhead: float) -> tuple[float, int]:
    """The longest chain of steps (its seconds, with ``overhead`` per step) and its length."""
    longest: dict[str, tuple[float, int]] = {}
    for target in project.graph.closure(None):
        before = max((longest[d] for d in target.prerequisites if d in longest), default=(0.0, 0))
        longest[target.name] = (before[0] + seconds.get(target.name, 0.0) + overhead, before[1] + 1)
    return max(longest.values())


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tiny = tiny_model(tmp)
        for name in ("here", "cluster"):
            make_checkpoints(tiny, tmp / name, CHECKPOINTS)
        os.environ[ENV] = ""
        _, local_s, local = build(tmp / "here", None)
        with moto_server() as endpoint:
            env = client_env(endpoint)
            os.environ.update(env)
            with ray_cluster(env, workers=[{"num-cpus": 1}]) as cluster:
                os.environ["RAY_ADDRESS"] = cluster.address
                os.environ[ENV] = f"s3://{make_bucket(endpoint)}/sweep"
                project, cluster_s, remote = build(tmp / "cluster", "ray")
        report(project, local_s, local, cluster_s, remote)


def report(project: Project, local_s: float, local: StepTimes, cluster_s: float, remote: StepTimes) -> None:
    steps = sorted(remote.seconds)
    extra = [remote.seconds[n] - local.seconds.get(n, 0.0) for n in steps]
    overhead = sorted(extra)[len(extra) // 2]
    work = sum(local.seconds.values())
    ran = project.ran_on
    moved = sum(o.bytes_moved for o in ran.outcomes) if isinstance(ran, RayExecutor) else 0
    uploaded = project.remote.bytes_up if project.remote is not None else 0
    print(f"sweep: {CHECKPOINTS} checkpoints x Q4_K_M, Q8_0: {len(steps)} steps, {work:.1f} s of work measured here")
    print(f"here (default -j): {local_s:.1f} s; on the loopback cluster (2 nodes of 1 CPU): {cluster_s:.1f} s, "
          f"ratio {cluster_s / local_s:.2f}")
    print(f"overhead per step (driver's time, cluster - here): median {overhead:.2f} s, "
          f"mean {sum(extra) / len(extra):.2f} s")
    print(ran.summary() if ran is not None else "nothing ran on the cluster")
    print(f"bytes moved: the driver shared {uploaded / 1e6:.1f} MB of inputs, workers fetched and uploaded "
          f"{moved / 1e6:.1f} MB")
    path, depth = critical_path(project, local.seconds, 0.0)
    chain, _ = critical_path(project, local.seconds, overhead)
    for nodes in NODES:
        projected = max(chain, (work + overhead * len(steps)) / nodes)
        print(f"projected on {nodes:2d} node{'s' if nodes > 1 else ' '}: {projected:5.1f} s "
              f"(critical path {path:.1f} s over {depth} steps; work {work:.1f} s)")


if __name__ == "__main__":
    main()
