"""Assignments: ``{% set %}`` to a name, a namespace attribute or a tuple of targets.

Assignments bind values, as Jinja does: a value that reads Go variables that may change later
(a loop's) is copied into a fresh variable first (:meth:`.emitter.Emitter.stable`). A namespace
attribute set inside a Go ``range`` for a namespace made outside it is kept in Go variables
(:class:`~.nesting.Storage`); the first time, or when the value takes a new shape, the loop is
translated again (:class:`~.nesting.Restart`) so the variables are declared before it.
"""

from __future__ import annotations

import jinja2.nodes as jn

from .nesting import Restart, Scope
from .state import State
from .values import Namespace, NSRef, Static, StaticRaise, Tup, Unsupported, V


def assign(st: State, target: jn.Node, value: V, scope: Scope) -> None:
    """Bind ``value`` to an assignment target in ``scope``."""
    if isinstance(target, jn.Name):
        scope.vars[target.name] = st.emitter.stable(value, target.name)
    elif isinstance(target, jn.NSRef):
        ref = scope.lookup(target.name)
        if not isinstance(ref, NSRef):
            raise StaticRaise(f"cannot assign attribute on non-namespace object {target.name}")
        _set_ns_attr(st, ref.ns, target.attr, value)
    elif isinstance(target, jn.Tuple):
        items = _unpack(value, len(target.items))
        for t, item in zip(target.items, items):
            assign(st, t, item, scope)
    else:
        raise Unsupported(f"assignment to {type(target).__name__}")


def _unpack(value: V, n: int) -> list[V]:
    """``a, b = value``: the items of a constant or a tuple of values."""
    if isinstance(value, Static):
        try:
            items = list(value.value)
        except TypeError as exc:
            raise StaticRaise(str(exc)) from exc
        if len(items) != n:
            raise StaticRaise(f"cannot unpack {len(items)} values into {n}")
        return [Static(x) for x in items]
    if isinstance(value, Tup) and len(value.items) == n:
        return list(value.items)
    raise Unsupported("unpacking a runtime value")


def _set_ns_attr(st: State, ns: Namespace, attr: str, value: V) -> None:
    """``ns.attr = value``: at once where the namespace lives in the same loop, else in its storage."""
    if attr.startswith("_"):
        raise StaticRaise(f"namespace attributes may not start with '_': {attr!r}")
    nesting = st.nesting
    info = nesting.ns_info(ns)
    if info.depth >= nesting.dyn_depth:
        ns.attrs[attr] = st.emitter.stable(value, f"ns_{attr}")
        return
    key = (id(ns), attr)
    storage = nesting.storages.get(key)
    if storage is None:
        raise Restart(info.depth + 1, key)
    before = len(storage.cases)
    st.emitter.emit(*storage.store(value))
    if len(storage.cases) != before:
        raise Restart(storage.depth)
    ns.attrs[attr] = value if not value.volatile else storage.load()
