"""Canonical JSON records, their keys, and how two of them differ.

An action key is the sha256 of a canonical record, and a user told "stale" wants to know *what*
changed, so the engine (why a target is stale) and the lock file (why ``--locked`` fails) both
compare nested records. :func:`changes` is that comparison, once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
"""What :class:`Change` holds for the side on which a key does not exist."""


@dataclass(frozen=True)
class Change:
    """One difference: at ``path`` (dotted keys), ``before`` became ``after``."""

    path: str
    before: Any
    after: Any

    @property
    def kind(self) -> str:
        """"added", "removed" or "changed"."""
        if self.before is MISSING:
            return "added"
        return "removed" if self.after is MISSING else "changed"


def changes(old: Any, new: Any, path: str = "") -> Iterator[Change]:
    """Every difference between two JSON-like values, in sorted key order.

    Mappings are compared key by key (a key only one side has is one change, not one per leaf);
    anything else is a leaf compared by value.
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping) and (old or new):
        for key in sorted(set(old) | set(new)):
            where = f"{path}.{key}" if path else str(key)
            if key not in old:
                yield Change(where, MISSING, new[key])
            elif key not in new:
                yield Change(where, old[key], MISSING)
            else:
                yield from changes(old[key], new[key], where)
    elif old != new:
        yield Change(path, old, new)


def canonical_json(record: Any) -> str:
    """The one text of a record that its key is computed from (sorted keys, no spaces)."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)


def record_key(record: Any) -> str:
    """``sha256:<hex>`` of the record's canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(record).encode()).hexdigest()


def short(value: Any, limit: int) -> str:
    """A value as JSON for a message, cut to ``limit`` characters."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short_digest(digest: str | None) -> str:
    """The first 12 hex digits of ``sha256:<hex>``, for messages."""
    if not digest:
        return "none"
    return digest.split(":", 1)[-1][:12]
