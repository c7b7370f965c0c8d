"""The no-op shortcut: what a build that changed nothing read, by stat, so the next is known without planning.

Planning means loading the spec, the toolchain and every input's facts: a third of a second of
imports and reads even when nothing changed, which a make-like tool called by editors and watch
scripts cannot afford. A build that found everything up to date therefore leaves a stamp: what
decided it besides files (the command's options, the environment that matters), the stat of every
file the process opened or folder it listed, with their folders (an audit hook sees them all, so
nothing is forgotten: the spec, the lock, every input, every module of code imported), the files
the caller names (outputs it only stat'ed), and what it printed. The next build with the same
options stats those files; one difference, and it plans as usual.

A stat is trusted as git trusts its index: a file whose mtime is not older than the stamp itself
may have changed again within the same clock tick, so it fails the check.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.files import replace_whole

_READ_EVENTS = {"open", "os.listdir", "os.scandir"}
_NOT_FILES = ("/proc/", "/sys/", "/dev/")  # what the kernel makes up on each read (memory, cores)
_recording: list[set[str]] = []
_recording_lock = threading.Lock()
_hooked = False

Signature = list[int] | None
"""A path's (mtime_ns, ctime_ns, size, inode), or None where nothing was there."""


def signature(path: str) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino]


def _on_event(event: str, args: tuple[Any, ...]) -> None:
    if not _recording or event not in _READ_EVENTS or not args:
        return
    path = args[0]
    if isinstance(path, (str, bytes, os.PathLike)):
        name = os.fsdecode(path) or "."
        with _recording_lock:
            for reads in _recording:
                reads.add(os.path.abspath(name))


@contextmanager
def recording_reads() -> Iterator[set[str]]:
    """Collect the absolute path of every file this process (any thread) opens or folder it lists."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_on_event)  # an audit hook cannot be removed: one for the process, idle between uses
        _hooked = True
    reads: set[str] = set()
    with _recording_lock:
        _recording.append(reads)
    try:
        yield reads
    finally:
        with _recording_lock:
            _recording.remove(reads)


@dataclass
class Stamp:
    """What one up-to-date build decided from, and what it printed (``lines``, the caller's)."""

    key: dict[str, Any]
    files: dict[str, Signature]
    lines: dict[str, Any]


def write_stamp(path: Path, key: dict[str, Any], reads: Iterable[str], lines: dict[str, Any],
                skip: Iterable[Path] = (), same_file: Iterable[Path] = ()) -> None:
    """Record the stamp at ``path``: the stats of ``reads`` and their folders, and of every loaded
    module's file, leaving out what lies under ``skip`` (a state folder that changes on every run);
    of ``same_file`` (a database in that folder, written on every run), only that it is still the
    same file (its inode): deleted or replaced, the stamp no longer holds."""
    skipped = (*(f"{os.path.abspath(s)}{os.sep}" for s in skip), *_NOT_FILES)
    modules = (getattr(m, "__file__", None) for m in list(sys.modules.values()))
    files = {p for p in (*reads, *(m for m in modules if m)) if not p.startswith(skipped)}
    files |= {folder for folder in (os.path.dirname(p) for p in files) if f"{folder}/" not in _NOT_FILES}
    stamp = {"key": key, "files": {p: signature(p) for p in sorted(files)}, "lines": lines,
             "same_file": {str(p): _inode(str(p)) for p in same_file}}
    replace_whole(path, json.dumps(stamp, separators=(",", ":")))


def read_stamp(path: Path, key: dict[str, Any]) -> Stamp | None:
    """The stamp at ``path`` if it was made with ``key`` and every file it names is as it was."""
    try:
        made = os.stat(path).st_mtime_ns
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    if any(_inode(name) != inode for name, inode in (data.get("same_file") or {}).items()):
        return None
    files: dict[str, Signature] = data.get("files") or {}
    for name, seen in files.items():
        if seen is not None and seen[0] >= made:
            return None
        if signature(name) != seen:
            return None
    return Stamp(key, files, data.get("lines") or {})


def _inode(path: str) -> int | None:
    found = signature(path)
    return found[3] if found else None
