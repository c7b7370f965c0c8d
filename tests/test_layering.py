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


#: The house: which part of modelkit may import which. A part is a package or a top-level module
#: (``modelkit`` is the front door, ``modelkit/__init__.py``); ``tests/test_layering.py`` holds every
#: import of every module to it, imports inside functions and for type hints included, and holds
#: the table to the code: no import it does not allow, no allowance nothing uses, no circle.
#: ``docs/contributing/architecture.md`` shows it, floor by floor (:func:`picture`).
LAYERS: dict[str, tuple[str, ...]] = {
    "errors": (),
    "version": (),
    "environment": (),
    "report": (),
    "core": ("errors",),
    "golang": (),
    "network": ("errors",),
    "formats": ("errors",),
    "hub": ("errors", "formats", "network"),
    "oci": ("core", "errors"),
    "toolchain": ("core", "errors", "formats", "version"),
    "executors": ("core", "errors"),
    "chat_template": ("core", "errors", "formats", "golang", "version"),
    "ollama": ("chat_template", "core", "errors", "golang"),
    "spec": ("chat_template", "core", "errors", "formats", "oci", "ollama"),
    "steps": ("chat_template", "core", "errors", "formats", "golang", "hub", "oci", "ollama"),
    "rules": ("core", "errors", "formats", "hub", "oci", "ollama", "spec", "steps", "toolchain", "version"),
    "outcome": ("core", "ollama"),
    "project": ("core", "errors", "executors", "formats", "hub", "ollama", "outcome", "report", "rules", "spec",
                "steps", "toolchain", "version"),
    "publish": ("core", "errors", "formats", "hub", "network", "oci", "ollama", "project", "rules", "steps"),
    "watch": ("core", "errors", "formats", "project", "spec"),
    "starter": ("chat_template", "core", "errors", "formats", "hub", "spec", "toolchain"),
    "cli": ("chat_template", "core", "environment", "errors", "formats", "outcome", "project", "publish", "spec",
            "starter", "steps", "toolchain", "version", "watch"),
    "modelkit": ("core", "errors", "project", "version"),
    "__main__": ("cli",),
}


def modules(folder: Path = PACKAGE) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in modules()}


def imported_modules(path: Path, name: str | None = None) -> set[str]:
    """Every modelkit module ``path`` (the module ``name``, by default where it lies) imports,
    relative imports resolved: ``from a import b`` is the module ``a.b`` where that is one, else
    ``a`` itself (a name ``a`` defines; importing ``a.b`` runs ``a`` first, but that is Python's
    doing, not a dependency of the importer)."""
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
            found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names}
    return {name for name in found if name == "modelkit" or name.startswith("modelkit.")}


def _module_edges() -> dict[str, set[str]]:
    """Each module of modelkit and the modules it imports (the nearest existing one for a name)."""
    edges = {}
    for name, path in MODULES.items():
        targets = set()
        for imported in imported_modules(path):
            while imported not in MODULES:
                imported = imported.rpartition(".")[0]
            targets.add(imported)
        edges[name] = targets - {name}
    return edges


def room(module: str) -> str:
    """The part of the house a module is in: its package or top-level module under ``modelkit``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "modelkit"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected parts of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = [stack.pop()]
            while part[-1] != node:
                part.append(stack.pop())
            if len(part) > 1:
                found.append(sorted(part))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def floors() -> dict[str, int]:
    """Each part's floor in the house: 0 for a part that imports no other, else one above the
    highest part it may import."""
    memo: dict[str, int] = {}

    def floor(part: str) -> int:
        if part not in memo:
            memo[part] = 1 + max((floor(d) for d in LAYERS[part]), default=-1)
        return memo[part]

    return {part: floor(part) for part in LAYERS}


def picture() -> str:
    """The table as the architecture page shows it: the top floor first, each part with what it may import."""
    levels = floors()
    rows = [f"{levels[part]:>2}  {part:<14} {' '.join(LAYERS[part]) or '—'}"
            for part in sorted(LAYERS, key=lambda p: (-levels[p], p))]
    return "\n".join(["floor  part  may import", *rows])


def test_every_import_follows_the_table() -> None:
    edges = _module_edges()
    assert set(LAYERS) == {room(m) for m in MODULES}, "every part of modelkit has a row in LAYERS"
    wrong = sorted(f"{m} -> {d}" for m, targets in edges.items() for d in targets
                   if room(d) != room(m) and room(d) not in LAYERS[room(m)])
    assert wrong == []


def test_every_allowance_in_the_table_is_used() -> None:
    """The table is the house as built, not as it might be: an arrow nothing follows is removed."""
    used = {(room(m), room(d)) for m, targets in _module_edges().items() for d in targets}
    unused = sorted(f"{part} -> {d}" for part, allowed in LAYERS.items() for d in allowed if (part, d) not in used)
    assert unused == []


def test_the_table_has_no_circle() -> None:
    assert _cycles({part: set(allowed) for part, allowed in LAYERS.items()}) == []
    assert floors()["errors"] == 0 and floors()["__main__"] == max(floors().values())


def test_no_file_imports_itself_through_others() -> None:
    """No import cycle between any two files, imports inside functions and for type hints
    included: what two modules share lives in a third below both."""
    assert _cycles(_module_edges()) == []


def test_the_cycle_finder_finds_a_circle_of_three() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_architecture_page_shows_the_table() -> None:
    assert picture() in (ROOT / "docs" / "contributing" / "architecture.md").read_text(encoding="utf-8")


def test_the_layering_test_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"  # read as if it were modelkit/core/sample.py; tests never write in the package
    sample.write_text('"""x"""\ndef f():\n    from ..rules import names\n    import modelkit.steps\n')
    assert imported_modules(sample, "modelkit.core.sample") >= {"modelkit.rules.names", "modelkit.steps"}


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
