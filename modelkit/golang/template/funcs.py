"""The builtin functions of ``text/template``: comparison, ``len``, ``index``, ``slice``, ``not``, printing.

``and`` and ``or`` are not here: they evaluate their arguments lazily, so execution handles them.
Each function fails where Go's fails (comparing incompatible types, an index out of range), with
an error the template's caller sees, since the proof must not accept what Ollama would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .fmt import sprint, sprintf, sprintln
from .values import NO_VALUE, GoTemplateError, kind, truth, type_name


def _to_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise GoTemplateError(f"cannot index slice/array with type {type_name(v)}")
    return v


def eq(a: Any, *bs: Any) -> bool:
    """``eq a b...``: true when ``a`` equals any ``b``; nil and missing values compare by kind."""
    if not bs:
        raise GoTemplateError("missing argument for comparison")
    ka = kind(a)
    for b in bs:
        kb = kind(b)
        if ka != kb:
            if ka in ("invalid", "nil") or kb in ("invalid", "nil"):
                if ka in ("other", "nil") and kb in ("other", "nil"):
                    if (a is None) == (b is None) and a is None:
                        return True
                    continue
                continue
            raise GoTemplateError("incompatible types for comparison")
        if ka == "other":
            if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
                raise GoTemplateError("non-comparable types")
            if a is b:
                return True
            continue
        if a == b:
            return True
    return False


def _order(a: Any, b: Any) -> int:
    ka, kb = kind(a), kind(b)
    if ka not in ("int", "float", "string") or kb not in ("int", "float", "string"):
        raise GoTemplateError("invalid type for comparison")
    if ka != kb:
        raise GoTemplateError("incompatible types for comparison")
    return int(a > b) - int(a < b)


def index(item: Any, *idx: Any) -> Any:
    """``index x 1 2``: ``x[1][2]``; a missing map key is Go's ``<no value>``."""
    v = item
    for i in idx:
        if v is None or v is NO_VALUE:
            raise GoTemplateError("index of untyped nil")
        if isinstance(v, (bytes, list)):
            n = _to_int(i)
            if n < 0 or n >= len(v):
                raise GoTemplateError(f"error calling index: index out of range: {n}")
            v = v[n]
        elif isinstance(v, dict):
            v = v.get(i if not isinstance(i, bytes) else i.decode(), NO_VALUE)
        else:
            raise GoTemplateError(f"can't index item of type {type_name(v)}")
    return v


def slice_(item: Any, *idx: Any) -> Any:
    """``slice x 1 2``: ``x[1:2]``, in bytes for a string."""
    if not isinstance(item, (bytes, list)):
        raise GoTemplateError(f"can't slice item of type {type_name(item)}")
    if len(idx) > 3 or (len(idx) == 3 and isinstance(item, bytes)):
        raise GoTemplateError("too many slice indexes")
    n = [_to_int(i) for i in idx]
    for k in n:
        if k < 0 or k > len(item):
            raise GoTemplateError(f"error calling slice: index out of range: {k}")
    i = n[0] if n else 0
    j = n[1] if len(n) > 1 else len(item)
    if i > j:
        raise GoTemplateError(f"error calling slice: invalid slice index: {i} > {j}")
    return item[i:j]


def length(v: Any) -> int:
    """``len x``: bytes of a string, items of a slice or map."""
    if isinstance(v, (bytes, list, dict, tuple)):
        return len(v)
    raise GoTemplateError(f"error calling len: len of type {type_name(v)}")


BUILTINS: dict[str, Callable[..., Any]] = {
    "not": lambda a: not truth(a),
    "len": length,
    "index": index,
    "slice": slice_,
    "eq": eq,
    "ne": lambda a, b: not eq(a, b),
    "lt": lambda a, b: _order(a, b) < 0,
    "le": lambda a, b: _order(a, b) <= 0,
    "gt": lambda a, b: _order(a, b) > 0,
    "ge": lambda a, b: _order(a, b) >= 0,
    "print": lambda *a: sprint(list(a)),
    "printf": lambda f, *a: sprintf(f, list(a)),
    "println": lambda *a: sprintln(list(a)),
}
