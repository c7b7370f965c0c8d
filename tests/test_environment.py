"""Every environment variable modelkit's code reads is named in ``modelkit.environment``.

Read with ``ast``: ``os.environ.get(NAME)``, ``os.environ[NAME]``, ``os.getenv(NAME)``, ``NAME in
os.environ`` and the same on a mapping parameter called ``environ``. ``NAME`` may be a string or a
module constant holding one; anything else is a read nobody could name, and fails.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from conftest import ROOT

from modelkit import environment

PACKAGE = ROOT / "modelkit"


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ")


def _read_names(tree: ast.AST) -> list[ast.AST]:
    """The expression naming the variable of every read in ``tree``."""
    found: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            if (node.func.attr == "get" and _is_environ(node.func.value)) or node.func.attr == "getenv":
                found.append(node.args[0])
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and isinstance(node.ctx, ast.Load):
            found.append(node.slice)
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops) \
                and any(_is_environ(c) for c in node.comparators):
            found.append(node.left)
    return found


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def reads(path: Path) -> list[str]:
    """The names of the variables ``path`` reads (``?`` plus the source for one it computes)."""
    names = []
    for expr in _read_names(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            names.append(expr.value)
        elif isinstance(expr, ast.Name) and isinstance(value := getattr(importlib.import_module(_module(path)),
                                                                        expr.id, None), str):
            names.append(value)
        else:
            names.append("?" + ast.unparse(expr))
    return names


def test_every_variable_read_is_named_in_one_place() -> None:
    unnamed = [f"{path.relative_to(ROOT)}: {name}" for path in sorted(PACKAGE.rglob("*.py"))
               for name in reads(path) if name not in environment.READ]
    assert unnamed == []


def test_the_reader_finds_each_way_of_reading(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('import os\nA = "ONE"\n'
                      'def f(environ):\n'
                      '    os.environ.get(A); os.getenv("TWO"); os.environ["THREE"]; "FOUR" in os.environ\n'
                      '    environ.get("FIVE"); os.environ.get(name())\n'
                      '    os.environ["SIX"] = "written, not read"\n')
    names = [ast.unparse(n) for n in _read_names(ast.parse(sample.read_text()))]
    assert sorted(names) == sorted(["A", "'TWO'", "'THREE'", "'FOUR'", "'FIVE'", "name()"])


@pytest.mark.parametrize("name", ["XDG_CACHE_HOME", "MODELKIT_CACHE", "OLLAMA_HOST", "HF_HOME", "LLAMA_ARG_THREADS"])
def test_what_decides_a_build_changes_the_digest(name: str) -> None:
    assert environment.digest({name: "/one"}) != environment.digest({name: "/two"})


def test_what_decides_nothing_leaves_the_digest_alone() -> None:
    assert environment.digest({"PWD": "/one", "OLDPWD": "/x"}) == environment.digest({"PWD": "/two"})


def _locked_versions() -> dict[str, str]:
    """``name==version`` of every package in requirements/dev.txt, names normalised (PEP 503)."""
    lines = (ROOT / "requirements" / "dev.txt").read_text().splitlines()
    return {_normal(name): version for line in lines if "==" in line and not line.startswith((" ", "#"))
            for name, _, version in [line.split(" ")[0].partition("==")]}


def _normal(name: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_environment_is_the_lock() -> None:
    """``make setup`` installs exactly requirements/dev.txt (``make test-latest`` the newest, on purpose)."""
    import sys
    from importlib.metadata import distributions

    if (Path(sys.prefix) / ".modelkit-latest").exists():
        pytest.skip("make test-latest: the newest releases, not the lock")
    import sysconfig

    site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}  # not what a library adds to
    installed = {_normal(d.metadata["Name"]): d.version for d in distributions(path=sorted(site))}  # sys.path (ray)
    seeded = {"pip", "setuptools", "modelkit"}  # what `python -m venv` puts there, and the project itself
    locked = _locked_versions()
    assert {n: v for n, v in installed.items() if locked.get(n) != v and n not in seeded} == {}
    assert {n: v for n, v in locked.items() if n not in installed} == {}
