"""SIGKILL a real build process at random moments; every following build must end correct."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, load_module

slow_build = load_module(ROOT / "tests" / "slow_build.py")
SCRIPT = ROOT / "tests" / "slow_build.py"


def run(root: Path, jobs: int) -> list[str]:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(root), str(jobs)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 3])
def test_killed_builds_never_leave_wrong_or_partial_artifacts(tmp_path: Path, jobs: int) -> None:
    """With ``jobs`` > 1 the kill lands while a and d (independent) write at once."""
    rng = random.Random(1234)
    src = tmp_path / "src"
    contents = [b"alpha", b"Beta", b"gamma", b"Delta"]
    src.write_bytes(contents[0])
    run(tmp_path, jobs)
    for trial in range(25):
        old = slow_build.expected(src.read_bytes())
        new_content = contents[(trial + 1) % len(contents)]
        src.write_bytes(new_content)
        new = slow_build.expected(new_content)
        proc = subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path), str(jobs)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.15, 0.9))  # interpreter start-up is ~0.15 s; the steps take ~0.5 s
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # Whatever the kill interrupted, every artifact in place is a complete old or new one.
        for name in "abcd":
            path = tmp_path / "build" / name
            if path.exists():
                assert path.read_bytes() in (old[name], new[name]), (trial, name)
        run(tmp_path, jobs)
        for name, data in new.items():
            assert (tmp_path / "build" / name).read_bytes() == data, (trial, name)
        assert not [p for p in os.listdir(tmp_path / "build") if "modelkit-tmp" in p]
        assert run(tmp_path, jobs) == []  # and the next build has nothing to do
