"""The managed llama.cpp's patches: the logger flushed at exit (built in), transformers 5's vision
tower names read by the converter (applied to the scripts on load); each applied once, refused
loudly when it no longer fits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelkit.errors import UserError
from modelkit.toolchain import LOG_FLUSH, SCRIPT_PATCH_LEVEL, TOWER_NAMES, Toolchain, _load_managed, _patch

NAME, OLD, NEW = LOG_FLUSH


def sources(tmp_path: Path, text: str, name: str = NAME) -> Path:
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text(text)
    return tmp_path


def test_the_patch_is_applied_once(tmp_path: Path) -> None:
    root = sources(tmp_path, f"before\n{OLD}after\n")
    _patch(root, (LOG_FLUSH,))
    _patch(root, (LOG_FLUSH,))
    assert (root / NAME).read_text() == f"before\n{NEW}after\n"


def test_a_patch_that_no_longer_fits_is_refused(tmp_path: Path) -> None:
    root = sources(tmp_path, "a logger written differently\n")
    with pytest.raises(UserError, match="modelkit's patch no longer applies"):
        _patch(root, (LOG_FLUSH,))


def test_the_managed_toolchain_is_built_with_it(toolchain: Toolchain) -> None:
    if toolchain.origin != "managed":
        pytest.skip("a llama.cpp checkout of the user's own is used as it is")
    assert NEW in (toolchain.source / NAME).read_text(), "the managed toolchain was built without the log flush"
    assert TOWER_NAMES[2] in (toolchain.source / TOWER_NAMES[0]).read_text()


def test_a_tree_built_before_a_script_patch_is_patched_when_loaded(toolchain: Toolchain, tmp_path: Path) -> None:
    """A script patch needs no rebuild: a managed tree made without it gets it, and a new scripts
    digest (so conversions are keyed anew), the next time it is loaded."""
    if toolchain.origin != "managed":
        pytest.skip("a llama.cpp checkout of the user's own is used as it is")
    home = tmp_path / "home"
    source = sources(home / "llama.cpp", f"x\n{TOWER_NAMES[1]}y\n", TOWER_NAMES[0])
    (source / "convert_hf_to_gguf.py").write_text("# the converter\n")
    manifest = json.loads((toolchain.source.parent / "toolchain.json").read_text())
    manifest.update(source=str(source), scripts_digest="old", script_patches=None)
    (home / "toolchain.json").write_text(json.dumps(manifest))
    loaded = _load_managed(home)
    assert loaded is not None and loaded.scripts_digest != "old"
    assert TOWER_NAMES[2] in (source / TOWER_NAMES[0]).read_text()
    assert json.loads((home / "toolchain.json").read_text())["script_patches"] == SCRIPT_PATCH_LEVEL
