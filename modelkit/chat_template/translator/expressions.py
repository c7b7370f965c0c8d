"""Jinja expressions, evaluated by the translator: one function per kind of node, found by its name.

:func:`ev` is the door: it looks the node's class up in :data:`_EVALUATORS` and returns a value
(:mod:`.values`); what cannot be expressed becomes a :class:`~.values.Poison` value, which only
fails the translation if it is written or decides something. The operations themselves live
below: :mod:`.operators` (arithmetic, comparisons), :mod:`.access` (attributes, items, slices),
:mod:`.calls` (calls, macros, methods), :mod:`.filters` and :mod:`.jinja_tests`, on the value
logic of :mod:`.logic`, :mod:`.choices` and :mod:`.text`. Names are resolved here: the scope
first, then what Ollama's data and the build know (``messages``, ``add_generation_prompt``,
``tools``, the special tokens, the thinking switch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2.nodes as jn

from .access import get_attr, get_item, get_slice
from .calls import call, method
from .choices import make_choice
from .filters import apply_filter
from .jinja_tests import apply_test
from .logic import and_, and_value, not_, or_, truth
from .nesting import Scope
from .ollama_data import ADD_GEN_VAR, MESSAGES, THINK, THINK_SET, THINK_SWITCHES
from .operators import arith, compare
from .state import State
from .text import pieces
from .tools import tools_value
from .values import (
    Builtin,
    Choice,
    DList,
    Piece,
    Poison,
    Rec,
    Static,
    Tup,
    Unsupported,
    V,
    all_static,
    compute_static,
    make_str,
)

#: The globals of the sandbox the translator handles itself (:mod:`.calls`).
BUILTINS = ("raise_exception", "strftime_now", "namespace", "dict", "range", "cycler", "joiner", "lipsum")


def ev(st: State, node: jn.Node, scope: Scope) -> V:
    """Evaluate an expression. What cannot be expressed becomes a :class:`Poison` value, which
    only fails the translation if it is written or decides something."""
    evaluate = _EVALUATORS.get(type(node).__name__)
    if evaluate is None:
        return Poison(f"the {type(node).__name__} expression")
    try:
        return evaluate(st, node, scope)
    except Unsupported as exc:
        return Poison(str(exc))


def name_value(st: State, name: str) -> V:
    """What a name the template's scopes do not define reads as."""
    if name == "messages":
        return DList(MESSAGES, suffix=True)
    if name == "add_generation_prompt":
        return st.facts.dbool(st.emitter.prelude(ADD_GEN_VAR))
    if name == "tools":
        return tools_value(st)
    if name == "documents":
        st.report.ignore("documents (RAG)")
    if name in st.jinja.statics:
        return Static(st.jinja.statics[name])
    if name in THINK_SWITCHES:
        return _think_switch(st, name)
    if name in BUILTINS:
        return Builtin(name)
    return st.jinja.undefined(name)


def _think_switch(st: State, name: str) -> V:
    """A thinking switch as Ollama's ``think`` sets it: undefined when the request leaves it
    unset, else the request's ``true`` or ``false``."""
    st.report.read_think_switch(name)
    if not st.follow_think:
        return st.jinja.undefined(name)
    chosen = Choice(((THINK, Static(True)), (None, Static(False))))
    return Choice(((THINK_SET, chosen), (None, st.jinja.undefined(name))))


def filter_node(st: State, node: jn.Filter, value: V, scope: Scope) -> V:
    """The filter ``node`` applied to ``value`` (its arguments evaluated in ``scope``)."""
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        raise Unsupported("filters with *args or **kwargs")
    args = [ev(st, a, scope) for a in node.args]
    kwargs = {str(k.key): ev(st, k.value, scope) for k in node.kwargs}
    return apply_filter(st, node.name, value, args, kwargs)


def _name(st: State, node: jn.Name, scope: Scope) -> V:
    found = scope.lookup(node.name)
    return found if found is not None else name_value(st, node.name)


def _const(st: State, node: jn.Const, scope: Scope) -> V:
    return Static(node.value)


def _template_data(st: State, node: jn.TemplateData, scope: Scope) -> V:
    return Static(node.data)


def _inner(st: State, node: jn.MarkSafe | jn.MarkSafeIfAutoescape | jn.Pos, scope: Scope) -> V:
    """``MarkSafe``, ``MarkSafeIfAutoescape`` and unary ``+``: the value inside."""
    return ev(st, node.expr if not isinstance(node, jn.Pos) else node.node, scope)


def _list(st: State, node: jn.List, scope: Scope) -> V:
    items = [ev(st, x, scope) for x in node.items]
    if all_static(items):
        return Static([i.value for i in items])
    return Tup(tuple(items))


def _tuple(st: State, node: jn.Tuple, scope: Scope) -> V:
    items = [ev(st, x, scope) for x in node.items]
    if all_static(items):
        return Static(tuple(i.value for i in items))
    return Tup(tuple(items))


def _dict(st: State, node: jn.Dict, scope: Scope) -> V:
    out: dict[Any, Any] = {}
    for pair in node.items:
        k, v = ev(st, pair.key, scope), ev(st, pair.value, scope)
        if not isinstance(k, Static):
            return Poison("a dict with runtime keys")
        out[k.value] = v
    if all(isinstance(v, Static) for v in out.values()):
        return Static({k: v.value for k, v in out.items()})
    return Rec(tuple(out.items()))


