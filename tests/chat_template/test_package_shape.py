"""The shape of ``modelkit.chat_template``, read from its source: its layers and its digest.

(Docstrings and function lengths are held for the whole of modelkit by ``tests/test_layering.py``.)

What the package may import from the rest of modelkit is written in the one table of
``tests/test_layering.py``; this file holds the order of its parts inside: the Jinja reference
stands alone, the translator builds on it, the proof on both.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from modelkit.chat_template import translator_digest
from modelkit.chat_template.digest import PACKAGES, ROOT

PACKAGE = ROOT / "chat_template"
MODULES = sorted(PACKAGE.rglob("*.py"))

#: For each part of the package, the parts it may import ("*": any).
LAYERS: dict[str, set[str]] = {
    "reference": {"reference"},
    "translator": {"translator", "reference"},
    "proof": {"proof", "reference", "translator", "source"},
    "source": {"source"},
    "stops": {"stops", "reference"},
    "digest": {"digest"},
    "inherit": {"*"},
    "__init__": {"*"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, str]]:
    """Every (module, name) the file imports, relative imports resolved; name is "" for ``import x``."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out += [(module, alias.name) for alias in node.names]
    return out


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_imports_follow_the_layers(path: Path) -> None:
    allowed = LAYERS[_part(path)]
    for module, name in _imports(path):
        target = f"{module}.{name}" if name else module
        if _within(target, "modelkit.chat_template"):
            inner = target.split(".")
            part = inner[2] if len(inner) > 2 else "__init__"
            assert "*" in allowed or part in allowed, f"{path.name} imports {target}, outside {sorted(allowed)}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_private_names_stay_in_their_module(path: Path) -> None:
    for module, name in _imports(path):
        assert not (name.startswith("_") and not name.startswith("__")), f"{path.name} imports {module}.{name}"


def test_digest_shape_and_cache() -> None:
    digest = translator_digest()
    assert re.fullmatch(r"modelkit \S+ sha256:[0-9a-f]{16}", digest)
    assert translator_digest(ROOT) == digest == translator_digest()


def test_digest_covers_every_file_of_every_subpackage(tmp_path: Path) -> None:
    copy = tmp_path / "modelkit"
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    base = translator_digest(copy)
    assert base == translator_digest()  # the same files give the same digest, wherever they are
    subpackages = sorted(p.parent for p in copy.glob("*/**/__init__.py"))
    assert {p.relative_to(copy).as_posix() for p in subpackages} >= {
        "chat_template", "chat_template/proof", "chat_template/reference", "chat_template/translator",
        "golang", "golang/template"}
    for folder in subpackages:
        for path in sorted(folder.glob("*.py")):
            original = path.read_bytes()
            path.write_bytes(original + b"\n# edited\n")
            assert translator_digest(copy) != base, path.relative_to(copy)
            path.write_bytes(original)
        new = folder / "added_module.py"
        new.write_text('"""A new module."""\n', encoding="utf-8")
        assert translator_digest(copy) != base, new.relative_to(copy)
        new.unlink()
    assert translator_digest(copy) == base
