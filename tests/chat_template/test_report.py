"""The measure from the issue: llama.cpp's real templates, plain-chat battery, >= 90% proven."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.templates import KEY_FAMILIES, NO_PLAIN_CHAT, PROVEN, format_report, survey

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


@pytest.mark.slow
def test_bench_script_prints_the_table(llama_cpp_templates: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "templates.py"), str(llama_cpp_templates)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "proven equivalent:" in proc.stdout
    assert "| Llama 3.x |" in proc.stdout and "| meta-llama-Llama-3.1-8B-Instruct | proven |" in proc.stdout


def test_bench_script_needs_a_folder(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "templates.py"), str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "not a folder" in proc.stderr
