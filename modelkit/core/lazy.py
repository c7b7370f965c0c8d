"""Front doors that import what they export on first use, so that importing a package is cheap.

A package's ``__init__`` says what it offers once, as editors and type checkers read it: the
imports under ``if TYPE_CHECKING:``. :func:`lazy_exports` reads that block from the package's
source and serves each name from its module when the name is first used (PEP 562's module
``__getattr__``). A no-op ``modelkit build`` then never pays for the template translator or the
HTTP client, and the list of names cannot drift from what editors see.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any


def lazy_exports(package: str, init_file: str) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` for ``package`` and the names it serves: those its ``__init__``
    (``init_file``) imports under ``if TYPE_CHECKING:``, each from the module named there."""
    exports = _type_checking_imports(Path(init_file), package)

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__, sorted(exports)


def _type_checking_imports(path: Path, package: str) -> dict[str, str]:
    """Name -> absolute module, for every ``from … import …`` under ``if TYPE_CHECKING:``."""
    found: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if not (isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"):
            continue
        for statement in node.body:
            if isinstance(statement, ast.ImportFrom):
                base = package.rsplit(".", statement.level - 1)[0] if statement.level else ""
                module = ".".join(part for part in (base, statement.module) if part)
                found.update({alias.asname or alias.name: module for alias in statement.names})
    return found
