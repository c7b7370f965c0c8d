"""Artifacts kept by action key, so switching back to an earlier input costs a hard link.

Experiments go back and forth (checkpoint-500, then 1000, then 500 again; one system prompt,
then another, then the first). After each successful step its outputs are hard-linked under
``.modelkit/cache/<key>/``; when a stale target's new key is found there, the outputs are linked
back into place instead of running the step. A hard link (or a reflink where the filesystem
offers one) shares the bytes: a 16 GB GGUF is never stored twice. Where neither works (another
filesystem), the artifact is simply not cached.

Entries are trusted only while their files keep the digests recorded for them (checked through
the stat cache, so it costs no reading); ``modelkit gc`` removes entries no current target uses.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from modelkit.core.hashing import Hasher

MANIFEST = "manifest.json"


class ArtifactCache:
    def __init__(self, directory: Path, hasher: Hasher) -> None:
        self.directory = directory
        self.hasher = hasher

    def _entry(self, key: str) -> Path:
        return self.directory / key.split(":", 1)[-1]

    def store(self, key: str, outputs: dict[Path, tuple[Path, str]]) -> bool:
        """Link ``outputs`` (final path -> (file now, digest)) under ``key``; False if the filesystem
        can't link them."""
        entry = self._entry(key)
        tmp = entry.with_name(entry.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        manifest = {}
        try:
            for i, (out, (path, digest)) in enumerate(sorted(outputs.items())):
                name = f"{i}-{out.name}"
                if not _link(path, tmp / name):
                    shutil.rmtree(tmp, ignore_errors=True)
                    return False
                manifest[name] = digest
            (tmp / MANIFEST).write_text(json.dumps(manifest, sort_keys=True))
            shutil.rmtree(entry, ignore_errors=True)
            os.replace(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        return True

    def restore(self, key: str, outputs: list[Path], tmp_names: dict[Path, Path]) -> dict[Path, str] | None:
        """Link the cached outputs of ``key`` to their temporary names; return their digests, or None."""
        entry = self._entry(key)
        try:
            manifest: dict[str, str] = json.loads((entry / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        names = sorted(manifest)
        if len(names) != len(outputs):
            return None
        restored: dict[Path, str] = {}
        for name, out in zip(names, sorted(outputs)):
            cached = entry / name
            try:
                if self.hasher.digest(cached) != manifest[name]:
                    shutil.rmtree(entry, ignore_errors=True)  # modified since: never trust it again
                    return None
            except OSError:
                return None
            tmp = tmp_names[out]
            tmp.unlink(missing_ok=True)
            if not _link(cached, tmp):
                return None
            restored[tmp] = manifest[name]
        return restored

    def record(self, key: str) -> None:
        """Re-record the entry's digests in the stat cache. Linking or renaming changes an
        inode's ctime, so this runs after every operation that touched the entry's files."""
        entry = self._entry(key)
        try:
            manifest: dict[str, str] = json.loads((entry / MANIFEST).read_text())
        except (OSError, ValueError):
            return
        for name, digest in manifest.items():
            try:
                self.hasher.record(entry / name, digest)
            except OSError:
                pass

    def paths(self, key: str, outputs: list[Path]) -> dict[Path, Path]:
        """Where the entry of ``key`` keeps each of ``outputs`` (as :meth:`store` names them): a
        stable name for the same bytes while the output itself is renamed into place."""
        entry = self._entry(key)
        return {out: entry / f"{i}-{out.name}" for i, out in enumerate(sorted(outputs))}

    def has(self, key: str) -> bool:
        """Whether an entry for ``key`` is here (not whether its files are still intact)."""
        return (self._entry(key) / MANIFEST).is_file()

    def keys(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return [f"sha256:{p.name}" for p in self.directory.iterdir() if (p / MANIFEST).is_file()]

    def size(self, key: str) -> int:
        """The bytes that removing the entry frees: files that have no other link."""
        entry = self._entry(key)
        if not entry.is_dir():
            return 0
        return sum(st.st_size for p in entry.iterdir() if (st := p.stat()).st_nlink == 1 and p.name != MANIFEST)

    def remove(self, key: str) -> None:
        shutil.rmtree(self._entry(key), ignore_errors=True)


def _link(src: Path, dst: Path) -> bool:
    """Share ``src``'s bytes at ``dst``: a hard link, else a reflink; never a full copy."""
    try:
        os.link(src, dst)
        return True
    except OSError:
        pass
    try:
        import fcntl

        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), 0x40049409, s.fileno())  # FICLONE
        return True
    except (OSError, ImportError):
        dst.unlink(missing_ok=True)
        return False
