"""Intermediate targets (make's ``.INTERMEDIATE``), with cheap actions: removed once every reader is up
to date, their absence staling nothing, made again (or restored) when a reader needs them, under
``-j``, kills and a remote cache; and the disk checked before a step writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_actions import FileAction, digest_of_all

from modelkit.core.engine import Engine
from modelkit.core.graph import Graph, Target
from modelkit.core.remote_cache import RemoteCache
from modelkit.core.state import State
from modelkit.errors import UserError


class Chain:
    """checkpoint -> full (intermediate) -> q4, q8 (shipped); ``extra`` adds q2, another reader."""

    def __init__(self, root: Path, remove: bool = True, remote: RemoteCache | None = None) -> None:
        self.root, self.remove, self.remote = root, remove, remote
        root.mkdir(parents=True, exist_ok=True)
        (root / "checkpoint.bin").write_bytes(b"weights" * 1000)
        self.state = State(root / ".modelkit")
        self.ran: list[str] = []

    def engine(self, types: tuple[str, ...] = ("q4", "q8"), size: int | None = None) -> Engine:
        build = self.root / "build"
        full = FileAction(build / "full.bin", [self.root / "checkpoint.bin"], name="full", ran=self.ran,
                          compute=digest_of_all)
        if size is not None:
            full.output_bytes = lambda: size  # type: ignore[method-assign]  # a step that says how much it writes
        targets = [Target("full", full, intermediate=True)]
        for t in types:
            targets.append(Target(t, FileAction(build / f"{t}.bin", reads=[build / "full.bin"], params={"type": t},
                                                name=t, ran=self.ran, compute=digest_of_all), ("full",)))
        return Engine(Graph(targets), self.root, self.state, remote=self.remote,
                      remove_intermediates=self.remove, disk_hint=lambda: "free something")

    def states(self, engine: Engine) -> dict[str, tuple[str, str]]:
        return {s.name: (s.state, s.reason) for s in engine.plan()}


def test_an_intermediate_is_removed_once_read_and_its_absence_stales_nothing(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    result = chain.engine().build()
    assert sorted(result.ran) == ["full", "q4", "q8"] and result.removed == ["full"]
    assert not (tmp_path / "build" / "full.bin").exists() and (tmp_path / "build" / "q8.bin").is_file()
    engine = chain.engine()
    assert chain.states(engine) == {"full": ("removed", "intermediate (removed)"), "q4": ("fresh", "up to date"),
                                    "q8": ("fresh", "up to date")}
    again = engine.build()
    assert again.ran == [] and again.removed == ["full"] and again.unneeded == []


def test_a_new_reader_makes_it_again(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.engine().build()
    result = chain.engine(("q4", "q8", "q2")).build()
    assert result.ran == ["full", "q2"] and result.removed == ["full"], result
    assert chain.ran.count("full") == 2 and not (chain.root / "build" / "full.bin").exists()


def test_keeping_everything_removes_nothing_and_makes_a_removed_one_again_when_needed(tmp_path: Path) -> None:
    removing = Chain(tmp_path / "shipped")
    removing.engine().build()
    assert len(list((removing.root / ".modelkit" / "cache").iterdir())) == 2  # its cache entry is gone too
    keeping = Chain(tmp_path / "shipped", remove=False)
    result = keeping.engine(("q4", "q8", "q2")).build()
    assert result.ran == ["full", "q2"] and result.removed == [] and (keeping.root / "build" / "full.bin").is_file()
    again = Chain(tmp_path / "all", remove=False)
    assert sorted(again.engine().build().ran) == ["full", "q4", "q8"] and (again.root / "build" / "full.bin").is_file()


def test_a_partial_build_keeps_it_while_a_reader_outside_it_is_not_up_to_date(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    result = chain.engine().build(["q4"])
    assert result.ran == ["full", "q4"] and result.removed == []
    assert (tmp_path / "build" / "full.bin").is_file()  # q8 still reads it
    assert chain.engine().build().removed == ["full"] and chain.ran.count("full") == 1


def test_force_makes_it_again_and_a_changed_input_runs_the_chain(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    chain.engine().build()
    assert chain.engine().build(force=["q4"]).ran == ["full", "q4"]  # restored for q4, removed again
    (tmp_path / "checkpoint.bin").write_bytes(b"other" * 1000)
    result = chain.engine().build()
    assert sorted(result.ran) == ["full", "q4", "q8"] and result.removed == ["full"]


def test_under_jobs_the_same(tmp_path: Path) -> None:
    chain = Chain(tmp_path)
    result = chain.engine(("q4", "q8", "q2", "q3")).build(jobs=4)
    assert sorted(result.ran) == ["full", "q2", "q3", "q4", "q8"] and result.removed == ["full"]
    assert sorted(p.name for p in (tmp_path / "build").iterdir()) == ["q2.bin", "q3.bin", "q4.bin", "q8.bin"]


def test_with_a_remote_a_removed_intermediate_is_restored_from_it(tmp_path: Path) -> None:
    url = (tmp_path / "shared").as_uri()
    (tmp_path / "shared").mkdir()
    first = Chain(tmp_path / "one", remote=RemoteCache(url))
    first.engine().build()
    first.remote.finish()
    second = Chain(tmp_path / "two", remote=RemoteCache(url))
    result = second.engine(("q4", "q8", "q2")).build()
    second.remote.finish()
    assert second.ran == ["q2"] and result.removed == ["full"]  # q4, q8 and full restored; only q2 computed


def test_a_killed_build_never_leaves_a_reader_that_cannot_be_rebuilt(tmp_path: Path) -> None:
    """Killed while a reader of the intermediate runs: the next build finishes it (the intermediate,
    still there or remade, feeds it)."""
    script = tmp_path / "build.py"
    script.write_text(KILLED.format(tests=str(Path(__file__).parent), root=str(tmp_path / "p")))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    while "q4 running" not in (proc.stdout.readline() or "q4 running"):
        pass
    proc.kill()
    proc.wait()
    chain = Chain(tmp_path / "p")
    result = chain.engine().build()
    assert "q4" in result.ran and result.removed == ["full"] and (tmp_path / "p" / "build" / "q4.bin").is_file()


KILLED = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_intermediates import Chain
chain = Chain(Path({root!r}))
engine = chain.engine()
slow = engine.graph["q4"].action
original = slow.run
def run(ctx):
    print("q4 running", flush=True)
    time.sleep(60)
slow.run = run
engine.build(jobs=1)
"""


def test_a_step_whose_output_cannot_fit_is_refused_before_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    """On a small file system (a tmpfs of 96 MB where this may mount one, as root; else a file system
    that says it has 96 MB free): one line naming the step, what it needs, what is free, the remedy."""
    where = tmp_path / "small"
    where.mkdir()
    mounted = _mount_tmpfs(where, "96m")
    if not mounted:
        real = shutil.disk_usage
        monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=96 << 20))
    try:
        chain = Chain(where)
        result = chain.engine(size=200 << 20).build()
        [(name, error)] = result.failed
        line = str(error)
        assert name == "full" and line.startswith("full: ") and "writes about 210 MB to build/" in line
        assert "is free there" in line and line.endswith("free something") and "\n" not in line
        assert chain.ran == [] and not (where / "build" / "full.bin").exists()
        fits = Chain(where)
        assert fits.engine(size=1 << 20).build().ok  # what fits (with its margin) is built
        for state in (chain.state, fits.state):
            state.close()
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], check=True)


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0
