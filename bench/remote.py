"""The remote artifact cache: a second machine's build from the first one's uploads.

Two project folders with separate state build the tiny example (without its quality sections)
through one S3 remote, moto's server on loopback: the first builds everything and uploads it
(its build returns once the uploads are done), the second (with the first one's modelkit.lock,
``--locked``) restores everything. Printed: the second build's time as a ratio of the first's,
measured in the same run, and the bytes each transferred against the artifacts' total size
(goal: the second reads each artifact once, so 1.00x, and uploads nothing).

``MODELKIT_BENCH_TINY``: a folder made by ``examples/tiny/make_tiny.py`` to reuse (making one
takes 20 s to minutes, depending on the machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from modelkit import Project
from modelkit.core.remote_cache import ENV

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import copy_example, without_quality  # noqa: E402 - after the sys.path entry that finds it
from s3_server import client_env, make_bucket, moto_server  # noqa: E402 - after the sys.path entry that finds it


def tiny_model(tmp: Path) -> Path:
    given = os.environ.get("MODELKIT_BENCH_TINY")
    if given:
        return Path(given)
    subprocess.run([sys.executable, str(ROOT / "examples" / "tiny" / "make_tiny.py"), str(tmp / "tiny")],
                   check=True, capture_output=True)
    return tmp / "tiny"


def build(folder: Path, locked: bool) -> tuple[float, int, int]:
    """Seconds, bytes restored and bytes uploaded of one build of ``folder``."""
    project = Project.open(folder, register="off")
    project.notify = lambda line: print(f"  note: {line}")
    started = time.perf_counter()
    result = project.build(locked=locked)
    seconds = time.perf_counter() - started
    assert result.ok, result.failed
    remote = project.remote
    assert remote is not None
    return seconds, remote.bytes_down, remote.bytes_up


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("MODELKIT_BENCH_TMP")) as tmp_name, moto_server() as endpoint:
        tmp = Path(tmp_name)
        model = tiny_model(tmp)
        os.environ.update(client_env(endpoint))
        os.environ[ENV] = f"s3://{make_bucket(endpoint)}/modelkit"
        folders = []
        for name in ("gpu-box", "laptop"):
            folder = copy_example(model, tmp / name)
            (folder / "model.toml").write_text(without_quality((folder / "model.toml").read_text()))
            folders.append(folder)
        first = build(folders[0], locked=False)
        shutil.copy(folders[0] / "modelkit.lock", folders[1] / "modelkit.lock")
        second = build(folders[1], locked=True)
        artifacts = sum(p.stat().st_size for p in (folders[0] / "build").iterdir() if p.is_file())
        same = all((folders[1] / "build" / p.name).read_bytes() == p.read_bytes()
                   for p in (folders[0] / "build").glob("*.gguf"))
        print(f"artifacts: {artifacts / 2**20:.1f} MB in build/ (identical GGUFs on both machines: {same})")
        print(f"first machine (builds, uploads):  {first[0]:6.2f} s, uploaded {first[2] / artifacts:.2f}x "
              "the artifacts' size")
        print(f"second machine (restores):        {second[0]:6.2f} s, downloaded {second[1] / artifacts:.2f}x, "
              f"uploaded {second[2]} bytes")
        print(f"second / first build time: {second[0] / first[0]:.3f}")
