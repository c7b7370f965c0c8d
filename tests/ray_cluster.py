"""A real Ray cluster on loopback for the tests and the benchmark: a head node and worker nodes,
each a ``ray start --block`` in its own session, so that stopping the cluster stops exactly its
processes (``ray stop`` would stop every Ray on the machine).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from s3_server import free_port

RAY = Path(sys.executable).with_name("ray")


@dataclass
class Cluster:
    """A running cluster: ``address`` for ``$RAY_ADDRESS``, ``client`` for ``ray://``."""

    address: str
    client: str
    nodes: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([str(RAY), "start", "--block", "--disable-usage-stats", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait_for_nodes(address: str, count: int, env: dict[str, str], deadline: float) -> None:
    probe = ("import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR'); "
             "print(sum(1 for n in ray.nodes() if n['Alive']))")
    while (left := deadline - time.monotonic()) > 0:
        try:  # a probe may hang while the client server starts on a loaded machine: give it what is left
            done = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True,
                                  env=env, timeout=left)
        except subprocess.TimeoutExpired:
            break
        if done.returncode == 0 and int(done.stdout.strip().splitlines()[-1]) >= count:
            return
        time.sleep(0.5)  # polling for the nodes, bounded by the deadline
    raise RuntimeError(f"the Ray cluster at {address} did not get {count} nodes")


@contextmanager
def ray_cluster(env: dict[str, str], workers: list[dict[str, object]] | None = None,
                head_cpus: int = 1) -> Iterator[Cluster]:
    """A head node with ``head_cpus`` CPUs and one node per entry of ``workers`` (``ray start``
    options: ``{"num-cpus": 1, "memory": 10**9}``), all with ``env`` (what steps need: the remote
    cache's credentials); stopped when the block ends."""
    port, client = free_port(), free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # Ray's sockets need a short path
    env = {**os.environ, **env, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    cluster = Cluster(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client}")
    try:
        cluster.nodes.append(_start(["--head", f"--port={port}", f"--ray-client-server-port={client}",
                                     "--node-ip-address=127.0.0.1", f"--num-cpus={head_cpus}",
                                     "--include-dashboard=false", f"--temp-dir={temp}"], env, temp / "head.log"))
        for options in workers or []:
            extra = [f"--{name}={value}" for name, value in options.items()]
            cluster.nodes.append(_start([f"--address={cluster.address}", "--node-ip-address=127.0.0.1", *extra],
                                        env, temp / "workers.log"))
        # through Ray Client, whose server starts after the head: then both ways in are ready
        _wait_for_nodes(cluster.client, len(cluster.nodes), env, time.monotonic() + 240)
        yield cluster
    finally:
        for node in reversed(cluster.nodes):
            _stop(node)


def _stop(node: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGKILL, 10)):  # SIGINT: `ray start --block` stops its node
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
