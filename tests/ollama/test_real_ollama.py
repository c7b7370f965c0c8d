"""The whole registration flow against a real Ollama, when ``ollama`` is on PATH (skipped otherwise).

Uses the server at ``OLLAMA_HOST`` (or the default address) when one answers; otherwise starts
``ollama serve`` on a free port with a throwaway model store, and stops it afterwards. Every model
it makes has a unique name and is deleted at the end.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ollama_fixtures import free_port_host, gguf_dir, modelfile_of, unregister, write_modelfile  # noqa: F401
from modelkit.errors import OllamaUnavailable
from modelkit.ollama.cli import register_with_cli
from modelkit.ollama.client import server_version
from modelkit.ollama.content import ModelContent
from modelkit.ollama.freshness import held_copy, registration_status
from modelkit.ollama.register import register

pytestmark = [pytest.mark.ollama, pytest.mark.slow]


@pytest.fixture(scope="module")
def real_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = shutil.which("ollama")
    if exe is None:
        pytest.skip("no `ollama` on PATH")
    host = os.environ.get("OLLAMA_HOST") or "http://127.0.0.1:11434"
    try:
        server_version(host=host)
        running = True
    except OllamaUnavailable:
        running = False
    if running:
        yield host
        return
    host = free_port_host()
    store = tmp_path_factory.mktemp("ollama-models")
    env = {**os.environ, "OLLAMA_HOST": host.removeprefix("http://"), "OLLAMA_MODELS": str(store)}
    log = (store / "serve.log").open("wb")
    proc = subprocess.Popen([exe, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                server_version(host=host)
                break
            except OllamaUnavailable:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`ollama serve` did not come up at {host}; see {store / 'serve.log'}")
                time.sleep(0.2)  # polling for the server to listen, bounded by the deadline above
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


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
