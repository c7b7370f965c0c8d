"""A translator value as one Go expression, where Go can hold it in one.

Joining the branches of an ``if`` or keeping a namespace attribute across loop iterations puts
a value into a Go variable; that needs the value as an expression (:func:`go_value`). Comparing
or measuring a string needs it as a Go *string* expression (:func:`str_expr`), which a trimmed
piece is not: Go can only write a trimmed string, through a helper template.
"""

from __future__ import annotations

from . import goexpr as gx
from .goast import go_string
from .values import Atom, DBool, DInt, DList, DMsg, DStr, Static, Unsupported, V


def go_value(v: V) -> str | None:
    """A Go expression with this value (``None`` when there is none)."""
    if isinstance(v, Static):
        x = v.value
        if isinstance(x, bool):
            return "true" if x else "false"
        if isinstance(x, int):
            return str(x)
        if isinstance(x, str):
            return go_string(x)
        return None
    if isinstance(v, DStr):
        args: list[str] = []
        for p in v.pieces:
            if isinstance(p, str):
                args.append(go_string(p))
            elif isinstance(p, Atom) and p.plain and p.cut is None:
                args.append(gx.arg(p.expr))
            else:
                return None
        if len(args) == 1:
            return v.pieces[0].expr if isinstance(v.pieces[0], Atom) else args[0]
        return "print " + " ".join(args)
    if isinstance(v, DBool):
        return v.expr if v.canon else f"not (not {gx.arg(v.expr)})"
    if isinstance(v, (DInt, DMsg)):
        return v.expr
    if isinstance(v, DList) and not v.reverse:
        return v.expr
    return None


def str_expr(v: V) -> str:
    """A Go string expression for a string value, or :class:`Unsupported`."""
    if isinstance(v, Static) and isinstance(v.value, str):
        return go_string(v.value)
    if isinstance(v, DStr):
        args: list[str] = []
        for p in v.pieces:
            if isinstance(p, str):
                args.append(go_string(p))
            elif isinstance(p, Atom) and p.plain:
                args.append(gx.arg(p.expr))
            else:
                raise Unsupported("a trimmed or computed string used as a value (Go can only write it)")
        if len(args) == 1:
            return args[0]
        return "print " + " ".join(args)
    raise Unsupported(f"a {type(v).__name__} used as a string")
