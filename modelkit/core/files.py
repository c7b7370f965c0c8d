"""Writing a small file whole or not at all: a reader, or a build killed halfway, never sees half of it."""

from __future__ import annotations

import os
from pathlib import Path


def replace_whole(path: Path, text: str) -> bool:
    """Replace ``path`` with ``text`` at once (through a file beside it, named by this process);
    False where the folder cannot be written, which keeps the old file (for caches and stamps)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True
