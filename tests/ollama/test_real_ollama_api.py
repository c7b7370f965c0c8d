"""The registration library against the real Ollama (``real_ollama`` in ``tests/conftest.py``).

Every model a test makes has a unique name and is deleted at the end.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ollama_fixtures import gguf_dir, modelfile_of, unregister, write_modelfile

from modelkit.ollama.cli import register_with_cli
from modelkit.ollama.content import ModelContent
from modelkit.ollama.freshness import held_copy, registration_status
from modelkit.ollama.register import register

pytestmark = [pytest.mark.real_ollama, pytest.mark.slow]


@pytest.fixture
def real_host(real_ollama: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's real Ollama (``tests/conftest.py``), by its address; its ``ollama`` CLI on PATH."""
    monkeypatch.setenv("PATH", real_ollama.env()["PATH"])
    return str(real_ollama.host)


@pytest.fixture
def names(real_host: str) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for name in made:
        unregister(name, host=real_host)


def test_register_check_update_and_cli_against_real_ollama(real_host: str, names: list[str], gguf_dir: Path, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    api_name, cli_name = f"modelkit-test:{tag}", f"modelkit-test:{tag}-cli"
    names += [api_name, cli_name]
    content = ModelContent(
        gguf=gguf_dir / "tiny.Q4_K_M.gguf",
        template="{{ if .System }}<|system|>\n{{ .System }}\n{{ end }}<|user|>\n{{ .Prompt }}\n<|assistant|>\n",
        system='Answer in one line. Quotes: "a" and """b""".',
        parameters={"temperature": 0.7, "num_ctx": 512, "stop": ["<|user|>"]},
        messages=(("user", "ping"), ("assistant", "pong")),
        license=("MIT",),
    )

    assert held_copy(api_name, host=real_host) is None
    result = register(api_name, content, host=real_host)
    assert result.statuses[-1] == "success"
    status = registration_status(api_name, result.copy, host=real_host)
    assert status, status.reason

    tuned = dataclasses.replace(content, parameters={**content.parameters, "temperature": 0.2})
    again = register(api_name, tuned, host=real_host, held=result.held)
    assert again.uploaded == ()  # the server's own copy of the GGUF was used
    assert registration_status(api_name, again.copy, host=real_host)
    assert not registration_status(api_name, result.copy, host=real_host)  # the earlier record is out of date

    folder = tmp_path / "build dir"
    folder.mkdir()
    modelfile = folder / "modelkit test.Modelfile"
    write_modelfile(modelfile, modelfile_of(content, header="spec: test", base_dir=folder))
    register_with_cli(cli_name, modelfile, host=real_host)
    assert held_copy(cli_name, host=real_host) is not None


def test_a_second_build_makes_no_create_call(real_host: str, names: list[str], gguf_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from modelkit.project import Project

    model = f"modelkit-test-{uuid.uuid4().hex[:8]}"
    names += [f"{model}:f32", f"{model}:latest"]
    shutil.copy(gguf_dir / "tiny.Q8_0.gguf", tmp_path / "model.gguf")  # F32 inside: today's Ollama re-encodes it
    (tmp_path / "model.toml").write_text(f'name = "{model}"\n[base]\ngguf = "./model.gguf"\n[quantize]\ntypes = []\n'
                                         '[ollama]\ntemplate = "{{ .Prompt }}"\nsystem = "Be brief."\n')
    monkeypatch.setenv("OLLAMA_HOST", real_host)
    first = Project.open(tmp_path / "model.toml").build()
    assert first.ok and not first.deferred and len([n for n in first.ran if n.startswith("ollama:")]) == 2
    second = Project.open(tmp_path / "model.toml").build()
    assert second.ok and second.ran == []  # fresh: no registration ran, so no create call was made


def test_adapter_variant_is_registered(real_host: str, names: list[str], gguf_dir: Path) -> None:
    name = f"modelkit-test:{uuid.uuid4().hex[:8]}-lora"
    names.append(name)
    content = ModelContent(gguf=gguf_dir / "tiny.Q4_K_M.gguf", adapters=(gguf_dir / "adapter support.gguf",),
                           template="{{ .Prompt }}")
    result = register(name, content, host=real_host)
    assert len(result.copy.adapter_blobs) == 1 and registration_status(name, result.copy, host=real_host)


TOOL_JINJA = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls | tojson }}"
              "{% endif %}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}"
              "{% if message.role == 'tool' %}<tool_response>{% endif %}")


@pytest.mark.toolchain
def test_the_stand_in_answers_as_the_real_server_does(real_host: str, names: list[str], gguf_dir: Path,
                                                      tmp_path: Path, toolchain: Any) -> None:
    """The same registrations against the real Ollama and the stand-in of today's: what ``show``
    answers (template, system, parameters, capabilities, details, the Modelfile's commands) and
    the create statuses agree, for a plain model, one whose GGUF's Jinja has tools (native chat
    mode) and one with an adapter. Parameters are compared as sets: Go prints maps in random order."""
    import httpx
    from fake_server import FakeOllama
    from gguf_files import write_tiny_gguf

    write_tiny_gguf(tmp_path / "tools.gguf", chat_template=TOOL_JINJA)
    cases = {
        "plain": ModelContent(gguf=gguf_dir / "tiny.Q8_0.gguf", template="{{ .Prompt }}", system="Be brief.",
                              parameters={"temperature": 0.2, "num_ctx": 512}, license=("MIT",)),
        "tools": ModelContent(gguf=tmp_path / "tools.gguf", template="{{ range .Messages }}{{ .Content }}{{ end }}"),
        "adapter": ModelContent(gguf=gguf_dir / "tiny.Q4_K_M.gguf", adapters=(gguf_dir / "adapter support.gguf",),
                                template="{{ .Prompt }}"),
    }

    def seen(host: str, name: str, content: ModelContent) -> dict[str, Any]:
        # whether a layer is new depends on what the server held before (the real one is the
        # session's), not on how faithful the stand-in is
        statuses = tuple(re.sub(r"^(using existing|creating new) layer ", "layer ", status)
                         for status in register(name, content, host=host).statuses)
        shown = httpx.post(f"{host}/api/show", json={"model": name}, timeout=60).json()
        commands = [line.split(" ")[0] for line in shown["modelfile"].splitlines() if line and line[0] != "#"]
        return {"statuses": statuses, "commands": commands, "parameters": set((shown.get("parameters") or "").splitlines()),
                **{k: shown.get(k) for k in ("template", "system", "capabilities", "details", "license")}}

    with FakeOllama(generation="current", quantize=toolchain.quantize) as fake:
        for case, content in cases.items():
            name = f"modelkit-test:{uuid.uuid4().hex[:8]}-{case}"
            names.append(name)
            assert seen(fake.host, name, content) == seen(real_host, name, content), case
