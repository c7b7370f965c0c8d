"""``modelkit.lock``: what a build resolved and produced, for version control.

A teammate who checks out the same spec and lock builds from the same commits with the same
toolchain, and ``modelkit build --locked`` proves they got the same bytes: it fails, naming the
first difference, when the build would change the lock. The file is JSON with sorted keys, so
its diffs are small and readable:

- ``sources``: each Hugging Face source's revision, the commit it resolved to, and its files'
  digests (a branch that moves on the Hub does not move a locked build; ``modelkit update``
  re-resolves);
- ``toolchain``: the fingerprint of each toolchain component the build used;
- ``artifacts``: each target's action key and output digests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelkit import __version__
from modelkit.errors import UserError

LOCK_NAME = "modelkit.lock"
LOCK_VERSION = 1


def read_lock(path: Path) -> dict[str, Any] | None:
    """The lock at ``path``, None if there is none; a clear error if it is unusable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UserError(f"{path}: cannot read the lock file: {e.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        line = getattr(e, "lineno", 1)
        raise UserError(f"{path}:{line}: not a valid lock file ({e.args[0].split(':')[0]}); restore it from "
                        "version control, or delete it and build to write a new one") from None
    if not isinstance(data, dict) or not isinstance(data.get("version"), int):
        raise UserError(f"{path}: not a modelkit lock file (no version); delete it and build to write a new one")
    if data["version"] > LOCK_VERSION:
        raise UserError(f"{path}: written by a newer modelkit (lock version {data['version']}, this modelkit "
                        f"reads {LOCK_VERSION}); upgrade modelkit")
    for section in ("sources", "toolchain", "artifacts"):
        if not isinstance(data.get(section, {}), dict):
            raise UserError(f"{path}: '{section}' must be a table; restore the file or delete it")
    return data


def write_lock(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(data), encoding="utf-8")
    os.replace(tmp, path)


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def make_lock(sources: dict[str, Any], toolchain: dict[str, Any], artifacts: dict[str, Any]) -> dict[str, Any]:
    return {"version": LOCK_VERSION, "generator": f"modelkit {__version__}",
            "sources": sources, "toolchain": toolchain, "artifacts": artifacts}


def first_difference(old: dict[str, Any] | None, new: dict[str, Any], sections: tuple[str, ...] = (
        "sources", "toolchain", "artifacts")) -> str | None:
    """``artifacts.gguf:base.f16.outputs.build/base.f16.gguf: sha256:ab… -> sha256:cd…``, or None."""
    if old is None:
        return "there is no lock file yet"
    for section in sections:
        diff = _diff(old.get(section, {}), new.get(section, {}), section)
        if diff:
            return diff
    return None


def _diff(old: Any, new: Any, where: str) -> str | None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key not in old:
                return f"{where}.{key}: added"
            if key not in new:
                return f"{where}.{key}: removed"
            diff = _diff(old[key], new[key], f"{where}.{key}")
            if diff:
                return diff
        return None
    if old != new:
        return f"{where}: {_short(old)} -> {_short(new)}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."
