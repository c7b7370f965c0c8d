"""The Go output of a translation as it is built: nodes, frames, helper templates, variable names.

:class:`Emitter` owns everything the translation writes into the Go tree: the node list being
appended to (``capture`` swaps in a fresh one, so a branch or a macro body can be built apart
and placed later), the *frames* Go variables are declared at the top of (the template, each
``range`` body), the ``define``\\ d helpers and preludes the tree calls, and fresh variable names.
It also knows which of its variables change later (a loop's), which is what binding a value
must respect: Jinja binds values, Go expressions read variables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from . import goexpr as gx
from .goast import CUT_VAR, Call, CutPoint, Node, Out, Range, Set, Text, expr_vars, walk
from .ollama_data import ADD_GEN_VAR, MESSAGES
from .values import Atom, Choice, DStr, Frag, Piece, Unsupported, V

_GO_VARIABLE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")


class Emitter:
    """The Go tree being built and the Go variables it declares (see the module docstring)."""

    def __init__(self) -> None:
        self.out: list[Node] = []
        self.frames: list[list[Node]] = []
        self.defines: dict[str, list[Node]] = {}
        self.preludes: dict[str, list[Node]] = {}
        self.used_names: set[str] = {"$", ADD_GEN_VAR, CUT_VAR, gx.TODAY_VAR}
        self.name_counts: dict[str, int] = {}
        self.var_depth: dict[str, int] = {}
        self.mutable_vars: set[str] = set()

    def fresh(self, hint: str) -> str:
        """A Go variable name not used yet, read from ``hint`` (a Jinja name) where it can be."""
        base = "$" + (re.sub(r"[^A-Za-z0-9_]", "_", hint.lstrip("$")) or "v")
        if base[1].isdigit():
            base = "$v" + base[1:]
        name = base
        n = self.name_counts.get(base, 1)
        while name in self.used_names:
            n += 1
            name = f"{base}{n}"
        self.name_counts[base] = n
        self.used_names.add(name)
        return name

    def declare(self, hint: str, frame: list[Node] | None = None, mutable: bool = False,
                init: str = "0") -> str:
        """A Go variable declared at the top of a frame (the template or a range body)."""
        name = self.fresh(hint)
        target = frame if frame is not None else self.frames[-1]
        target.append(Set(name, init, declare=True))
        self.var_depth[name] = self.frame_depth(target, len(self.frames))
        if mutable:
            self.mutable_vars.add(name)
        return name

    def frame_depth(self, frame: list[Node], missing: int) -> int:
        """How many frames deep ``frame`` is (1 for the template's), or ``missing`` when it is not open."""
        return next((k + 1 for k, f in enumerate(self.frames) if f is frame), missing)

    def emit(self, *nodes: Node) -> None:
        self.out.extend(nodes)

    @contextmanager
    def capture(self) -> Iterator[list[Node]]:
        """Emit into a fresh list for the duration (a branch, a loop body, a macro's output)."""
        saved = self.out
        self.out = []
        try:
            yield self.out
        finally:
            self.out = saved

    def prelude(self, name: str) -> str:
        """The Go variable ``name``, computed once before the template (the generation-prompt flag, today)."""
        if name not in self.preludes:
            if name == ADD_GEN_VAR:
                self.preludes[name] = [
                    Set(ADD_GEN_VAR, "true", declare=True),
                    Range("", "$m", MESSAGES, [Set(ADD_GEN_VAR, 'ne $m.Role "assistant"')])]
            elif name == gx.TODAY_VAR:
                self.preludes[name] = [gx.today_prelude()]
        return name

    def volatile(self, expr: str) -> bool:
        """Whether a Go expression reads a variable that changes later (a loop's storage)."""
        return any(v in self.mutable_vars for v in _GO_VARIABLE.findall(expr))

    def copy_if_volatile(self, expr: str, hint: str, into: list[Node] | None = None) -> str:
        """``expr``, or a fresh Go variable set to it now (in ``into``, else the output) when it reads
        variables that change later: Jinja binds values, Go expressions read variables."""
        if not self.volatile(expr):
            return expr
        var = self.declare(hint)
        (self.out if into is None else into).append(Set(var, expr))
        return var

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

    def write_piece(self, p: Piece) -> None:
        """Emit the nodes that write one piece of a string (a trimmed one through a helper template)."""
        if isinstance(p, str):
            if p:
                self.emit(Text(p))
        elif isinstance(p, Atom):
            if p.plain:
                self.emit(Out(p.expr, src=p))
            else:
                name, defines = gx.strip_defines(p.left, p.right)
                self.defines.update(defines)
                self.emit(Call(name, gx.arg(p.expr), src=p))
            if p.cut:
                self.emit(CutPoint(p.cut))
        else:
            self.emit(*p.nodes)
