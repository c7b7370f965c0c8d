"""Front doors that import what they export on first use, so that importing a package is cheap.

A package's ``__init__`` names what it offers and where each name lives; the module behind a
name is imported only when the name is first used (PEP 562's module ``__getattr__``). A no-op
``modelkit build`` then never pays for the template translator or the HTTP client.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that finds ``name`` in the module ``exports[name]``
    (relative to ``package`` when it starts with a dot)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
