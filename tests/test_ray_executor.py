"""Steps on a real Ray cluster on loopback (two nodes), files through moto's real S3 server: the
same bytes, lock and state as a local build, and the faults a cluster has."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from checkpoints import make_checkpoints
from conftest import copy_built, copy_example, modelkit, start_modelkit
from ray_cluster import Cluster, ray_cluster
from s3_server import client_env, make_bucket, moto_server

from modelkit import Project
from modelkit.core.engine import Engine, QuietReporter
from modelkit.core.graph import Graph, Target
from modelkit.core.remote_cache import RemoteCache
from modelkit.core.resources import Demand
from modelkit.core.state import State
from modelkit.executors.ray_executor import RayExecutor
from modelkit.executors.ray_worker import pack
from modelkit.steps.base import Recorded
from modelkit.steps.quantize import Quantize
from modelkit.toolchain import ProjectTools

pytest.importorskip("ray")
pytestmark = [pytest.mark.toolchain, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, dict[str, str]]]:
    """Two nodes of one CPU each (so two steps at once run on different nodes), both with the
    S3 server's credentials, as a real cluster's nodes have their own."""
    with moto_server() as endpoint:
        env = client_env(endpoint)
        with ray_cluster(env, workers=[{"num-cpus": 1}]) as running:
            yield running, env


def on_cluster(cluster: tuple[Cluster, dict[str, str]], client: bool = False) -> dict[str, str]:
    """The environment of a build on ``cluster``: its address and a new bucket as remote cache."""
    running, env = cluster
    bucket = make_bucket(env["AWS_ENDPOINT_URL"])
    address = {} if client else {"RAY_ADDRESS": running.address}
    return {**env, **address, "MODELKIT_REMOTE_CACHE": f"s3://{bucket}/modelkit"}


def records(project: Path) -> list[tuple[str, str, str]]:
    state = State(project / ".modelkit")
    return sorted((n, r.key, repr(sorted(r.outputs.items())))
                  for n in state.target_names() if (r := state.target(n)) is not None)


def artifacts(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (project / "build").rglob("*") if p.is_file()}


def lock_without_generator(project: Path) -> list[str]:
    return [line for line in (project / "modelkit.lock").read_text().splitlines() if "generator" not in line]


class Progress(QuietReporter):
    """What each step's live line said."""

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self.notes: list[tuple[str, str]] = []

    def progress(self, target: Target, fraction: float | None, text: str) -> None:
        self.lines.setdefault(target.name, []).append(text)

    def note(self, target: Target, text: str) -> None:
        self.notes.append((target.name, text))


