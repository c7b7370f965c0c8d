"""Facts derived from files' contents, computed once per the files' digests and kept in the state.

Planning needs facts that only a file's contents tell (an adapter's merge route reads two
tokenizers of 150k tokens, 30 MB of JSON each, in seconds). Computed again on every plan, they
would make a no-op as slow as the files are big; keyed by the files' digests, which the stat
cache gives without reading them, a no-op reads nothing, and a copy of the project (other
inodes, same bytes) reuses them after hashing once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from modelkit.core.hashing import Hasher

T = TypeVar("T")


class Facts:
    """Values derived from files, kept by digest in the hasher's state."""

    def __init__(self, hasher: Hasher) -> None:
        self.hasher = hasher

    def derive(self, kind: str, files: Mapping[str, Path], identity: Any, compute: Callable[[], T],
               encode: Callable[[T], Any], decode: Callable[[Any], T]) -> T:
        """``compute()``, or its value kept from an earlier call with the same ``kind``, the same
        bytes in ``files`` (labelled; missing ones count as missing) and the same ``identity``
        (anything else the value depends on, as JSON: a Hub commit, the code's version)."""
        present = {label: path for label, path in files.items() if path.is_file()}
        digests = self.hasher.digests(present.values())
        record = [kind, identity, sorted((label, digests[path]) for label, path in present.items())]
        key = "sha256:" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()
        kept = self.hasher.state.fact(key)
        if kept is not None:
            return decode(kept)
        value = compute()
        self.hasher.state.set_fact(key, encode(value))
        return value
