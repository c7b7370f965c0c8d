"""A digest of the chat-template package's own source: part of the template step's cache key.

A translated TEMPLATE depends on the translator as much as on the model's Jinja, so a change to
any module of this package (the translator, the evaluator the proof runs, the sandbox) must make
the build translate and prove again. Every ``.py`` file below the package counts, subpackages
included, so that moving code between modules cannot drop it from the key.
"""

from __future__ import annotations

import functools
from pathlib import Path

from modelkit import __version__
from modelkit.core.hashing import tree_digest

PACKAGE = Path(__file__).resolve().parent


def translator_digest(folder: Path = PACKAGE) -> str:
    """``modelkit <version> sha256:<16 hex digits>`` over every ``.py`` file below ``folder``.

    Files are hashed in the order of their paths relative to ``folder`` (POSIX form), each as
    its path, a NUL, its bytes and a NUL. The package's own digest is computed once per process.
    """
    if Path(folder) == PACKAGE:
        return _package_digest()
    return _digest(Path(folder))


@functools.cache
def _package_digest() -> str:
    return _digest(PACKAGE)


def _digest(folder: Path) -> str:
    files = sorted(folder.rglob("*.py"), key=lambda p: p.relative_to(folder).as_posix())
    return f"modelkit {__version__} sha256:{tree_digest(folder, files).removeprefix('sha256:')[:16]}"
