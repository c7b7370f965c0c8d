"""Jinja's operators on translator values: arithmetic, equality, ordering, ``in``.

Each has two cases: constants are computed with Jinja's own semantics (:func:`binary`, in the
sandbox, so a template raising at build time raises in Go too), and runtime values become Go
expressions — ``loop.index0 + 1`` uses ``printf`` padding (:mod:`.goexpr`), ``role == 'user'``
is Go's ``eq`` and proves, in its branch, what the role is — or are refused. A substring test
on message text is settled by assuming the text never contains it (:func:`assume_absent`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import goexpr as gx
from .choices import dist
from .goast import go_string
from .govalue import str_expr
from .logic import canon, dist_bool, not_, or_value, truth
from .ollama_data import MESSAGE_FIELDS
from .state import State
from .text import concat
from .tools import has_data
from .values import (
    Atom,
    Choice,
    DBool,
    DInt,
    DList,
    DMsg,
    DStr,
    Folded,
    NSRef,
    Parity,
    Poison,
    Rec,
    Static,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    check_operands,
    compute_static,
    dint,
    is_stringy,
)


def binary(st: State, a: V, b: V, const: Callable[[Any, Any], Any], again: Callable[[V, V], V],
           as_bool: bool = False) -> V | None:
    """What every binary operation does first, or None when the operands need the operation itself.

    A poisoned operand is refused and a raising one makes the result raise; two constants are
    computed with Jinja's semantics (``const``); a choice has the operation (``again``) applied
    to each of its options (``as_bool``: the result is a boolean).
    """
    raising = check_operands(a, b)
    if raising is not None:
        return raising
    if isinstance(a, Static) and isinstance(b, Static):
        return compute_static(lambda: const(a.value, b.value))
    spread = dist_bool if as_bool else dist
    if isinstance(a, Choice):
        return spread(st, a, lambda x: again(x, b))
    if isinstance(b, Choice):
        return spread(st, b, lambda x: again(a, x))
    return None


def arith(st: State, op: str, a: V, b: V) -> V:
    """``a op b`` for Jinja's arithmetic operators (``+ - * / // % **``)."""
    folded = binary(st, a, b, lambda x, y: _ARITH[op](x, y), lambda x, y: arith(st, op, x, y))
    if folded is not None:
        return folded
    if op == "+" and (is_stringy(a) or is_stringy(b)):
        if not (is_stringy(a) and is_stringy(b)):
            raise StaticRaise("can only concatenate str (not a number) to str")
        return concat(st, a, b)
    if op == "+" and isinstance(a, (Tup, Static)) and isinstance(b, (Tup, Static)):
        ai = a.items if isinstance(a, Tup) else _static_items(a)
        bi = b.items if isinstance(b, Tup) else _static_items(b)
        return Tup(tuple(ai) + tuple(bi))
    if op in ("+", "-") and isinstance(a, DInt) and a.sym and isinstance(b, Static) and isinstance(b.value, int) \
            and not isinstance(b.value, bool):
        kind, lst, k0 = a.sym
        k = k0 + (b.value if op == "+" else -b.value)
        base = f"len {gx.arg(lst)}" if kind == "len" else a.sym_base
        expr = str(gx.add(base, k)) if k >= 0 else str(gx.sub(base, -k))
        return dint(expr, (kind, lst, k), base)
    ia, ib = _int_of(a), _int_of(b)
    if op == "+":
        return DInt(str(gx.add(ia, ib)))
    if op == "-":
        if isinstance(ib, int) and ib < 0:
            return DInt(str(gx.add(ia, -ib)))
        return DInt(str(gx.sub(ia, ib)))
    if op == "%" and ib == 2 and isinstance(ia, str):
        return Parity(ia)
    raise Unsupported(f"the operator {op} on runtime numbers")


def _int_of(v: V) -> str | int:
    if isinstance(v, Static) and isinstance(v.value, int) and not isinstance(v.value, bool):
        return v.value
    if isinstance(v, DInt):
        if v.byte_len:
            raise Unsupported("arithmetic on the length of a string (Go counts bytes)")
        return v.expr
    raise Unsupported(f"arithmetic on a {type(v).__name__}")


