"""A digest of the template code's own source: part of the template step's cache key.

A translated TEMPLATE depends on the translator as much as on the model's Jinja, so a change to
any module it runs (this package: the translator, the sandbox, the proof; and
:mod:`modelkit.golang`, the Go evaluator the proof runs) must make the build translate and prove
again. Every ``.py`` file below those packages counts, subpackages included, so that moving code
between modules cannot drop it from the key.
"""

from __future__ import annotations

import functools
from pathlib import Path

from modelkit.core.hashing import tree_digest
from modelkit.version import __version__

#: The folder holding modelkit's packages, and the packages whose source is the template code.
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chat_template", "golang")


def translator_digest(root: Path = ROOT) -> str:
    """``modelkit <version> sha256:<16 hex digits>`` over every ``.py`` file of :data:`PACKAGES` in ``root``.

    Files are hashed in the order of their paths relative to ``root`` (POSIX form), each as its
    path, a NUL, its bytes and a NUL. modelkit's own digest is computed once per process.
    """
    if Path(root) == ROOT:
        return _own_digest()
    return _digest(Path(root))


@functools.cache
def _own_digest() -> str:
    return _digest(ROOT)


def _digest(root: Path) -> str:
    files = sorted((f for package in PACKAGES for f in (root / package).rglob("*.py")),
                   key=lambda p: p.relative_to(root).as_posix())
    return f"modelkit {__version__} sha256:{tree_digest(root, files).removeprefix('sha256:')[:16]}"