def _cond_expr(st: State, node: jn.CondExpr, scope: Scope) -> V:
    """``a if c else b``: each side evaluated knowing how the test came out."""
    c = truth(st, ev(st, node.test, scope))
    if isinstance(c, Static):
        if c.value:
            return ev(st, node.expr1, scope)
        return ev(st, node.expr2, scope) if node.expr2 is not None else st.jinja.undefined("cond")
    with st.facts.assuming(st.facts.branch_facts(c, True)):
        a = ev(st, node.expr1, scope)
    with st.facts.assuming(st.facts.branch_facts(c, False)):
        b = ev(st, node.expr2, scope) if node.expr2 is not None else st.jinja.undefined("cond")
    return make_choice(st, [(c.expr, a), (None, b)])


def _and(st: State, node: jn.And, scope: Scope) -> V:
    return and_(st, ev(st, node.left, scope), lambda: ev(st, node.right, scope))


def _or(st: State, node: jn.Or, scope: Scope) -> V:
    return or_(st, ev(st, node.left, scope), lambda: ev(st, node.right, scope))


def _not(st: State, node: jn.Not, scope: Scope) -> V:
    return not_(st, ev(st, node.node, scope))


def _concat(st: State, node: jn.Concat, scope: Scope) -> V:
    found: list[Piece] = []
    for n in node.nodes:
        found.extend(pieces(st, ev(st, n, scope)))
    return make_str(found)


def _compare(st: State, node: jn.Compare, scope: Scope) -> V:
    """``a < b < c``: each comparison, and-ed as Python chains them."""
    left = ev(st, node.expr, scope)
    result: V | None = None
    for op in node.ops:
        right = ev(st, op.expr, scope)
        r = compare(st, op.op, left, right)
        result = r if result is None else and_value(st, result, r)
        left = right
    assert result is not None
    return result


def _binop(st: State, node: jn.BinExpr, scope: Scope) -> V:
    """``a + b`` and the other arithmetic operators (``node.operator``: ``+ - * / // % **``)."""
    a, b = ev(st, node.left, scope), ev(st, node.right, scope)
    return arith(st, node.operator, a, b)


def _neg(st: State, node: jn.Neg, scope: Scope) -> V:
    v = ev(st, node.node, scope)
    if isinstance(v, Static):
        return compute_static(lambda: -v.value)
    raise Unsupported("negating a runtime number")


def _getattr(st: State, node: jn.Getattr, scope: Scope) -> V:
    return get_attr(st, ev(st, node.node, scope), node.attr)


def _getitem(st: State, node: jn.Getitem, scope: Scope) -> V:
    obj = ev(st, node.node, scope)
    if isinstance(node.arg, jn.Slice):
        parts = [ev(st, x, scope) if x is not None else Static(None)
                 for x in (node.arg.start, node.arg.stop, node.arg.step)]
        return get_slice(st, obj, parts)
    return get_item(st, obj, ev(st, node.arg, scope))


def _slice(st: State, node: jn.Slice, scope: Scope) -> V:
    raise Unsupported("a slice outside []")


def _filter(st: State, node: jn.Filter, scope: Scope) -> V:
    value = ev(st, node.node, scope) if node.node is not None else st.jinja.undefined("filter")
    return filter_node(st, node, value, scope)


def _test(st: State, node: jn.Test, scope: Scope) -> V:
    value = ev(st, node.node, scope)
    args = [ev(st, a, scope) for a in node.args]
    kwargs = {str(k.key): ev(st, k.value, scope) for k in node.kwargs}
    return apply_test(st, node.name, value, args, kwargs)


def _call(st: State, node: jn.Call, scope: Scope) -> V:
    if node.dyn_args is not None or node.dyn_kwargs is not None:
        raise Unsupported("calls with *args or **kwargs")
    args = [ev(st, a, scope) for a in node.args]
    kwargs = {k.key: ev(st, k.value, scope) for k in node.kwargs}
    if isinstance(node.node, jn.Getattr):
        obj = ev(st, node.node.node, scope)
        return method(st, obj, node.node.attr, args, kwargs)
    callee = ev(st, node.node, scope)
    return call(st, callee, args, kwargs)


#: Each kind of expression node (by class name) and the function that evaluates it.
_EVALUATORS: dict[str, Callable[[State, Any, Scope], V]] = {
    "Const": _const, "TemplateData": _template_data, "Name": _name,
    "MarkSafe": _inner, "MarkSafeIfAutoescape": _inner, "Pos": _inner,
    "List": _list, "Tuple": _tuple, "Dict": _dict,
    "CondExpr": _cond_expr, "And": _and, "Or": _or, "Not": _not,
    "Concat": _concat, "Compare": _compare,
    **dict.fromkeys(("Add", "Sub", "Mul", "Div", "FloorDiv", "Mod", "Pow"), _binop),
    "Neg": _neg, "Getattr": _getattr, "Getitem": _getitem, "Slice": _slice,
    "Filter": _filter, "Test": _test, "Call": _call,
}
