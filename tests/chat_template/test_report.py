"""The measure from the issue: llama.cpp's real templates, plain-chat battery, >= 90% proven."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.templates import FOLLOWS_THINK, KEY_FAMILIES, NO_PLAIN_CHAT, PROVEN, format_report, survey

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
def test_llama_cpp_templates(llama_cpp_templates: Path) -> None:
    results = survey(llama_cpp_templates)
    plain = [r for r in results if r.status != NO_PLAIN_CHAT]
    proven = [r for r in plain if r.status == PROVEN]
    assert len(results) >= 70 and len(plain) >= 66
    assert len(proven) / len(plain) >= 0.90, format_report(results)
    for family, prefixes in KEY_FAMILIES.items():
        members = [r for r in plain if any(p in r.name for p in prefixes)]
        assert all(r.status == PROVEN for r in members), (family, [(r.name, r.status, r.detail) for r in members])
    # The thinking templates (Qwen3, SmolLM3, GLM, DeepSeek, Gemma 4, MiniCPM...) follow Ollama's
    # think: proven with it unset, true and false.
    thinking = [r for r in proven if r.switches]
    assert {"Qwen-Qwen3-0.6B", "HuggingFaceTB-SmolLM3-3B", "GLM-4.6", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
            "openbmb-MiniCPM5-1B"} <= {r.name for r in thinking}
    assert len(thinking) >= 23 and all(r.think == FOLLOWS_THINK for r in thinking), \
        [(r.name, r.think, r.notes) for r in thinking if r.think != FOLLOWS_THINK]


@pytest.mark.slow
def test_bench_script_prints_the_table(llama_cpp_templates: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "templates.py"), str(llama_cpp_templates)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "proven equivalent:" in proc.stdout
    assert "| Llama 3.x |" in proc.stdout and "| meta-llama-Llama-3.1-8B-Instruct | proven |" in proc.stdout
    assert "Thinking switch:" in proc.stdout and "| Qwen-Qwen3-0.6B | proven | follows think" in proc.stdout


def test_bench_script_needs_a_folder(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "templates.py"), str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a folder" in proc.stderr