def eq(st: State, a: V, b: V) -> V:
    """``a == b``; a runtime value compared with a constant of another type is simply unequal."""
    folded = binary(st, a, b, lambda x, y: x == y, lambda x, y: eq(st, x, y), as_bool=True)
    if folded is not None:
        return folded
    if isinstance(a, Static) and not isinstance(b, Static):
        a, b = b, a
    if isinstance(a, DStr):
        return _eq_str(st, a, b)
    if isinstance(a, DInt):
        return _eq_int(st, a, b)
    if isinstance(a, Parity):
        if isinstance(b, Static) and b.value in (0, 1) and not isinstance(b.value, bool):
            even = st.facts.dbool(gx.is_even(a.expr))
            return even if b.value == 0 else not_(st, even)
        raise Unsupported("comparing a remainder")
    if isinstance(a, DBool):
        return _eq_bool(st, a, b)
    if isinstance(a, DMsg):
        if isinstance(b, DMsg):
            raise Unsupported("comparing whole messages (Jinja compares contents, Go pointers)")
        return Static(False)
    if isinstance(a, (DList, Tup)):
        raise Unsupported("comparing lists")
    if isinstance(a, NSRef):
        return Static(False)
    raise Unsupported(f"comparing a {type(a).__name__}")


def _eq_str(st: State, a: DStr, b: V) -> V:
    if isinstance(b, Static):
        if not isinstance(b.value, str):
            return Static(False)
        if b.value == "":
            return not_(st, truth(st, a))
        x = str_expr(a)
        if len(a.pieces) == 1 and isinstance(a.pieces[0], Atom):
            known_not = st.facts.fact(("ne", x)) or set()
            if b.value in known_not:
                return Static(False)
        return st.facts.dbool(f"eq {gx.arg(x)} {go_string(b.value)}",
                              when_true=(("eq", x, b.value),), when_false=(("ne", x, b.value),))
    if isinstance(b, DStr):
        return st.facts.dbool(f"eq {gx.arg(str_expr(a))} {gx.arg(str_expr(b))}")
    return Static(False)


def _eq_int(st: State, a: DInt, b: V) -> V:
    if isinstance(b, Static):
        if isinstance(b.value, bool) or not isinstance(b.value, (int, float)):
            return Static(False)
        if a.byte_len and b.value != 0:
            raise Unsupported("comparing the length of a string with a number (Go counts bytes)")
        if a.emptiness_only:
            return not_(st, st.facts.dbool(a.expr, canon=False))
        if isinstance(b.value, float) and not b.value.is_integer():
            return Static(False)
        return st.facts.dbool(f"eq {gx.arg(a.expr)} {int(b.value)}")
    if isinstance(b, DInt):
        if a.byte_len or b.byte_len:
            raise Unsupported("comparing string lengths (Go counts bytes)")
        return st.facts.dbool(f"eq {gx.arg(a.expr)} {gx.arg(b.expr)}")
    return Static(False)


def _eq_bool(st: State, a: DBool, b: V) -> V:
    if isinstance(b, Static) and isinstance(b.value, (bool, int)):
        if b.value in (True, 1) and b.value is not None:
            return truth(st, a) if a.canon else st.facts.dbool(canon(a))
        if b.value == 0:
            return not_(st, a)
        return Static(False)
    if isinstance(b, DBool):
        return st.facts.dbool(f"eq {gx.arg(canon(a))} {gx.arg(canon(b))}")
    return Static(False)


def compare(st: State, op: str, a: V, b: V) -> V:
    """A Jinja comparison (``node.ops``' operators: ``eq ne lt lteq gt gteq in notin``)."""
    raising = check_operands(a, b)
    if raising is not None:
        return raising
    if op == "eq":
        return eq(st, a, b)
    if op == "ne":
        return not_(st, eq(st, a, b))
    if op in ("in", "notin"):
        r = contains(st, b, a)
        return not_(st, r) if op == "notin" else r
    folded = binary(st, a, b, lambda x, y: _ORDER[op](x, y), lambda x, y: compare(st, op, x, y), as_bool=True)
    if folded is not None:
        return folded
    go = {"lt": "lt", "lteq": "le", "gt": "gt", "gteq": "ge"}[op]
    if isinstance(a, DInt) or isinstance(b, DInt):
        if (isinstance(a, DInt) and a.byte_len) or (isinstance(b, DInt) and b.byte_len):
            return _compare_byte_len(st, op, a, b)
        ea, eb = _int_of_cmp(a), _int_of_cmp(b)
        return st.facts.dbool(f"{go} {gx.arg(ea)} {gx.arg(eb)}")
    if isinstance(a, DStr) and isinstance(b, (DStr, Static)) or isinstance(b, DStr) and isinstance(a, Static):
        return st.facts.dbool(f"{go} {gx.arg(str_expr(a))} {gx.arg(str_expr(b))}")
    raise Unsupported(f"ordering a {type(a).__name__} and a {type(b).__name__}")


