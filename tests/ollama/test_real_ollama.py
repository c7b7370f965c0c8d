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
from modelkit.errors import OllamaRefused, OllamaUnavailable
from modelkit.ollama.cli import register_with_cli
from modelkit.ollama.client import server_version
from modelkit.ollama.content import ModelContent
from modelkit.ollama.freshness import is_registered
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

    assert is_registered(api_name, content, host=real_host).reason == "not in Ollama"
    result = register(api_name, content, host=real_host)
    assert result.statuses[-1] == "success"
    status = is_registered(api_name, content, host=real_host)
    assert status, status.reason

    tuned = dataclasses.replace(content, parameters={**content.parameters, "temperature": 0.2})
    assert not is_registered(api_name, tuned, host=real_host)
    again = register(api_name, tuned, host=real_host)
    assert again.uploaded == ()  # the GGUF was already there
    assert is_registered(api_name, tuned, host=real_host)

    folder = tmp_path / "build dir"
    folder.mkdir()
    modelfile = folder / "modelkit test.Modelfile"
    write_modelfile(modelfile, modelfile_of(content, header="spec: test", base_dir=folder))
    register_with_cli(cli_name, modelfile, host=real_host)
    status = is_registered(cli_name, content, host=real_host)
    assert status, status.reason


def test_adapter_variant_is_registered_or_refused_clearly(real_host: str, names: list[str], gguf_dir: Path) -> None:
    name = f"modelkit-test:{uuid.uuid4().hex[:8]}-lora"
    names.append(name)
    content = ModelContent(gguf=gguf_dir / "tiny.Q4_K_M.gguf", adapters=(gguf_dir / "adapter support.gguf",),
                           template="{{ .Prompt }}")
    try:
        register(name, content, host=real_host)
    except OllamaRefused as e:  # current Ollama no longer applies LoRA adapters
        assert "adapter" in str(e).lower()
        return
    assert is_registered(name, content, host=real_host)
