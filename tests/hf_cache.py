"""Make a Hugging Face cache that looks exactly like one huggingface_hub downloaded.

Layout (as huggingface_hub writes it): ``models--{owner}--{name}/blobs/<hash>`` holds each file
once, named by its sha256 for LFS files and by its git blob SHA-1 for small git-tracked ones;
``snapshots/<commit>/<path>`` are relative symlinks into ``blobs/``; ``refs/<branch>`` holds the
commit. The tests use it to exercise modelkit's real Hub code offline.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

LFS_SUFFIXES = (".safetensors", ".bin", ".model", ".gguf")


def add_repo(cache: Path, repo: str, files: dict[str, bytes], commit: str | None = None,
             branch: str = "main") -> str:
    """Store ``files`` as ``repo``@``commit`` in the cache at ``cache``; return the commit."""
    commit = commit or hashlib.sha1(repr(sorted(files)).encode() + repo.encode()).hexdigest()
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "blobs").mkdir(parents=True, exist_ok=True)
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / branch).write_text(commit)
    snapshot = folder / "snapshots" / commit
    for name, data in files.items():
        if name.endswith(LFS_SUFFIXES):
            blob = hashlib.sha256(data).hexdigest()
        else:
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (folder / "blobs" / blob).write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        os.symlink(os.path.relpath(folder / "blobs" / blob, link.parent), link)
    return commit


def add_folder(cache: Path, repo: str, folder: Path, **kwargs: str) -> str:
    return add_repo(cache, repo, {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}, **kwargs)
