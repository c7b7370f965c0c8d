"""The managed llama.cpp's one patch: its logger flushed at exit, applied once, refused loudly when it no longer fits."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelkit.errors import UserError
from modelkit.toolchain import LOG_FLUSH, Toolchain, _patch

NAME, OLD, NEW = LOG_FLUSH


def sources(tmp_path: Path, text: str) -> Path:
    (tmp_path / NAME).parent.mkdir(parents=True)
    (tmp_path / NAME).write_text(text)
    return tmp_path


def test_the_patch_is_applied_once(tmp_path: Path) -> None:
    root = sources(tmp_path, f"before\n{OLD}after\n")
    _patch(root)
    _patch(root)
    assert (root / NAME).read_text() == f"before\n{NEW}after\n"


def test_a_patch_that_no_longer_fits_is_refused(tmp_path: Path) -> None:
    root = sources(tmp_path, "a logger written differently\n")
    with pytest.raises(UserError, match="modelkit's patch no longer applies"):
        _patch(root)


def test_the_managed_toolchain_is_built_with_it(toolchain: Toolchain) -> None:
    if toolchain.origin != "managed":
        pytest.skip("a llama.cpp checkout of the user's own is used as it is")
    assert NEW in (toolchain.source / NAME).read_text(), "the managed toolchain was built without the log flush"
