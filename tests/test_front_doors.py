"""Every package's front door is true: each name it exports imports, ``from … import *`` works,
and a package that imports its names on first use mirrors them for editors in ``TYPE_CHECKING``."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGES = sorted(".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "modelkit").rglob("__init__.py")
                  if "__pycache__" not in p.parts)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_imports_and_star_import_works(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in getattr(module, "__all__", []) if not hasattr(module, name)]
    assert missing == []
    namespace: dict[str, object] = {}
    exec(f"from {package} import *", namespace)
    assert set(getattr(module, "__all__", [])) <= set(namespace)


def test_lazy_names_are_the_ones_editors_see() -> None:
    """A lazy front door serves exactly what its ``if TYPE_CHECKING:`` block imports."""
    import modelkit.ollama

    assert set(modelkit.ollama.__all__) == {"DEFAULT_SERVER", "ModelContent", "Modelfile", "Reachability",
                                           "RegistrationResult", "RegistrationStatus", "RetryPolicy",
                                           "check_model_name", "check_parameters", "held_copy", "parse_model_name",
                                           "predict_engine", "register", "register_with_cli",
                                           "registration_status", "render_modelfile", "server_version", "shown_host"}


def test_a_removed_export_fails_the_front_door(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a lazy map naming something its module no longer has."""
    from modelkit.core.lazy import lazy_exports

    init = tmp_path / "__init__.py"
    init.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                    "    from modelkit.ollama.freshness import is_registered\n")
    getter, names = lazy_exports("modelkit.ollama", str(init))
    assert names == ["is_registered"]
    with pytest.raises(AttributeError):
        getter("is_registered")


def test_the_tests_and_files_the_code_names_exist() -> None:
    """A docstring that points at ``tests/…py`` or ``bench/…py`` points at something."""
    import re

    named = {m for p in (ROOT / "modelkit").rglob("*.py")
             for m in re.findall(r"((?:tests|bench)/[\w/]+\.py)", p.read_text(encoding="utf-8"))}
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []
