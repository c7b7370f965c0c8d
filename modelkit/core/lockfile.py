"""``modelkit.lock``: what a build resolved and produced, for version control.

A teammate who checks out the same spec and lock builds from the same commits with the same
toolchain, and ``modelkit build --locked`` proves they got the same bytes: it fails, naming the
first difference, when the build would change the lock. The file is JSON with sorted keys, so
its diffs are small and readable:

- ``sources``: each Hugging Face source's revision, the commit it resolved to, and its files'
  digests (a branch that moves on the Hub does not move a locked build; ``modelkit build --update``
  re-resolves);
- ``toolchain``: the fingerprint of each toolchain component the build used;
- ``artifacts``: each target's action key and output digests (and what a person reads there: a search's choice).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from modelkit.core.records import changes, short
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
    except json.JSONDecodeError as e:
        line = e.lineno
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


def make_lock(sources: dict[str, Any], toolchain: dict[str, Any], artifacts: dict[str, Any],
              generator: str) -> dict[str, Any]:
    """The lock's data; ``generator`` names the program and version that wrote it."""
    return {"version": LOCK_VERSION, "generator": generator,
            "sources": sources, "toolchain": toolchain, "artifacts": artifacts}


def first_difference(old: dict[str, Any] | None, new: dict[str, Any], sections: tuple[str, ...] = (
        "sources", "toolchain", "artifacts")) -> str | None:
    """``artifacts.gguf:base.f16.outputs.build/base.f16.gguf: sha256:ab… -> sha256:cd…``, or None."""
    if old is None:
        return "there is no lock file yet"
    for section in sections:
        for change in changes(old.get(section, {}), new.get(section, {}), section):
            if change.kind == "changed":
                return f"{change.path}: {short(change.before, 60)} -> {short(change.after, 60)}"
            return f"{change.path}: {change.kind}"
    return None
