"""``if`` statements: settled at build time, or a Go ``if`` whose branches' variables are joined.

A test known at build time just picks its branch. A test on the conversation becomes a Go
``if`` chain; each branch is translated on its own, knowing what its condition implies (in
``if message.role == 'user'`` the role *is* ``'user'``), and a variable or namespace attribute
the branches set differently becomes one value for what follows (:meth:`Branches.join`): a Go
variable set in each branch, or a choice tagged by which branch ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jinja2.nodes as jn

from .context import MESSAGES, Context, FactKey, Scope
from .goast import Node, Raise, Set, if_chain
from .values import Atom, Choice, DBool, DInt, DList, DMsg, DStr, Namespace, Poison, Static, Unsupported, V, value_kind


@dataclass
class _Branch:
    """One branch of a runtime ``if``, translated: its Go nodes, and the variables it leaves."""

    nodes: list[Node]
    completes: bool
    vars: dict[str, V]
    ns_attrs: list[dict[str, V]]


class Branches(Context):
    """``if`` statements and the joins of their branches (see the module docstring)."""

    def if_stmt(self, node: jn.If, scope: Scope) -> bool:
        branches: list[tuple[jn.Node, list[jn.Node]]] = [(node.test, node.body)]
        branches += [(e.test, e.body) for e in node.elif_]
        dyn: list[tuple[DBool, list[jn.Node]]] = []
        else_body: list[jn.Node] = node.else_
        neg_facts: dict[FactKey, Any] = {}
        for test, body in branches:
            with self.assuming(dict(neg_facts)):
                c = self.truth(self.ev(test, scope))
            if isinstance(c, Static):
                if c.value:
                    else_body = body
                    break
                continue
            assert isinstance(c, DBool)
            dyn.append((c, body))
            neg_facts.update(self.branch_facts(c, False))
        if not dyn:
            return self.stmts(else_body, scope)
        return self.dynamic_if(dyn, else_body, scope)

    def dynamic_if(self, dyn: list[tuple[DBool, list[jn.Node]]], else_body: list[jn.Node], scope: Scope) -> bool:
        """Emit the Go ``if`` chain; False when no branch completes (they all raise or break)."""
        pre_vars = dict(scope.vars)
        pre_ns = [(info.ns, info.ns.snapshot()) for info in self.namespaces]
        all_bodies: list[tuple[DBool | None, list[jn.Node]]] = [*dyn, (None, else_body)]
        results = self._translate_branches(all_bodies, scope, pre_vars, pre_ns)
        scope.vars = dict(pre_vars)
        for ns, snap in pre_ns:
            ns.attrs = dict(snap)
        live = [r for r in results if r.completes]
        if live:
            self._join_branches(live, scope, pre_vars, [ns for ns, _ in pre_ns])
        self.emit(*if_chain([(c.expr if c is not None else None, r.nodes) for (c, _), r in zip(all_bodies, results)]))
        return bool(live)

    def _translate_branches(self, all_bodies: list[tuple[DBool | None, list[jn.Node]]], scope: Scope,
                            pre_vars: dict[str, V], pre_ns: list[tuple[Namespace, dict[str, V]]]) -> list[_Branch]:
        """Each branch from the same starting state, knowing its condition holds and the earlier ones do not."""
        results: list[_Branch] = []
        facts: dict[FactKey, Any] = {}
        if self.loops:
            self.loops[-1].dyn_if_depth += 1
        try:
            for c, body in all_bodies:
                scope.vars = dict(pre_vars)
                for ns, snap in pre_ns:
                    ns.attrs = dict(snap)
                branch_facts = dict(facts)
                if c is not None:
                    branch_facts.update(self.branch_facts(c, True))
                with self.assuming(branch_facts), self.capture() as out:
                    completes = self._branch_body(body, scope, out)
                results.append(_Branch(out, completes, dict(scope.vars), [dict(ns.attrs) for ns, _ in pre_ns]))
                if c is not None:
                    facts.update(self.branch_facts(c, False))
        finally:
            if self.loops:
                self.loops[-1].dyn_if_depth -= 1
        return results

    def _branch_body(self, body: list[jn.Node], scope: Scope, out: list[Node]) -> bool:
        try:
            return self.stmts(body, scope)
        except Unsupported as exc:
            # A branch the translator cannot express stops with an error at runtime; the proof
            # shows whether any conversation of the battery reaches it.
            out.clear()
            out.append(Raise(f"modelkit could not translate this case: {exc}"))
            self.untranslated[str(exc)] = None
            return False

    def _join_branches(self, live: list[_Branch], scope: Scope, pre_vars: dict[str, V],
                       namespaces: list[Namespace]) -> None:
        """After the ``if``: each variable and namespace attribute one value, whichever branch ran."""
        bodies = [r.nodes for r in live]
        names = sorted({n for r in live for n in r.vars} | set(pre_vars))
        tag: list[str | None] = [None]
        for name in names:
            before = pre_vars[name] if name in pre_vars else self.outer_value(name, scope)
            values = [r.vars.get(name, before) for r in live]
            scope.vars[name] = self.join(values, bodies, name, tag)
        for j, ns in enumerate(namespaces):
            attrs = sorted({a for r in live for a in r.ns_attrs[j]})
            for attr in attrs:
                key = (id(ns), attr)
                values = [r.ns_attrs[j].get(attr, self.undefined(attr)) for r in live]
                if key in self.storages and self.ns_info(ns).depth < self.dyn_depth and \
                        not all(v == values[0] for v in values):
                    ns.attrs[attr] = self.storages[key].load()
                else:
                    ns.attrs[attr] = self.join(values, bodies, f"ns_{attr}", tag)

    def outer_value(self, name: str, scope: Scope) -> V:
        """What ``name`` reads as when the current scope does not define it."""
        found = scope.parent.lookup(name) if scope.parent else None
        return found if found is not None else self.ev_Name(jn.Name(name, "load"), Scope())

    def join(self, values: list[V], bodies: list[list[Node]], hint: str, tag: list[str | None]) -> V:
        """One value for a variable whose branches of an ``if`` set it differently."""
        if all(v == values[0] for v in values):
            return values[0]
        exprs = [e for e in (self.go_value(v) for v in values) if e is not None]
        kinds = {value_kind(v) for v in values}
        if len(exprs) == len(values) and len(kinds) == 1 and kinds != {"other"}:
            kind = kinds.pop()
            var = self.declare(hint, init={"str": '""', "bool": "false", "int": "0", "list": MESSAGES}.get(kind, "0"))
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
            if kind == "msg":
                return DMsg(var, last=Poison("the last-message test of a message chosen at runtime"))
        for v in values:
            self.check_storable(v)
        if tag[0] is None:
            tag[0] = branch = self.declare("branch")
            for k, body in enumerate(bodies):
                body.append(Set(branch, str(k)))
        options: list[tuple[str | None, V]] = []
        for k, (v, body) in enumerate(zip(values, bodies)):
            if v.volatile:
                v = v.map_exprs(lambda e, body=body: self.copy_if_volatile(e, hint, body))
            options.append((f"eq {tag[0]} {k}" if k < len(values) - 1 else None, v))
        return Choice(tuple(options))
