"""The shape of the code, held by tests: layers, signs on the doors, short functions, the public API.

Imports are read with ``ast`` (top-level and inside functions alike), so a lazy import cannot
sneak a dependency past the rule.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "modelkit"
MAX_FUNCTION_LINES = 60


def modules(folder: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str | None = None) -> set[str]:
    """Every modelkit module ``path`` (the module ``name``, by default where it lies) imports,
    relative imports resolved."""
    package = (name or module_name(path)).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "modelkit" or name.startswith("modelkit.")}


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_core_knows_nothing_of_models() -> None:
    offenders = {
        module_name(path): sorted(name for name in imported_modules(path)
                                  if not allowed(name, ("modelkit.core", "modelkit.errors")))
        for path in modules(PACKAGE / "core")
    }
    assert {m: names for m, names in offenders.items() if names} == {}


def test_the_layering_test_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"  # read as if it were modelkit/core/sample.py; tests never write in the package
    sample.write_text('"""x"""\ndef f():\n    from ..rules import names\n    import modelkit.steps\n')
    assert imported_modules(sample, "modelkit.core.sample") >= {"modelkit.rules", "modelkit.rules.names",
                                                                "modelkit.steps"}


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_opens_with_a_line_saying_what_it_is(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if not tree.body:  # an empty __init__.py marks a folder as a package and says nothing
        return
    doc = ast.get_docstring(tree)
    assert doc and doc.splitlines()[0].strip(), f"{path} has no docstring"


def test_no_function_is_longer_than_a_screen() -> None:
    long = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


_SILENCER = re.compile(r"#\s*(type:\s*ignore|noqa)\b(.*)")
_EXPLAINED = re.compile(r"(\[[a-z-]+(, [a-z-]+)*\]  # \S.*|: [A-Z]+[0-9]+(, [A-Z]+[0-9]+)* - \S.*)")


def test_every_silenced_check_names_its_code_and_a_reason() -> None:
    """A bare type-ignore or noqa comment hides every future problem on its line, and nobody can
    tell later whether it is still needed: each names what it silences and why."""
    unexplained = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py"),
                        *(ROOT / "examples").rglob("*.py")]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = _SILENCER.search(line)
            if found and not _EXPLAINED.fullmatch(found.group(2)):
                unexplained.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert unexplained == []


def test_no_module_shadows_the_standard_library() -> None:
    import sys

    shadowing = [str(p.relative_to(ROOT)) for p in modules() if p.stem in sys.stdlib_module_names]
    assert shadowing == []


def test_the_public_api_plans_the_example(tiny_project: Path) -> None:
    from modelkit import Project

    statuses = Project.open(tiny_project / "model.toml").plan()
    assert [s.name for s in statuses][:2] == ["template", "gguf:base.f16"]  # the template check comes first
    assert {s.state for s in statuses} == {"stale"}


def test_the_public_api_names_every_error() -> None:
    import modelkit
    from modelkit import errors

    declared = {name for name, value in vars(errors).items()
                if isinstance(value, type) and issubclass(value, Exception)}
    assert declared <= set(modelkit.__all__)
    assert declared == set(errors.__all__) - {"register_later_hint"}


def test_a_file_made_and_removed_again_is_seen_by_the_package_guard(tmp_path: Path) -> None:
    """conftest compares the package tree before and after the run with this picture: a test
    that wrote in it fails the run, even if it cleaned up (the other worker saw it meanwhile)."""
    from package_guard import changes, picture

    tree = tmp_path / "modelkit"
    (tree / "core" / "__pycache__").mkdir(parents=True)
    (tree / "core" / "engine.py").write_text("x = 1\n")
    os.utime(tree / "core", ns=(1, 1))
    before = picture(tree)
    assert changes(before, picture(tree)) == []
    (tree / "core" / "_sample.py").write_text("x")
    (tree / "core" / "_sample.py").unlink()
    assert changes(before, picture(tree)) == ["core/: something was made or removed in it"]
    (tree / "core" / "engine.py").write_text("x = 2\n")
    assert "core/engine.py: changed" in changes(before, picture(tree))


def test_python_making_its_bytecode_folder_is_not_a_change(tmp_path: Path) -> None:
    from package_guard import changes, picture

    (tmp_path / "spec").mkdir()
    os.utime(tmp_path / "spec", ns=(1, 1))
    before = picture(tmp_path)
    (tmp_path / "spec" / "__pycache__").mkdir()
    assert changes(before, picture(tmp_path)) == []
