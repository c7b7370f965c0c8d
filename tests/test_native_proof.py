"""The native path proven: the shipped GGUF's Jinja rendered by llama.cpp's own engine (llama-server,
as Ollama's native chat mode asks it) against ``apply_chat_template``, in the build and in
``modelkit template show``. ``tests/test_real_ollama.py`` checks that the body sent is Ollama's."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, modelkit

from modelkit.chat_template.proof.conversations import THINKING, TOOLS
from modelkit.chat_template.proof.native import ollama_native_body

sys.path.insert(0, str(ROOT / "tests" / "ollama"))
from gguf_files import write_tiny_gguf


def test_a_conversation_goes_to_llama_cpp_as_ollama_sends_it() -> None:
    """Tool calls with their arguments as a compact JSON string, the tool's name and call id, the
    tools as given, think as ``enable_thinking``; earlier reasoning is not sent (Ollama drops it)."""
    body = ollama_native_body(TOOLS[2], think=False)
    assert body["tools"] == list(TOOLS[2].tools)
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    call = body["messages"][1]
    assert call == {"role": "assistant", "content": "", "tool_calls": [{
        "id": "call00001", "index": 0, "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}
    assert body["messages"][2] == {"role": "tool", "tool_call_id": "call00001", "name": "get_weather",
                                   "content": "18°C, sunny"}
    thought = ollama_native_body(THINKING[0])
    assert "chat_template_kwargs" not in thought and "reasoning_content" not in json.dumps(thought)


def project_with(folder: Path, jinja: str) -> Path:
    folder.mkdir()
    write_tiny_gguf(folder / "model.gguf", chat_template=jinja, context=8192)
    (folder / "chat.jinja").write_text(jinja)
    (folder / "model.toml").write_text('name = "bot"\n[base]\ngguf = "./model.gguf"\n[quantize]\ntypes = []\n'
                                       '[ollama]\nchat_template_file = "./chat.jinja"\n')
    return folder


@pytest.mark.toolchain
def test_the_build_proves_a_tool_template_through_llama_cpp(toolchain: Any, tmp_path: Path) -> None:
    project = project_with(tmp_path / "p", (toolchain.templates / "Qwen-Qwen2.5-7B-Instruct.jinja").read_text())
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "-> prove bot's GGUF template through llama.cpp's engine" in proc.stderr
    assert "llama.cpp (the engine of Ollama's native chat mode" not in proc.stderr
    result = json.loads((project / "build" / "bot.native.json").read_text())
    assert result["proven"] and result["first_difference"] is None
    assert result["kinds"]["plain"]["same"] == 9 and result["kinds"]["tools"] == {"same": 6, "differs": 0,
                                                                                 "outside": 0}
    assert modelkit("build", "--no-ollama", cwd=project).stderr.count("->") == 0  # fresh: not run again


@pytest.mark.toolchain
def test_a_template_llama_cpp_renders_otherwise_is_one_warning_and_template_show_says_where(
        toolchain: Any, tmp_path: Path) -> None:
    """Llama 3.1 writes today's date where ``apply_chat_template`` writes its default one."""
    project = project_with(tmp_path / "p", (toolchain.templates / "meta-llama-Llama-3.1-8B-Instruct.jinja").read_text())
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "llama.cpp (the engine of Ollama's native chat mode" in line]
    assert len(notes) == 1 and "first 'user': first difference at character" in notes[0]
    assert "26 Jul 2024" in notes[0] and "`modelkit template show" in notes[0]
    result = json.loads((project / "build" / "bot.native.json").read_text())
    assert not result["proven"] and result["first_difference"] == "'user'"
    assert "2024" not in json.dumps(result)  # what differed (today's date) stays out of the artifact
    shown = modelkit("template", "show", "model.gguf", cwd=project)
    assert shown.returncode == 0 and "llama.cpp's engine (Ollama's native chat mode, llama-server): not proven" \
        in shown.stdout
    assert "apply_chat_template: '<|start_header_id|>system" in shown.stdout and "Today Date: 26 Jul 2024" in shown.stdout