def _compare_byte_len(st: State, op: str, a: V, b: V) -> V:
    """Ordering the length of a string: Go counts bytes, Python characters, so only emptiness
    tests (``> 0``, ``>= 1``, ``< 1``, ``<= 0``) agree."""
    lenv, other, flipped = (a, b, False) if isinstance(a, DInt) and a.byte_len else (b, a, True)
    o = other.value if isinstance(other, Static) else None
    opx = {"lt": "gt", "gt": "lt", "lteq": "gteq", "gteq": "lteq"}[op] if flipped else op
    nonempty = (opx, o) in (("gt", 0), ("gteq", 1))
    empty = (opx, o) in (("lt", 1), ("lteq", 0))
    if not (nonempty or empty):
        raise Unsupported("comparing the length of a string with a number (Go counts bytes)")
    assert isinstance(lenv, DInt)
    t = st.facts.dbool(lenv.expr, canon=False)
    return t if nonempty else not_(st, t)


def _int_of_cmp(v: V) -> str:
    if isinstance(v, Static) and isinstance(v.value, int) and not isinstance(v.value, bool):
        return str(v.value)
    if isinstance(v, DInt):
        return v.expr
    raise Unsupported(f"comparing a number with a {type(v).__name__}")


def contains(st: State, container: V, item: V) -> V:
    """``item in container``."""
    folded = binary(st, container, item, lambda c, i: i in c, lambda c, i: contains(st, c, i), as_bool=True)
    if folded is not None:
        return folded
    if isinstance(container, Rec) and isinstance(item, Static):
        return Static(container.get(item.value) is not None)
    if isinstance(container, DMsg):
        if isinstance(item, Static) and isinstance(item.value, str):
            if container.kind == "msg" and item.value in MESSAGE_FIELDS:
                return Static(True)
            return has_data(st, container, item.value)
        raise Unsupported("testing a runtime key of a message")
    if isinstance(container, DStr) and isinstance(item, Static) and isinstance(item.value, str):
        return assume_absent(st, item.value)
    if isinstance(container, Folded) and isinstance(item, Static) and isinstance(item.value, str):
        if not item.value.strip():
            raise Unsupported(f"testing whether message text contains {item.value!r}")
        st.report.assume(f"message text never contains {item.value!r} in any letter case")
        return Static(False)
    if isinstance(container, Static) and isinstance(container.value, (list, tuple, set, frozenset, dict)):
        return _in_constant(st, list(container.value), item)
    if isinstance(container, Tup):
        result: V = Static(False)
        for x in container.items:
            result = or_value(st, result, eq(st, item, x))
        return result
    if isinstance(container, Static) and isinstance(container.value, str) and isinstance(item, DStr):
        raise Unsupported("testing whether a runtime string is part of a constant one")
    if isinstance(container, Poison):
        raise Unsupported(container.reason)
    raise Unsupported(f"'in' on a {type(container).__name__}")


def _in_constant(st: State, options: list[Any], item: V) -> V:
    """A runtime string or number in a constant collection: Go's ``eq`` with several operands."""
    if isinstance(item, DStr):
        strs = [x for x in options if isinstance(x, str)]
        if not strs:
            return Static(False)
        x = str_expr(item)
        return st.facts.dbool(f"eq {gx.arg(x)} " + " ".join(go_string(s) for s in strs))
    if isinstance(item, DInt):
        ints = [x for x in options if isinstance(x, int) and not isinstance(x, bool)]
        if not ints:
            return Static(False)
        return st.facts.dbool(f"eq {gx.arg(item.expr)} " + " ".join(str(i) for i in ints))
    return Static(False)


def assume_absent(st: State, needle: str) -> V:
    """``needle in text`` for message text: false, assuming message text never contains it (the
    proof's conversations check that the assumption is the template's own)."""
    if not needle.strip():
        raise Unsupported(f"testing whether message text contains {needle!r}")
    st.report.assume(f"message text never contains {needle!r}")
    return Static(False)


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "/": lambda x, y: x / y, "//": lambda x, y: x // y, "%": lambda x, y: x % y,
    "**": lambda x, y: x ** y}

_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "lt": lambda x, y: x < y, "lteq": lambda x, y: x <= y, "gt": lambda x, y: x > y, "gteq": lambda x, y: x >= y}


def _static_items(value: Static) -> tuple[Static, ...]:
    """The items of a known sequence, each known (a list or tuple concatenated in the template)."""
    return tuple(Static(x) for x in compute_static(lambda: list(value.value)).value)
