"""Reading into values: attributes, items and slices of messages, loops, namespaces and constants.

``message.role`` is ``$m.Role``; ``messages[-1]`` is ``index $.Messages (len (slice $.Messages
1))`` and knows it is the last message (what a continuation cuts after); ``messages[1:]`` is a
Go ``slice``; ``loop.last`` compares the range's index with the list's length. Keys Ollama's
data does not carry are undefined, or tool data (:mod:`.tools`).
"""

from __future__ import annotations

import dataclasses
import functools

from . import goexpr as gx
from .choices import dist, make_choice
from .logic import and_, elem_last, find, truth
from .operators import eq
from .state import State
from .tools import data_or
from .values import (
    Char,
    Choice,
    DFiltered,
    DInt,
    DList,
    DLoop,
    DMsg,
    DStr,
    NSRef,
    Poison,
    Raising,
    Rec,
    Static,
    StaticLoop,
    Tup,
    Unsupported,
    V,
    all_static,
    as_value,
    check_operands,
    compute_static,
    dint,
)

_STATIC_LOOP_ATTRS = ("index0", "index", "first", "last", "length", "revindex", "revindex0", "previtem", "nextitem")


def get_attr(st: State, obj: V, attr: str) -> V:
    """``obj.attr``."""
    if isinstance(obj, Raising):
        return obj
    if isinstance(obj, Static):
        if isinstance(obj.value, StaticLoop) and attr in _STATIC_LOOP_ATTRS:
            loop = obj.value
            if attr == "previtem":
                return as_value(loop.items[loop.index0 - 1]) if loop.index0 > 0 else st.jinja.undefined("previtem")
            if attr == "nextitem":
                return as_value(loop.items[loop.index0 + 1]) if not loop.last else st.jinja.undefined("nextitem")
            return Static(getattr(loop, attr))
        return compute_static(lambda: st.jinja.env.getattr(obj.value, attr))
    if isinstance(obj, DMsg):
        return msg_field(st, obj, attr)
    if isinstance(obj, Rec):
        found = obj.get(attr)
        return found if found is not None else st.jinja.undefined(attr)
    if isinstance(obj, DLoop):
        return _loop_attr(st, obj, attr)
    if isinstance(obj, NSRef):
        return obj.ns.attrs.get(attr, st.jinja.undefined(attr))
    if isinstance(obj, Choice):
        return dist(st, obj, lambda x: get_attr(st, x, attr))
    if isinstance(obj, Poison):
        raise Unsupported(obj.reason)
    if isinstance(obj, (DStr, Char)) and not hasattr(str, attr):
        return st.jinja.undefined(attr)  # Jinja: a string has no such attribute
    if isinstance(obj, (DStr, DList, Tup)):
        return Poison(f"attribute {attr!r} of a runtime {type(obj).__name__}")
    raise Unsupported(f"attribute {attr!r} of a {type(obj).__name__}")


def msg_field(st: State, msg: DMsg, key: str) -> V:
    """A key of a message (or of tool data): its role, its content (cut after, where it ends a
    continuation), or what :mod:`.tools` maps it to."""
    if msg.kind == "msg" and key == "role":
        return st.facts.atom(msg.field_expr("Role"))
    if msg.kind == "msg" and key == "content":
        return st.facts.atom(msg.field_expr("Content"), cut=_cut_cond(st, msg))
    return data_or(st, msg, key, st.jinja.undefined(key))


def _cut_cond(st: State, msg: DMsg) -> str | None:
    """The Go condition under which this message's content ends a continuation (it is the last
    message and the assistant's), or None where it never does."""
    last = msg.last
    if isinstance(last, Poison):
        role = eq(st, st.facts.atom(msg.field_expr("Role")), Static("assistant"))
        if isinstance(role, Static) and not role.value:
            return None
        raise Unsupported(last.reason)
    c = and_(st, last, lambda: eq(st, st.facts.atom(msg.field_expr("Role")), Static("assistant")))
    c = truth(st, c)
    if isinstance(c, Static):
        return "true" if c.value else None
    return c.expr