def test_the_example_builds_on_the_cluster_as_it_does_here(cluster: Any, built_example: Path, tiny_model: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = copy_example(tiny_model, tmp_path / "example")
    for name, value in on_cluster(cluster).items():
        monkeypatch.setenv(name, value)
    reporter = Progress()
    built = Project.open(project, register="off")
    assert built.build(reporter=reporter, executor="ray").ok
    assert artifacts(project) == artifacts(built_example)
    assert lock_without_generator(project) == lock_without_generator(built_example)
    assert records(project) == records(built_example)
    steps = State(project / ".modelkit").target_names()
    assert len(steps) == 19 and set(reporter.lines) == set(steps)
    for name, lines in reporter.lines.items():  # each running step's line names its node
        assert any(re.match(r"on [0-9.]+/[0-9a-f]{6}: ", line) for line in lines), (name, lines)
    said = [text for name, text in reporter.notes if name == "logits:base+support"]  # a step's note comes back,
    assert len(said) == 1 and f" in {project.resolve() / '.modelkit' / 'eval'}; " in said[0], reporter.notes  # as here
    logs = {p.stem: p.read_text() for p in (project / ".modelkit" / "logs").glob("*.log")}
    nodes = {line.split()[-1] for text in logs.values() for line in text.splitlines() if line.startswith("# ran on")}
    assert len(nodes) == 2, nodes  # two steps at once (the conversions) ran on two nodes
    assert built.remote is not None and built.remote.restored == built.remote.bytes_down == 0  # handed back, not restored
    assert built.ran_on is not None and (built.ran_on.summary() or "").startswith("ray cluster: 19 steps on 2 nodes")


def test_a_sweep_of_four_checkpoints_builds_on_the_cluster_as_it_does_here(cluster: Any, tiny_model: Path,
                                                                          tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    for project in (here, there):
        make_checkpoints(tiny_model, project, 4)
    local = modelkit("build", "--no-ollama", cwd=here)
    assert local.returncode == 0, local.stderr
    remote = modelkit("build", "--no-ollama", "--executor", "ray", cwd=there, env=on_cluster(cluster))
    assert remote.returncode == 0, remote.stderr
    assert len([n for n in artifacts(here) if n.endswith(".gguf")]) == 1 + 4 + 4 + 8  # base, 4 LoRAs, 4 merged, 8
    assert artifacts(there) == artifacts(here)
    assert lock_without_generator(there) == lock_without_generator(here)
    assert records(there) == records(here)


def worker_running(task: bytes) -> int | None:
    """The Ray worker process running the task named ``task`` now (Ray titles it ``ray::<name>``)."""
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::" + task):
                return int(entry.name)
        except OSError:
            continue
    return None


def test_a_worker_killed_while_quantizing_is_retried_and_the_bytes_are_the_same(
        cluster: Any, built_example: Path, tiny_model: Path, tmp_path: Path) -> None:
    """Through Ray Client (ray://) this time. The worker is killed while it runs the quantization's
    task (fetching, quantizing or uploading: the tiny model quantizes in a fraction of a second);
    tried again if the task ended before the test saw it."""
    project = copy_built(built_example, tmp_path / "project")  # only the forced quantization runs
    env = on_cluster(cluster, client=True)
    client = cluster[0].client
    killed = 0
    for _ in range(4):
        build = start_modelkit("build", "--no-ollama", "--executor", client, "--force", "gguf:base+support.Q4_K_M",
                               "gguf:base+support.Q4_K_M", cwd=project, env=env)
        while build.poll() is None and not killed:
            worker = worker_running(b"modelkit gguf:base+support.Q4_K_M")
            if worker is not None:
                os.kill(worker, signal.SIGKILL)
                killed = worker
        _, err = build.communicate(timeout=300)
        assert build.returncode == 0, err
        if killed:
            break
    assert killed, "no quantization was ever seen running"
    assert not list(Path(tempfile.gettempdir()).glob(f"modelkit-step-{killed}-*"))  # its scratch, removed after it
    name = "base+support.Q4_K_M.gguf"
    assert (project / "build" / name).read_bytes() == (built_example / "build" / name).read_bytes()
    assert not [p for p in (project / "build").iterdir() if ".modelkit-tmp-" in p.name]


class Huge(Quantize):
    """A quantization that says it needs a petabyte of memory."""

    def demand(self) -> Demand:
        return Demand(cpu=1, memory=1 << 50)


def test_a_step_no_node_can_hold_fails_at_once_in_one_line(cluster: Any, tmp_path: Path) -> None:
    env = on_cluster(cluster)
    (tmp_path / "in.gguf").write_bytes(b"GGUF")
    graph = Graph()
    graph.add(Target("huge", Huge(out=tmp_path / "out.gguf", src=tmp_path / "in.gguf", src_file=tmp_path / "in.gguf",
                                  qtype="Q8_0")))
    remote = RemoteCache(env["MODELKIT_REMOTE_CACHE"])
    executor = RayExecutor(env["RAY_ADDRESS"], remote, ProjectTools())
    started = time.monotonic()
    try:
        result = Engine(graph, tmp_path, State(tmp_path / ".modelkit"),
                        remote=remote, executor=executor).build()
    finally:
        executor.close()
    assert time.monotonic() - started < 60
    (name, error), = result.failed
    assert name == "huge" and "\n" not in str(error)
    assert str(error).startswith("huge: needs 1 core, 1126 TB of memory, and no node of the Ray cluster"), error


def test_a_ray_client_server_that_dies_at_birth_is_tried_again(cluster: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray Client forks a server per connection, and about one in fifteen dies at birth
    (ray-project/ray#63202): injected here by failing the first ``ray.init`` as Ray then does; the
    second connects to the real cluster."""
    import ray

    real_init, addresses = ray.init, []

    def dies_once(*args: Any, **kwargs: Any) -> Any:
        addresses.append(kwargs["address"])
        if len(addresses) == 1:
            raise ConnectionAbortedError("Initialization failure from server:\n")
        return real_init(*args, **kwargs)

    monkeypatch.setattr(ray, "init", dies_once)
    executor = RayExecutor(cluster[0].client, RemoteCache(on_cluster(cluster)["MODELKIT_REMOTE_CACHE"]),
                           ProjectTools())
    try:
        executor.connect()
        assert executor.machine().cores == 2
    finally:
        executor.close()
    assert addresses == [cluster[0].client] * 2


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("how", ["--executor", "RAY_ADDRESS"])
def test_a_cluster_that_cannot_be_reached_is_one_line(tiny_project: Path, tmp_path: Path, how: str) -> None:
    port = closed_port()
    env = {"MODELKIT_REMOTE_CACHE": (tmp_path / "shared").as_uri()}
    (tmp_path / "shared").mkdir()
    where = ["--executor", f"ray://127.0.0.1:{port}"] if how == "--executor" else ["--executor", "ray"]
    if how == "RAY_ADDRESS":
        env["RAY_ADDRESS"] = f"127.0.0.1:{port}"
    started = time.monotonic()
    proc = modelkit("build", "--no-ollama", *where, cwd=tiny_project, env=env)
    assert proc.returncode == 1 and time.monotonic() - started < 30
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error == [f"error: Ray cluster {'ray://' if how == '--executor' else ''}127.0.0.1:{port} cannot be reached "
                     "(Connection refused): start one with `ray start --head`, or give its address (--executor "
                     "ray://HOST:10001, or $RAY_ADDRESS)"], proc.stderr
    assert "Traceback" not in proc.stderr and not (tiny_project / "build").exists()


def test_a_cluster_without_a_remote_cache_is_a_user_error(tiny_project: Path) -> None:
    proc = modelkit("build", "--no-ollama", "--executor", "ray", cwd=tiny_project, env={"MODELKIT_REMOTE_CACHE": ""})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: --executor ray: the ray executor hands files between machines through the remote cache, and none is "
        "set"), proc.stderr


def test_a_step_travels_with_its_paths_under_the_worker_s_scratch_tree(tmp_path: Path) -> None:
    """Every absolute path of the action, nested ones too, lands under the scratch tree; the
    names a tool records stay as they were (so the bytes do not change)."""
    import pickle

    from modelkit.executors import ray_worker

    action = Quantize(out=tmp_path / "b" / "x.gguf", src=tmp_path / "a.gguf", qtype="Q8_0",
                      imatrix=Recorded(tmp_path / "build" / "m.gguf", "build/m.gguf"))
    ray_worker._HERE.root = Path("/scratch/root")
    moved = pickle.loads(pack(action))
    assert moved.out == Path("/scratch/root") / str(tmp_path / "b" / "x.gguf").lstrip("/")
    assert moved.src == Path("/scratch/root") / str(tmp_path / "a.gguf").lstrip("/")
    assert moved.imatrix.name == "build/m.gguf" and moved.imatrix.folder == Path("/scratch/root") / str(tmp_path)[1:]


def cluster_processes(needle: bytes) -> list[int]:
    """Processes whose command line or name (a script started warm is named after it) holds
    ``needle`` and that a Ray worker started (itself, or through its warm server)."""
    def parent(pid: str) -> str:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1]

    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (needle in (entry / "cmdline").read_bytes()
                                         or needle[:15] in (entry / "comm").read_bytes()):
                ancestors = [parent(entry.name)]
                ancestors.append(parent(ancestors[0]))
                if any(b"ray::" in Path(f"/proc/{a}/cmdline").read_bytes() for a in ancestors):
                    found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_ctrl_c_cancels_the_steps_running_on_the_cluster(cluster: Any, tiny_project: Path) -> None:
    build = start_modelkit("build", "--no-ollama", "--executor", "ray", cwd=tiny_project, env=on_cluster(cluster))
    deadline = time.monotonic() + 120
    while not cluster_processes(b"convert_hf_to_gguf") and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the conversion to start on a node, not timing anything
    assert cluster_processes(b"convert_hf_to_gguf"), "the conversion never ran on the cluster"
    build.send_signal(signal.SIGINT)
    _, err = build.communicate(timeout=60)
    assert build.returncode == 130, err
    deadline = time.monotonic() + 15
    while cluster_processes(b"convert_hf_to_gguf") and time.monotonic() < deadline:
        time.sleep(0.1)  # polling for the stopped tool to be gone, bounded by the deadline
    assert cluster_processes(b"convert_hf_to_gguf") == []
    assert State(tiny_project / ".modelkit").target("gguf:base.f16") is None
    assert not [p for p in (tiny_project / "build").iterdir() if p.suffix == ".gguf" or ".modelkit-tmp-" in p.name]


def test_a_dead_worker_s_scratch_folder_is_removed_by_the_next_step(tmp_path: Path) -> None:
    from modelkit.executors.ray_worker import remove_orphans

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, alive = tmp_path / f"modelkit-step-{finished.stdout.strip()}-x1", tmp_path / f"modelkit-step-{os.getpid()}-x2"
    for folder in (dead, alive):
        (folder / "root").mkdir(parents=True)
    remove_orphans(tmp_path)
    assert not dead.exists() and alive.is_dir()
