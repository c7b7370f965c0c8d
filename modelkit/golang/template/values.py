"""Go values as the evaluator holds them: strings as bytes, ``<no value>``, pointers to structs.

Templates are dynamically typed only on the surface: ``eq``, ``index`` and printing look at
the Go type (``reflect.Kind``) underneath. The evaluator keeps Go's data as Python values —
``bytes`` for strings (Go counts bytes), ``int``, ``float``, ``bool``, ``None`` for nil, lists
and dicts for slices and maps — plus the two below that Python has no equivalent for.
"""

from __future__ import annotations

from typing import Any


class GoTemplateError(Exception):
    """The template does not parse, or fails while executing (as Go's would)."""


class NoValue:
    """Go's invalid reflect.Value: a missing map key under ``missingkey=zero``."""

    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE = NoValue()


class GoStruct:
    """A pointer to a Go struct: fields by name, compared by identity (as pointers are).

    ``json``: each field's name and ``omitempty`` in ``json.Marshal`` (its struct tags; absent: the
    field's own name, always written); ``json_string``: the type has a ``String()`` that returns
    its JSON, so printing it writes that (Ollama's ``templateTool``).
    """

    def __init__(self, type_name: str, fields: dict[str, Any],
                 json: dict[str, tuple[str, bool]] | None = None, json_string: bool = False) -> None:
        self.type_name = type_name
        self.fields = fields
        self.json = json or {}
        self.json_string = json_string

    def __repr__(self) -> str:
        return f"&{self.type_name}{self.fields!r}"


class GoMap(dict[bytes, Any]):
    """A Go map type whose ``String()`` returns its JSON (Ollama's ``templateArgs`` and
    ``templateProperties``): printed as JSON, ranged over in key order, keys read as fields."""

    json_string = True


class GoSlice(list[Any]):
    """A Go slice type whose ``String()`` returns its JSON (Ollama's ``templateTools``); ``nil``:
    the nil slice of that type (false, empty, and written ``null``)."""

    json_string = True

    def __init__(self, items: Any = (), nil: bool = False) -> None:
        super().__init__(items)
        self.nil = nil


#: Python types of Go's basic kinds, in the order they must be tested (a bool is an int).
_BASIC_KINDS = ((bool, "bool"), (int, "int"), (float, "float"), (bytes, "string"))

_TYPE_NAMES = {"string": "string", "int": "int", "bool": "bool", "float": "float64", "nil": "<nil>",
               "invalid": "<invalid>"}


def kind(v: Any) -> str:
    """The Go kind that comparisons care about: invalid, nil, bool, int, float, string or other."""
    if v is NO_VALUE:
        return "invalid"
    if v is None:
        return "nil"
    return next((k for t, k in _BASIC_KINDS if isinstance(v, t)), "other")


def truth(v: Any) -> bool:
    """Go's template truth: false, 0, nil, an empty string, slice or map are false."""
    if v is NO_VALUE or v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (bytes, list, dict, tuple)):
        return len(v) > 0
    return True


def type_name(v: Any) -> str:
    """The Go type as Go's error messages and ``%!(EXTRA ...)`` print it."""
    k = kind(v)
    if k != "other":
        return _TYPE_NAMES[k]
    if isinstance(v, GoStruct):
        return "*" + v.type_name
    if isinstance(v, list):
        return "[]interface {}"
    if isinstance(v, dict):
        return "map[string]interface {}"
    return type(v).__name__