def _loop_attr(st: State, loop: DLoop, attr: str) -> V:
    """``loop.attr`` in a Go ``range``: from its index and the list's length."""
    i, lst = loop.index, loop.lst.expr
    if attr == "index0":
        return dint(i, ("idx", lst, 0), i) if not loop.reverse else DInt(i)
    if attr == "index":
        return dint(str(gx.add(i, 1)), ("idx", lst, 1), i) if not loop.reverse else DInt(str(gx.add(i, 1)))
    if attr == "first":
        return st.facts.dbool(f"eq {i} 0")
    if attr == "last":
        return st.facts.dbool(f"eq (len (slice {gx.arg(lst)} {i})) 1")
    if attr == "length":
        return DInt(f"len {gx.arg(lst)}")
    if attr == "revindex0":
        return DInt(f"len (slice {gx.arg(lst)} {gx.arg(gx.add(i, 1))})")
    if attr == "revindex":
        return DInt(f"len (slice {gx.arg(lst)} {i})")
    if attr in ("previtem", "nextitem") and not loop.reverse:
        return _neighbour(st, loop, attr)
    if attr == "cycle":
        return Poison("loop.cycle over messages")
    return st.jinja.undefined(attr)


def _neighbour(st: State, loop: DLoop, attr: str) -> V:
    """``loop.previtem``/``loop.nextitem`` of a forward ``range``: undefined at the ends."""
    i, L = loop.index, gx.arg(loop.lst.expr)
    if attr == "previtem":
        item = DMsg(f"index {L} {gx.arg(gx.sub(i, 1))}", last=Static(False), kind=loop.lst.item)
        return make_choice(st, [(f"eq {i} 0", st.jinja.undefined("previtem")), (None, item)])
    item = DMsg(f"index {L} {gx.arg(gx.add(i, 1))}",
                last=st.facts.dbool(f"eq (len (slice {L} {i})) 2") if loop.lst.suffix else Static(False),
                kind=loop.lst.item)
    return make_choice(st, [(f"eq (len (slice {L} {i})) 1", st.jinja.undefined("nextitem")), (None, item)])


def get_item(st: State, obj: V, key: V) -> V:
    """``obj[key]``."""
    raising = check_operands(obj, key)
    if raising is not None:
        return raising
    if isinstance(obj, Static) and isinstance(key, Static):
        return compute_static(lambda: st.jinja.env.getitem(obj.value, key.value))
    if isinstance(obj, DMsg) and isinstance(key, Static) and isinstance(key.value, str):
        return msg_field(st, obj, key.value)
    if isinstance(obj, Rec) and isinstance(key, Static):
        found = obj.get(key.value)
        return found if found is not None else st.jinja.undefined(str(key.value))
    if isinstance(obj, NSRef) and isinstance(key, Static):
        return obj.ns.attrs.get(key.value, st.jinja.undefined(str(key.value)))
    if isinstance(obj, DList):
        return list_index(st, obj, key)
    if isinstance(obj, DFiltered) and isinstance(key, Static) and key.value in (0, -1):
        return find(st, obj, last=key.value == -1)
    if isinstance(obj, Tup) and isinstance(key, Static) and isinstance(key.value, int):
        try:
            return obj.items[key.value]
        except IndexError:
            return st.jinja.undefined("item")
    if isinstance(obj, Choice):
        return dist(st, obj, lambda x: get_item(st, x, key))
    if isinstance(key, Choice):
        return dist(st, key, lambda x: get_item(st, obj, x))
    if isinstance(obj, Poison):
        raise Unsupported(obj.reason)
    if isinstance(obj, DStr) and isinstance(key, Static) and isinstance(key.value, int):
        return Char()
    if isinstance(obj, DStr):
        raise Unsupported("indexing a runtime string (Go counts bytes, Python characters)")
    raise Unsupported(f"indexing a {type(obj).__name__}")


