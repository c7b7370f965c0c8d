"""A picture of the package tree, taken before the tests run and compared after: tests never write in it.

A test that writes a file into ``modelkit/`` (even one it removes again) changes what the other
worker's stamp and kept-spec tests digest, is left behind when the run is killed, and cannot run
from a read-only checkout. Files are compared by name, size and mtime; a folder by its entries'
names and its mtime, which changes when anything is created in it or removed, unless the only
change is the ``__pycache__`` Python makes on first import.
"""

from __future__ import annotations

import os
from pathlib import Path

Picture = dict[str, tuple[int, ...]]


def picture(root: Path) -> Picture:
    """Each file's (size, mtime_ns) and each folder's (mtime_ns, whether it has ``__pycache__``)."""
    seen: Picture = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        st = os.stat(folder)
        seen[os.path.relpath(folder, root) + "/"] = (st.st_mtime_ns, int(os.path.isdir(f"{folder}/__pycache__")))
        for name in files:
            st = os.stat(os.path.join(folder, name))
            seen[os.path.relpath(os.path.join(folder, name), root)] = (st.st_size, st.st_mtime_ns)
    return seen


def changes(before: Picture, after: Picture) -> list[str]:
    """What differs, one line each ([] when nothing does)."""
    lines = [f"{name}: made" for name in sorted(after.keys() - before.keys())]
    lines += [f"{name}: removed" for name in sorted(before.keys() - after.keys())]
    for name in sorted(before.keys() & after.keys()):
        if before[name] == after[name]:
            continue
        if name.endswith("/") and not before[name][1] and after[name][1]:
            continue  # Python made __pycache__ here: the only change a test run may make
        lines.append(f"{name}: {'something was made or removed in it' if name.endswith('/') else 'changed'}")
    return lines
