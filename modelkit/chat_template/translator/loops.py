"""``for`` loops: unrolled over a constant list, or a Go ``range`` over the conversation.

A loop over something known at build time (a literal list, ``tools`` absent) is unrolled, its
body translated once per item. A loop over messages (or their indexes, or a filtered list)
becomes a Go ``range``, its body translated once for a symbolic message. What makes that hard
is Jinja's ``namespace``: an attribute set inside the loop and read in a later iteration, or
after the loop, must live in Go variables declared outside the range
(:class:`~.nesting.Storage`), and how many depends on the shapes of value the body stores,
which are only known once the body has been translated; so the loop is translated again
(:class:`~.nesting.Restart`) until they settle.
"""

from __future__ import annotations

from typing import Any

import jinja2.nodes as jn

from . import goexpr as gx
from .binding import assign
from .choices import materialize
from .expressions import ev
from .goast import Break, Continue, If, Node, Raise, Range, Set
from .logic import elem_last, truth
from .nesting import LoopCtx, Restart, Scope, StaticBreak, StaticContinue, Storage
from .state import State
from .tools import argument_value, optional_list
from .values import (
    Choice,
    DBool,
    DFiltered,
    DInt,
    DList,
    DLoop,
    DMsg,
    DRange,
    DStr,
    Poison,
    Raising,
    Static,
    StaticLoop,
    StaticRaise,
    Tup,
    Unsupported,
    V,
)


def loop_control(st: State, is_break: bool) -> bool:
    """``{% break %}``/``{% continue %}``: Go's in a ``range``, a jump out of the unrolled body otherwise."""
    loops = st.nesting.loops
    if not loops:
        raise StaticRaise("break or continue outside a loop")
    loop = loops[-1]
    if loop.dynamic:
        st.emitter.emit(Break() if is_break else Continue())
        return False
    if loop.dyn_if_depth:
        raise Unsupported("break/continue under a runtime condition in a loop over a constant list")
    raise StaticBreak() if is_break else StaticContinue()


def for_stmt(st: State, node: jn.For, scope: Scope) -> bool:
    """``{% for %}``: unrolled over constants, a Go ``range`` over the conversation."""
    if node.recursive:
        raise Unsupported("recursive loops")
    iterable = ev(st, node.iter, scope)
    if isinstance(iterable, Static):
        try:
            items: list[V] = [Static(x) for x in iterable.value]
        except TypeError as exc:
            raise StaticRaise(f"{type(exc).__name__}: {exc}") from exc
        return _static_loop(st, node, items, scope)
    if isinstance(iterable, Tup):
        return _static_loop(st, node, list(iterable.items), scope)
    if isinstance(iterable, Raising):
        st.emitter.emit(Raise(iterable.message))
        return False
    if isinstance(iterable, Choice):
        iterable = optional_list(st, iterable) or materialize(st, iterable, "messages")
    if isinstance(iterable, (DList, DRange, DFiltered)):
        return _dynamic_loop(st, node, iterable, scope)
    if isinstance(iterable, DMsg):
        raise Unsupported("iterating over a message's keys")
    if isinstance(iterable, DStr):
        raise Unsupported("iterating over the characters of a string")
    if isinstance(iterable, Poison):
        raise Unsupported(iterable.reason)
    raise Unsupported(f"iterating over a {type(iterable).__name__}")


def _static_loop(st: State, node: jn.For, items: list[V], scope: Scope) -> bool:
    """The body once per item of a constant list (the loop's ``if`` settled at build time)."""
    if node.test is not None:
        kept = []
        for item in items:
            inner = Scope(scope)
            assign(st, node.target, item, inner)
            t = truth(st, ev(st, node.test, inner))
            if not isinstance(t, Static):
                raise Unsupported("a loop filter on runtime values")
            if t.value:
                kept.append(item)
        items = kept
    if not items:
        return st.walk.statements(st, node.else_, scope)
    loops = st.nesting.loops
    loops.append(LoopCtx(dynamic=False, depth=st.nesting.dyn_depth))
    try:
        for i, item in enumerate(items):
            inner = Scope(scope)
            assign(st, node.target, item, inner)
            loop = StaticLoop(i, len(items), [x.value if isinstance(x, Static) else x for x in items])
            inner.vars["loop"] = Static(loop)
            try:
                if not st.walk.statements(st, node.body, inner):
                    return False
            except StaticContinue:
                continue
            except StaticBreak:
                break
    finally:
        loops.pop()
    return True


