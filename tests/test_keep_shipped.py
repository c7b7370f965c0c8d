"""``[build] keep = "shipped"`` on the tiny example: the full-precision GGUF nothing ships is removed
once read, the plan says so, a no-op runs nothing, and a new variant or ``--force`` makes it again.
The adapter is merged while the base is converted (``tests/test_convert_merging.py``), so neither
the base's GGUF nor the GGUF adapter is made at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import copy_built, modelkit

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]
GONE = ("base.f16.gguf", "adapter.support.gguf", "base+support.f16.gguf")


@pytest.fixture
def shipped(built_example: Path, tmp_path: Path) -> Path:
    project = copy_built(built_example, tmp_path / "example")
    spec = project / "model.toml"
    spec.write_text(spec.read_text() + '\n[build]\nkeep = "shipped"\n')
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0, proc.stderr
    # the keep = "all" build's base GGUF and GGUF adapter are no longer targets: gc frees them
    gc = modelkit("gc", cwd=project)
    assert gc.returncode == 0 and "build/base.f16.gguf" in gc.stderr + gc.stdout, gc.stderr
    return project


def test_what_nothing_ships_is_removed_and_stales_nothing(shipped: Path) -> None:
    assert not any((shipped / "build" / name).exists() for name in GONE)
    assert (shipped / "build" / "base+support.Q4_K_M.gguf").is_file()
    plan = modelkit("plan", "--json", cwd=shipped)
    import json

    rows = {row["target"]: (row["status"], row["reason"]) for row in json.loads(plan.stdout)}
    assert rows["gguf:base+support.f16"] == ("removed", "intermediate (removed)")
    assert {state for name, (state, _) in rows.items() if name.startswith(("check:", "eval:"))} == {"fresh"}
    again = modelkit("build", "--no-ollama", cwd=shipped)
    assert "everything is up to date" in again.stderr and "1 intermediate removed" in again.stderr


def test_a_new_variant_makes_them_again_and_removes_them_after(shipped: Path) -> None:
    spec = shipped / "model.toml"
    spec.write_text(spec.read_text().replace('"IQ4_XS"]', '"IQ4_XS", "Q6_K"]'))
    proc = modelkit("build", "--no-ollama", cwd=shipped)
    assert proc.returncode == 0, proc.stderr
    assert ("merge adapter 'support' into the base while converting it (no base GGUF written) "
            "(intermediate, needed again)") in proc.stderr
    assert (shipped / "build" / "base+support.Q6_K.gguf").is_file()
    assert not any((shipped / "build" / name).exists() for name in GONE)


def test_naming_an_intermediate_makes_it(shipped: Path) -> None:
    proc = modelkit("build", "--no-ollama", "gguf:base+support.f16", cwd=shipped)
    assert proc.returncode == 0, proc.stderr
    assert (shipped / "build" / "base+support.f16.gguf").is_file()
    assert not (shipped / "build" / "base.f16.gguf").exists()  # never made: merged while converting
