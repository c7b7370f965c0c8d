"""Validating a spec's text with the pydantic models of :mod:`.model`: one line per problem, with its line.

``tomllib`` gives no positions, so :mod:`.toml_lines` finds them. Only a text not validated before
comes here (:mod:`.kept` keeps the result): this is where pydantic is imported.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic import BaseModel, ValidationError

from modelkit.errors import SpecError
from modelkit.ollama import params as ollama_params
from modelkit.spec.model import ItemError, Spec, closest
from modelkit.spec.toml_lines import field_name, line_of, value_lines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def validate(text: str, shown: str) -> Spec:
    """The spec ``text`` holds (``shown``: its file, as errors name it); :class:`SpecError` with a
    line per problem, in the order of the file."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        line = m.group(1) if m else "1"
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise SpecError([f"{shown}:{line}: invalid TOML: {message}"]) from None
    lines = value_lines(text)
    try:
        return Spec.model_validate(data)
    except ValidationError as e:
        errors = sorted((_format_error(shown, lines, err) for err in e.errors()), key=_line_number)
        raise SpecError(errors) from None


def _format_error(shown: str, lines: dict[Any, int], err: Any) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, ItemError):
        parent = ctx_error.parent if isinstance(ctx_error.parent, tuple) else \
            ((ctx_error.parent,) if ctx_error.parent else ())
        loc = loc + parent + (ctx_error.index,) + ((ctx_error.field,) if ctx_error.field else ())
        message = str(ctx_error)
    elif kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_at(loc[:-1])
        hint = closest(key, allowed)
        if loc[:-1] == ("ollama",) and (key in ollama_params.OPTIONS or closest(key, list(ollama_params.OPTIONS))):
            hint = f"parameters.{key if key in ollama_params.OPTIONS else closest(key, list(ollama_params.OPTIONS))}"
        message = f"unknown key '{key}'" + (f" (did you mean '{hint}'?)" if hint else "")
        if not hint and allowed:
            message += f"; allowed here: {', '.join(allowed)}"
    elif kind == "missing":
        message = "required, but missing"
    elif kind == "literal_error":
        expected = err["ctx"]["expected"]
        message = f"{json.dumps(err['input'], default=str)} is not one of {expected}"
    else:
        message = re.sub(r"^(Value error|Assertion failed), ", "", err["msg"])
    line = line_of(lines, loc) or 1
    return f"{shown}:{line}: {field_name(loc)}: {message}"


def _line_number(message: str) -> int:
    m = re.match(r"^[^:]*:(\d+):", message)
    return int(m.group(1)) if m else 0


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed at ``loc`` in the spec, for "did you mean" hints."""
    model: Any = Spec
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return [f.alias or n for n, f in model.model_fields.items()] if model is not None else []
