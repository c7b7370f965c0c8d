"""Registration as a build target, against Ollama 0.12 and today's Ollama (a stand-in modelled on
Ollama's source, tests/ollama/fake_server.py; the current generation re-encodes GGUFs with the real
``llama-quantize ... COPY``): fresh stays fresh, nothing is uploaded twice, and what Ollama lost
or changed is registered again.

A ready GGUF shipped as is keeps the project free of conversions; its F32 tensors are what
``convert_hf_to_gguf.py``-style writers produce, so today's Ollama rewrites it on create.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import READY_GGUF_SPEC, ROOT, modelkit

from modelkit.errors import SpecError
from modelkit.project import Project

sys.path.insert(0, str(ROOT / "tests" / "ollama"))
from fake_server import FakeOllama
from gguf_files import write_tiny_gguf
from ollama_fixtures import GENERATION_PARAMS, start_fake, unregister

SPEC = READY_GGUF_SPEC.replace("temperature = 0.5", 'temperature = 0.5, stop = ["</s>"]')
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
          "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
WITH_TOOLS = ("{% if tools %}{{ tools | tojson }}{% endif %}{% for message in messages %}{{ message['content'] }}"
              "{% if message.tool_calls %}{{ message.tool_calls | tojson }}{% endif %}{% endfor %}")


@pytest.fixture(params=GENERATION_PARAMS)
def ollama(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with start_fake(request, request.param) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.host)
        yield server


def project(tmp_path: Path, spec: str = SPEC, chat_template: str | None = None) -> Path:
    write_tiny_gguf(tmp_path / "model.gguf", chat_template=chat_template)
    (tmp_path / "model.toml").write_text(spec)
    return tmp_path / "model.toml"


def build(spec: Path) -> list[str]:
    result = Project.open(spec).build()
    assert result.ok and not result.deferred, (result.failed, result.deferred)
    return result.ran


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI against the stand-in server this test put in $OLLAMA_HOST."""
    return modelkit(*args, cwd=cwd, ollama_host=os.environ.get("OLLAMA_HOST"), timeout=120)


def test_a_ready_gguf_is_shipped_as_is_and_registered(tmp_path: Path, ollama: FakeOllama) -> None:
    spec = project(tmp_path)
    [variant] = Project.open(spec).variants
    assert variant.ref == "bot:f32"  # the tag comes from the GGUF's own file type
    assert sorted(build(spec)) == sorted([variant.modelfile_target, *variant.registrations])
    assert {m[-1] for m in ollama.models} >= {variant.tag, "latest"}
    assert {s.state for s in Project.open(spec).plan()} == {"fresh"}


def test_a_no_op_build_makes_no_create_call_and_uploads_nothing(tmp_path: Path, ollama: FakeOllama) -> None:
    """Issue 1: today's Ollama stores ``llama-quantize ... COPY``'s output, under another digest."""
    spec = project(tmp_path)
    build(spec)
    creates, uploaded = ollama.log.create_calls, ollama.log.bytes_uploaded
    assert uploaded == (tmp_path / "model.gguf").stat().st_size
    assert build(spec) == []
    assert (ollama.log.create_calls, ollama.log.bytes_uploaded) == (creates, uploaded)


def test_stops_ollama_adds_from_a_template_it_recognises_leave_it_fresh(tmp_path: Path, ollama: FakeOllama) -> None:
    """Issue 2: create merges the stop list of the named template nearest the GGUF's Jinja
    (chatml here) when the request sets no ``stop``, also when a TEMPLATE is sent."""
    spec = project(tmp_path, SPEC.replace(', stop = ["</s>"]', ""), chat_template=CHATML)
    build(spec)
    assert "stop" in ollama.model("bot:f32").parameters
    assert build(spec) == []


