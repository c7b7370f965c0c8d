"""Jinja tests (``x is defined``, ``x is string``, ``n is even``...) on translator values.

On constants a test is Jinja's own, computed in the sandbox. A runtime value answers most type
tests by its kind alone (message text is a string, messages a list: :data:`_TYPE_TESTS`); the
rest that Go can do are handlers, one per test (:data:`_RUNTIME_TESTS`), looked up by name.
"""

from __future__ import annotations

from collections.abc import Callable

from . import goexpr as gx
from .logic import canon, dist_bool, not_
from .operators import compare, contains, eq
from .state import State
from .values import (
    Builtin,
    Choice,
    DBool,
    DInt,
    DMsg,
    MacroV,
    NSRef,
    Rec,
    Static,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    all_static,
    check_operands,
    compute_static,
    value_kind,
)

#: A filter or test on a runtime value: the result, or None when this value is not one it can take.
Handler = Callable[[State, str, V, list[V], dict[str, V]], V | None]


def on_runtime(st: State, handlers: dict[str, Handler], name: str, value: V, args: list[V], kwargs: dict[str, V],
               refusal: str) -> V:
    """The filter or test ``name`` on a runtime value, by its handler; refused when there is none
    or it cannot take this value."""
    handler = handlers.get(name)
    result = handler(st, name, value, args, kwargs) if handler else None
    if result is None:
        raise Unsupported(refusal)
    return result


def apply_test(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V:
    """A Jinja test (``is ...``): computed on constants, else by the kind of value, else in Go."""
    raising = check_operands(value, *args, *kwargs.values())
    if raising is not None:
        return raising
    env = st.jinja.env
    if name not in env.tests:
        raise StaticRaise(f"No test named {name!r}.")
    if isinstance(value, Static) and all_static(args) and not kwargs:
        return compute_static(lambda: env.call_test(name, value.value, [a.value for a in args], {},
                                                    context=st.jinja.jctx, eval_ctx=st.jinja.eval_ctx))
    if isinstance(value, Choice):
        return dist_bool(st, value, lambda x: apply_test(st, name, x, args, kwargs))
    if isinstance(value, DMsg) and value.kind in VALUE_TESTS["defined"]:
        if name not in VALUE_TESTS:
            raise Unsupported(f"the test 'is {name}' on a tool-call argument")
        return Static(value.kind in VALUE_TESTS[name])
    if name in _TYPE_TESTS:
        return Static(_TYPE_TESTS[name](value_kind(value), value))
    return on_runtime(st, _RUNTIME_TESTS, name, value, args, kwargs, f"the test 'is {name}' on runtime values")


def _test_true_false(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    if value_kind(value) != "bool":
        return Static(False)
    if not isinstance(value, DBool):
        raise Unsupported("is true/false of a runtime value")
    c = st.facts.dbool(canon(value))
    return c if name == "true" else not_(st, c)


def _test_eq(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    if name == "sameas":
        raise Unsupported("the sameas test")
    return eq(st, value, args[0] if args else kwargs.get("other", Static(None)))


def _test_ne(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    return not_(st, eq(st, value, args[0]))


def _test_order(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    return compare(st, _ORDER_TESTS[name], value, args[0])


def _test_in(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    return contains(st, args[0], value)


def _test_parity(st: State, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
    """``odd``, ``even``, and ``divisibleby(2)``: the last binary digit, in Go."""
    if not isinstance(value, DInt) or value.byte_len:
        return None
    if name == "divisibleby":
        if not (args and isinstance(args[0], Static) and args[0].value == 2):
            return None
        return st.facts.dbool(gx.is_even(value.expr))
    even = st.facts.dbool(gx.is_even(value.expr))
    return even if name == "even" else not_(st, even)


#: Tests a runtime value answers by its kind alone (message text is a string, messages a list...).
_TYPE_TESTS: dict[str, Callable[[str, V], bool]] = {
    "defined": lambda kind, v: True,
    "undefined": lambda kind, v: False,
    "none": lambda kind, v: False,
    "string": lambda kind, v: kind == "str",
    "mapping": lambda kind, v: kind == "msg" or isinstance(v, (NSRef, Rec)),
    "iterable": lambda kind, v: kind in ("str", "list", "msg") or isinstance(v, (Tup, Rec)),
    "sequence": lambda kind, v: kind in ("str", "list", "msg") or isinstance(v, (Tup, Rec)),
    "number": lambda kind, v: kind in ("int", "bool"),
    "integer": lambda kind, v: kind in ("int", "bool"),
    "float": lambda kind, v: False,
    "boolean": lambda kind, v: kind == "bool",
    "callable": lambda kind, v: isinstance(v, (MacroV, Builtin)),
}

#: Type tests on a tool-call argument's value that is not a string, by its kind (:mod:`.tools`).
VALUE_TESTS: dict[str, frozenset[str]] = {
    "defined": frozenset({"number", "bool", "object", "array"}), "undefined": frozenset(), "none": frozenset(),
    "string": frozenset(), "mapping": frozenset({"object"}), "iterable": frozenset({"object", "array"}),
    "sequence": frozenset({"object", "array"}), "number": frozenset({"number", "bool"}),
    "boolean": frozenset({"bool"}),
}

_ORDER_TESTS = {"lt": "lt", "<": "lt", "le": "lteq", "<=": "lteq", "gt": "gt", ">": "gt", "ge": "gteq", ">=": "gteq"}

_RUNTIME_TESTS: dict[str, Handler] = {
    "true": _test_true_false, "false": _test_true_false,
    **dict.fromkeys(("equalto", "eq", "==", "sameas"), _test_eq),
    "ne": _test_ne, "!=": _test_ne,
    **dict.fromkeys(_ORDER_TESTS, _test_order),
    "in": _test_in,
    "odd": _test_parity, "even": _test_parity, "divisibleby": _test_parity,
}
