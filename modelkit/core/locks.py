"""Exclusive file locks that say who holds them: one builder per project, one toolchain installer.

``flock`` is released by the kernel when its holder dies, so a crashed build never leaves a stale
lock behind; the holder's pid is written into the file so that a second process can say whom it
is waiting for.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import IO

from modelkit.errors import UserError


@dataclass
class FileLock:
    """``with FileLock(path):`` holds ``path`` exclusively, waiting for another holder unless
    ``wait`` is False (then a :class:`UserError` says who holds it). ``on_wait`` hears once that
    the lock is busy before the wait starts."""

    path: Path
    _: KW_ONLY
    wait: bool = True
    on_wait: Callable[[str], None] | None = None
    holder_name: str = "another modelkit build"
    retry_hint: str = "try again when it ends (or drop --no-wait to wait)"
    _f: IO[str] = field(init=False, repr=False)

    def __enter__(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a+")
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            message = f"{self.holder_name}{f' (pid {holder})' if holder else ''} holds {self.path}"
            if not self.wait:
                self._f.close()
                raise UserError(f"{message}; {self.retry_hint}") from None
            if self.on_wait:
                self.on_wait(f"{message}; waiting for it to finish")
            fcntl.flock(self._f, fcntl.LOCK_EX)
        self._f.seek(0)
        self._f.truncate()
        self._f.write(f"{os.getpid()}\n")
        self._f.flush()
        return self

    def holder(self) -> str | None:
        """The pid written by the process that holds (or last held) the lock."""
        try:
            return self.path.read_text().strip() or None
        except OSError:
            return None

    def __exit__(self, *_: object) -> None:
        self._f.seek(0)
        self._f.truncate()
        self._f.close()
