"""What the current branch of the translation has proven about the conversation.

Inside ``if message.role == 'user'`` the role *is* ``'user'``: the translator keeps, for each
branch it is in, what its conditions (and the negation of the earlier ones) make known about
Go expressions, and reads values through it, so a test repeated inside its own branch is
settled at build time instead of written again. A fact is keyed by a Go expression: ``("bool",
e)`` is its truth, ``("str", e)`` its string value, ``("ne", e)`` the strings it is known not to
be. An expression reading a variable that changes later (:meth:`.emitter.Emitter.volatile`)
proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import goexpr as gx
from .emitter import Emitter
from .values import Atom, Choice, DBool, DStr, Static, V

FactKey = tuple[str, str]  # ("bool" | "str" | "ne", a Go expression): what a branch made known


class Facts:
    """The facts of the branches the translation is in, innermost last (see the module docstring)."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter
        self.stack: list[dict[FactKey, Any]] = [{}]

    def fact(self, key: FactKey) -> Any | None:
        """What the innermost branch that knows ``key`` knows, or None."""
        for f in reversed(self.stack):
            if key in f:
                return f[key]
        return None

    @contextmanager
    def assuming(self, facts: dict[FactKey, Any]) -> Iterator[None]:
        """Translate, for the duration, inside a branch where ``facts`` hold."""
        self.stack.append(facts)
        try:
            yield
        finally:
            self.stack.pop()

    def branch_facts(self, cond: DBool, truth: bool) -> dict[FactKey, Any]:
        """What a branch on ``cond`` makes known where the condition is ``truth``."""
        out: dict[FactKey, Any] = {}
        if cond.volatile:
            return out
        out[("bool", cond.expr)] = truth
        for kind, expr, value in (cond.when_true if truth else cond.when_false):
            if kind == "bool":
                out[("bool", expr)] = value
            elif kind == "eq":
                out[("str", expr)] = value
            elif kind == "ne":
                key = ("ne", expr)
                prev = set(self.fact(key) or ())
                out[key] = prev | {value}
        return out

    def dbool(self, expr: str, canon: bool = True, when_true: tuple[Any, ...] = (),
              when_false: tuple[Any, ...] = ()) -> Static | DBool:
        """The Go boolean ``expr``, or its value where the branch knows it."""
        known = self.fact(("bool", expr))
        if known is not None:
            return Static(bool(known))
        return DBool(expr, canon, when_true, when_false, self.emitter.volatile(expr))

    def atom(self, expr: str, cut: str | None = None) -> V:
        """The Go string ``expr``, or its value where the branch knows it."""
        known = self.fact(("str", expr))
        if known is not None and cut is None:
            return Static(known)
        return DStr((Atom(expr, cut=cut, volatile=self.emitter.volatile(expr)),))

    def options(self, v: Choice) -> list[tuple[str | None, V]]:
        """The options of a choice that can still hold, given what the current branch knows."""
        live: list[tuple[str | None, V]] = []
        for cond, x in v.options:
            if cond is None:
                live.append((None, x))
                break
            known = self.fact(("bool", cond))
            if known is True:
                live.append((None, x))
                break
            if known is False:
                continue
            live.append((cond, x))
        return live

    def flatten(self, v: Choice) -> list[tuple[str | None, V]]:
        """The live options of a choice, nested choices spread into one list of conditions."""
        out: list[tuple[str | None, V]] = []
        for cond, x in self.options(v):
            if isinstance(x, Choice):
                for sub, y in self.flatten(x):
                    c = sub if cond is None else (cond if sub is None else f"and {gx.arg(cond)} {gx.arg(sub)}")
                    out.append((c, y))
                    if c is None:
                        break
            else:
                out.append((cond, x))
            if out and out[-1][0] is None:
                break
        return out
