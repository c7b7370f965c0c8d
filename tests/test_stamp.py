"""The no-op shortcut: a build that changed nothing is answered from its stamp, any change is planned again."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from modelkit.core.stamp import read_stamp, recording_reads, write_stamp
from modelkit.project import Project
from tests.conftest import copy_built, modelkit

IMPORTS = {"PYTHONPROFILEIMPORTTIME": "1"}  # each import is a line on stderr: whether the spec was loaded


def build(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = modelkit("build", "--no-ollama", *args, cwd=project, env=IMPORTS | (env or {}))
    assert proc.returncode == 0, proc.stderr
    return proc


def planned(proc: subprocess.CompletedProcess[str]) -> bool:
    return re.search(r"\| +modelkit\.rules$", proc.stderr, re.MULTILINE) is not None


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    """What the user saw, without the import lines and the elapsed time."""
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    return re.sub(r"\d+\.\d+s\)", "s)", "\n".join(lines)) + proc.stdout


@pytest.fixture
def stamped(built_example: Path, tmp_path: Path) -> Path:
    """A copy of the built example whose last build had nothing to do (so it left a stamp)."""
    project = copy_built(built_example, tmp_path / "example")
    assert planned(build(project))
    return project


def test_a_second_no_op_is_answered_from_the_stamp_and_says_the_same(stamped: Path) -> None:
    first = build(stamped)
    assert not planned(first), "the spec was loaded"
    assert "everything is up to date (19 targets" in first.stderr
    files = json.loads((stamped / ".modelkit" / "noop.json").read_text())["files"]
    for only_stated in ("eval.txt", "lora/adapter_model.safetensors", "build/base.f16.gguf"):  # stat cache: never opened
        assert str(stamped / only_stated) in files
    (stamped / ".modelkit" / "noop.json").unlink()
    assert shown(build(stamped)) == shown(first)


def test_a_planned_no_op_reads_the_kept_spec_and_imports_no_pydantic(stamped: Path) -> None:
    (stamped / ".modelkit" / "noop.json").unlink()
    proc = build(stamped)
    assert planned(proc) and "pydantic" not in proc.stderr, "the spec was validated again"
    spec = stamped / "model.toml"
    spec.write_text(spec.read_text() + "\n# a comment\n")
    assert "pydantic" in build(stamped).stderr, "a new text is validated"


def test_a_first_build_keeps_the_spec_it_validated(built_example: Path, tmp_path: Path) -> None:
    """A project's first command finds no state folder to keep its spec in; its build makes one,
    and keeps the spec there, so the first no-op after it imports no pydantic either."""
    project = copy_built(built_example, tmp_path / "example")
    state = project / ".modelkit"
    (state / "spec.json").unlink()
    state.rename(tmp_path / "state")
    first = Project.open(project, register="off")
    assert not first.loaded.kept
    (tmp_path / "state").rename(state)  # as the first build's state folder, made after the spec was loaded
    assert first.build().ok and first.loaded.kept
    assert "pydantic" not in build(project).stderr, "the spec was validated again"


def test_verbose_lists_the_same_fresh_targets(stamped: Path) -> None:
    answered = build(stamped, "-v")
    assert not planned(answered)
    (stamped / ".modelkit" / "noop.json").unlink()
    # the order of fresh targets is the order their checks ended, on worker threads
    assert sorted(shown(build(stamped, "-v")).splitlines()) == sorted(shown(answered).splitlines())
    assert "ok  gguf:base.f16 (up to date)" in shown(answered)


def _edit_spec(p: Path) -> None:
    spec = p / "model.toml"
    spec.write_text(spec.read_text() + "# a comment\n")


def _new_file_beside_the_adapter(p: Path) -> None:
    (p / "lora" / "notes.txt").write_text("notes\n")


def _lost_output(p: Path) -> None:
    (p / "build" / "tiny-support-q8_0.Modelfile").unlink()


def _lost_state(p: Path) -> None:
    (p / ".modelkit" / "state.db").unlink()


@pytest.mark.parametrize("change", [_edit_spec, _new_file_beside_the_adapter, _lost_output, _lost_state],
                         ids=lambda f: f.__name__.strip("_"))
def test_a_change_to_what_the_build_read_or_made_is_planned(stamped: Path, change: object) -> None:
    assert callable(change)
    change(stamped)
    proc = build(stamped)
    assert planned(proc)
    if change is _lost_output:
        assert "built 1 targets" in proc.stderr and (stamped / "build" / "tiny-support-q8_0.Modelfile").is_file()


def test_other_options_or_environment_are_planned_once(stamped: Path) -> None:
    assert not planned(build(stamped, "-j", "1")), "-j changes nothing a no-op prints"
    for options in (["--locked"], ["gguf:base.f16"]):
        assert planned(build(stamped, *options))
        assert not planned(build(stamped, *options))
    assert planned(build(stamped, env={"HF_HUB_OFFLINE": "1"}))


def test_a_moved_user_cache_is_planned(stamped: Path, tmp_path: Path) -> None:
    """$XDG_CACHE_HOME decides where the toolchain is found: moved, the stamp cannot answer (here
    the new folder leads to the same toolchain, so the plan finds everything up to date)."""
    from modelkit.toolchain import cache_root

    xdg = tmp_path / "xdg"
    xdg.mkdir()
    (xdg / "modelkit").symlink_to(cache_root())
    proc = build(stamped, env={"XDG_CACHE_HOME": str(xdg)})
    assert planned(proc) and "everything is up to date" in proc.stderr


def test_a_stamp_keeps_no_value_of_the_environment(stamped: Path) -> None:
    """Tokens live in the environment (HF_TOKEN): the stamp keeps a digest of it, not its values."""
    build(stamped, env={"HF_TOKEN": "hf_secret_value"})
    assert "hf_secret_value" not in (stamped / ".modelkit" / "noop.json").read_text()


def test_a_build_that_asks_ollama_is_never_answered_from_a_stamp(stamped: Path) -> None:
    (stamped / ".modelkit" / "noop.json").unlink()
    for _ in range(2):
        proc = modelkit("build", cwd=stamped, env=IMPORTS)
        assert proc.returncode == 0 and planned(proc), proc.stderr
    assert not (stamped / ".modelkit" / "noop.json").exists()


def test_a_stamp_records_what_was_opened_listed_and_imported(tmp_path: Path) -> None:
    data, state = tmp_path / "data", tmp_path / "state"
    (data / "folder").mkdir(parents=True)
    state.mkdir()
    (data / "read.txt").write_text("x")
    with recording_reads() as reads:
        (data / "read.txt").read_text()
        list((data / "folder").iterdir())
        try:
            (data / "absent.txt").read_text()
        except FileNotFoundError:
            pass
    _age(data, data / "read.txt", data / "folder")
    write_stamp(state / "stamp.json", {"k": 1}, reads, {"summary": ""})
    stamp = read_stamp(state / "stamp.json", {"k": 1})
    assert stamp is not None
    assert {str(data / n) for n in ("read.txt", "folder", "absent.txt")} | {str(data), __file__} <= set(stamp.files)
    assert stamp.files[str(data / "absent.txt")] is None
    assert read_stamp(state / "stamp.json", {"k": 2}) is None
    (data / "absent.txt").write_text("now here")
    assert read_stamp(state / "stamp.json", {"k": 1}) is None


def test_a_file_changed_in_the_same_clock_tick_as_the_stamp_is_not_trusted(tmp_path: Path) -> None:
    data, state = tmp_path / "data", tmp_path / "state"
    data.mkdir()
    state.mkdir()
    (data / "data.txt").write_text("a")
    with recording_reads() as reads:
        (data / "data.txt").read_text()
    _age(data, data / "data.txt")
    write_stamp(state / "stamp.json", {}, reads, {})
    assert read_stamp(state / "stamp.json", {}) is not None
    tick = os.stat(data / "data.txt").st_mtime_ns
    os.utime(state / "stamp.json", ns=(tick, tick))  # the file was written in the tick the stamp was
    assert read_stamp(state / "stamp.json", {}) is None


def _age(*paths: Path) -> None:
    """Date ``paths`` a minute back, as files made before the build that stamps them."""
    old = os.stat(paths[0]).st_mtime_ns - 60 * 10**9
    for path in paths:
        os.utime(path, ns=(old, old))
