"""Values that depend on which of several Go conditions holds: making, splitting and storing them.

A :class:`~.values.Choice` is "this value where that Go condition holds, else the next": what
``x if c else y``, ``a or b`` on runtime values, or a variable set in the branches of an
``if`` become. An operation on a choice is applied to each option, knowing in each that its
condition holds and the earlier ones do not (:func:`each`), so the result is a choice again, or
one value where all options agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .goast import Set, if_chain
from .govalue import go_value
from .state import State
from .values import (
    Atom,
    Choice,
    DBool,
    DInt,
    DList,
    DMsg,
    DStr,
    Poison,
    Raising,
    StaticRaise,
    Unsupported,
    V,
    value_kind,
)


def make_choice(st: State, options: list[tuple[str | None, V]]) -> V:
    """A choice between the options (the first whose condition holds; None: always), or the one
    value they all are; undefined where no condition holds."""
    flat: list[tuple[str | None, V]] = []
    for c, v in options:
        flat.append((c, v))
        if c is None:
            break
    if all(v == flat[0][1] for _, v in flat) and flat[-1][0] is None:
        return flat[0][1]
    if flat[-1][0] is not None:
        flat.append((None, st.jinja.undefined("?")))
    return Choice(tuple(flat))


def each(st: State, v: Choice, fn: Callable[[V], V]) -> list[tuple[str | None, V]]:
    """``fn`` applied to each option of a choice that can hold, knowing, in each, which option holds
    (an option where the template raises raises there)."""
    out: list[tuple[str | None, V]] = []
    earlier: dict[Any, Any] = {}
    for cond, x in st.facts.options(v):
        facts = dict(earlier)
        if cond is not None:
            facts[("bool", cond)] = True
        with st.facts.assuming(facts):
            try:
                r = fn(x)
            except StaticRaise as exc:
                r = Raising(str(exc))
        out.append((cond, r))
        if cond is not None:
            earlier[("bool", cond)] = False
    return out


def dist(st: State, v: Choice, fn: Callable[[V], V]) -> V:
    """Apply an operation to each option of a choice: the choice of the results."""
    return make_choice(st, each(st, v, fn))


def materialize(st: State, v: Choice, hint: str) -> V:
    """A choice between values Go can hold, as one Go variable set by an ``if`` chain."""
    options = st.facts.flatten(v)
    kinds = {value_kind(x) for _, x in options}
    exprs = [e for e in (go_value(x) for _, x in options) if e is not None]
    if len(kinds) != 1 or len(exprs) != len(options) or kinds == {"other"}:
        raise Unsupported(f"a runtime choice between values of different kinds ({hint})")
    kind = kinds.pop()
    var = st.emitter.declare(hint)
    st.emitter.emit(*if_chain((cond, [Set(var, e)]) for (cond, _), e in zip(options, exprs)))
    if kind == "list":
        lbs = {x.lastbase for _, x in options if isinstance(x, DList)}
        items = {x.item for _, x in options if isinstance(x, DList)}
        if len(items) != 1:
            raise Unsupported(f"a runtime choice between lists of different things ({hint})")
        return DList(var, suffix=all(x.suffix for _, x in options if isinstance(x, DList)),
                     lastbase=lbs.pop() if len(lbs) == 1 else None, item=items.pop())
    if kind == "str":
        return DStr((Atom(var),))
    if kind == "bool":
        return DBool(var)
    if kind == "int":
        return DInt(var)
    kinds_of = {x.kind for _, x in options if isinstance(x, DMsg)}
    if len(kinds_of) != 1:
        raise Unsupported(f"a runtime choice between messages and tool data ({hint})")
    return DMsg(var, last=Poison("the last-message test of a message chosen at runtime"), kind=kinds_of.pop())
