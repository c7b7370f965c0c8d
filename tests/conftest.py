"""Shared fixtures. Markers (see pyproject.toml) say what each test needs from the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def llama_cpp_templates() -> Path:
    """The real chat templates that ship in llama.cpp's ``models/templates/``."""
    root = os.environ.get("MODELKIT_LLAMA_CPP")
    if not root:
        pytest.skip("no llama.cpp source tree: set MODELKIT_LLAMA_CPP or run `modelkit toolchain install`")
    return Path(root) / "models" / "templates"
