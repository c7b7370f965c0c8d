"""A validated spec kept beside the project and read back as plain records, without pydantic.

Importing pydantic and building the spec's models takes a third of a no-op build, and a spec's
text seldom changes between two commands. So once a text is validated, its values are kept in
``.modelkit/spec.json`` under the digest of that text and of the code that validated it (every
module of modelkit, by size and time, and pydantic's version); the next command with the same text
reads them back as records: frozen objects with the same fields and, from :mod:`.tables`, the same
methods. JSON, not pickle, since a project folder may come from anyone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from modelkit.core.files import replace_whole
from modelkit.core.installed import installed_version
from modelkit.spec.tables import TABLES

if TYPE_CHECKING:
    from modelkit.spec.model import Spec

KEPT_SPEC = "spec.json"
"""In the state folder: the last validated spec."""
_PACKAGE = Path(__file__).resolve().parent.parent


class Record:
    """A table of a kept spec: read-only fields, equal to another record with the same values."""

    def __init__(self, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "__dict__", fields)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    __hash__ = None  # type: ignore[assignment]  # as a frozen pydantic model holding lists: unhashable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


_RECORDS: dict[str, type[Record]] = {}


def _record_class(name: str) -> type[Record]:
    if name not in _RECORDS:
        _RECORDS[name] = type(name, (TABLES[name], Record) if name in TABLES else (Record,), {})
    return _RECORDS[name]


@functools.cache
def _code_digest() -> str:
    """What decides how a text validates: modelkit's modules (by path, size and time) and pydantic's
    version. Once per process: it describes the code this process loaded."""
    stats = []
    for folder, folders, files in os.walk(_PACKAGE):
        folders[:] = [f for f in folders if f != "__pycache__"]  # compiled copies: the sources decide
        for name in files:
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                stats.append(f"{folder}/{name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join([*sorted(stats), str(installed_version("pydantic"))]).encode()).hexdigest()


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8") + b"\0" + _code_digest().encode()).hexdigest()


def read_kept(state: Path, text: str) -> Spec | None:
    """The spec validated from ``text`` before, as records; None if it was not (or cannot be read)."""
    try:
        kept = json.loads((state / KEPT_SPEC).read_text(encoding="utf-8"))
        if kept.get("key") != _key(text):
            return None
        return cast("Spec", _decode(kept["spec"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def keep(state: Path, text: str, spec: Spec) -> bool:
    """Keep ``spec``, validated from ``text``, where the project's state is; whether it could (a
    project's first command finds no state folder yet, and a read-only one makes none)."""
    if not state.is_dir():
        return False
    replace_whole(state / KEPT_SPEC, json.dumps({"key": _key(text), "spec": _encode(spec)}, sort_keys=True))
    return True


def _encode(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return {"@": type(value).__name__, **{k: _encode(v) for k, v in vars(value).items()}}
    if isinstance(value, Path):
        return {"@path": str(value)}
    if isinstance(value, tuple):
        return {"@tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) and not k.startswith("@") for k in value):
            raise TypeError(f"cannot keep a table with keys {list(value)}")
        return {k: _encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "@path" in value:
        return Path(value["@path"])
    if "@tuple" in value:
        return tuple(_decode(v) for v in value["@tuple"])
    fields = {k: _decode(v) for k, v in value.items() if k != "@"}
    return _record_class(value["@"])(fields) if "@" in value else fields
