"""Where the walk over the template is: Jinja scopes, loops, macros, and namespaces kept across loops.

A loop over messages becomes a Go ``range`` translated once for a symbolic message. A Jinja
``namespace`` attribute it sets and a later iteration (or the code after the loop) reads must
then live in Go variables declared outside the range: a :class:`Storage`. How many variables
depends on the shapes of value the body stores, known only once the body has been translated,
so the loop is translated again (:class:`Restart`) until they settle (:mod:`.loops`).
:class:`Nesting` holds the loops open, the namespaces and their storages, and the macro depth.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Any

from .emitter import Emitter
from .goast import Node, Set
from .govalue import go_value
from .values import Atom, Choice, DBool, DInt, DList, DMsg, DStr, Namespace, Poison, Static, Unsupported, V, value_kind


class Scope:
    """A Jinja variable scope: the template, a loop body or a macro body (``if`` makes none)."""

    def __init__(self, parent: Scope | None = None) -> None:
        self.vars: dict[str, V] = {}
        self.parent = parent

    def lookup(self, name: str) -> V | None:
        s: Scope | None = self
        while s is not None:
            if name in s.vars:
                return s.vars[name]
            s = s.parent
        return None


@dataclass
class NSInfo:
    """A namespace and the depth of runtime loops it was created at."""

    ns: Namespace
    depth: int


@dataclass
class LoopCtx:
    """A loop being translated: unrolled (constant list) or a Go ``range``."""

    dynamic: bool
    depth: int
    dyn_if_depth: int = 0


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


class Nesting:
    """The loops and macros the walk is in, and the namespaces it has made (see the module docstring)."""

    def __init__(self) -> None:
        self.namespaces: list[NSInfo] = []
        self.storages: dict[tuple[int, str], Storage] = {}
        self.loops: list[LoopCtx] = []
        self.dyn_depth = 0
        self.macro_depth = 0

    def ns_info(self, ns: Namespace) -> NSInfo:
        for info in self.namespaces:
            if info.ns is ns:
                return info
        raise AssertionError("unknown namespace")

    def namespace(self, ns_id: int) -> Namespace:
        """The namespace a storage key names."""
        return next(info.ns for info in self.namespaces if id(info.ns) == ns_id)

    def load_storages(self, depth: int) -> None:
        """Namespace attributes kept in Go variables for loops at ``depth`` read those variables."""
        for key, storage in self.storages.items():
            if storage.depth == depth:
                self.namespace(key[0]).attrs[key[1]] = storage.load()


class Storage:
    """Go variables that carry a namespace attribute across iterations of a Go ``range``.

    Each distinct *shape* of value stored (a constant, or a value whose Go expressions are
    replaced by variables) is a case; with several cases a tag variable says which one holds.
    """

    def __init__(self, emitter: Emitter, hint: str, depth: int, frame: list[Node]) -> None:
        self.emitter = emitter
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
        whole = go_value(v)
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
        """The Go nodes that keep ``v``; a new shape adds a case (and its variables, in the loop's frame)."""
        self.emitter.check_storable(v, self.emitter.frame_depth(self.frame, 0))
        shape, exprs = self._shape(v)
        for k, (s, _) in enumerate(self.cases):  # noqa: B007 - k is the case found, read after the loop
            if s == shape:
                break
        else:
            if len(self.cases) >= 8:
                raise Unsupported("a namespace attribute whose form keeps changing across loop iterations")
            holes = [self.emitter.declare(f"{self.hint}", self.frame, mutable=True) for _ in exprs]
            self.cases.append((shape, holes))
            k = len(self.cases) - 1
            if len(self.cases) == 2 and self.tag is None:
                self.tag = self.emitter.declare(f"{self.hint}_case", self.frame, mutable=True)
        nodes: list[Node] = [Set(h, e) for h, e in zip(self.cases[k][1], exprs)]
        if self.tag:
            nodes.append(Set(self.tag, str(k)))
        return nodes

    def load(self) -> V:
        """The value kept: whichever case the tag says holds."""
        options: list[tuple[str | None, V]] = []
        for k, (shape, holes) in enumerate(self.cases):
            if isinstance(shape, tuple):
                _, kind, byte_len, suffix = shape
                h = holes[0]
                value = _held(kind, h, byte_len, suffix)
            else:
                value = shape.map_exprs(functools.partial(_fill, holes=holes))
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
