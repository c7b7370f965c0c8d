"""A whole project without llama.cpp: a ready GGUF shipped as is, Modelfiles, registration with a
stand-in Ollama, the lock file and gc. (The same flow with conversion is in test_e2e_tiny.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelkit.errors import UserError
from modelkit.project import Project

from conftest import ROOT, load_module

sys.path.insert(0, str(ROOT / "tests" / "ollama"))
fake_server = load_module(ROOT / "tests" / "ollama" / "fake_server.py")
gguf_files = load_module(ROOT / "tests" / "ollama" / "gguf_files.py")

SPEC = """\
name = "bot"

[base]
gguf = "./model.gguf"

[quantize]
types = []

[ollama]
template = "{{ .Prompt }}"
system = "Be brief."
parameters = { temperature = 0.5 }
"""


@pytest.fixture
def ollama(monkeypatch: pytest.MonkeyPatch) -> Iterator:  # type: ignore[type-arg]
    """A stand-in for Ollama's HTTP API (it follows the real protocol; see fake_server.py)."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with fake_server.FakeOllama(adapters="unsupported") as server:
        monkeypatch.setenv("OLLAMA_HOST", server.host)
        yield server


@pytest.fixture
def project(tmp_path: Path) -> Path:
    gguf_files.write_tiny_gguf(tmp_path / "model.gguf")
    (tmp_path / "model.toml").write_text(SPEC)
    return tmp_path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelkit", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def names(statuses: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {s.name: s.state for s in statuses}


def test_a_ready_gguf_is_shipped_as_is_and_registered(project: Path, ollama) -> None:  # type: ignore[no-untyped-def]
    p = Project.open(project / "model.toml")
    [variant] = p.variants
    assert variant.ref == "bot:f32"  # the tag comes from the GGUF's own file type
    result = p.build()
    assert result.ok and not result.deferred
    assert sorted(result.ran) == sorted([variant.modelfile_target, *variant.registrations])
    assert {m[-1] for m in ollama.models} >= {variant.tag, "latest"}
    assert names(Project.open(project / "model.toml").plan()) == {n: "fresh" for n in result.ran}


def test_freshness_asks_ollama_not_only_local_state(project: Path, ollama) -> None:  # type: ignore[no-untyped-def]
    Project.open(project / "model.toml").build()
    ollama.models.clear()  # someone ran `ollama rm`
    statuses = {s.name: s for s in Project.open(project / "model.toml").plan()}
    stale = {n: s.reason for n, s in statuses.items() if s.state == "stale"}
    assert stale and all(n.startswith("ollama:") for n in stale)
    assert all(r == "Ollama: not in Ollama" for r in stale.values())


def test_params_only_change_reregisters_without_uploading(project: Path, ollama) -> None:  # type: ignore[no-untyped-def]
    Project.open(project / "model.toml").build()
    uploads = ollama.log.count("POST", "/api/blobs/")
    assert uploads == 1
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace("temperature = 0.5", "temperature = 0.9"))
    result = Project.open(spec).build()
    assert sorted(n.split(":")[0] for n in result.ran) == ["modelfile", "ollama", "ollama"]
    assert ollama.log.count("POST", "/api/blobs/") == uploads  # the GGUF was not sent again
    assert not list((project / "build").glob("*.gguf"))  # shipped as is: no GGUF was written


def test_unreachable_ollama_builds_the_rest_and_says_how_to_register(project: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
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


def test_register_through_ollama_create_in_a_folder_with_spaces(tmp_path: Path, ollama, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The CLI path: `ollama create NAME -f MODELFILE` (a stand-in that follows Ollama's CLI)."""
    import os
    import stat

    project = tmp_path / "my project"
    project.mkdir()
    gguf_files.write_tiny_gguf(project / "model.gguf")
    (project / "model.toml").write_text(SPEC.replace("[ollama]\n", '[ollama]\nregister = "cli"\n'))
    exe = tmp_path / "bin" / "ollama"
    exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT / 'tests' / 'ollama')!r})\n"
                   "from fake_ollama_cli import main\nsys.exit(main(sys.argv[1:]))\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{exe.parent}:{os.environ['PATH']}")
    proc = cli("build", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "registered as bot:f32, bot:latest" in proc.stderr
    assert {k[-1] for k in ollama.models} == {"f32", "latest"}


def test_inspect_a_gguf_and_a_variant(project: Path, ollama) -> None:  # type: ignore[no-untyped-def]
    assert cli("build", cwd=project).returncode == 0
    info = json.loads(cli("inspect", "model.gguf", "--json", cwd=project).stdout)
    assert info["architecture"] == "llama" and info["quantization"] == "F32" and info["type"] == "model"
    variant = json.loads(cli("inspect", "bot:f32", "--json", cwd=project).stdout)
    assert variant["variant"] == "bot:f32" and variant["chat_template"] == "given in the spec"
    assert variant["registered_as"] == ["bot:f32", "bot:latest"]
    proc = cli("inspect", "bot:q9", cwd=project)
    assert proc.returncode == 2 and "no variant 'bot:q9'" in proc.stderr
