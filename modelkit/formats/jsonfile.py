"""A JSON object read from a model's folder (a config, a tokenizer), or a one-line error naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from modelkit.errors import UserError


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The object in ``path``; a :class:`UserError` saying ``what`` and why where it cannot be read,
    is not JSON, or holds something else than an object (models' folders are edited by hand)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"{what}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise UserError(f"{what}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{what}: expected a JSON object")
    return data
