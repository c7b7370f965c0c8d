"""Jinja filters (``| trim``, ``| length``, ``| selectattr(...)``...) on translator values.

On constants a filter is Jinja's own, computed in the sandbox. On runtime values only those Go
can do are handlers (:data:`_RUNTIME_FILTERS`, by name): ``trim`` as a strip, ``length`` as an
emptiness test on message text (Go counts bytes) or a count of messages, ``selectattr`` as a
filtered list that loops search (:func:`~.logic.count`, :func:`~.logic.find`), ``tojson`` of
tool data as Ollama's ``json``. The list filters Go cannot do give a value that fails only if
used.
"""

from __future__ import annotations

import dataclasses

from . import goexpr as gx
from .access import get_attr, list_index
from .calls import method
from .choices import dist, make_choice
from .govalue import str_expr
from .jinja_tests import Handler, apply_test, on_runtime
from .logic import count, find, not_, truth
from .operators import assume_absent
from .state import State
from .text import pieces, strip
from .tools import to_json
from .values import (
    Atom,
    Choice,
    DFiltered,
    DInt,
    DList,
    DMsg,
    DStr,
    Folded,
    Poison,
    Static,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    all_static,
    all_static_kwargs,
    check_operands,
    compute_static,
    make_str,
)


def apply_filter(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V:
    """A Jinja filter: computed in the sandbox on constants, else one Go can do (:data:`_RUNTIME_FILTERS`)."""
    raising = check_operands(value, *args, *kwargs.values())
    if raising is not None:
        return raising
    env = st.jinja.env
    if name not in env.filters:
        raise StaticRaise(f"No filter named {name!r}.")
    if isinstance(value, Static) and all_static(args) and \
            all_static_kwargs(kwargs):
        return compute_static(lambda: env.call_filter(
            name, value.value, [a.value for a in args], {k: v.value for k, v in kwargs.items()},
            context=st.jinja.jctx, eval_ctx=st.jinja.eval_ctx))
    if isinstance(value, Choice):
        return dist(st, value, lambda x: apply_filter(st, name, x, args, kwargs))
    return on_runtime(st, _RUNTIME_FILTERS, name, value, args, kwargs, f"the {name} filter on runtime values")


def _filter_string(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    if isinstance(value, (DStr, Static)):
        return value
    return make_str(pieces(st, value))


def _filter_default(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    boolean = (args[1] if len(args) > 1 else kwargs.get("boolean", Static(False)))
    if isinstance(boolean, Static) and not boolean.value:
        return value
    default = args[0] if args else kwargs.get("default_value", Static(""))
    t = truth(st, value)
    if isinstance(t, Static):
        return value if t.value else default
    return make_choice(st, [(t.expr, value), (None, default)])


def _filter_trim(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    chars = args[0] if args else kwargs.get("chars", Static(None))
    if not isinstance(chars, Static):
        raise Unsupported("trim with runtime characters")
    return strip(st, value, chars.value, True, True)


def _filter_length(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    """``length`` (``count``): of a list, or of message text as far as Go can count it (bytes)."""
    if isinstance(value, DStr):
        if any(isinstance(p, Atom) and not p.plain for p in value.pieces):
            t = truth(st, value)
            if isinstance(t, Static):
                return Static(1 if t.value else 0)
            return DInt(t.expr, byte_len=True, emptiness_only=True)
        return DInt(f"len {gx.arg(str_expr(value))}", byte_len=True)
    if isinstance(value, DList):
        return DInt(f"len {gx.arg(value.expr)}", sym=("len", value.expr, 0))
    if isinstance(value, DFiltered):
        return count(st, value)
    if isinstance(value, Tup):
        return Static(len(value.items))
    if isinstance(value, DMsg):
        raise Unsupported("the length of a message")
    return None


def _filter_first_last(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    if isinstance(value, DList):
        return list_index(st, value, Static(0 if name == "first" else -1))
    if isinstance(value, Tup):
        return value.items[0 if name == "first" else -1] if value.items else st.jinja.undefined(name)
    if isinstance(value, DFiltered):
        return find(st, value, last=name == "last")
    return None


def _filter_list(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    return value if isinstance(value, (DList, Tup, DFiltered)) else None


def _filter_reverse(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    return dataclasses.replace(value, reverse=not value.reverse) if isinstance(value, DList) else None


def _filter_join(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    if not isinstance(value, Tup):
        return None
    sep = args[0] if args else Static("")
    if not isinstance(sep, Static):
        raise Unsupported("join with a runtime separator")
    return method(st, Static(str(sep.value)), "join", [value], {})


def _filter_select(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    """``selectattr``/``rejectattr`` on messages; other list filters cannot run in Go (a value
    that fails only if used)."""
    if name in ("selectattr", "rejectattr") and isinstance(value, DList) and not value.reverse:
        return _filtered(st, value, name == "rejectattr", args)
    return Poison(f"the {name} filter on runtime values")


def _filter_replace(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    if isinstance(value, DStr) and args and isinstance(args[0], Static) \
            and isinstance(args[0].value, str) and args[0].value.strip():
        assume_absent(st, args[0].value)
        return value
    return None


def _filter_tojson(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    if args:
        raise Unsupported("tojson with positional arguments")
    json = to_json(st, value, kwargs)
    if json is None:
        raise Unsupported("tojson of runtime values (Go's json differs from Python's)")
    return json


def _filter_case(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    """``lower``/``upper``/...: roles are lower-case already; other text is folded, which only a
    substring test can take (under an assumption)."""
    if isinstance(value, DStr) and len(value.pieces) == 1 and isinstance(value.pieces[0], Atom) \
            and value.pieces[0].expr.endswith(".Role") and name == "lower":
        st.report.assume("roles are lower-case (user, assistant, system, tool)")
        return value
    if isinstance(value, DStr):
        return Folded(value, name)
    raise Unsupported(f"the {name} filter on a runtime {type(value).__name__}")


def _filtered(st: State, base: DList, reject: bool, args: list[V]) -> V:
    """Messages kept by ``selectattr(attr, test, ...)`` (or left by ``rejectattr``): a predicate,
    tested where the list is used."""
    if not args or not all_static(args):
        raise Unsupported("selectattr with runtime arguments")
    attr, rest = args[0].value, [a.value for a in args[1:]]
    test_name = rest[0] if rest else None
    test_args: list[V] = [Static(x) for x in rest[1:]]

    def pred(msg: V) -> V:
        field = get_attr(st, msg, attr)
        r = apply_test(st, test_name, field, test_args, {}) if test_name else truth(st, field)
        return not_(st, r) if reject else r

    return DFiltered(base, pred, f"messages filtered on {attr}")


_RUNTIME_FILTERS: dict[str, Handler] = {
    "string": _filter_string, "safe": _filter_string,
    "default": _filter_default, "d": _filter_default,
    "trim": _filter_trim,
    "length": _filter_length, "count": _filter_length,
    "first": _filter_first_last, "last": _filter_first_last,
    "list": _filter_list,
    "reverse": _filter_reverse,
    "join": _filter_join,
    "replace": _filter_replace,
    "tojson": _filter_tojson,
    **dict.fromkeys(("upper", "lower", "capitalize", "title"), _filter_case),
    **dict.fromkeys(("selectattr", "rejectattr", "map", "select", "reject", "groupby", "unique", "sort", "batch",
                     "slice", "sum", "min", "max", "items", "dictsort"), _filter_select),
}
