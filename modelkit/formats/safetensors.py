"""Read a safetensors file's header: tensor names, shapes and byte ranges, never the tensors.

A safetensors file is an 8-byte little-endian header length, a JSON header, then the tensor
bytes. The header alone answers what modelkit asks before any conversion (does this adapter fit
this base? is this checkpoint completely written?), at the cost of a few kilobytes of reading.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_HEADER = 100 << 20


class NotSafetensors(ValueError):
    """The file is too short, or its header is not the JSON a safetensors file starts with."""


@dataclass(frozen=True)
class SafetensorsHeader:
    """The tensors a file declares and how long the file must be to hold them."""

    tensors: dict[str, dict[str, Any]]  # name -> {"dtype", "shape", "data_offsets"}
    data_start: int

    @property
    def shapes(self) -> dict[str, list[int]]:
        return {name: info["shape"] for name, info in self.tensors.items()}

    @property
    def expected_size(self) -> int:
        """The file's length once every tensor is written."""
        end = max((info["data_offsets"][1] for info in self.tensors.values()), default=0)
        return self.data_start + end


def read_header(path: Path) -> SafetensorsHeader:
    """The header of ``path``; :class:`NotSafetensors` if it has none, OSError if unreadable."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise NotSafetensors(f"{path}: not a safetensors file (too short)")
        (size,) = struct.unpack("<Q", raw)
        if size > MAX_HEADER:
            raise NotSafetensors(f"{path}: not a safetensors file (header of {size} bytes)")
        try:
            header = json.loads(f.read(size))
            tensors = {name: info for name, info in header.items() if name != "__metadata__"}
            for info in tensors.values():
                info["shape"], info["data_offsets"][1]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise NotSafetensors(f"{path}: not a safetensors file (unreadable header)") from None
    return SafetensorsHeader(tensors, 8 + size)


def is_complete(path: Path) -> bool:
    """Whether a safetensors file is as long as its header says it is (a writer has finished)."""
    try:
        return os.path.getsize(path) == read_header(path).expected_size
    except (OSError, NotSafetensors):
        return False
