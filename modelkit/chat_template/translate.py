"""Translate a Jinja chat template into an Ollama TEMPLATE (Go ``text/template``).

How: *partial evaluation*. The Jinja syntax tree (parsed by the same sandbox ``transformers``
uses) is walked once, at build time. What is known then is computed: the special tokens,
``tools``/``documents`` being absent, options such as ``enable_thinking`` left unset, and every
expression built from those (``namespace`` flags, string literals, macros). What depends on the
conversation becomes Go: ``messages`` is ``$.Messages``; a ``for message in messages`` loop a
``range``; ``loop.last``, ``messages[0]``, ``messages[1:]``, role tests, string concatenation,
``trim``, ``startswith`` and arithmetic on indexes become Go expressions
(see :mod:`.goexpr`); an ``if`` on the conversation becomes a Go ``if`` (a variable set in its
branches becomes a Go variable); ``raise_exception`` becomes a Go error; ``add_generation_prompt``
becomes "the last message is not the assistant's". A conversation ending with the assistant is a
continuation: the Go template stops right after that message's text.

What it cannot express, it refuses (:class:`~.values.Unsupported`) rather than approximate; the
proof (``prove.py``) then has the last word on what it did express. Two softer cases are
reported rather than refused: a branch on the conversation it cannot express (usually tool
handling) becomes a Go error for that case (:attr:`Translation.untranslated`; the proof shows
whether a test conversation reaches one), and a test it can only settle by assuming something
about message text (it never contains ``</think>`` or ``/no_think``, it is never whitespace
only) is settled so and listed in :attr:`Translation.assumptions`.

Tool definitions, tool calls and the reasoning of past turns are not rendered: a Go template
cannot reproduce Jinja's ``tojson`` byte for byte, and Ollama passes reasoning separately.
:attr:`Translation.ignored` says which of these the template would have used.

The work is split: statements, loops and the joins of ``if`` branches here; expressions in
:mod:`.expressions`, calls, filters and tests in :mod:`.calls`, shared state and value logic in
:mod:`.context`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import jinja2
import jinja2.nodes as jn
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import goexpr as gx
from .goast import (CUT_VAR, Break, Call, Continue, CutPoint, If, Node, Out, Raise, Range, Set, Text,
                    drop_dead_sets, last_cuts_only, place_cuts, print_template, strip_leading, walk)
from .gotemplate import identifiers
from .gotemplate import parse as parse_go
from .jinja_env import GENERATION_METHOD, make_environment
from .values import (Atom, Choice, DBool, DFiltered, DInt, DList, DLoop, DMsg, DRange, DStr, Frag, MacroV,
                     Namespace, NSRef, Piece, Poison, Raising, Static, StaticLoop, StaticRaise, Tup, Unsupported,
                     V, make_str)
from .calls import Calls
from .context import ADD_GEN_VAR, MESSAGES, LoopCtx, NSInfo, Scope, _int_or, _kind
from .expressions import Expressions


@dataclass(frozen=True)
class Translation:
    """A Go template and what the translation assumed or left out."""

    go_template: str
    assumptions: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()
    bos_removed: bool = False
    untranslated: tuple[str, ...] = ()


class _StaticBreak(Exception):
    pass


class _StaticContinue(Exception):
    pass


class _Restart(Exception):
    """Translate a loop again: a namespace attribute it sets needs (more) room in Go variables."""

    def __init__(self, depth: int, key: Optional[tuple[int, str]] = None) -> None:
        super().__init__(depth, key)
        self.depth = depth
        self.key = key


class Storage:
    """Go variables that carry a namespace attribute across iterations of a Go ``range``.

    Each distinct *shape* of value stored (a constant, or a value whose Go expressions are
    replaced by variables) is a case; with several cases a tag variable says which one holds.
    """

    def __init__(self, tr: "Translator", hint: str, depth: int, frame: list[Node]) -> None:
        self.tr = tr
        self.hint = hint
        self.depth = depth
        self.frame = frame
        self.cases: list[tuple[V, list[str]]] = []
        self.tag: Optional[str] = None

    def _shape(self, v: V) -> tuple[Any, list[str]]:
        """The value with its Go expressions taken out, and those expressions.

        A value Go can hold in one variable (a string, number, boolean, message or list) is
        stored whole, so that strings built up across iterations keep a single shape.
        """
        kind = _kind(v)
        whole = self.tr.go_value(v)
        negative = isinstance(v, Static) and kind == "int" and v.value < 0  # Go arithmetic here needs n >= 0
        if whole is not None and kind in ("str", "bool", "int", "list", "msg") and not negative:
            byte_len = isinstance(v, DInt) and v.byte_len
            suffix = isinstance(v, DList) and v.suffix
            return ("whole", kind, byte_len, suffix), [whole]
        exprs: list[str] = []

        def repl(e: str) -> str:
            exprs.append(e)
            return f"\x00{len(exprs) - 1}\x00"

        return _with_volatile(v.map_exprs(repl), False), exprs

    def store(self, v: V) -> list[Node]:
        self.tr.check_storable(v, next((k + 1 for k, f in enumerate(self.tr.frames) if f is self.frame), 0))
        shape, exprs = self._shape(v)
        for k, (s, holes) in enumerate(self.cases):
            if s == shape:
                break
        else:
            if len(self.cases) >= 8:
                raise Unsupported("a namespace attribute whose form keeps changing across loop iterations")
            holes = [self.tr.declare(f"{self.hint}", self.frame, mutable=True) for _ in exprs]
            self.cases.append((shape, holes))
            k = len(self.cases) - 1
            if len(self.cases) == 2 and self.tag is None:
                self.tag = self.tr.declare(f"{self.hint}_case", self.frame, mutable=True)
            self.tr.storage_grew = True
        nodes: list[Node] = [Set(h, e) for h, e in zip(self.cases[k][1], exprs)]
        if self.tag:
            nodes.append(Set(self.tag, str(k)))
        return nodes

    def load(self) -> V:
        options: list[tuple[Optional[str], V]] = []
        for k, (shape, holes) in enumerate(self.cases):
            if isinstance(shape, tuple):
                _, kind, byte_len, suffix = shape
                h = holes[0]
                value = {"str": lambda: DStr((Atom(h),)), "bool": lambda: DBool(h), "int": lambda: DInt(h, byte_len),
                         "list": lambda: DList(h, suffix),
                         "msg": lambda: DMsg(h, last=Poison("the last-message test of a message kept in a variable"))}[kind]()
            else:
                value = shape.map_exprs(lambda e, holes=holes: _fill(e, holes))
            options.append((f"eq {self.tag} {k}" if self.tag and k < len(self.cases) - 1 else None, value))
        if len(options) == 1:
            return _with_volatile(options[0][1], True)
        return Choice(tuple((c, _with_volatile(v, True)) for c, v in options))


def _with_volatile(v: V, volatile: bool) -> V:
    """``v`` with its volatile marks (its own, its string pieces', its options') set to ``volatile``."""
    if isinstance(v, (DBool, DInt, DMsg, DList)):
        return dataclasses.replace(v, volatile=volatile)
    if isinstance(v, DStr):
        return DStr(tuple(dataclasses.replace(p, volatile=volatile) if isinstance(p, Atom) else p for p in v.pieces))
    if isinstance(v, Choice):
        return Choice(tuple((c, _with_volatile(x, volatile)) for c, x in v.options))
    return v


def _fill(e: str, holes: list[str]) -> str:
    return re.sub("\x00(\\d+)\x00", lambda m: holes[int(m.group(1))], e)


class Translator(Expressions, Calls):
    """One translation: walks the Jinja statements and builds the Go tree (see the module docstring)."""

    def __init__(self, source: str, bos_token: Optional[str], eos_token: Optional[str],
                 extra: Optional[dict[str, Any]] = None) -> None:
        self.env: ImmutableSandboxedEnvironment = make_environment()
        try:
            self.ast = self.env.parse(source)
            self.env.from_string(source)  # compiling also catches unknown filters and tests
        except jinja2.TemplateSyntaxError as exc:
            raise Unsupported(f"the template does not parse: {exc.message} (line {exc.lineno})") from exc
        except jinja2.TemplateError as exc:
            raise Unsupported(f"the template does not parse: {exc}") from exc
        self.jctx = self.env.from_string("").new_context({})
        self.eval_ctx = jinja2.nodes.EvalContext(self.env)
        self.statics: dict[str, Any] = {"tools": None, "documents": None}
        if bos_token is not None:
            self.statics["bos_token"] = bos_token
        if eos_token is not None:
            self.statics["eos_token"] = eos_token
        self.statics.update(extra or {})
        self.out: list[Node] = []
        self.frames: list[list[Node]] = []
        self.defines: dict[str, list[Node]] = {}
        self.preludes: dict[str, list[Node]] = {}
        self.used_names: set[str] = {"$", ADD_GEN_VAR, CUT_VAR, gx.TODAY_VAR}
        self.name_counts: dict[str, int] = {}
        self.var_depth: dict[str, int] = {}
        self.mutable_vars: set[str] = set()
        self.facts: list[dict[str, Any]] = [{}]
        self.assumptions: dict[str, None] = {}
        self.ignored: dict[str, None] = {}
        self.untranslated: dict[str, None] = {}
        self.namespaces: list[NSInfo] = []
        self.storages: dict[tuple[int, str], Storage] = {}
        self.loops: list[LoopCtx] = []
        self.dyn_depth = 0
        self.storage_grew = False
        self.macro_depth = 0

    def stmts(self, nodes: Sequence[jn.Node], scope: Scope) -> bool:
        """Translate statements into ``self.out``; False when they never complete (raise/break)."""
        for node in nodes:
            try:
                if not self.stmt(node, scope):
                    return False
            except StaticRaise as exc:
                self.emit(Raise(str(exc)))
                return False
        return True

    def stmt(self, node: jn.Node, scope: Scope) -> bool:
        if isinstance(node, jn.Output):
            for child in node.nodes:
                if isinstance(child, jn.TemplateData):
                    self.emit(Text(child.data))
                else:
                    self.write(self.ev(child, scope))
            return True
        if isinstance(node, jn.If):
            return self.if_stmt(node, scope)
        if isinstance(node, jn.For):
            return self.for_stmt(node, scope)
        if isinstance(node, jn.Assign):
            self.assign(node.target, self.ev(node.node, scope), scope)
            return True
        if isinstance(node, jn.AssignBlock):
            with self.capture() as body:
                completes = self.stmts(node.body, scope)
            if not completes:
                self.emit(*body)
                return False
            value = self.nodes_value(body)
            if node.filter is not None:
                value = self.filter_node(node.filter, value, scope)
            self.assign(node.target, value, scope)
            return True
        if isinstance(node, jn.Macro):
            scope.vars[node.name] = MacroV(node, scope)
            return True
        if isinstance(node, jn.CallBlock):
            call = node.call
            if isinstance(call, jn.Call) and isinstance(call.node, jn.ExtensionAttribute) and call.node.name == GENERATION_METHOD:
                return self.stmts(node.body, scope)
            raise Unsupported("{% call %} blocks")
        if isinstance(node, jn.Break):
            return self.loop_control(True)
        if isinstance(node, jn.Continue):
            return self.loop_control(False)
        if isinstance(node, jn.ExprStmt):
            self.ev(node.node, scope)
            return True
        if isinstance(node, jn.FilterBlock):
            with self.capture() as body:
                completes = self.stmts(node.body, scope)
            value = self.filter_node(node.filter, self.nodes_value(body), scope)
            self.write(value)
            return completes
        if isinstance(node, jn.With):
            inner = Scope(scope)
            for target, expr in zip(node.targets, node.values):
                self.assign(target, self.ev(expr, scope), inner)
            return self.stmts(node.body, inner)
        if isinstance(node, jn.Scope):
            return self.stmts(node.body, Scope(scope))
        if isinstance(node, jn.ScopedEvalContextModifier) or isinstance(node, jn.EvalContextModifier):
            return self.stmts(getattr(node, "body", []), scope)
        raise Unsupported(f"the {type(node).__name__} statement")

    def loop_control(self, is_break: bool) -> bool:
        if not self.loops:
            raise StaticRaise("break or continue outside a loop")
        loop = self.loops[-1]
        if loop.dynamic:
            self.emit(Break() if is_break else Continue())
            return False
        if loop.dyn_if_depth:
            raise Unsupported("break/continue under a runtime condition in a loop over a constant list")
        raise _StaticBreak() if is_break else _StaticContinue()

    def nodes_value(self, nodes: list[Node]) -> V:
        """What captured output is, as a string value (for ``{% set x %}`` blocks and macros)."""
        pieces: list[Piece] = []
        simple = True
        skip_cut = False
        for n in nodes:
            if isinstance(n, Text):
                pieces.append(n.text)
            elif isinstance(n, (Out, Call)) and isinstance(n.src, Atom):
                pieces.append(n.src)
                skip_cut = n.src.cut is not None
                continue
            elif isinstance(n, CutPoint) and skip_cut:
                pass
            else:
                simple = False
                break
            skip_cut = False
        if simple:
            return make_str(pieces)
        return DStr((Frag(tuple(nodes)),))

    def assign(self, target: jn.Node, value: V, scope: Scope) -> None:
        if isinstance(target, jn.Name):
            scope.vars[target.name] = self.stable(value, target.name)
        elif isinstance(target, jn.NSRef):
            ref = scope.lookup(target.name)
            if not isinstance(ref, NSRef):
                raise StaticRaise(f"cannot assign attribute on non-namespace object {target.name}")
            self.set_ns_attr(ref.ns, target.attr, value)
        elif isinstance(target, jn.Tuple):
            items = self.unpack(value, len(target.items))
            for t, item in zip(target.items, items):
                self.assign(t, item, scope)
        else:
            raise Unsupported(f"assignment to {type(target).__name__}")

    def unpack(self, value: V, n: int) -> list[V]:
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

    def stable(self, value: V, hint: str) -> V:
        """The value, with Go variables that may change later copied now (Jinja binds values)."""
        if not value.volatile:
            return value
        self.check_storable(value)

        def snap(e: str) -> str:
            if not self.volatile_expr(e):
                return e
            var = self.declare(hint)
            self.emit(Set(var, e))
            return var

        return value.map_exprs(snap)

    def check_storable(self, v: V, frame_depth: Optional[int] = None) -> None:
        """Refuse to keep generated text for later when it reads Go variables that may be out of
        scope or changed by then (a loop's variables)."""
        limit = len(self.frames) if frame_depth is None else frame_depth
        for piece in (v.pieces if isinstance(v, DStr) else ()):
            if isinstance(piece, Frag):
                names = {m for n in walk(list(piece.nodes)) for m in _node_vars(n)}
                for name in names - {gx.TODAY_VAR, ADD_GEN_VAR, CUT_VAR}:
                    if name in self.mutable_vars or self.var_depth.get(name, limit + 1) > limit:
                        raise Unsupported("keeping generated text that reads loop variables for later")
        if isinstance(v, Choice):
            for _, x in v.options:
                self.check_storable(x, frame_depth)

    def ns_info(self, ns: Namespace) -> NSInfo:
        for info in self.namespaces:
            if info.ns is ns:
                return info
        raise AssertionError("unknown namespace")

    def set_ns_attr(self, ns: Namespace, attr: str, value: V) -> None:
        if attr.startswith("_"):
            raise StaticRaise(f"namespace attributes may not start with '_': {attr!r}")
        info = self.ns_info(ns)
        if info.depth >= self.dyn_depth:
            ns.attrs[attr] = self.stable(value, f"ns_{attr}")
            return
        key = (id(ns), attr)
        storage = self.storages.get(key)
        if storage is None:
            raise _Restart(info.depth + 1, key)
        before = len(storage.cases)
        self.emit(*storage.store(value))
        if len(storage.cases) != before:
            raise _Restart(storage.depth)
        ns.attrs[attr] = value if not value.volatile else storage.load()

    def if_stmt(self, node: jn.If, scope: Scope) -> bool:
        branches: list[tuple[jn.Node, list[jn.Node]]] = [(node.test, node.body)]
        branches += [(e.test, e.body) for e in node.elif_]
        dyn: list[tuple[DBool, list[jn.Node]]] = []
        else_body: list[jn.Node] = node.else_
        neg_facts: dict[str, Any] = {}
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
        pre_vars = dict(scope.vars)
        pre_ns = [(info.ns, info.ns.snapshot()) for info in self.namespaces]
        results: list[tuple[list[Node], bool, dict[str, V], list[dict[str, V]]]] = []
        conds: list[DBool] = []
        facts: dict[str, Any] = {}
        all_bodies = dyn + [(None, else_body)]
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
                    try:
                        completes = self.stmts(body, scope)
                    except Unsupported as exc:
                        # A branch the translator cannot express stops with an error at runtime;
                        # the proof shows whether any conversation of the battery reaches it.
                        out.clear()
                        out.append(Raise(f"modelkit could not translate this case: {exc}"))
                        self.untranslated[str(exc)] = None
                        completes = False
                results.append((out, completes, dict(scope.vars), [dict(ns.attrs) for ns, _ in pre_ns]))
                if c is not None:
                    conds.append(c)
                    facts.update(self.branch_facts(c, False))
        finally:
            if self.loops:
                self.loops[-1].dyn_if_depth -= 1
        scope.vars = dict(pre_vars)
        for ns, snap in pre_ns:
            ns.attrs = dict(snap)
        live = [k for k, r in enumerate(results) if r[1]]
        if live:
            names = sorted({n for k in live for n in results[k][2]} | set(pre_vars))
            tag: list[Optional[str]] = [None]
            for name in names:
                before = pre_vars[name] if name in pre_vars else self.outer_value(name, scope)
                values = [results[k][2].get(name, before) for k in live]
                scope.vars[name] = self.join(values, [results[k][0] for k in live], name, tag)
            for j, (ns, snap) in enumerate(pre_ns):
                attrs = sorted({a for k in live for a in results[k][3][j]})
                for attr in attrs:
                    key = (id(ns), attr)
                    values = [results[k][3][j].get(attr, self.undefined(attr)) for k in live]
                    if key in self.storages and self.ns_info(ns).depth < self.dyn_depth and \
                            not all(v == values[0] for v in values):
                        ns.attrs[attr] = self.storages[key].load()
                    else:
                        ns.attrs[attr] = self.join(values, [results[k][0] for k in live], f"ns_{attr}", tag)
        # Build the Go if chain.
        chain: list[Node] = []
        target = chain
        for k, (c, _) in enumerate(all_bodies):
            body_nodes = results[k][0]
            if c is None:
                target.extend(body_nodes)
                break
            node = If(c.expr, body_nodes, [])
            target.append(node)
            target = node.orelse
        self.emit(*chain)
        return bool(live)

    def outer_value(self, name: str, scope: Scope) -> V:
        """What ``name`` reads as when the current scope does not define it."""
        found = scope.parent.lookup(name) if scope.parent else None
        return found if found is not None else self.ev_Name(jn.Name(name, "load"), Scope())

    def join(self, values: list[V], bodies: list[list[Node]], hint: str, tag: list[Optional[str]]) -> V:
        """One value for a variable whose branches of an ``if`` set it differently."""
        if all(v == values[0] for v in values):
            return values[0]
        exprs = [self.go_value(v) for v in values]
        kinds = {_kind(v) for v in values}
        if None not in exprs and len(kinds) == 1 and kinds != {"other"}:
            kind = kinds.pop()
            var = self.declare(hint, init={"str": '""', "bool": "false", "int": "0", "list": MESSAGES}.get(kind, "0"))
            for body, e in zip(bodies, exprs):
                body.append(Set(var, e))  # type: ignore[arg-type]
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
            tag[0] = self.declare("branch")
            for k, body in enumerate(bodies):
                body.append(Set(tag[0], str(k)))
        options: list[tuple[Optional[str], V]] = []
        for k, (v, body) in enumerate(zip(values, bodies)):
            if v.volatile:
                def snap(e: str, body: list[Node] = body) -> str:
                    if not self.volatile_expr(e):
                        return e
                    var = self.declare(hint)
                    body.append(Set(var, e))
                    return var
                v = v.map_exprs(snap)
            options.append((f"eq {tag[0]} {k}" if k < len(values) - 1 else None, v))
        return Choice(tuple(options))

    def for_stmt(self, node: jn.For, scope: Scope) -> bool:
        if node.recursive:
            raise Unsupported("recursive loops")
        iterable = self.ev(node.iter, scope)
        if isinstance(iterable, Static):
            try:
                items: list[V] = [Static(x) for x in iterable.value]
            except TypeError as exc:
                raise StaticRaise(f"{type(exc).__name__}: {exc}") from exc
            return self.static_loop(node, items, scope)
        if isinstance(iterable, Tup):
            return self.static_loop(node, list(iterable.items), scope)
        if isinstance(iterable, Raising):
            self.emit(Raise(iterable.message))
            return False
        if isinstance(iterable, Choice):
            iterable = self.materialize(iterable, "messages")
        if isinstance(iterable, (DList, DRange, DFiltered)):
            return self.dynamic_loop(node, iterable, scope)
        if isinstance(iterable, DMsg):
            raise Unsupported("iterating over a message's keys")
        if isinstance(iterable, DStr):
            raise Unsupported("iterating over the characters of a string")
        if isinstance(iterable, Poison):
            raise Unsupported(iterable.reason)
        raise Unsupported(f"iterating over a {type(iterable).__name__}")

    def static_loop(self, node: jn.For, items: list[V], scope: Scope) -> bool:
        if node.test is not None:
            kept = []
            for item in items:
                inner = Scope(scope)
                self.assign(node.target, item, inner)
                t = self.truth(self.ev(node.test, inner))
                if not isinstance(t, Static):
                    raise Unsupported("a loop filter on runtime values")
                if t.value:
                    kept.append(item)
            items = kept
        if not items:
            return self.stmts(node.else_, scope)
        self.loops.append(LoopCtx(dynamic=False, depth=self.dyn_depth))
        try:
            for i, item in enumerate(items):
                inner = Scope(scope)
                self.assign(node.target, item, inner)
                loop = StaticLoop(i, len(items), [x.value if isinstance(x, Static) else x for x in items])
                inner.vars["loop"] = Static(loop)
                try:
                    if not self.stmts(node.body, inner):
                        return False
                except _StaticContinue:
                    continue
                except _StaticBreak:
                    break
        finally:
            self.loops.pop()
        return True

    def dynamic_loop(self, node: jn.For, lst: "DList | DRange | DFiltered", scope: Scope) -> bool:
        depth = self.dyn_depth + 1
        frame = self.frames[-1]
        for _ in range(50):
            snap = [(info.ns, info.ns.snapshot()) for info in self.namespaces]
            saved_storages = dict(self.storages)
            saved_ns_count = len(self.namespaces)
            try:
                range_node, completes = self._range(node, lst, scope, depth)
            except _Restart as r:
                if r.depth != depth:
                    raise
                for ns, s in snap:
                    ns.attrs = dict(s)
                self.storages = saved_storages
                del self.namespaces[saved_ns_count:]
                if r.key is not None and r.key not in self.storages:
                    ns = next(info.ns for info in self.namespaces if id(info.ns) == r.key[0])
                    storage = Storage(self, f"ns_{r.key[1]}", depth, frame)
                    initial = ns.attrs.get(r.key[1], self.undefined(r.key[1]))
                    self.emit(*storage.store(initial))
                    self.storages[r.key] = storage
                    saved_storages[r.key] = storage
                continue
            self.emit(range_node)
            for key, storage in self.storages.items():
                if storage.depth == depth:
                    ns = next(info.ns for info in self.namespaces if id(info.ns) == key[0])
                    ns.attrs[key[1]] = storage.load()
            return completes or True
        raise Unsupported("a loop whose namespace variables never settle")

    def _range(self, node: jn.For, source: "DList | DRange | DFiltered", scope: Scope,
               depth: int) -> tuple[Range, bool]:
        filtered = isinstance(source, DFiltered)
        if (node.test is not None or filtered) and _uses_loop(node.body):
            raise Unsupported("the loop variable in a loop over filtered messages")
        if isinstance(source, DFiltered):
            lst = source.base
        elif isinstance(source, DRange):
            lst = DList(source.lst, suffix=False, reverse=source.reverse)
        else:
            lst = source
        target = node.target
        hint = target.name if isinstance(target, jn.Name) else "item"
        for key, storage in self.storages.items():
            if storage.depth == depth:
                ns = next(info.ns for info in self.namespaces if id(info.ns) == key[0])
                ns.attrs[key[1]] = storage.load()
        index = self.fresh("i")
        body_frame: list[Node] = []
        inner = Scope(scope)
        self.frames.append(body_frame)
        self.loops.append(LoopCtx(dynamic=True, depth=depth))
        self.dyn_depth = depth
        L = gx.arg(lst.expr)
        range_elem = ""
        try:
            with self.capture() as body:
                if isinstance(source, DRange):
                    if source.reverse:
                        element: V = DInt(f"len (slice {L} {gx.arg(gx.add(index, 1))})")
                    else:
                        element = DInt(str(gx.add(_int_or(source.offset), index)))
                elif lst.reverse:
                    elem_var = self.fresh(hint)
                    pos = f"len (slice {L} {gx.arg(gx.add(index, 1))})"
                    self.emit(Set(elem_var, f"index {L} ({pos})", declare=True))
                    element = DMsg(elem_var, last=self.elem_last(lst, f"len (slice {L} {gx.arg(gx.add(index, 1))})"))
                else:
                    elem_var = self.fresh(hint)
                    range_elem = elem_var
                    element = DMsg(elem_var, last=self.elem_last(lst, index))
                self.assign(target, element, inner)
                inner.vars["loop"] = DLoop(index, lst, lst.reverse)
                tests: list[V] = []
                if isinstance(source, DFiltered):
                    tests.append(self.truth(source.pred(element)))
                if node.test is not None:
                    tests.append(self.truth(self.ev(node.test, inner)))
                facts: dict[Any, Any] = {}
                skip = False
                for t in tests:
                    if isinstance(t, Static):
                        skip = skip or not t.value
                    else:
                        assert isinstance(t, DBool)
                        self.emit(If(f"not {gx.arg(t.expr)}", [Continue()]))
                        facts.update(self.branch_facts(t, True))
                if skip:
                    self.emit(Continue())
                else:
                    with self.assuming(facts):
                        self.stmts(node.body, inner)
        finally:
            self.frames.pop()
            self.loops.pop()
            self.dyn_depth = depth - 1
        with self.capture() as orelse:
            if node.else_:
                if filtered or node.test is not None:
                    raise Unsupported("a loop else over filtered messages")
                self.stmts(node.else_, scope)
        rng = Range(index, range_elem, lst.expr, body_frame + body, orelse)
        return rng, True


def _uses_loop(body: list[jn.Node]) -> bool:
    for n in body:
        for name in n.find_all(jn.Name):
            if name.name == "loop":
                return True
    return False


def _node_vars(n: Node) -> list[str]:
    from .goast import _expr_vars

    return _expr_vars(n)


def translate(source: str, bos_token: Optional[str] = None, eos_token: Optional[str] = None,
              add_bos_token: bool = False) -> Translation:
    """Translate a Jinja chat template into Ollama's Go template language.

    ``add_bos_token``: the tokenizer adds BOS itself (llama.cpp does it for such models), so a
    BOS the template writes first is left out. Raises :class:`~.values.Unsupported` when the
    template uses something that cannot be expressed; a template that always raises gives a
    Go template that raises too.
    """
    tr = Translator(source, bos_token, eos_token)
    root_frame: list[Node] = []
    tr.frames.append(root_frame)
    scope = Scope()
    try:
        with tr.capture() as body:
            tr.stmts(tr.ast.body, scope)
    except (_StaticBreak, _StaticContinue):
        raise Unsupported("break outside a loop") from None
    except _Restart:
        raise Unsupported("namespace attribute set in a loop in an unexpected way") from None
    except RecursionError:
        raise Unsupported("the template nests too deeply") from None
    nodes: list[Node] = list(root_frame) + list(body)
    if any(isinstance(n, CutPoint) for n in walk(nodes)):
        nodes = [Set(CUT_VAR, "false", declare=True)] + nodes
    prelude: list[Node] = []
    for name in (ADD_GEN_VAR, gx.TODAY_VAR):
        if name in tr.preludes:
            prelude.extend(tr.preludes[name])
    nodes = prelude + nodes
    nodes = place_cuts(last_cuts_only(nodes)[0])
    bos_removed = False
    if add_bos_token and bos_token:
        new, status = strip_leading(nodes, bos_token)
        if status == "stripped":
            nodes, bos_removed = new, True
        elif status == "unknown" and any(isinstance(n, Text) and n.text.startswith(bos_token) for n in walk(nodes)):
            # Where the BOS is written first depends on the conversation: leave out the first one
            # written, at runtime.
            nodes = [Set(BOS_VAR, "false", declare=True)] + _guard_bos(nodes, bos_token)
            bos_removed = True
    nodes = drop_dead_sets(nodes)
    defines = _used_defines(nodes, tr.defines)
    text = print_template(nodes, defines)
    if "messages" not in identifiers(parse_go(text)):
        # Ollama renders in one pass over .Messages only when it can see them mentioned.
        text = print_template([If("false", [Out(MESSAGES)])] + nodes, defines)
    return Translation(text, tuple(tr.assumptions), tuple(tr.ignored), bos_removed, tuple(tr.untranslated))


BOS_VAR = "$bosWritten"


def _guard_bos(nodes: list[Node], bos: str) -> list[Node]:
    out: list[Node] = []
    for n in nodes:
        if isinstance(n, Text) and n.text.startswith(bos):
            out += [If(BOS_VAR, [Text(bos)]), Set(BOS_VAR, "true")]
            if n.text[len(bos):]:
                out.append(Text(n.text[len(bos):]))
        elif isinstance(n, If):
            out.append(If(n.cond, _guard_bos(n.then, bos), _guard_bos(n.orelse, bos)))
        elif isinstance(n, Range):
            out.append(Range(n.index, n.elem, n.expr, _guard_bos(n.body, bos), _guard_bos(n.orelse, bos)))
        else:
            out.append(n)
    return out


def _used_defines(nodes: list[Node], defines: dict[str, list[Node]]) -> dict[str, list[Node]]:
    used: dict[str, list[Node]] = {}
    todo = [n.name for n in walk(nodes) if isinstance(n, Call)]
    while todo:
        name = todo.pop()
        if name in used or name not in defines:
            continue
        used[name] = defines[name]
        todo.extend(n.name for n in walk(defines[name]) if isinstance(n, Call))
    return dict(sorted(used.items()))
