"""The engine with cheap actions: staleness by content, reasons, early cutoff, atomic outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_actions import FileAction
from fixed_tools import FixedTools

from modelkit.core.action import StepContext
from modelkit.core.engine import Engine
from modelkit.core.graph import Graph, Target
from modelkit.core.state import State
from modelkit.errors import StepError, UserError


def by_mode(params: dict[str, Any], sources: list[bytes], reads: list[bytes]) -> bytes:
    data = b"".join(sources + reads)
    if params["mode"] == "upper":
        return data.upper()
    return str(len(data)).encode() if params["mode"] == "length" else data


def Concat(out: Path, sources: list[Path] = (), reads: list[Path] = (), mode: str = "plain",
           tool: str | None = None, fail: bool = False) -> FileAction:
    """Writes its source files then its dependencies' outputs, transformed by ``mode``."""
    return FileAction(out, sources, reads, params={"mode": mode}, compute=by_mode, tool=tool, fail=fail)


class Project:
    """A two-step chain: a.txt + b.txt -> mid.txt -> final.txt."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "a.txt").write_text("a")
        (root / "b.txt").write_text("b")
        self.state = State(root / ".modelkit")
        self.fingerprint: dict[str, Any] = {"version": 1}
        self.installed = True

    def engine(self, mid_mode: str = "plain", final_mode: str = "plain", fail_final: bool = False) -> Engine:
        build = self.root / "build"
        self.mid = Concat(build / "mid.txt", [self.root / "a.txt", self.root / "b.txt"], mode=mid_mode, tool="t")
        self.final = Concat(build / "final.txt", reads=[build / "mid.txt"], mode=final_mode, fail=fail_final)
        graph = Graph([Target("mid", self.mid), Target("final", self.final, ("mid",))])
        return Engine(graph, self.root, self.state, tools=FixedTools(dict(self.fingerprint), installed=self.installed))

    def reasons(self, engine: Engine) -> dict[str, tuple[str, str]]:
        return {s.name: (s.state, s.reason) for s in engine.plan()}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def test_first_build_runs_everything_then_nothing(project: Project) -> None:
    engine = project.engine()
    assert project.reasons(engine) == {"mid": ("stale", "never built"), "final": ("stale", "never built")}
    result = engine.build()
    assert result.ran == ["mid", "final"]
    assert (project.root / "build" / "final.txt").read_text() == "ab"
    engine = project.engine()
    assert engine.build().ran == []
    assert project.reasons(engine) == {"mid": ("fresh", "up to date"), "final": ("fresh", "up to date")}


def test_input_change_names_the_file_and_rebuilds_downstream(project: Project) -> None:
    project.engine().build()
    (project.root / "a.txt").write_text("A")
    engine = project.engine()
    reasons = project.reasons(engine)
    assert reasons["mid"][0] == "stale" and reasons["mid"][1].startswith("input changed: a.txt (")
    assert reasons["final"] == ("pending", "runs if mid changes its output")
    assert engine.build().ran == ["mid", "final"]
    assert (project.root / "build" / "final.txt").read_text() == "Ab"


def test_touch_without_change_rebuilds_nothing(project: Project) -> None:
    project.engine().build()
    a = project.root / "a.txt"
    a.write_text("a")  # new mtime, same bytes
    assert project.engine().build().ran == []


def test_params_change_is_explained(project: Project) -> None:
    project.engine().build()
    engine = project.engine(final_mode="upper")
    assert project.reasons(engine)["final"] == ("stale", 'params changed: mode "plain" -> "upper"')
    assert engine.build().ran == ["final"]


def test_toolchain_change_rebuilds_only_what_uses_it_and_cuts_off(project: Project) -> None:
    project.engine().build()
    project.fingerprint = {"version": 2}
    engine = project.engine()
    assert project.reasons(engine)["mid"] == ("stale", "toolchain changed: version 1 -> 2")
    result = engine.build()
    # mid re-ran but wrote the same bytes, so final stays fresh (early cutoff).
    assert result.ran == ["mid"] and result.unchanged == ["mid"] and result.fresh == ["final"]


def test_a_toolchain_that_went_missing_is_said_in_the_tools_own_words(project: Project) -> None:
    """The core names no tool: the Tools protocol's None fingerprint and describe() word the reason."""
    project.engine().build()
    project.installed = False
    assert project.reasons(project.engine())["mid"] == (
        "stale", "toolchain not installed: the test's tools, which it never installs")
    assert project.reasons(project.engine())["final"][0] == "pending"


