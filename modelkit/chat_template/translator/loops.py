"""``for`` loops: unrolled over a constant list, or a Go ``range`` over the conversation.

A loop over something known at build time (a literal list, ``tools`` absent) is unrolled, its
body translated once per item. A loop over messages (or their indexes, or a filtered list)
becomes a Go ``range``, its body translated once for a symbolic message. What makes that hard
is Jinja's ``namespace``: an attribute set inside the loop and read in a later iteration, or
after the loop, must live in Go variables declared outside the range (:class:`Storage`), and
how many depends on the shapes of value the body stores, which are only known once the body
has been translated; so the loop is translated again (:class:`Restart`) until they settle.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import jinja2.nodes as jn

from . import goexpr as gx
from .context import Context, LoopCtx, Scope
from .goast import Break, Continue, If, Node, Raise, Range, Set
from .tools import ToolData
from .values import (
    Atom,
    Choice,
    DBool,
    DFiltered,
    DInt,
    DList,
    DLoop,
    DMsg,
    DRange,
    DStr,
    Namespace,
    Poison,
    Raising,
    Static,
    StaticLoop,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    value_kind,
)


class StaticBreak(Exception):
    """``{% break %}`` in a loop the translator unrolls."""


class StaticContinue(Exception):
    """``{% continue %}`` in a loop the translator unrolls."""


class Restart(Exception):
    """Translate a loop again: a namespace attribute it sets needs (more) room in Go variables."""

    def __init__(self, depth: int, key: tuple[int, str] | None = None) -> None:
        super().__init__(depth, key)
        self.depth = depth
        self.key = key


class Storage:
    """Go variables that carry a namespace attribute across iterations of a Go ``range``.

    Each distinct *shape* of value stored (a constant, or a value whose Go expressions are
    replaced by variables) is a case; with several cases a tag variable says which one holds.
    """

    def __init__(self, tr: Context, hint: str, depth: int, frame: list[Node]) -> None:
        self.tr = tr
        self.hint = hint
        self.depth = depth
        self.frame = frame
        self.cases: list[tuple[V, list[str]]] = []
        self.tag: str | None = None

    def _shape(self, v: V) -> tuple[Any, list[str]]:
        """The value with its Go expressions taken out, and those expressions.

        A value Go can hold in one variable (a string, number, boolean, message or list) is
        stored whole, so that strings built up across iterations keep a single shape.
        """
        kind = value_kind(v)
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
        for k, (s, _) in enumerate(self.cases):  # noqa: B007 - k is the case found, read after the loop
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
        nodes: list[Node] = [Set(h, e) for h, e in zip(self.cases[k][1], exprs)]
        if self.tag:
            nodes.append(Set(self.tag, str(k)))
        return nodes

    def load(self) -> V:
        options: list[tuple[str | None, V]] = []
        for k, (shape, holes) in enumerate(self.cases):
            if isinstance(shape, tuple):
                _, kind, byte_len, suffix = shape
                h = holes[0]
                value = _held(kind, h, byte_len, suffix)
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


class Loops(ToolData):
    """``for`` statements and loop control (see the module docstring)."""

    storages: dict[tuple[int, str], Storage]

    def loop_control(self, is_break: bool) -> bool:
        if not self.loops:
            raise StaticRaise("break or continue outside a loop")
        loop = self.loops[-1]
        if loop.dynamic:
            self.emit(Break() if is_break else Continue())
            return False
        if loop.dyn_if_depth:
            raise Unsupported("break/continue under a runtime condition in a loop over a constant list")
        raise StaticBreak() if is_break else StaticContinue()

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
            iterable = self.optional_list(iterable) or self.materialize(iterable, "messages")
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
                except StaticContinue:
                    continue
                except StaticBreak:
                    break
        finally:
            self.loops.pop()
        return True

    def dynamic_loop(self, node: jn.For, lst: DList | DRange | DFiltered, scope: Scope) -> bool:
        depth = self.dyn_depth + 1
        frame = self.frames[-1]
        for _ in range(50):
            snap = [(info.ns, info.ns.snapshot()) for info in self.namespaces]
            saved_storages = dict(self.storages)
            saved_ns_count = len(self.namespaces)
            try:
                range_node, completes = self._range(node, lst, scope, depth)
            except Restart as r:
                if r.depth != depth:
                    raise
                for ns, s in snap:
                    ns.attrs = dict(s)
                self.storages = saved_storages
                del self.namespaces[saved_ns_count:]
                if r.key is not None and r.key not in self.storages:
                    ns = self._namespace(r.key[0])
                    storage = Storage(self, f"ns_{r.key[1]}", depth, frame)
                    initial = ns.attrs.get(r.key[1], self.undefined(r.key[1]))
                    self.emit(*storage.store(initial))
                    self.storages[r.key] = storage
                    saved_storages[r.key] = storage
                continue
            self.emit(range_node)
            self._load_storages(depth)
            return completes or True
        raise Unsupported("a loop whose namespace variables never settle")

    def _namespace(self, ns_id: int) -> Namespace:
        return next(info.ns for info in self.namespaces if id(info.ns) == ns_id)

    def _load_storages(self, depth: int) -> None:
        """Namespace attributes kept in Go variables for loops at ``depth`` read those variables."""
        for key, storage in self.storages.items():
            if storage.depth == depth:
                self._namespace(key[0]).attrs[key[1]] = storage.load()

    def _range(self, node: jn.For, source: DList | DRange | DFiltered, scope: Scope,
               depth: int) -> tuple[Range, bool]:
        filtered = isinstance(source, DFiltered)
        if (node.test is not None or filtered) and _uses_loop(node.body):
            raise Unsupported("the loop variable in a loop over filtered messages")
        if isinstance(source, DList) and source.item == "argument" and (_uses_loop(node.body) or source.reverse):
            raise Unsupported("the loop variable in a loop over tool-call arguments (a Go map)")
        if isinstance(source, DFiltered):
            lst = source.base
        elif isinstance(source, DRange):
            lst = DList(source.lst, suffix=False, reverse=source.reverse)
        else:
            lst = source
        target = node.target
        hint = target.name if isinstance(target, jn.Name) else "item"
        self._load_storages(depth)
        index = self.fresh("i")
        body_frame: list[Node] = []
        inner = Scope(scope)
        self.frames.append(body_frame)
        self.loops.append(LoopCtx(dynamic=True, depth=depth))
        self.dyn_depth = depth
        try:
            with self.capture() as body:
                element, range_elem = self._element(source, lst, index, hint)
                self.assign(target, element, inner)
                inner.vars["loop"] = DLoop(index, lst, lst.reverse)
                self._range_body(node, source, element, inner)
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

    def _element(self, source: DList | DRange | DFiltered, lst: DList, index: str, hint: str) -> tuple[V, str]:
        """The loop variable's value for item ``index``, and the Go range's element variable ("" for none)."""
        L = gx.arg(lst.expr)
        if isinstance(source, DRange):
            if source.reverse:
                return DInt(f"len (slice {L} {gx.arg(gx.add(index, 1))})"), ""
            return DInt(str(gx.add(gx.int_or(source.offset), index))), ""
        elem_var = self.fresh(hint)
        if lst.item == "argument":  # a Go map: the range's index is the key
            return Tup((self.atom(index), self.argument_value(elem_var))), elem_var
        if lst.reverse:
            pos = f"len (slice {L} {gx.arg(gx.add(index, 1))})"
            self.emit(Set(elem_var, f"index {L} ({pos})", declare=True))
            return DMsg(elem_var, last=self.elem_last(lst, pos), kind=lst.item), ""
        return DMsg(elem_var, last=self.elem_last(lst, index), kind=lst.item), elem_var

    def _range_body(self, node: jn.For, source: DList | DRange | DFiltered, element: V, inner: Scope) -> None:
        """The loop body, after ``continue`` for the items a filter or the loop's ``if`` leaves out."""
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


def _uses_loop(body: list[jn.Node]) -> bool:
    for n in body:
        for name in n.find_all(jn.Name):
            if name.name == "loop":
                return True
    return False


def _held(kind: str, hole: str, byte_len: Any, suffix: Any) -> V:
    """The value a loop kept in variable ``hole``, of the ``kind`` its shape says."""
    if kind == "str":
        return DStr((Atom(hole),))
    if kind == "bool":
        return DBool(hole)
    if kind == "int":
        return DInt(hole, byte_len)
    if kind == "list":
        return DList(hole, suffix)
    return DMsg(hole, last=Poison("the last-message test of a message kept in a variable"))
