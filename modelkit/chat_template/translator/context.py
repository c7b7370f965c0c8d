"""What a translation knows while it runs, and the operations on values every part of it needs.

:class:`Context` is the base of the translator (:class:`~.statements.Translator` adds the
statements, :mod:`.branches` and :mod:`.loops` the ``if`` and ``for``, :mod:`.expressions` and
:mod:`.calls` the expressions): the Go tree being built and its frames, fresh Go variable
names, facts that hold in the current branch (inside ``if message.role == 'user'``, the role
*is* ``'user'``), assumptions made and features left out; and the operations every part needs
on :mod:`.values`: truth and boolean logic with Python's semantics, choices between values,
strings (concatenation, ``strip``, writing them out), and a few list helpers that write small
Go loops (counting, finding, choosing a list).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.nodes as jn
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import goexpr as gx
from .goast import Break, Call, CutPoint, If, Node, Out, Raise, Range, Set, Text, go_string, if_chain
from .values import (
    Atom,
    Builtin,
    Charset,
    Choice,
    DBool,
    DFiltered,
    DInt,
    DList,
    DLoop,
    DMsg,
    DStr,
    Frag,
    MacroV,
    Namespace,
    NSRef,
    Parity,
    Piece,
    Poison,
    Raising,
    Rec,
    Static,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    argument_pieces,
    check_operands,
    compute_static,
    is_boolish,
    make_str,
    raise_static,
    value_kind,
)

if TYPE_CHECKING:
    from .loops import Storage


ADD_GEN_VAR = "$addGenerationPrompt"
MESSAGES = "$.Messages"

#: The Jinja variables that switch thinking on or off, and Ollama's ``think`` option in the data
#: of ``template.Execute`` (template/template.go ``Values``): ``.IsThinkSet`` says whether the
#: request set it at all, ``.Think`` whether it asks for thinking.
THINK_SWITCHES = ("enable_thinking",)
THINK_SET = "$.IsThinkSet"
THINK = "$.Think"
FactKey = tuple[str, str]  # ("bool" | "str" | "ne", a Go expression): what a branch made known

#: Message keys a plain chat message has; every other key is absent (tool calls, reasoning...).
MESSAGE_FIELDS = {"role": "Role", "content": "Content"}

#: Message keys that carry tool calls or reasoning, which the TEMPLATE does not render.
IGNORED_MESSAGE_KEYS = {
    "tool_calls": "tool calls in assistant messages", "reasoning_content": "reasoning of past turns",
    "thinking": "reasoning of past turns", "reasoning": "reasoning of past turns",
    "tool_call_id": "tool call ids", "name": "message names", "tool_name": "tool names",
}


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


class Context:
    """The translator's state and value operations (see the module docstring)."""

    env: ImmutableSandboxedEnvironment
    jctx: Any
    eval_ctx: Any
    statics: dict[str, Any]
    out: list[Node]
    frames: list[list[Node]]
    defines: dict[str, list[Node]]
    preludes: dict[str, list[Node]]
    used_names: set[str]
    name_counts: dict[str, int]
    var_depth: dict[str, int]
    mutable_vars: set[str]
    facts: list[dict[FactKey, Any]]
    assumptions: dict[str, None]
    ignored: dict[str, None]
    untranslated: dict[str, None]
    namespaces: list[NSInfo]
    storages: dict[tuple[int, str], Storage]
    loops: list[LoopCtx]
    dyn_depth: int
    macro_depth: int
    follow_think: bool
    reads_think: dict[str, None]

    def fresh(self, hint: str) -> str:
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
        self.var_depth[name] = next((k + 1 for k, f in enumerate(self.frames) if f is target), len(self.frames))
        if mutable:
            self.mutable_vars.add(name)
        return name

    def emit(self, *nodes: Node) -> None:
        self.out.extend(nodes)

    @contextmanager
    def capture(self) -> Iterator[list[Node]]:
        saved = self.out
        self.out = []
        try:
            yield self.out
        finally:
            self.out = saved

    def prelude(self, name: str) -> str:
        if name not in self.preludes:
            if name == ADD_GEN_VAR:
                self.preludes[name] = [
                    Set(ADD_GEN_VAR, "true", declare=True),
                    Range("", "$m", MESSAGES, [Set(ADD_GEN_VAR, 'ne $m.Role "assistant"')])]
            elif name == gx.TODAY_VAR:
                self.preludes[name] = [gx.today_prelude()]
        return name

    def assume(self, text: str) -> None:
        self.assumptions[text] = None

    def ignore(self, text: str) -> None:
        self.ignored[text] = None

    def volatile_expr(self, e: str) -> bool:
        return any(v in self.mutable_vars for v in re.findall(r"\$[A-Za-z_][A-Za-z0-9_]*", e))

    def copy_if_volatile(self, e: str, hint: str, into: list[Node] | None = None) -> str:
        """``e``, or a fresh Go variable set to it now (in ``into``, else the output) when it reads
        variables that change later: Jinja binds values, Go expressions read variables."""
        if not self.volatile_expr(e):
            return e
        var = self.declare(hint)
        (self.out if into is None else into).append(Set(var, e))
        return var

    def fact(self, expr: FactKey) -> Any | None:
        for f in reversed(self.facts):
            if expr in f:
                return f[expr]
        return None

    @contextmanager
    def assuming(self, facts: dict[FactKey, Any]) -> Iterator[None]:
        self.facts.append(facts)
        try:
            yield
        finally:
            self.facts.pop()

    def branch_facts(self, cond: DBool, truth: bool) -> dict[FactKey, Any]:
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
              when_false: tuple[Any, ...] = ()) -> V:
        known = self.fact(("bool", expr))
        if known is not None:
            return Static(bool(known))
        return DBool(expr, canon, when_true, when_false, self.volatile_expr(expr))

    def atom(self, expr: str, cut: str | None = None) -> V:
        known = self.fact(("str", expr))
        if known is not None and cut is None:
            return Static(known)
        return DStr((Atom(expr, cut=cut, volatile=self.volatile_expr(expr)),))

    def undefined(self, name: str) -> Static:
        return Static(self.env.undefined(name=name))

    def think_switch(self, name: str) -> V:
        """A thinking switch as Ollama's ``think`` sets it: undefined when the request leaves it
        unset, else the request's ``true`` or ``false``."""
        self.reads_think[name] = None
        if not self.follow_think:
            return self.undefined(name)
        chosen = Choice(((THINK, Static(True)), (None, Static(False))))
        return Choice(((THINK_SET, chosen), (None, self.undefined(name))))

    def go_value(self, v: V) -> str | None:
        """A Go expression with this value (``None`` when there is none)."""
        if isinstance(v, Static):
            x = v.value
            if isinstance(x, bool):
                return "true" if x else "false"
            if isinstance(x, int):
                return str(x)
            if isinstance(x, str):
                return go_string(x)
            return None
        if isinstance(v, DStr):
            args: list[str] = []
            for p in v.pieces:
                if isinstance(p, str):
                    args.append(go_string(p))
                elif isinstance(p, Atom) and p.plain and p.cut is None:
                    args.append(gx.arg(p.expr))
                else:
                    return None
            if len(args) == 1:
                return v.pieces[0].expr if isinstance(v.pieces[0], Atom) else args[0]
            return "print " + " ".join(args)
        if isinstance(v, DBool):
            return v.expr if v.canon else f"not (not {gx.arg(v.expr)})"
        if isinstance(v, (DInt, DMsg)):
            return v.expr
        if isinstance(v, DList) and not v.reverse:
            return v.expr
        return None

    def str_expr(self, v: V) -> str:
        """A Go string expression for a string value, or :class:`Unsupported`."""
        if isinstance(v, Static) and isinstance(v.value, str):
            return go_string(v.value)
        if isinstance(v, DStr):
            args: list[str] = []
            for p in v.pieces:
                if isinstance(p, str):
                    args.append(go_string(p))
                elif isinstance(p, Atom) and p.plain:
                    args.append(gx.arg(p.expr))
                else:
                    raise Unsupported("a trimmed or computed string used as a value (Go can only write it)")
            if len(args) == 1:
                return args[0]
            return "print " + " ".join(args)
        raise Unsupported(f"a {type(v).__name__} used as a string")

    def truth(self, v: V) -> V:
        if isinstance(v, Static):
            try:
                return Static(bool(v.value))
            except Exception as exc:  # the template's own error, raised where the template raises it
                raise StaticRaise(str(exc)) from exc
        if isinstance(v, DBool):
            return v
        if isinstance(v, DInt):
            return self.dbool(v.expr, canon=False)
        if isinstance(v, DStr):
            if any(isinstance(p, str) and p for p in v.pieces):
                return Static(True)
            exprs: list[str] = []
            for p in v.pieces:
                if isinstance(p, Atom) and p.plain:
                    exprs.append(p.expr)
                elif isinstance(p, Atom):
                    if any(cs is not None and cs.strip() for cs in p.left + p.right):
                        raise Unsupported("testing whether a string stripped of non-space characters is empty")
                    self.assume("message text is never made of whitespace only")
                    exprs.append(p.expr)
                else:
                    raise Unsupported("testing whether generated text is empty")
            if len(exprs) == 1:
                return self.dbool(exprs[0], canon=False)
            return self.dbool("or " + " ".join(gx.arg(e) for e in exprs), canon=False)
        if isinstance(v, (DMsg, NSRef, MacroV, Builtin)):
            return Static(True)
        if isinstance(v, Rec):
            return Static(bool(v.items))
        if isinstance(v, DList):
            return self.dbool(v.expr, canon=False)
        if isinstance(v, DFiltered):
            return self.dbool(self.count(v).expr, canon=False)
        if isinstance(v, Tup):
            return Static(bool(v.items))
        if isinstance(v, DLoop):
            return Static(True)
        if isinstance(v, Choice):
            return self.dist(v, lambda x: self.truth(x), as_bool=True)
        if isinstance(v, Poison):
            raise Unsupported(v.reason)
        if isinstance(v, Parity):
            return self.not_(self.dbool(gx.is_even(v.expr)))
        if isinstance(v, Raising):
            return Static(False)  # only reached where the Jinja raises: outside the contract
        raise Unsupported(f"truth of {type(v).__name__}")

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

    def dist(self, v: Choice, fn: Callable[[V], V], as_bool: bool = False) -> V:
        """Apply an operation to each option of a choice (knowing, in each, which option holds)."""
        out: list[tuple[str | None, V]] = []
        earlier: dict[Any, Any] = {}
        for cond, x in self.options(v):
            facts = dict(earlier)
            if cond is not None:
                facts[("bool", cond)] = True
            with self.assuming(facts):
                try:
                    r = fn(x)
                except StaticRaise as exc:
                    r = Raising(str(exc))
            out.append((cond, r))
            if cond is not None:
                earlier[("bool", cond)] = False
        return self.choice_bool(out) if as_bool else self.make_choice(out)

    def binary(self, a: V, b: V, const: Callable[[Any, Any], Any], again: Callable[[V, V], V],
               as_bool: bool = False) -> V | None:
        """What every binary operation does first, or None when the operands need the operation itself.

        A poisoned operand is refused and a raising one makes the result raise; two constants are
        computed with Jinja's semantics (``const``); a choice has the operation (``again``) applied
        to each of its options (``as_bool``: the result is a boolean).
        """
        raising = check_operands(a, b)
        if raising is not None:
            return raising
        if isinstance(a, Static) and isinstance(b, Static):
            return compute_static(lambda: const(a.value, b.value))
        if isinstance(a, Choice):
            return self.dist(a, lambda x: again(x, b), as_bool=as_bool)
        if isinstance(b, Choice):
            return self.dist(b, lambda x: again(a, x), as_bool=as_bool)
        return None

    def choice_bool(self, options: list[tuple[str | None, V]]) -> V:
        """A boolean that is ``options[k]`` for the first condition that holds."""
        acc: V = Static(False)
        for cond, x in reversed(options):
            x = self.truth(x)
            if cond is None:
                acc = x
                continue
            acc = self.ite(cond, x, acc)
        return acc

    def ite(self, c: str, x: V, y: V) -> V:
        """``x if c else y`` for booleans, with the facts each outcome implies."""
        ct, cf = (("bool", c, True),), (("bool", c, False),)
        if isinstance(x, Static) and isinstance(y, Static):
            if x.value == y.value:
                return Static(bool(x.value))
            if x.value:
                return self.dbool(c, canon=False, when_true=ct, when_false=cf)
            return self.dbool(f"not {gx.arg(c)}", when_true=cf, when_false=ct)
        if isinstance(x, Static):
            assert isinstance(y, DBool)
            if x.value:
                return self.dbool(f"or {gx.arg(c)} {gx.arg(y.expr)}", canon=False, when_false=cf + y.when_false)
            return self.dbool(f"and (not {gx.arg(c)}) {gx.arg(y.expr)}", canon=False, when_true=cf + y.when_true)
        assert isinstance(x, DBool)
        if isinstance(y, Static):
            if y.value:
                return self.dbool(f"or (not {gx.arg(c)}) {gx.arg(x.expr)}", canon=False, when_false=ct + x.when_false)
            return self.dbool(f"and {gx.arg(c)} {gx.arg(x.expr)}", canon=False, when_true=ct + x.when_true)
        assert isinstance(y, DBool)
        return self.dbool(f"or (and {gx.arg(c)} {gx.arg(x.expr)}) (and (not {gx.arg(c)}) {gx.arg(y.expr)})",
                          canon=False)

    def canon(self, v: V) -> str:
        if isinstance(v, DBool):
            return v.expr if v.canon else f"not (not {gx.arg(v.expr)})"
        if isinstance(v, Static):
            return "true" if v.value else "false"
        raise Unsupported("boolean of a non-boolean")

    def not_(self, v: V) -> V:
        v = self.truth(v)
        if isinstance(v, Static):
            return Static(not v.value)
        assert isinstance(v, DBool)
        inner = v.expr
        if inner.startswith("not ") and _is_single_arg(inner[4:]):
            rest = inner[4:]
            return self.dbool(rest.strip("()") if rest.startswith("(") and gx.balanced(rest) else rest,
                              canon=False, when_true=v.when_false, when_false=v.when_true)
        return self.dbool(f"not {gx.arg(inner)}", canon=True, when_true=v.when_false, when_false=v.when_true)

    def and_(self, a: V, b_thunk: Callable[[], V]) -> V:
        ta = self.truth(a)
        if isinstance(ta, Static):
            return b_thunk() if ta.value else a
        assert isinstance(ta, DBool)
        with self.assuming(self.branch_facts(ta, True)):
            b = b_thunk()
        tb = self.truth(b)
        if is_boolish(a) and is_boolish(b):
            if isinstance(tb, Static):
                return ta if tb.value else Static(False)
            assert isinstance(tb, DBool)
            return self.dbool(f"and {gx.arg(ta.expr)} {gx.arg(tb.expr)}", canon=ta.canon and tb.canon,
                              when_true=ta.when_true + tb.when_true)
        return self.make_choice([(ta.expr, b), (None, a)])

    def or_(self, a: V, b_thunk: Callable[[], V]) -> V:
        if isinstance(a, (DStr, DList)):
            b = b_thunk()
            if isinstance(b, Static) and (b.value == "" if isinstance(a, DStr) else b.value in ([], ())):
                return a  # "x or ''" is x when x is a string, "x or []" when it is a list
            ta = self.truth(a)
            if isinstance(ta, Static):
                return a if ta.value else b
            return self.make_choice([(ta.expr, a), (None, b)])
        ta = self.truth(a)
        if isinstance(ta, Static):
            return a if ta.value else b_thunk()
        assert isinstance(ta, DBool)
        with self.assuming(self.branch_facts(ta, False)):
            b = b_thunk()
        tb = self.truth(b)
        if is_boolish(a) and is_boolish(b):
            if isinstance(tb, Static):
                return Static(True) if tb.value else ta
            assert isinstance(tb, DBool)
            return self.dbool(f"or {gx.arg(ta.expr)} {gx.arg(tb.expr)}", canon=ta.canon and tb.canon,
                              when_false=ta.when_false + tb.when_false)
        return self.make_choice([(ta.expr, a), (None, b)])

    def make_choice(self, options: list[tuple[str | None, V]]) -> V:
        flat: list[tuple[str | None, V]] = []
        for c, v in options:
            flat.append((c, v))
            if c is None:
                break
        if all(v == flat[0][1] for _, v in flat) and flat[-1][0] is None:
            return flat[0][1]
        if flat[-1][0] is not None:
            flat.append((None, self.undefined("?")))
        return Choice(tuple(flat))

    def pieces(self, v: V) -> list[Piece]:
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
            return [Frag(tuple(self.choice_nodes(v)))]
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

    def choice_nodes(self, v: Choice) -> list[Node]:
        """Go nodes that write whichever option of the choice holds."""
        branches: list[tuple[str | None, list[Node]]] = []
        for cond, x in self.options(v):
            with self.capture() as body:
                self.write(x)
            branches.append((cond, body))
        return if_chain(branches)

    def concat(self, a: V, b: V) -> V:
        return make_str(self.pieces(a) + self.pieces(b))

    def write(self, v: V) -> None:
        """Emit the nodes that write ``str(v)``."""
        for p in self.pieces(v):
            self.write_piece(p)

    def write_piece(self, p: Piece) -> None:
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

    def strip(self, v: V, chars: Charset, left: bool, right: bool) -> V:
        if isinstance(v, Static):
            s = str(v.value) if not isinstance(v.value, str) else v.value
            if left and right:
                return Static(s.strip(chars))
            return Static(s.lstrip(chars) if left else s.rstrip(chars))
        if isinstance(v, Choice):
            return self.dist(v, lambda x: self.strip(x, chars, left, right))
        if not isinstance(v, DStr):
            raise Unsupported(f"strip of a {type(v).__name__}")
        pieces = list(v.pieces)
        cs = gx.PY_WHITESPACE if chars is None else chars
        if left:
            pieces = self._strip_side(pieces, chars, cs, True)
        if right:
            pieces = self._strip_side(pieces[::-1], chars, cs, False)[::-1]
        return make_str(pieces)

    def _strip_side(self, pieces: list[Piece], chars: Charset, cs: str, left: bool) -> list[Piece]:
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

    def elem_last(self, lst: DList, i: str) -> V:
        """Whether item ``i`` (a Go int expression) of a list is the conversation's last message."""
        if lst.lastbase:
            base, off = lst.lastbase
            return self.dbool(f"eq (len (slice {gx.arg(base)} {gx.arg(gx.add(gx.int_or(off), gx.int_or(i)))})) 1")
        if lst.suffix:
            return self.dbool(f"eq (len (slice {gx.arg(lst.expr)} {gx.arg(i)})) 1")
        return Static(False)

    def flatten(self, v: Choice) -> list[tuple[str | None, V]]:
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

    def materialize(self, v: Choice, hint: str) -> V:
        """A choice between values Go can hold, as one Go variable set by an ``if`` chain."""
        options = self.flatten(v)
        kinds = {value_kind(x) for _, x in options}
        exprs = [e for e in (self.go_value(x) for _, x in options) if e is not None]
        if len(kinds) != 1 or len(exprs) != len(options) or kinds == {"other"}:
            raise Unsupported(f"a runtime choice between values of different kinds ({hint})")
        kind = kinds.pop()
        var = self.declare(hint)
        self.emit(*if_chain((cond, [Set(var, e)]) for (cond, _), e in zip(options, exprs)))
        if kind == "list":
            lbs = {x.lastbase for _, x in options if isinstance(x, DList)}
            items = {x.item for _, x in options if isinstance(x, DList)}
            if len(items) != 1:
                raise Unsupported(f"a runtime choice between lists of different things ({hint})")
            return DList(var, suffix=all(x.suffix for _, x in options if isinstance(x, DList)),
                         lastbase=lbs.pop() if len(lbs) == 1 else None, item=items.pop())
        if kind == "str":
            return DStr((Atom(var),))
        if kind == "bool":
            return DBool(var)
        if kind == "int":
            return DInt(var)
        kinds_of = {x.kind for _, x in options if isinstance(x, DMsg)}
        if len(kinds_of) != 1:
            raise Unsupported(f"a runtime choice between messages and tool data ({hint})")
        return DMsg(var, last=Poison("the last-message test of a message chosen at runtime"), kind=kinds_of.pop())

    def count(self, f: DFiltered) -> DInt:
        """Emit a loop counting the messages a filter keeps; the count as a value."""
        var = self.declare("count")
        elem = self.fresh("m")
        i = self.fresh("i")
        L = gx.arg(f.base.expr)
        t = self.truth(f.pred(DMsg(elem, last=self.dbool(f"eq (len (slice {L} {i})) 1") if f.base.suffix
                                   else Static(False))))
        inc = Set(var, str(gx.add(var, 1)))
        body: list[Node] = [inc] if isinstance(t, Static) and t.value else [] if isinstance(t, Static) else \
            [If(t.expr, [inc])]
        self.emit(Set(var, "0"), Range(i, elem, f.base.expr, body))
        return DInt(var)

    def find(self, f: DFiltered, last: bool) -> V:
        """Emit a loop finding the first (or last) message a filter keeps."""
        found = self.declare("found", init="false")
        var = self.declare("message")
        is_last = self.declare("is_last", init="false")
        elem = self.fresh("m")
        i = self.fresh("i")
        L = gx.arg(f.base.expr)
        last_expr = f"eq (len (slice {L} {i})) 1" if f.base.suffix else "false"
        t = self.truth(f.pred(DMsg(elem, last=self.dbool(last_expr))))
        take: list[Node] = [Set(var, elem), Set(is_last, last_expr), Set(found, "true")]
        if not last:
            take.append(Break())
        body: list[Node] = take if isinstance(t, Static) and t.value else [] if isinstance(t, Static) else \
            [If(t.expr, take)]
        self.emit(Set(found, "false"), Range(i, elem, f.base.expr, body))
        msg = DMsg(var, last=DBool(is_last))
        return Choice(((found, msg), (None, self.undefined("message"))))

    # Implemented by the other parts of the translator (expressions.py, calls.py, statements.py).

    def ev(self, node: jn.Node, scope: Scope) -> V:
        raise NotImplementedError

    def ev_Name(self, node: jn.Name, scope: Scope) -> V:
        raise NotImplementedError

    def assign(self, target: jn.Node, value: V, scope: Scope) -> None:
        raise NotImplementedError

    def check_storable(self, v: V, frame_depth: int | None = None) -> None:
        raise NotImplementedError

    def ns_info(self, ns: Namespace) -> NSInfo:
        raise NotImplementedError

    def stmts(self, nodes: Sequence[jn.Node], scope: Scope) -> bool:
        raise NotImplementedError

    def stable(self, value: V, hint: str) -> V:
        raise NotImplementedError

    def nodes_value(self, nodes: list[Node]) -> V:
        raise NotImplementedError

    def getattr(self, obj: V, attr: str) -> V:
        raise NotImplementedError

    def getitem(self, obj: V, key: V) -> V:
        raise NotImplementedError

    def list_index(self, lst: DList, key: V) -> V:
        raise NotImplementedError

    def eq(self, a: V, b: V) -> V:
        raise NotImplementedError

    def compare(self, op: str, a: V, b: V) -> V:
        raise NotImplementedError

    def contains(self, container: V, item: V) -> V:
        raise NotImplementedError

    def assume_absent(self, needle: str) -> V:
        raise NotImplementedError

    def call(self, callee: V, args: list[V], kwargs: dict[str, V]) -> V:
        raise NotImplementedError

    def method(self, obj: V, name: str, args: list[V], kwargs: dict[str, V]) -> V:
        raise NotImplementedError

    def filter(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V:
        raise NotImplementedError

    def filter_node(self, node: jn.Filter, value: V, scope: Scope) -> V:
        raise NotImplementedError

    def test(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V:
        raise NotImplementedError


def _is_single_arg(e: str) -> bool:
    e = e.strip()
    return (e.startswith("(") and gx.balanced(e)) or " " not in e
