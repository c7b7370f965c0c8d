"""Running a parsed Go template on data: the walk over its nodes, variables, pipelines and calls.

Go semantics where they show in a prompt: variables scoped to the block that declares them,
``range`` over slices, maps (sorted keys) and integers, ``break``/``continue``, ``with``
changing the dot, ``template`` calls with their own ``$``, ``and``/``or`` short-circuiting,
and Go's limit on template recursion.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from . import nodes
from .fmt import fmt_v
from .funcs import BUILTINS
from .ollama import ollama_funcs
from .parser import parse
from .values import NO_VALUE, GoStruct, GoTemplateError, truth, type_name

MAX_EXEC_DEPTH = 100_000  # text/template's maxExecDepth


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_UNSET = object()


@dataclass
class _State:
    tmpl: nodes.GoTemplate
    funcs: Mapping[str, Callable[..., Any]]
    out: bytearray
    vars: list[tuple[str, Any]]
    depth: int = 0


class _Exec:
    def __init__(self, tmpl: nodes.GoTemplate, funcs: Mapping[str, Callable[..., Any]]) -> None:
        self.tmpl = tmpl
        self.funcs = funcs

    def run(self, data: Any) -> bytes:
        st = _State(self.tmpl, self.funcs, bytearray(), [("$", data)])
        self.walk(st, data, self.tmpl.root)
        return bytes(st.out)

    def _lookup(self, st: _State, name: str) -> Any:
        for n, v in reversed(st.vars):
            if n == name:
                return v
        raise GoTemplateError(f'undefined variable "{name}"')

    def _assign(self, st: _State, name: str, value: Any) -> None:
        for k in range(len(st.vars) - 1, -1, -1):
            if st.vars[k][0] == name:
                st.vars[k] = (name, value)
                return
        raise GoTemplateError(f'undefined variable "{name}"')

    def walk(self, st: _State, dot: Any, body: list[nodes.Node]) -> None:
        for n in body:
            if isinstance(n, nodes.TextNode):
                st.out += n.text
            elif isinstance(n, nodes.ActionNode):
                v = self.pipe(st, dot, n.pipe)
                if not n.pipe.decl:
                    st.out += fmt_v(v)
            elif isinstance(n, nodes.IfNode):
                mark = len(st.vars)
                v = self.pipe(st, dot, n.pipe)
                if truth(v):
                    self.walk(st, v if n.kind == "with" else dot, n.body)
                else:
                    self.walk(st, dot, n.orelse)
                del st.vars[mark:]
            elif isinstance(n, nodes.RangeNode):
                self.range(st, dot, n)
            elif isinstance(n, nodes.TemplateNode):
                # Inline rather than a method: helper templates recurse once per trimmed character.
                if n.name not in self.tmpl.defines:
                    raise GoTemplateError(f'template "{n.name}" not defined')
                arg = self.pipe(st, dot, n.pipe) if n.pipe else None
                if st.depth >= MAX_EXEC_DEPTH:
                    raise GoTemplateError(f"exceeded maximum template depth ({MAX_EXEC_DEPTH})")
                sub = _State(st.tmpl, st.funcs, st.out, [("$", arg)], st.depth + 1)
                self.walk(sub, arg, self.tmpl.defines[n.name])
            elif isinstance(n, nodes.BreakNode):
                raise _Break()
            elif isinstance(n, nodes.ContinueNode):
                raise _Continue()
            else:  # pragma: no cover
                raise GoTemplateError(f"unknown node {n!r}")

    def range(self, st: _State, dot: Any, n: nodes.RangeNode) -> None:
        mark = len(st.vars)
        pipe = n.pipe
        value = self.pipe(st, dot, nodes.Pipe([], False, pipe.cmds))
        for name in pipe.decl:
            st.vars.append((name, None))
        items = _range_items(value)
        if not items:
            del st.vars[mark:]
            self.walk(st, dot, n.orelse)
            return
        for idx, elem in items:
            if len(pipe.decl) == 1:
                st.vars[mark] = (pipe.decl[0], elem)
            elif len(pipe.decl) == 2:
                st.vars[mark] = (pipe.decl[0], idx)
                st.vars[mark + 1] = (pipe.decl[1], elem)
            inner = len(st.vars)
            try:
                self.walk(st, elem, n.body)
            except _Break:
                del st.vars[inner:]
                break
            except _Continue:
                pass
            del st.vars[inner:]
        del st.vars[mark:]

    def pipe(self, st: _State, dot: Any, p: nodes.Pipe) -> Any:
        value: Any = _UNSET
        for cmd in p.cmds:
            value = self.command(st, dot, cmd, value)
        for name in p.decl:
            if p.assign:
                self._assign(st, name, value)
            else:
                st.vars.append((name, value))
        return value

    def command(self, st: _State, dot: Any, cmd: nodes.Command, final: Any) -> Any:
        first = cmd.args[0]
        if first.kind == "ident":
            return self.call(st, dot, first.value, cmd.args[1:], final)
        if len(cmd.args) > 1 or final is not _UNSET:
            raise GoTemplateError(f"can't give argument to non-function {first.kind}")
        return self.operand(st, dot, first)

    def operand(self, st: _State, dot: Any, op: nodes.Operand) -> Any:
        if op.kind == "lit":
            v = op.value
        elif op.kind == "nil":
            raise GoTemplateError("nil is not a command")
        elif op.kind == "dot":
            v = dot
        elif op.kind == "var":
            v = self._lookup(st, op.value)
        elif op.kind == "pipe":
            v = self.pipe(st, dot, op.value)
        elif op.kind == "ident":
            v = self.call(st, dot, op.value, [], _UNSET)
        else:  # pragma: no cover
            raise GoTemplateError(op.kind)
        for name in op.chain:
            v = _field(v, name)
        return v

    def call(self, st: _State, dot: Any, name: str, args: list[nodes.Operand], final: Any) -> Any:
        if name in ("and", "or"):
            return self.and_or(st, dot, name, args, final)
        vals = [self.operand(st, dot, a) for a in args]
        if final is not _UNSET:
            vals.append(final)
        if name in st.funcs:
            return st.funcs[name](*vals)
        builtin = BUILTINS.get(name)
        if builtin is None:
            raise GoTemplateError(f'function "{name}" not defined')
        try:
            return builtin(*vals)
        except TypeError as exc:
            raise GoTemplateError(f"wrong number of args for {name}: {exc}") from None

    def and_or(self, st: _State, dot: Any, name: str, args: list[nodes.Operand], final: Any) -> Any:
        """``and``/``or``: the first operand that decides, evaluating no further (Go 1.18+)."""
        if not args and final is _UNSET:
            raise GoTemplateError(f"wrong number of args for {name}: want at least 1 got 0")
        result: Any = _UNSET
        for op in args:
            v = self.operand(st, dot, op)
            result = v
            if (name == "and" and not truth(v)) or (name == "or" and truth(v)):
                return v
        if final is not _UNSET:
            return final
        return result


def _range_items(value: Any) -> list[tuple[Any, Any]]:
    """What ``range`` iterates: (index or key, element) pairs."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [(i, i) for i in range(value)]
    if isinstance(value, (list, tuple)):
        return list(enumerate(value))
    if isinstance(value, dict):
        return [(k, value[k]) for k in sorted(value)]
    if value is None or value is NO_VALUE:
        return []
    raise GoTemplateError(f"range can't iterate over {fmt_v(value).decode(errors='replace')}")