def test_a_server_that_renders_the_ggufs_jinja_is_said_once_and_stays_fresh(tmp_path: Path, request: pytest.FixtureRequest,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 3: today's Ollama shows (and renders) the GGUF's Jinja when it has more capabilities
    than the TEMPLATE (``shouldPreferChatTemplate``); the build says so, once, and inspect too."""
    spec = project(tmp_path, chat_template=WITH_TOOLS)
    with start_fake(request, "current") as server:
        env = {"OLLAMA_HOST": server.host, "NO_PROXY": "127.0.0.1,localhost"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        proc = cli("build", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.count("renders the GGUF's own chat template") == 1  # two registrations, one note
        assert build(spec) == []
        facts = json.loads(cli("inspect", "bot:f32", "--json", cwd=tmp_path).stdout)
        assert facts["ollama_renders"].startswith("the GGUF's own Jinja, through llama.cpp (Ollama ≥ 0.30's native chat mode: it can do tools")


def test_a_params_only_change_after_a_restart_uploads_nothing(tmp_path: Path, ollama: FakeOllama) -> None:
    """Issue 4: ``ollama serve`` prunes blobs no manifest references when it starts; the uploaded
    original is one of them when the server keeps a re-encoded copy."""
    spec = project(tmp_path)
    build(spec)
    uploaded = ollama.log.bytes_uploaded
    ollama.restart(elapsed=2 * 3600)
    spec.write_text(spec.read_text().replace("temperature = 0.5", "temperature = 0.9"))
    assert sorted(n.split(":")[0] for n in build(spec)) == ["modelfile", "ollama", "ollama"]
    assert ollama.log.bytes_uploaded == uploaded
    assert ollama.model("bot:f32").parameters["temperature"] == 0.9


def test_a_model_removed_from_ollama_is_registered_again(tmp_path: Path, ollama: FakeOllama) -> None:
    """Issue 5: the receipt is never restored from the artifact cache: Ollama no longer has it."""
    spec = project(tmp_path)
    build(spec)
    for name in ("bot:f32", "bot:latest"):
        assert unregister(name, host=ollama.host)
    stale = {s.name: s.reason for s in Project.open(spec).plan() if s.state == "stale"}
    assert stale == {"ollama:bot:f32": "Ollama: not in Ollama", "ollama:bot:latest": "Ollama: not in Ollama"}
    creates = ollama.log.create_calls
    assert sorted(build(spec)) == ["ollama:bot:f32", "ollama:bot:latest"]
    assert ollama.log.create_calls == creates + 2
    assert ollama.model("bot:f32") is not None and ollama.model("bot:latest") is not None


def test_a_model_changed_by_hand_is_registered_again(tmp_path: Path, ollama: FakeOllama) -> None:
    spec = project(tmp_path)
    build(spec)
    held = ollama.model("bot:f32").model_blob
    import ollama as client

    client.Client(host=ollama.host).create(model="bot:f32", files={"m.gguf": held}, system="edited by hand")
    reasons = {s.name: s.reason for s in Project.open(spec).plan() if s.state == "stale"}
    assert reasons == {"ollama:bot:f32": "Ollama: Ollama's copy changed since it was registered (system prompt differs)"}
    build(spec)
    assert ollama.model("bot:f32").system == "Be brief."


def test_typical_p_is_a_parameter_like_the_others(tmp_path: Path, ollama: FakeOllama) -> None:
    """Issue 6: Ollama accepts and forwards ``typical_p`` (api/types.go)."""
    spec = project(tmp_path, SPEC.replace("temperature = 0.5", "typical_p = 0.7"))
    build(spec)
    assert ollama.model("bot:f32").parameters["typical_p"] == 0.7


def test_a_tag_ollama_would_reinterpret_is_refused(tmp_path: Path) -> None:
    spec = project(tmp_path, SPEC + 'tag = "{quant}-cloud"\n')
    with pytest.raises(SpecError, match="ollama.tag: .*is reserved"):
        Project.open(spec)


def test_register_through_ollama_create_in_a_folder_with_spaces(tmp_path: Path, ollama: FakeOllama,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI path: `ollama create NAME -f MODELFILE` (a stand-in that follows Ollama's CLI)."""
    project = tmp_path / "my project"
    project.mkdir()
    write_tiny_gguf(project / "model.gguf")
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
    creates = ollama.log.create_calls
    assert "everything is up to date" in cli("build", cwd=project).stderr
    assert ollama.log.create_calls == creates


def test_inspect_a_gguf_and_a_variant(tmp_path: Path, ollama: FakeOllama) -> None:
    folder = project(tmp_path).parent
    assert cli("build", cwd=folder).returncode == 0
    info = json.loads(cli("inspect", "model.gguf", "--json", cwd=folder).stdout)
    assert info["architecture"] == "llama" and info["quantization"] == "F32" and info["type"] == "model"
    variant = json.loads(cli("inspect", "bot:f32", "--json", cwd=folder).stdout)
    assert variant["variant"] == "bot:f32" and variant["chat_template"] == "given in the spec"
    assert variant["registered_as"] == ["bot:f32", "bot:latest"]
    assert variant["ollama_renders"] == "the Modelfile's TEMPLATE (Go), in every Ollama"
    proc = cli("inspect", "bot:q9", cwd=folder)
    assert proc.returncode == 2 and "no variant 'bot:q9'" in proc.stderr
