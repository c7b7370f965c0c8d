"""Jinja statements, translated: output, assignments, macros, blocks; the translator as a whole.

:class:`Translator` puts the parts together: statements here, ``if`` in :mod:`.branches`,
``for`` in :mod:`.loops`, expressions in :mod:`.expressions` and :mod:`.calls`, on the state
and value operations of :mod:`.context`. Assignments bind values, as Jinja does: a value that
reads Go variables that may change later (a loop's) is copied into a fresh variable first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jinja2
import jinja2.nodes as jn
from jinja2.sandbox import ImmutableSandboxedEnvironment

from modelkit.golang.template import go_tojson

from ..reference import GENERATION_METHOD, make_environment
from ..reference.sandbox import compiled_code, parsed
from . import goexpr as gx
from .branches import Branches
from .calls import Calls
from .context import ADD_GEN_VAR, FactKey, LoopCtx, NSInfo, Scope
from .expressions import Expressions
from .goast import CUT_VAR, Call, CutPoint, Node, Out, Raise, Text, expr_vars, walk
from .loops import Loops, Restart, Storage
from .values import (
    Atom,
    Choice,
    DStr,
    Frag,
    MacroV,
    Namespace,
    NSRef,
    Piece,
    Static,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    make_str,
)


class Translator(Branches, Loops, Expressions, Calls):
    """One translation: walks the Jinja statements and builds the Go tree (see the module docstring)."""

    def __init__(self, source: str, bos_token: str | None, eos_token: str | None,
                 extra: dict[str, Any] | None = None, follow_think: bool = True, tools: bool = False) -> None:
        self.with_tools = tools
        self.env: ImmutableSandboxedEnvironment = make_environment(tojson=go_tojson if tools else None)
        try:
            self.ast = parsed(source)
            compiled_code(source)  # compiling also catches unknown filters and tests
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
        self.facts: list[dict[FactKey, Any]] = [{}]
        self.assumptions: dict[str, None] = {}
        self.ignored: dict[str, None] = {}
        self.untranslated: dict[str, None] = {}
        self.namespaces: list[NSInfo] = []
        self.storages: dict[tuple[int, str], Storage] = {}
        self.loops: list[LoopCtx] = []
        self.dyn_depth = 0
        self.macro_depth = 0
        self.follow_think = follow_think
        self.reads_think: dict[str, None] = {}

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
        """Translate one statement; False when it never completes (it raises, breaks or continues)."""
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
            return self.set_block(node, scope)
        if isinstance(node, jn.Macro):
            scope.vars[node.name] = MacroV(node, scope)
            return True
        if isinstance(node, jn.CallBlock):
            call = node.call
            if isinstance(call, jn.Call) and isinstance(call.node, jn.ExtensionAttribute) \
                    and call.node.name == GENERATION_METHOD:
                return self.stmts(node.body, scope)
            raise Unsupported("{% call %} blocks")
        if isinstance(node, (jn.Break, jn.Continue)):
            return self.loop_control(isinstance(node, jn.Break))
        if isinstance(node, jn.ExprStmt):
            self.ev(node.node, scope)
            return True
        if isinstance(node, jn.FilterBlock):
            with self.capture() as body:
                completes = self.stmts(node.body, scope)
            self.write(self.filter_node(node.filter, self.nodes_value(body), scope))
            return completes
        if isinstance(node, jn.With):
            inner = Scope(scope)
            for target, expr in zip(node.targets, node.values):
                self.assign(target, self.ev(expr, scope), inner)
            return self.stmts(node.body, inner)
        if isinstance(node, jn.Scope):
            return self.stmts(node.body, Scope(scope))
        if isinstance(node, (jn.ScopedEvalContextModifier, jn.EvalContextModifier)):
            return self.stmts(getattr(node, "body", []), scope)
        raise Unsupported(f"the {type(node).__name__} statement")

    def set_block(self, node: jn.AssignBlock, scope: Scope) -> bool:
        """``{% set x %}...{% endset %}``: the captured output, as a string value."""
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
        return value.map_exprs(lambda e: self.copy_if_volatile(e, hint))

    def check_storable(self, v: V, frame_depth: int | None = None) -> None:
        """Refuse to keep generated text for later when it reads Go variables that may be out of
        scope or changed by then (a loop's variables)."""
        limit = len(self.frames) if frame_depth is None else frame_depth
        for piece in (v.pieces if isinstance(v, DStr) else ()):
            if isinstance(piece, Frag):
                names = {m for n in walk(list(piece.nodes)) for m in expr_vars(n)}
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
            raise Restart(info.depth + 1, key)
        before = len(storage.cases)
        self.emit(*storage.store(value))
        if len(storage.cases) != before:
            raise Restart(storage.depth)
        ns.attrs[attr] = value if not value.volatile else storage.load()