def _field(v: Any, name: str) -> Any:
    if isinstance(v, dict):
        return v.get(name.encode(), v.get(name, NO_VALUE))
    if isinstance(v, GoStruct):
        if name not in v.fields:
            raise GoTemplateError(f"can't evaluate field {name} in type *{v.type_name}")
        return v.fields[name]
    if v is None or v is NO_VALUE:
        raise GoTemplateError(f"nil pointer evaluating interface {{}}.{name}")
    raise GoTemplateError(f"can't evaluate field {name} in type {type_name(v)}")


@contextmanager
def _deep_recursion(limit: int = 20_000) -> Iterator[None]:
    """Helper templates recurse once per trimmed character; give Python room for that."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def execute(tmpl: nodes.GoTemplate | str, data: Any, today: date | None = None) -> str:
    """Run a template on data (as built by :func:`~.ollama.ollama_data`) and return the text it writes."""
    if isinstance(tmpl, str):
        tmpl = parse(tmpl)
    runner = _Exec(tmpl, ollama_funcs(today or date.today()))
    with _deep_recursion():
        try:
            out = runner.run(data)
        except RecursionError:
            raise GoTemplateError("template recursion too deep for the Python evaluator") from None
        except (_Break, _Continue):
            raise GoTemplateError("break or continue outside range") from None
    return out.decode("utf-8", errors="replace")
