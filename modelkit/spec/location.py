"""Where a project is: its spec file, found from what the user typed, and its state folder beside it."""

from __future__ import annotations

from pathlib import Path

from modelkit.errors import UserError

STATE_FOLDER = ".modelkit"


def find_spec(path: Path | None) -> Path:
    """The spec file a command means: a file, a folder holding model.toml, or ./model.toml."""
    path = path or Path("model.toml")
    if path.is_dir():
        path = path / "model.toml"
    if not path.is_file():
        raise UserError(f"{path}: no such spec file (write a model.toml, or pass its path)")
    return path.resolve()


def state_dir(spec: Path) -> Path:
    """Where modelkit keeps the state of the project of ``spec`` (a found spec file)."""
    return spec.parent / STATE_FOLDER
