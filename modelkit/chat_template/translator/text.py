"""Strings as the translator builds them: what a value writes, concatenation, stripping, captured output.

Go's ``text/template`` has no string functions, so a string value is a sequence of pieces
(:mod:`.values`): literal text, a Go string expression possibly trimmed on either side, or Go
nodes that write text. ``{{ v }}`` and ``~`` take a value's pieces (:func:`pieces`); ``strip``
moves into the pieces it touches (:func:`strip`); output captured by ``{% set %}`` blocks and
macros becomes pieces again where it can (:func:`nodes_value`).
"""

from __future__ import annotations

import dataclasses

import jinja2

from . import goexpr as gx
from .choices import dist
from .goast import Call, CutPoint, If, Node, Out, Raise, Text, if_chain
from .state import State
from .values import (
    Atom,
    Charset,
    Choice,
    DBool,
    DInt,
    DMsg,
    DStr,
    Frag,
    Piece,
    Poison,
    Raising,
    Static,
    Tup,
    Unsupported,
    V,
    argument_pieces,
    make_str,
    raise_static,
)


def pieces(st: State, v: V) -> list[Piece]:
    """String pieces for Jinja's ``str(v)`` (what ``{{ v }}`` and ``~`` write)."""
    if isinstance(v, Static):
        x = v.value
        if isinstance(x, jinja2.Undefined):
            return [str(x)] if not isinstance(x, jinja2.StrictUndefined) else raise_static(str(x))
        return [str(x)]
    if isinstance(v, DStr):
        return list(v.pieces)
    if isinstance(v, DInt):
        return [Atom(f"print {gx.arg(v.expr)}", volatile=v.volatile)]
    if isinstance(v, DBool):
        return [Frag((If(v.expr, [Text("True")], [Text("False")]),))]
    if isinstance(v, Choice):
        return [Frag(tuple(choice_nodes(st, v)))]
    if isinstance(v, Poison):
        raise Unsupported(v.reason)
    if isinstance(v, Raising):
        return [Frag((Raise(v.message),))]
    if isinstance(v, Tup):
        raise Unsupported("writing a list")
    if isinstance(v, DMsg) and v.kind in ("number", "bool", "object", "array"):
        return argument_pieces(v)
    if isinstance(v, DMsg):
        raise Unsupported("writing a whole message")
    raise Unsupported(f"writing a {type(v).__name__}")


def choice_nodes(st: State, v: Choice) -> list[Node]:
    """Go nodes that write whichever option of the choice holds."""
    branches: list[tuple[str | None, list[Node]]] = []
    for cond, x in st.facts.options(v):
        with st.emitter.capture() as body:
            write(st, x)
        branches.append((cond, body))
    return if_chain(branches)


def write(st: State, v: V) -> None:
    """Emit the nodes that write ``str(v)``."""
    for p in pieces(st, v):
        st.emitter.write_piece(p)


def concat(st: State, a: V, b: V) -> V:
    """``a ~ b`` (and ``+`` on strings)."""
    return make_str(pieces(st, a) + pieces(st, b))


def strip(st: State, v: V, chars: Charset, left: bool, right: bool) -> V:
    """Python's ``strip``/``lstrip``/``rstrip`` (and Jinja's ``trim``) of a string value."""
    if isinstance(v, Static):
        s = str(v.value) if not isinstance(v.value, str) else v.value
        if left and right:
            return Static(s.strip(chars))
        return Static(s.lstrip(chars) if left else s.rstrip(chars))
    if isinstance(v, Choice):
        return dist(st, v, lambda x: strip(st, x, chars, left, right))
    if not isinstance(v, DStr):
        raise Unsupported(f"strip of a {type(v).__name__}")
    found = list(v.pieces)
    cs = gx.PY_WHITESPACE if chars is None else chars
    if left:
        found = _strip_side(found, chars, cs, True)
    if right:
        found = _strip_side(found[::-1], chars, cs, False)[::-1]
    return make_str(found)


def _strip_side(pieces: list[Piece], chars: Charset, cs: str, left: bool) -> list[Piece]:
    """Strip one side of the pieces (the right side: of the reversed pieces): literal text is cut
    at once; a Go string gets the trim as a property, and must be the last piece it reaches."""
    out = list(pieces)
    while out:
        p = out[0]
        if isinstance(p, str):
            s = p.lstrip(cs) if left else p.rstrip(cs)
            if s:
                out[0] = s
                return out
            out.pop(0)
            continue
        if isinstance(p, Atom):
            new = (dataclasses.replace(p, left=p.left + (chars,)) if left
                   else dataclasses.replace(p, right=p.right + (chars,)))
            out[0] = new
            nxt = out[1] if len(out) > 1 else None
            if nxt is None:
                return out
            if isinstance(nxt, str) and nxt and (nxt[0] if left else nxt[-1]) not in cs:
                return out
            raise Unsupported("strip across a dynamic string and what follows it")
        raise Unsupported("strip of generated text")
    return out


def nodes_value(nodes: list[Node]) -> V:
    """What captured output is, as a string value (for ``{% set x %}`` blocks and macros)."""
    found: list[Piece] = []
    simple = True
    skip_cut = False
    for n in nodes:
        if isinstance(n, Text):
            found.append(n.text)
        elif isinstance(n, (Out, Call)) and isinstance(n.src, Atom):
            found.append(n.src)
            skip_cut = n.src.cut is not None
            continue
        elif isinstance(n, CutPoint) and skip_cut:
            pass
        else:
            simple = False
            break
        skip_cut = False
    if simple:
        return make_str(found)
    return DStr((Frag(tuple(nodes)),))
