"""Fixtures for the chat-template tests: Go's real text/template, and tiny models made here."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
GORENDER = HERE / "gorender"
TODAY = "2025-03-04"


def _tiny_module() -> Any:
    spec = importlib.util.spec_from_file_location("make_tiny", REPO / "examples" / "tiny" / "make_tiny.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def tiny_chat_template() -> str:
    """The chat template of the tiny example model (Zephyr-like, writes bos_token)."""
    return str(_tiny_module().CHAT_TEMPLATE)


GoRender = Callable[[Sequence[dict[str, Any]]], list[dict[str, Any]]]


@pytest.fixture(scope="session")
def go_render(tmp_path_factory: pytest.TempPathFactory) -> GoRender:
    """Render cases with Go's real text/template, fed as Ollama feeds it (tests/chat_template/gorender).

    Each case is ``{"template": str, "conversations": [[message...]...], "system": str?, "think":
    None | bool | str?}`` (``think``: the request's think option, absent or None for not set); the
    result per case is ``{"error": str}`` (the template does not load) or ``{"results": [...]}``
    with ``{"output": str}`` or ``{"error": str}`` per conversation. The clock reads ``TODAY``.
    """
    go = shutil.which("go")
    if go is None:
        if os.environ.get("MODELKIT_REQUIRE_TOOLCHAIN") == "1":  # CI must not go green by skipping
            pytest.fail("Go is not installed (Debian: golang-go), and MODELKIT_REQUIRE_TOOLCHAIN=1")
        pytest.skip("Go is not installed (Debian: golang-go)")
    out = tmp_path_factory.mktemp("gorender") / "gorender"
    build = subprocess.run([go, "build", "-o", str(out), "."], cwd=GORENDER, capture_output=True, text=True)
    if build.returncode != 0:
        pytest.fail(f"go build failed:\n{build.stderr}")

    def render(cases: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        proc = subprocess.run([str(out)], input=json.dumps({"today": TODAY, "cases": list(cases)}),
                              capture_output=True, text=True, check=True)
        return json.loads(proc.stdout)["cases"]

    return render


def go_conversations(conversations: Sequence[Any]) -> list[dict[str, Any]]:
    """Battery conversations as gorender takes them: messages and tools as Ollama's API carries them."""
    from modelkit.chat_template.proof.conversations import ollama_message

    return [{"messages": [ollama_message(m) for m in c.messages], "tools": list(c.tools) or None}
            for c in conversations]


def write_hf_folder(folder: Path, template: Any, **config: Any) -> Path:
    """A Hugging Face folder with just a tokenizer_config.json (all the template reader needs)."""
    folder.mkdir(parents=True, exist_ok=True)
    data = {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, **config}
    if template is not None:
        data["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(data), encoding="utf-8")
    return folder


def write_gguf(path: Path, template: str | None, tokens: Sequence[str] = ("<unk>", "<s>", "</s>"),
               bos_id: int = 1, eos_id: int = 2, add_bos: bool | None = True, extra: Callable[[Any], None] | None = None,
               tensor: bool = True) -> Path:
    """A small real GGUF written with the gguf package (llama architecture)."""
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(512)
    w.add_file_type(1)
    w.add_tokenizer_model("llama")
    w.add_token_list([t.encode() for t in tokens])
    w.add_bos_token_id(bos_id)
    w.add_eos_token_id(eos_id)
    if add_bos is not None:
        w.add_add_bos_token(add_bos)
    if template is not None:
        w.add_chat_template(template)
    if extra is not None:
        extra(w)
    if tensor:
        w.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture(scope="session")
def make_gguf() -> Callable[..., Path]:
    """:func:`write_gguf`, for tests that build their own GGUF."""
    return write_gguf


@pytest.fixture(scope="session")
def make_hf_folder() -> Callable[..., Path]:
    """:func:`write_hf_folder`, for tests that build their own folder."""
    return write_hf_folder


@pytest.fixture()
def tiny_hf(tmp_path: Path, tiny_chat_template: str) -> Path:
    return write_hf_folder(tmp_path / "base", tiny_chat_template)


@pytest.fixture()
def tiny_gguf(tmp_path: Path, tiny_chat_template: str) -> Path:
    return write_gguf(tmp_path / "base.f16.gguf", tiny_chat_template)
