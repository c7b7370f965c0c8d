"""The shape of ``modelkit.chat_template``, read from its source: its layers and its digest.

(Docstrings and function lengths are held for the whole of modelkit by ``tests/test_layering.py``.)

The package is a library the build uses, not a part of the build: it may use modelkit's errors,
file formats and Go ``strconv`` but never the engine, the steps, the rules or the CLI, so that
it can be read, tested and reused on its own. Inside it, the Go-template evaluator and the Jinja
reference stand alone, the translator builds on them, the proof on all three.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from modelkit.chat_template import translator_digest
from modelkit.chat_template.digest import PACKAGE

MODULES = sorted(PACKAGE.rglob("*.py"))

#: What the package may import from the rest of modelkit (a module, or anything below it).
ALLOWED_OUTSIDE = ("modelkit.__version__", "modelkit.errors", "modelkit.formats", "modelkit.ollama.strconv",
                   "modelkit.core.hashing", "modelkit.core.lazy")

#: For each part of the package, the parts it may import ("*": any).
LAYERS: dict[str, set[str]] = {
    "gotemplate": {"gotemplate"},
    "reference": {"reference"},
    "translator": {"translator", "gotemplate", "reference"},
    "proof": {"proof", "gotemplate", "reference", "translator", "source"},
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
        if not _within(target, "modelkit"):
            continue
        if _within(target, "modelkit.chat_template"):
            inner = target.split(".")
            part = inner[2] if len(inner) > 2 else "__init__"
            assert "*" in allowed or part in allowed, f"{path.name} imports {target}, outside {sorted(allowed)}"
        else:
            assert any(_within(target, ok) for ok in ALLOWED_OUTSIDE), f"{path.name} imports {target}"
            assert not any(_within(target, f"modelkit.{p}") for p in ("steps", "rules", "cli", "project"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_private_names_stay_in_their_module(path: Path) -> None:
    for module, name in _imports(path):
        assert not (name.startswith("_") and not name.startswith("__")), f"{path.name} imports {module}.{name}"


def test_digest_shape_and_cache() -> None:
    digest = translator_digest()
    assert re.fullmatch(r"modelkit \S+ sha256:[0-9a-f]{16}", digest)
    assert translator_digest(PACKAGE) == digest == translator_digest()


def test_digest_covers_every_file_of_every_subpackage(tmp_path: Path) -> None:
    copy = tmp_path / "chat_template"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    base = translator_digest(copy)
    assert base == translator_digest()  # the same files give the same digest, wherever they are
    subpackages = sorted(p.parent for p in copy.glob("*/__init__.py"))
    assert {p.name for p in subpackages} >= {"gotemplate", "proof", "reference", "translator"}
    for folder in [copy, *subpackages]:
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
