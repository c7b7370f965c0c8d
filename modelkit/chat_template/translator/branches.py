"""``if`` statements: settled at build time, or a Go ``if`` whose branches' variables are joined.

A test known at build time just picks its branch. A test on the conversation becomes a Go
``if`` chain; each branch is translated on its own, knowing what its condition implies (in
``if message.role == 'user'`` the role *is* ``'user'``), and a variable or namespace attribute
the branches set differently becomes one value for what follows (:func:`join`): a Go
variable set in each branch, or a choice tagged by which branch ran.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jinja2.nodes as jn

from .expressions import ev, name_value
from .facts import FactKey
from .goast import Node, Raise, Set, if_chain
from .govalue import go_value
from .logic import truth
from .nesting import Scope
from .ollama_data import MESSAGES
from .state import State
from .values import Atom, Choice, DBool, DInt, DList, DMsg, DStr, Namespace, Poison, Static, Unsupported, V, value_kind


@dataclass
class _Branch:
    """One branch of a runtime ``if``, translated: its Go nodes, and the variables it leaves."""

    nodes: list[Node]
    completes: bool
    vars: dict[str, V]
    ns_attrs: list[dict[str, V]]


def if_stmt(st: State, node: jn.If, scope: Scope) -> bool:
    """``{% if %}``: the branch a constant test picks, else a Go ``if`` chain of the runtime tests."""
    branches: list[tuple[jn.Node, list[jn.Node]]] = [(node.test, node.body)]
    branches += [(e.test, e.body) for e in node.elif_]
    dyn: list[tuple[DBool, list[jn.Node]]] = []
    else_body: list[jn.Node] = node.else_
    neg_facts: dict[FactKey, Any] = {}
    for test, body in branches:
        with st.facts.assuming(dict(neg_facts)):
            c = truth(st, ev(st, test, scope))
        if isinstance(c, Static):
            if c.value:
                else_body = body
                break
            continue
        dyn.append((c, body))
        neg_facts.update(st.facts.branch_facts(c, False))
    if not dyn:
        return st.walk.statements(st, else_body, scope)
    return _dynamic_if(st, dyn, else_body, scope)


def _dynamic_if(st: State, dyn: list[tuple[DBool, list[jn.Node]]], else_body: list[jn.Node], scope: Scope) -> bool:
    """Emit the Go ``if`` chain; False when no branch completes (they all raise or break)."""
    pre_vars = dict(scope.vars)
    pre_ns = [(info.ns, info.ns.snapshot()) for info in st.nesting.namespaces]
    all_bodies: list[tuple[DBool | None, list[jn.Node]]] = [*dyn, (None, else_body)]
    results = _translate_branches(st, all_bodies, scope, pre_vars, pre_ns)
    scope.vars = dict(pre_vars)
    for ns, snap in pre_ns:
        ns.attrs = dict(snap)
    live = [r for r in results if r.completes]
    if live:
        _join_branches(st, live, scope, pre_vars, [ns for ns, _ in pre_ns])
    st.emitter.emit(*if_chain([(c.expr if c is not None else None, r.nodes)
                               for (c, _), r in zip(all_bodies, results)]))
    return bool(live)


def _translate_branches(st: State, all_bodies: list[tuple[DBool | None, list[jn.Node]]], scope: Scope,
                        pre_vars: dict[str, V], pre_ns: list[tuple[Namespace, dict[str, V]]]) -> list[_Branch]:
    """Each branch from the same starting state, knowing its condition holds and the earlier ones do not."""
    results: list[_Branch] = []
    facts: dict[FactKey, Any] = {}
    loops = st.nesting.loops
    if loops:
        loops[-1].dyn_if_depth += 1
    try:
        for c, body in all_bodies:
            scope.vars = dict(pre_vars)
            for ns, snap in pre_ns:
                ns.attrs = dict(snap)
            branch_facts = dict(facts)
            if c is not None:
                branch_facts.update(st.facts.branch_facts(c, True))
            with st.facts.assuming(branch_facts), st.emitter.capture() as out:
                completes = _branch_body(st, body, scope, out)
            results.append(_Branch(out, completes, dict(scope.vars), [dict(ns.attrs) for ns, _ in pre_ns]))
            if c is not None:
                facts.update(st.facts.branch_facts(c, False))
    finally:
        if loops:
            loops[-1].dyn_if_depth -= 1
    return results


def _branch_body(st: State, body: list[jn.Node], scope: Scope, out: list[Node]) -> bool:
    try:
        return st.walk.statements(st, body, scope)
    except Unsupported as exc:
        # A branch the translator cannot express stops with an error at runtime; the proof
        # shows whether any conversation of the battery reaches it.
        out.clear()
        out.append(Raise(f"modelkit could not translate this case: {exc}"))
        st.report.untranslate(str(exc))
        return False


def _join_branches(st: State, live: list[_Branch], scope: Scope, pre_vars: dict[str, V],
                   namespaces: list[Namespace]) -> None:
    """After the ``if``: each variable and namespace attribute one value, whichever branch ran."""
    bodies = [r.nodes for r in live]
    names = sorted({n for r in live for n in r.vars} | set(pre_vars))
    tag: list[str | None] = [None]
    for name in names:
        before = pre_vars[name] if name in pre_vars else _outer_value(st, name, scope)
        values = [r.vars.get(name, before) for r in live]
        scope.vars[name] = join(st, values, bodies, name, tag)
    nesting = st.nesting
    for j, ns in enumerate(namespaces):
        attrs = sorted({a for r in live for a in r.ns_attrs[j]})
        for attr in attrs:
            key = (id(ns), attr)
            values = [r.ns_attrs[j].get(attr, st.jinja.undefined(attr)) for r in live]
            if key in nesting.storages and nesting.ns_info(ns).depth < nesting.dyn_depth and \
                    not all(v == values[0] for v in values):
                ns.attrs[attr] = nesting.storages[key].load()
            else:
                ns.attrs[attr] = join(st, values, bodies, f"ns_{attr}", tag)


def _outer_value(st: State, name: str, scope: Scope) -> V:
    """What ``name`` reads as when the current scope does not define it."""
    found = scope.parent.lookup(name) if scope.parent else None
    return found if found is not None else name_value(st, name)


def join(st: State, values: list[V], bodies: list[list[Node]], hint: str, tag: list[str | None]) -> V:
    """One value for a variable whose branches of an ``if`` set it differently."""
    if all(v == values[0] for v in values):
        return values[0]
    exprs = [e for e in (go_value(v) for v in values) if e is not None]
    kinds = {value_kind(v) for v in values}
    if len(exprs) == len(values) and len(kinds) == 1 and kinds != {"other"}:
        return _join_in_variable(st, values, bodies, hint, exprs, kinds.pop())
    for v in values:
        st.emitter.check_storable(v)
    if tag[0] is None:
        tag[0] = branch = st.emitter.declare("branch")
        for k, body in enumerate(bodies):
            body.append(Set(branch, str(k)))
    options: list[tuple[str | None, V]] = []
    for k, (v, body) in enumerate(zip(values, bodies)):
        if v.volatile:
            v = v.map_exprs(functools.partial(st.emitter.copy_if_volatile, hint=hint, into=body))
        options.append((f"eq {tag[0]} {k}" if k < len(values) - 1 else None, v))
    return Choice(tuple(options))


def _join_in_variable(st: State, values: list[V], bodies: list[list[Node]], hint: str, exprs: list[str],
                      kind: str) -> V:
    """Values of one kind Go can hold: a Go variable each branch sets."""
    var = st.emitter.declare(hint, init={"str": '""', "bool": "false", "int": "0", "list": MESSAGES}.get(kind, "0"))
    for body, e in zip(bodies, exprs):
        body.append(Set(var, e))
    if kind == "str":
        return DStr((Atom(var),))
    if kind == "bool":
        return DBool(var)
    if kind == "int":
        return DInt(var, byte_len=any(isinstance(v, DInt) and v.byte_len for v in values))
    if kind == "list":
        return DList(var, suffix=all(v.suffix for v in values if isinstance(v, DList)))
    assert kind == "msg"
    return DMsg(var, last=Poison("the last-message test of a message chosen at runtime"))