def test_early_cutoff_when_a_rebuilt_output_is_identical(project: Project) -> None:
    project.engine(mid_mode="length").build()  # mid = "2"
    (project.root / "a.txt").write_text("z")   # still 2 bytes
    engine = project.engine(mid_mode="length")
    result = engine.build()
    assert result.ran == ["mid"] and result.fresh == ["final"]
    assert project.final.runs == 0


def test_missing_and_modified_outputs_are_rebuilt(project: Project) -> None:
    project.engine().build()
    final = project.root / "build" / "final.txt"
    final.write_text("tampered")
    engine = project.engine()
    assert project.reasons(engine)["final"] == ("stale", "output modified: build/final.txt")
    engine.build()
    assert final.read_text() == "ab"
    final.unlink()
    engine = project.engine()
    assert project.reasons(engine)["final"] == ("stale", "output missing: build/final.txt")
    assert engine.build().ran == ["final"]


def test_failed_step_keeps_the_previous_artifact_and_leaves_no_temporaries(project: Project) -> None:
    project.engine().build()
    (project.root / "a.txt").write_text("A")
    result = project.engine(fail_final=True).build()
    assert [name for name, _ in result.failed] == ["final"]
    build = project.root / "build"
    assert (build / "final.txt").read_text() == "ab"  # the old good artifact, not "partial"
    assert sorted(p.name for p in build.iterdir()) == ["final.txt", "mid.txt"]
    # The failed target is still stale: the next build retries it.
    engine = project.engine()
    assert project.reasons(engine)["final"][0] == "stale"
    assert engine.build().ran == ["final"]
    assert (build / "final.txt").read_text() == "Ab"


