"""A whole project without llama.cpp: a ready GGUF shipped as is, Modelfiles, what happens without
Ollama, the lock file and gc. (Registration is in test_registration.py; the same flow with
conversion in test_e2e_tiny.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import READY_GGUF_SPEC, ROOT, load_module, modelkit

from modelkit.errors import UserError
from modelkit.project import Project

sys.path.insert(0, str(ROOT / "tests" / "ollama"))
gguf_files = load_module(ROOT / "tests" / "ollama" / "gguf_files.py")

SPEC = READY_GGUF_SPEC


@pytest.fixture
def project(tmp_path: Path) -> Path:
    gguf_files.write_tiny_gguf(tmp_path / "model.gguf")
    (tmp_path / "model.toml").write_text(SPEC)
    return tmp_path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return modelkit(*args, cwd=cwd, ollama_host=os.environ.get("OLLAMA_HOST"), timeout=120)


def names(statuses: list) -> dict[str, str]:
    return {s.name: s.state for s in statuses}


def test_unreachable_ollama_builds_the_rest_and_says_how_to_register(project: Path, monkeypatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", load_module(ROOT / "tests" / "ollama" / "ollama_fixtures.py").free_port_host())
    proc = cli("build", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "not registered" in proc.stderr and "start Ollama" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list((project / "build").glob("*.Modelfile"))


def test_no_ollama_flag_skips_registration(project: Path) -> None:
    proc = cli("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "to register: ollama create bot:" in proc.stderr
    assert not (project / ".modelkit" / "ollama").exists()


def test_lock_file_is_written_and_locked_builds_check_it(project: Path) -> None:
    assert cli("build", "--no-ollama", cwd=project).returncode == 0
    lock = json.loads((project / "modelkit.lock").read_text())
    assert lock["version"] == 1 and set(lock) >= {"sources", "toolchain", "artifacts"}
    assert all(name.startswith("modelfile:") for name in lock["artifacts"])
    assert cli("build", "--no-ollama", "--locked", cwd=project).returncode == 0
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace("Be brief.", "Be very brief."))
    proc = cli("build", "--no-ollama", "--locked", cwd=project)
    assert proc.returncode == 2
    assert "modelkit.lock: the build would change the lock file: artifacts.modelfile:" in proc.stderr
    assert json.loads((project / "modelkit.lock").read_text()) == lock  # not rewritten


@pytest.mark.parametrize("text, message", [
    ("{ not json", "not a valid lock file"),
    ('{"version": 99}', "written by a newer modelkit"),
    ('{"version": 1, "artifacts": []}', "'artifacts' must be a table"),
])
def test_bad_lock_files_are_clear_errors(project: Path, text: str, message: str) -> None:
    (project / "modelkit.lock").write_text(text)
    proc = cli("build", "--no-ollama", cwd=project)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_gc_removes_artifacts_of_targets_the_spec_dropped(project: Path) -> None:
    spec = project / "model.toml"
    assert cli("build", "--no-ollama", cwd=project).returncode == 0
    old = list((project / "build").glob("*.Modelfile"))
    spec.write_text(spec.read_text().replace('name = "bot"', 'name = "bot2"'))
    assert cli("build", "--no-ollama", cwd=project).returncode == 0
    proc = cli("gc", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert not any(p.exists() for p in old)
    assert [p.name for p in (project / "build").glob("*.Modelfile")] == [old[0].name.replace("bot", "bot2", 1)]


def test_second_builder_fails_fast_with_no_wait(project: Path) -> None:
    from modelkit.core.locks import FileLock

    with FileLock(project / ".modelkit" / "build.lock"):
        proc = cli("build", "--no-ollama", "--no-wait", cwd=project)
    assert proc.returncode == 2
    assert f"another modelkit build (pid {__import__('os').getpid()})" in proc.stderr


def test_project_api_rejects_unknown_targets(project: Path) -> None:
    with pytest.raises(UserError, match="no target"):
        Project.open(project / "model.toml").plan(["gguf:nothing"])
