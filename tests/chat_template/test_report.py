"""The measure from the issue: llama.cpp's real templates, plain-chat battery, >= 90% proven."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

import bench.templates
from bench.templates import FOLLOWS_THINK, KEY_FAMILIES, NO_PLAIN_CHAT, PROVEN, TemplateResult, format_report, survey

REPO = Path(__file__).resolve().parent.parent.parent
#: Each template's :attr:`TemplateResult.fingerprint`, recorded before the translator was rebuilt
#: from a mixin stack into composed parts (``python -m tests.chat_template.test_report`` writes it again).
FINGERPRINTS = REPO / "tests" / "data" / "template-fingerprints.json"
TODAY = date(2025, 3, 4)  # the date the templates that print one see, the same on any day


@pytest.fixture(scope="module")
def surveyed(llama_cpp_templates: Path) -> list[TemplateResult]:
    """The survey of llama.cpp's templates, made once for the tests that read it (about 11 s)."""
    return survey(llama_cpp_templates, today=TODAY)


@pytest.mark.slow
def test_the_translator_writes_and_proves_what_it_did_before(surveyed: list[TemplateResult]) -> None:
    """Every TEMPLATE byte and every proof outcome for llama.cpp's templates, as recorded: a change
    to the translator's structure must not change what it writes."""
    recorded = json.loads(FINGERPRINTS.read_text(encoding="utf-8"))
    assert {r.name: r.fingerprint for r in surveyed} == recorded


@pytest.mark.slow
def test_llama_cpp_templates(surveyed: list[TemplateResult]) -> None:
    results = surveyed
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
    # Tools and reasoning in the TEMPLATE (proven up to Go's JSON formatting) for the families
    # people fine-tune most that Go can write them for; Llama 3.x's tojson(indent=4) cannot.
    with_tools = {r.name for r in proven if r.tools}
    assert len(with_tools) >= 24 and {"Qwen-Qwen2.5-7B-Instruct", "Qwen-Qwen3-0.6B", "Qwen-QwQ-32B", "GLM-4.6",
                                      "ibm-granite-granite-4.0"} <= with_tools, sorted(with_tools)
    assert not {r.name for r in proven if r.name.startswith("meta-llama-Llama-3.")} & with_tools


@pytest.mark.slow
def test_bench_script_prints_the_table(llama_cpp_templates: Path, surveyed: list[TemplateResult],
                                       monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The script's main() on the folder, its survey answered by the one already made (the script
    run as a program is test_bench_script_needs_a_folder's)."""
    asked: list[Path] = []
    monkeypatch.setattr(bench.templates, "survey", lambda folder: asked.append(folder) or surveyed)
    assert bench.templates.main([str(REPO / "bench" / "templates.py"), str(llama_cpp_templates)]) == 0
    assert asked == [llama_cpp_templates]
    out = capsys.readouterr().out
    assert "proven equivalent:" in out
    assert "| Llama 3.x |" in out and "| meta-llama-Llama-3.1-8B-Instruct | proven |" in out
    qwen3 = next(line for line in out.splitlines() if line.startswith("| Qwen-Qwen3-0.6B |"))
    assert "Thinking switch:" in out and "Tools and reasoning:" in out
    assert qwen3.startswith("| Qwen-Qwen3-0.6B | proven | renders tools and reasoning") and "follows think" in qwen3


def test_bench_script_needs_a_folder(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "templates.py"), str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a folder" in proc.stderr


if __name__ == "__main__":  # record the fingerprints again: only where a change of output is meant
    from modelkit.toolchain import find_toolchain

    found = find_toolchain()
    assert found is not None, "no llama.cpp source tree: run `modelkit toolchain install`"
    prints = {r.name: r.fingerprint for r in survey(found.templates, today=TODAY)}
    FINGERPRINTS.write_text(json.dumps(prints, indent=1, sort_keys=True) + "\n", encoding="utf-8")