def test_dependents_of_a_failed_step_are_skipped_with_keep_going(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    bad = Concat(tmp_path / "bad", [tmp_path / "x"], fail=True)
    after = Concat(tmp_path / "after", reads=[tmp_path / "bad"])
    good = Concat(tmp_path / "good", [tmp_path / "x"])
    graph = Graph([Target("bad", bad), Target("after", after, ("bad",)), Target("good", good)])
    result = Engine(graph, tmp_path, State(tmp_path / ".m")).build(keep_going=True)
    assert [n for n, _ in result.failed] == ["bad"]
    assert result.skipped == ["after"] and result.ran == ["good"]


def test_building_one_target_builds_only_what_it_needs(project: Project) -> None:
    engine = project.engine()
    assert engine.build(["mid"]).ran == ["mid"]
    assert not (project.root / "build" / "final.txt").exists()


def test_force_rebuilds_a_fresh_target(project: Project) -> None:
    project.engine().build()
    engine = project.engine()
    assert [s.reason for s in engine.plan(force=["final"])] == ["up to date", "forced"]
    assert engine.build(force=["final"]).ran == ["final"]


def test_missing_input_is_a_clear_user_error(project: Project) -> None:
    (project.root / "b.txt").unlink()
    with pytest.raises(UserError, match=r"mid: input b.txt is missing"):
        project.engine().plan()


def test_unknown_target_suggests(project: Project) -> None:
    with pytest.raises(UserError, match="did you mean 'final'"):
        project.engine().plan(["finale"])


def test_no_op_build_reads_no_file_contents(project: Project) -> None:
    import os
    import time

    # Inputs written in the same instant as they are hashed are "racy" and get hashed again once
    # (as git does); inputs written earlier, as in real use, are never read again.
    for name in ("a.txt", "b.txt"):
        os.utime(project.root / name, ns=(time.time_ns() - 10**10,) * 2)
    project.engine().build()
    engine = project.engine()
    engine.build()
    assert engine.hasher.bytes_read == 0


def test_corrupt_state_is_moved_aside_and_rebuilt(project: Project) -> None:
    project.engine().build()
    project.state.close()
    (project.root / ".modelkit" / "state.db").write_bytes(b"this is not sqlite" * 100)
    for suffix in ("-wal", "-shm"):
        (project.root / ".modelkit" / f"state.db{suffix}").unlink(missing_ok=True)
    project.state = State(project.root / ".modelkit")
    assert project.state.notice and "moved it to" in project.state.notice
    assert project.engine().build().ran == ["mid", "final"]


def test_switching_back_restores_from_the_artifact_cache_without_running(project: Project) -> None:
    import os

    project.engine().build()
    first = project.root / "build" / "final.txt"
    project.engine(final_mode="upper").build()
    assert first.read_text() == "AB"
    engine = project.engine()
    result = engine.build()
    assert result.ran == ["final"] and project.final.runs == 0  # restored, not recomputed
    assert first.read_text() == "ab"
    cached = list((project.root / ".modelkit" / "cache").rglob("*final.txt"))
    assert any(os.path.samefile(p, first) for p in cached)  # a hard link, not a copy
    assert project.engine().build().ran == []


def test_a_modified_cache_entry_is_never_restored(project: Project) -> None:
    project.engine().build()
    project.engine(final_mode="upper").build()
    for p in (project.root / ".modelkit" / "cache").rglob("*final.txt"):
        if p.read_text() == "ab":
            p.unlink()
            p.write_text("evil")
    engine = project.engine()
    engine.build()
    assert project.final.runs == 1
    assert (project.root / "build" / "final.txt").read_text() == "ab"


def test_leftover_temporaries_are_cleaned_on_the_next_build(project: Project) -> None:
    project.engine().build()
    leftover = project.root / "build" / ".final.txt.modelkit-tmp-99999"
    leftover.write_text("half")
    project.engine().build()
    assert not leftover.exists()


def test_unwritable_build_folder_is_a_clear_error(project: Project) -> None:
    # A file where the build folder should be fails the same way a read-only folder does (and,
    # unlike file permissions, also when the tests run as root).
    (project.root / "build").write_text("not a folder")
    result = project.engine().build()
    [(name, error)] = result.failed
    assert name == "mid" and isinstance(error, UserError)
    assert str(error).startswith("mid: cannot write ") and "build" in str(error)


def test_stat_cache_distrusts_entries_recorded_in_the_same_instant(tmp_path: Path) -> None:
    """"Racy" entries (file modified within a timestamp tick of being hashed) are rehashed, as in git."""
    import time

    from modelkit.core.state import FileStat

    state = State(tmp_path / "s")
    now = time.time_ns()
    racy = FileStat(1, 2, 3, now, now)
    state.set_digest("f", racy, "sha256:x")
    assert state.cached_digest("f", racy) is None
    old = FileStat(1, 2, 3, now - 10**10, now - 10**10)
    state.set_digest("g", old, "sha256:y")
    assert state.cached_digest("g", old) == "sha256:y"
    assert state.cached_digest("g", FileStat(1, 2, 4, now - 10**10, now - 10**10)) is None
    state.set_digest("h", racy, "sha256:z", trusted=True)  # modelkit's own outputs
    assert state.cached_digest("h", racy) == "sha256:z"


def test_a_full_disk_is_a_clear_error_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    import errno

    class FillsTheDisk(FileAction):
        def run(self, ctx: StepContext) -> None:
            ctx.tmp(self.out).write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device", str(ctx.tmp(self.out)))

    (tmp_path / "x").write_text("x")
    out = tmp_path / "build" / "big.gguf"
    out.parent.mkdir()
    out.write_text("the previous good artifact")
    engine = Engine(Graph([Target("big", FillsTheDisk(out, [tmp_path / "x"]))]), tmp_path,
                    State(tmp_path / ".m"))
    [(name, error)] = engine.build().failed
    assert isinstance(error, UserError)
    assert str(error).startswith("big: cannot write ") and str(error).endswith("No space left on device")
    assert out.read_text() == "the previous good artifact"
    assert [p.name for p in out.parent.iterdir()] == ["big.gguf"]
    assert engine.plan()[0].state == "stale"


def test_an_input_removed_before_its_step_is_a_clear_error(project: Project) -> None:
    engine = project.engine()
    engine.build(["mid"])
    (project.root / "a.txt").unlink()  # e.g. a checkpoint folder cleaned up while the build runs
    result = engine.build()
    [(name, error)] = result.failed
    assert name == "mid" and isinstance(error, UserError) and "input a.txt is missing" in str(error)


def test_an_action_that_records_the_outside_world_is_never_restored_from_the_cache(tmp_path: Path) -> None:
    """A registration's receipt says what a server held when it was written: going back to an
    earlier key must run the action again, never link the old receipt back."""

    class Receipt(FileAction, cacheable=False):
        pass

    source = tmp_path / "x"
    out = tmp_path / "build" / "receipt"

    def build(text: str) -> Receipt:
        source.write_text(text)
        action = Receipt(out, [source])
        Engine(Graph([Target("r", action)]), tmp_path, State(tmp_path / ".m")).build()
        return action

    assert build("a").runs == 1 and build("b").runs == 1
    assert build("a").runs == 1  # the same key as the first build, and it ran
    assert not list((tmp_path / ".m" / "cache").glob("*/*receipt"))