def list_index(st: State, lst: DList, key: V) -> V:
    """An item of a list of messages (or tool data), by a constant or a runtime index."""
    L = gx.arg(lst.expr)
    n_minus_1 = f"len (slice {L} 1)"
    if isinstance(key, Static) and isinstance(key.value, int) and not isinstance(key.value, bool):
        k = key.value
        if lst.reverse:
            k = -1 - k
        if k >= 0:
            expr = f"index {L} {k}"
            last = elem_last(st, lst, str(k))
        elif k == -1:
            expr = f"index {L} ({n_minus_1})"
            last = Static(True) if lst.suffix else elem_last(st, lst, n_minus_1)
        else:
            expr = f"index {L} ({gx.sub(f'len {L}', -k)})"
            last = Static(False)
        return DMsg(expr, last=last, kind=lst.item)
    if isinstance(key, DInt) and not lst.reverse and not key.byte_len:
        expr = f"index {L} {gx.arg(key.expr)}"
        return DMsg(expr, last=elem_last(st, lst, key.expr), kind=lst.item)
    if isinstance(key, Static) and isinstance(key.value, str):
        return st.jinja.undefined(key.value)
    raise Unsupported("indexing messages with a runtime value")


def get_slice(st: State, obj: V, parts: list[V]) -> V:
    """``obj[start:stop:step]``."""
    if all_static(parts) and isinstance(obj, Static):
        start, stop, step = (p.value for p in parts)
        return compute_static(lambda: obj.value[start:stop:step])
    if isinstance(obj, Tup) and all_static(parts):
        start, stop, step = (p.value for p in parts)
        return Tup(obj.items[start:stop:step])
    if isinstance(obj, Choice):
        return dist(st, obj, lambda x: get_slice(st, x, parts))
    for k, part in enumerate(parts):
        if isinstance(part, Choice):
            return dist(st, part, functools.partial(_slice_with_part, st, obj, parts, k))
    if isinstance(obj, DList) and not obj.reverse:
        return _slice_messages(obj, parts)
    if isinstance(obj, DStr):
        raise Unsupported("slicing a runtime string (Go counts bytes, Python characters)")
    if isinstance(obj, Poison):
        raise Unsupported(obj.reason)
    raise Unsupported(f"slicing a {type(obj).__name__}")


def _slice_with_part(st: State, obj: V, parts: list[V], k: int, part: V) -> V:
    """``obj[...]`` with bound ``k`` (start, stop or step) replaced by ``part``."""
    return get_slice(st, obj, parts[:k] + [part] + parts[k + 1:])


def _slice_messages(obj: DList, parts: list[V]) -> V:
    """A slice of a list of messages: Go's ``slice`` (or the list reversed, for ``[::-1]``), which
    still knows where the conversation's last message is."""
    start, stop, step = parts
    if not (isinstance(step, Static) and step.value in (None, 1, -1)):
        raise Unsupported("slicing messages with a step")
    if step.value == -1:
        if isinstance(start, Static) and start.value is None \
                and isinstance(stop, Static) and stop.value is None:
            return dataclasses.replace(obj, reverse=True)
        raise Unsupported("slicing messages backwards between bounds")
    L = gx.arg(obj.expr)

    def bound(v: V) -> str | None:
        if isinstance(v, Static) and v.value is None:
            return None
        if isinstance(v, Static) and isinstance(v.value, int) and not isinstance(v.value, bool):
            return str(v.value) if v.value >= 0 else str(gx.sub(f"len {L}", -v.value))
        if isinstance(v, DInt) and not v.byte_len:
            return v.expr
        raise Unsupported("slicing messages with a runtime bound that is not a number")

    lo, hi = bound(start), bound(stop)
    if lo is None and hi is None:
        return obj
    expr = f"slice {L} {gx.arg(lo or '0')}" + (f" {gx.arg(hi)}" if hi is not None else "")
    lastbase: tuple[str, str] | None = None
    if obj.suffix or obj.lastbase:
        base, off = obj.lastbase or (obj.expr, "0")
        lastbase = (base, str(gx.add(gx.int_or(off), gx.int_or(lo or "0"))))
    return DList(expr, suffix=obj.suffix and hi is None,
                 lastbase=lastbase if hi is not None or obj.lastbase else None, item=obj.item)
