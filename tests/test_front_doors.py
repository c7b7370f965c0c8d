"""Every package's front door is true: each name it exports imports, ``from … import *`` works,
and a package that imports its names on first use mirrors them for editors in ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
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
    exec(f"from {package} import *", namespace)  # noqa: S102 - the import under test
    assert set(getattr(module, "__all__", [])) <= set(namespace)


def lazy_names(path: Path) -> tuple[set[str], set[str]] | None:
    """(names in the lazy export map, names imported under ``if TYPE_CHECKING``), or None."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    exported: set[str] | None = None
    mirrored: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") in ("_EXPORTS", "_LAZY"):
            exported = set(ast.literal_eval(node.value))
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            mirrored |= {a.asname or a.name for n in node.body if isinstance(n, ast.ImportFrom) for a in n.names}
    return None if exported is None else (exported, mirrored)


@pytest.mark.parametrize("package", PACKAGES)
def test_lazy_names_are_mirrored_for_editors(package: str) -> None:
    names = lazy_names(ROOT / Path(*package.split(".")) / "__init__.py")
    if names is None:
        pytest.skip(f"{package} imports its names eagerly")
    exported, mirrored = names
    assert exported <= mirrored, f"not under TYPE_CHECKING: {sorted(exported - mirrored)}"


def test_a_removed_export_fails_the_front_door(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a lazy map naming something its module no longer has."""
    from modelkit.core.lazy import lazy_exports

    getter = lazy_exports("modelkit.ollama", {"is_registered": ".freshness"})
    with pytest.raises(AttributeError):
        getter("is_registered")


def test_the_tests_and_files_the_code_names_exist() -> None:
    """A docstring that points at ``tests/…py`` or ``bench/…py`` points at something."""
    import re

    named = {m for p in (ROOT / "modelkit").rglob("*.py")
             for m in re.findall(r"((?:tests|bench)/[\w/]+\.py)", p.read_text(encoding="utf-8"))}
    assert sorted(n for n in named if not (ROOT / n).is_file()) == []
