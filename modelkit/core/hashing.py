"""Content digests of files, computed as rarely as possible.

Staleness is decided by content, but reading a 16 GB safetensors file on every ``modelkit build``
would make a no-op build take a minute. Three rules keep it cheap:

1. **Stat cache**: a digest is reused while the file's device, inode, size, mtime and ctime are
   unchanged (see :class:`modelkit.core.state.State`), so a no-op build reads no file contents.
2. **Free digests**: a caller may know a file's digest without reading it (a Hugging Face cache
   names each blob by its sha256); :class:`Hasher` asks its ``free_digest`` before reading.
3. **Parallel hashing**: when files must be read, several are hashed at once; ``hashlib`` releases
   the GIL on large buffers, so threads use every core.

Digests are strings ``sha256:<hex>``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modelkit.core.state import FileStat, State

CHUNK = 1 << 20

BytesRead = Callable[[int], None]
"""Called with the number of bytes read since its last call."""
FreeDigest = Callable[[Path], "str | None"]
"""A digest known without reading the file, or None."""


def sha256_file(path: Path, progress: BytesRead | None = None) -> str:
    """Read and hash one file; ``progress`` is called with the bytes read since its last call."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(view[:n])
            if progress:
                progress(n)
    return "sha256:" + h.hexdigest()


class Hasher:
    """Digests through the stat cache of a :class:`State`."""

    def __init__(self, state: State, workers: int | None = None, free_digest: FreeDigest | None = None) -> None:
        self.state = state
        self.free_digest = free_digest or (lambda path: None)
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.bytes_read = 0
        self._lock = threading.Lock()

    def record(self, path: Path, digest: str) -> None:
        """Remember the digest of a file modelkit itself just wrote or linked."""
        self.state.set_digest(str(path), FileStat.of(os.stat(path)), digest, trusted=True)

    def digest(self, path: Path, trusted: bool = False) -> str:
        return self.digests([path], trusted=trusted)[path]

    def digests(self, paths: Iterable[Path], progress: Callable[[int, int], None] | None = None,
                trusted: bool = False) -> dict[Path, str]:
        """Digests of ``paths`` (files; OSError if one is missing).

        ``progress(done_bytes, total_bytes)`` reports the bytes actually read. ``trusted`` marks
        files modelkit just wrote itself (see :meth:`State.set_digest`).
        """
        out: dict[Path, str] = {}
        todo: list[tuple[Path, FileStat]] = []
        for path in paths:
            stat = FileStat.of(os.stat(path))
            key = str(path)
            cached = self.state.cached_digest(key, stat)
            if cached is None:
                cached = self.free_digest(path)
                if cached is not None:
                    self.state.set_digest(key, stat, cached, trusted=True)
            if cached is not None:
                out[path] = cached
            else:
                todo.append((path, stat))
        if not todo:
            return out
        total = sum(stat.size for _, stat in todo)
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            with self._lock:
                done += n
                self.bytes_read += n
                if progress:
                    progress(done, total)

        def work(item: tuple[Path, FileStat]) -> tuple[Path, FileStat | None, str]:
            path, before = item
            digest = sha256_file(path, advance)
            after = FileStat.of(os.stat(path))
            # A file that changed while being read gets no cache entry: the next look rehashes it.
            return path, (after if after == before else None), digest

        if len(todo) == 1:
            results = [work(todo[0])]
        else:
            with ThreadPoolExecutor(self.workers) as pool:
                results = list(pool.map(work, sorted(todo, key=lambda t: -t[1].size)))
        for path, seen, digest in results:
            if seen is not None:
                self.state.set_digest(str(path), seen, digest, trusted=trusted)
            out[path] = digest
        return out


def tree_digest(root: Path, files: Iterable[Path]) -> str:
    """``sha256:<hex>`` over each file's path relative to ``root`` and its bytes, in the order
    given: the identity of a set of source files (the code a step runs is part of its key)."""
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()
