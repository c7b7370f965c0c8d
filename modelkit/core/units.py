"""Sizes as people read and write them: decimal units (1 kB = 1000 B), as the Hugging Face Hub shows them.

One formatter for every size modelkit prints (the build, the report, the model card, publish,
gc), so the same file reads the same everywhere; one parser for the sizes a spec gives, which
also takes binary units (``2GiB``) where a user writes them.
"""

from __future__ import annotations

import re

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}
_SHOWN = (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3))


def human_size(size: float) -> str:
    """``1.55 MB``, ``884.6 kB``, ``512 B``: three significant digits or so, decimal units."""
    for unit, scale in _SHOWN:
        if size >= scale:
            value = size / scale
            return f"{value:.2f} {unit}" if value < 10 else f"{value:.1f} {unit}" if value < 100 else \
                f"{value:.0f} {unit}"
    return f"{size:.0f} B"


def parse_size(value: int | str) -> int:
    """Bytes in ``value``: an integer, or a number with a unit ('50GB', '1.5G', '512MiB')."""
    if isinstance(value, int):
        if value <= 0:
            raise ValueError(f"{value}: a size must be a positive number of bytes")
        return value
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"'{value}' is not a size: use bytes or a number with a unit, e.g. '50GB' or '2GiB'")
    unit = (match.group(2) or "").upper().removesuffix("B")
    size = int(float(match.group(1)) * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"'{value}': a size must be positive")
    return size
