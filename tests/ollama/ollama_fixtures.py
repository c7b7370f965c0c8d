"""Fixtures for the Ollama tests: the stand-in server, tiny GGUFs, and a stand-in ``ollama`` CLI.

Test modules import the fixtures they use from here. This is deliberately not a ``conftest.py``:
pytest imports every folder's conftest as the module ``conftest``, and a second one would shadow
``tests/conftest.py`` for tests that import from it.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import ollama
import pytest
from fake_server import FakeOllama
from gguf_files import write_tiny_gguf, write_tiny_lora

from modelkit.ollama.content import ModelContent
from modelkit.ollama.modelfile import Modelfile, render_modelfile
from modelkit.ollama.params import check_parameters

HERE = Path(__file__).resolve().parent


GENERATION_PARAMS = [pytest.param("0.12", id="ollama-0.12"),
                     pytest.param("current", id="ollama-current", marks=pytest.mark.toolchain)]


@pytest.fixture(params=GENERATION_PARAMS)
def fake(request: pytest.FixtureRequest) -> Iterator[FakeOllama]:
    """The stand-in for Ollama's HTTP API, once as Ollama 0.12 and once as today's Ollama, which
    re-encodes GGUFs with the real ``llama-quantize ... COPY`` (so that generation needs the
    toolchain). Every test that registers runs against both."""
    with start_fake(request, request.param) as server:
        yield server


@pytest.fixture
def fake_current(request: pytest.FixtureRequest) -> Iterator[FakeOllama]:
    """Today's Ollama alone, for what only it does (rewriting, native chat mode, late pruning)."""
    with start_fake(request, "current") as server:
        yield server


def start_fake(request: pytest.FixtureRequest, generation: str, **options: object) -> FakeOllama:
    """A stand-in of ``generation`` (not started: use it as a context manager)."""
    quantize = request.getfixturevalue("toolchain").quantize if generation == "current" else None
    return FakeOllama(generation=generation, quantize=quantize, **options)


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests say where Ollama is: a developer's OLLAMA_HOST must not leak in, nor a proxy get
    between the client and the local server."""
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder (with a space in its name) holding two different tiny models and a LoRA."""
    folder = tmp_path_factory.mktemp("ggufs") / "my models"
    folder.mkdir()
    write_tiny_gguf(folder / "tiny.Q8_0.gguf", seed=0)
    write_tiny_gguf(folder / "tiny.Q4_K_M.gguf", seed=1)
    write_tiny_lora(folder / "adapter support.gguf")
    return folder


@pytest.fixture
def fake_cli(tmp_path: Path) -> Path:
    """An executable named ``ollama`` that stands in for Ollama's CLI (see fake_ollama_cli.py)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "ollama"
    exe.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from fake_ollama_cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n",
        encoding="utf-8",
    )
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


def free_port_host() -> str:
    """An address where nothing listens: a port that was free a moment ago, now closed."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"



def write_modelfile(path: Path, m: Modelfile) -> None:
    """Render ``m`` and write it to ``path`` byte for byte (no newline translation)."""
    path.write_bytes(render_modelfile(m).encode("utf-8"))


def modelfile_of(content: ModelContent, header: str = "", base_dir: Path | None = None) -> Modelfile:
    """The Modelfile that registers ``content`` through ``ollama create -f``; with ``base_dir`` (the
    Modelfile's folder) paths are relative to it, as Ollama resolves them, else absolute."""

    def where(path: Path) -> str:
        resolved = Path(path).resolve()
        return str(resolved) if base_dir is None else os.path.relpath(resolved, Path(base_dir).resolve())

    return Modelfile(from_=where(content.gguf), adapters=tuple(where(a) for a in content.adapters),
                     template=content.template, system=content.system,
                     parameters=tuple(check_parameters(content.parameters).items()), messages=content.messages,
                     license=content.license, header=header)


def unregister(model: str, *, host: str) -> bool:
    """Delete ``model`` from an Ollama server through the official client; False if it was not there."""
    try:
        ollama.Client(host=host).delete(model)
    except ollama.ResponseError as e:
        if e.status_code == 404:
            return False
        raise
    return True