def _dynamic_loop(st: State, node: jn.For, lst: DList | DRange | DFiltered, scope: Scope) -> bool:
    """A Go ``range``, translated again until the namespace attributes it keeps have settled."""
    nesting = st.nesting
    depth = nesting.dyn_depth + 1
    frame = st.emitter.frames[-1]
    for _ in range(50):
        snap = [(info.ns, info.ns.snapshot()) for info in nesting.namespaces]
        saved_storages = dict(nesting.storages)
        saved_ns_count = len(nesting.namespaces)
        try:
            range_node, completes = _range(st, node, lst, scope, depth)
        except Restart as r:
            if r.depth != depth:
                raise
            for ns, s in snap:
                ns.attrs = dict(s)
            nesting.storages = saved_storages
            del nesting.namespaces[saved_ns_count:]
            if r.key is not None and r.key not in nesting.storages:
                ns = nesting.namespace(r.key[0])
                storage = Storage(st.emitter, f"ns_{r.key[1]}", depth, frame)
                initial = ns.attrs.get(r.key[1], st.jinja.undefined(r.key[1]))
                st.emitter.emit(*storage.store(initial))
                nesting.storages[r.key] = storage
                saved_storages[r.key] = storage
            continue
        st.emitter.emit(range_node)
        nesting.load_storages(depth)
        return completes or True
    raise Unsupported("a loop whose namespace variables never settle")


def _range(st: State, node: jn.For, source: DList | DRange | DFiltered, scope: Scope,
           depth: int) -> tuple[Range, bool]:
    """One translation of the loop as a Go ``range`` (its body in a frame of its own)."""
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
    nesting, emitter = st.nesting, st.emitter
    nesting.load_storages(depth)
    index = emitter.fresh("i")
    body_frame: list[Node] = []
    inner = Scope(scope)
    emitter.frames.append(body_frame)
    nesting.loops.append(LoopCtx(dynamic=True, depth=depth))
    nesting.dyn_depth = depth
    try:
        with emitter.capture() as body:
            element, range_elem = _element(st, source, lst, index, hint)
            assign(st, target, element, inner)
            inner.vars["loop"] = DLoop(index, lst, lst.reverse)
            _range_body(st, node, source, element, inner)
    finally:
        emitter.frames.pop()
        nesting.loops.pop()
        nesting.dyn_depth = depth - 1
    with emitter.capture() as orelse:
        if node.else_:
            if filtered or node.test is not None:
                raise Unsupported("a loop else over filtered messages")
            st.walk.statements(st, node.else_, scope)
    rng = Range(index, range_elem, lst.expr, body_frame + body, orelse)
    return rng, True


def _element(st: State, source: DList | DRange | DFiltered, lst: DList, index: str, hint: str) -> tuple[V, str]:
    """The loop variable's value for item ``index``, and the Go range's element variable ("" for none)."""
    L = gx.arg(lst.expr)
    if isinstance(source, DRange):
        if source.reverse:
            return DInt(f"len (slice {L} {gx.arg(gx.add(index, 1))})"), ""
        return DInt(str(gx.add(gx.int_or(source.offset), index))), ""
    elem_var = st.emitter.fresh(hint)
    if lst.item == "argument":  # a Go map: the range's index is the key
        return Tup((st.facts.atom(index), argument_value(st, elem_var))), elem_var
    if lst.reverse:
        pos = f"len (slice {L} {gx.arg(gx.add(index, 1))})"
        st.emitter.emit(Set(elem_var, f"index {L} ({pos})", declare=True))
        return DMsg(elem_var, last=elem_last(st, lst, pos), kind=lst.item), ""
    return DMsg(elem_var, last=elem_last(st, lst, index), kind=lst.item), elem_var


def _range_body(st: State, node: jn.For, source: DList | DRange | DFiltered, element: V, inner: Scope) -> None:
    """The loop body, after ``continue`` for the items a filter or the loop's ``if`` leaves out."""
    tests: list[Static | DBool] = []
    if isinstance(source, DFiltered):
        tests.append(truth(st, source.pred(element)))
    if node.test is not None:
        tests.append(truth(st, ev(st, node.test, inner)))
    facts: dict[Any, Any] = {}
    skip = False
    for t in tests:
        if isinstance(t, Static):
            skip = skip or not t.value
        else:
            st.emitter.emit(If(f"not {gx.arg(t.expr)}", [Continue()]))
            facts.update(st.facts.branch_facts(t, True))
    if skip:
        st.emitter.emit(Continue())
    else:
        with st.facts.assuming(facts):
            st.walk.statements(st, node.body, inner)


def _uses_loop(body: list[jn.Node]) -> bool:
    for n in body:
        for name in n.find_all(jn.Name):
            if name.name == "loop":
                return True
    return False
