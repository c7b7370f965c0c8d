"""What the translator knows about a Jinja value: a constant, or a Go expression that computes it.

The translator (:func:`~.translation.translate`) runs the Jinja template once, at build time, with everything
it can know then (the special tokens, ``tools`` being absent, unset options) as constants, and
the conversation as *symbols*: ``messages`` is the Go expression ``$.Messages``, a message's
``role`` is ``$m.Role``, ``add_generation_prompt`` is ``$addGenerationPrompt``. Each class here
is one kind of such value; operations on them (:mod:`.logic`, :mod:`.operators`, :mod:`.access`,
:mod:`.calls`...) fold constants and build Go expressions for the rest; the helpers at the end are
what every one of those operations starts with.

Strings get special care because Go's ``text/template`` has no string functions: a string value
is a sequence of pieces, literal text or :class:`Atom` (a Go string expression, possibly with
Python-style ``strip`` operations that can only be *written* by a helper template, not
computed as a value) or :class:`Frag` (Go nodes that write text).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

import jinja2

from .goast import If, Node, Raise, Text


class Unsupported(Exception):
    """The template uses something this translator cannot express in Go for Ollama."""


class StaticRaise(Exception):
    """The Jinja raises here, whatever the conversation (``raise_exception`` or a runtime error)."""


class V:
    """Base of all translator values."""

    volatile: bool = False

    def exprs(self) -> list[str]:
        """Every Go expression this value reads (for scoping and volatility checks)."""
        return []

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        """This value with each Go expression replaced by ``fn(expr)``."""
        return self


@dataclass(frozen=True)
class Static(V):
    """A value known at build time (any Python value, Jinja ``Undefined`` included)."""

    value: Any

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Static):
            return False
        a, b = self.value, other.value
        if type(a) is not type(b):
            return False
        try:
            return bool(a == b) if not is_undefined(a) else True
        except Exception:  # noqa: BLE001 - exotic values: compare by identity
            return a is b

    def __hash__(self) -> int:
        return hash(type(self.value).__name__)


def is_undefined(v: Any) -> bool:
    return isinstance(v, jinja2.Undefined)


#: None in a strip charset tuple means Python's default: all Unicode whitespace.
Charset = str | None


@dataclass(frozen=True)
class Atom:
    """A Go string expression, with Python ``lstrip``/``rstrip`` operations still to apply.

    ``cut``, when set, is a Go condition: after writing this piece, a continuation ends
    (it is the final assistant message's text).
    """

    expr: str
    left: tuple[Charset, ...] = ()
    right: tuple[Charset, ...] = ()
    cut: str | None = None
    volatile: bool = False

    @property
    def plain(self) -> bool:
        return not self.left and not self.right


@dataclass(frozen=True)
class Frag:
    """Go nodes that write text (a month name chosen by ``if``, a macro's output, ...)."""

    nodes: tuple[Node, ...]


Piece = str | Atom | Frag


@dataclass(frozen=True)
class DStr(V):
    """A string built from pieces, at least one of them dynamic."""

    pieces: tuple[Piece, ...]

    @property
    def volatile(self) -> bool:  # type: ignore[override]  # a field on leaf values, derived from the parts here
        return any(isinstance(p, Atom) and p.volatile for p in self.pieces)

    def exprs(self) -> list[str]:
        out: list[str] = []
        for p in self.pieces:
            if isinstance(p, Atom):
                out.append(p.expr)
                if p.cut:
                    out.append(p.cut)
        return out

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        return DStr(tuple(dataclasses.replace(p, expr=fn(p.expr), cut=fn(p.cut) if p.cut else None)
                          if isinstance(p, Atom) else p for p in self.pieces))


def make_str(pieces: list[Piece] | tuple[Piece, ...]) -> V:
    """A string value from pieces: merges adjacent text, and is :class:`Static` when all is text."""
    merged: list[Piece] = []
    for p in pieces:
        if isinstance(p, str):
            if not p:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] = merged[-1] + p
                continue
        merged.append(p)
    texts = [p for p in merged if isinstance(p, str)]
    if len(texts) == len(merged):
        return Static("".join(texts))
    return DStr(tuple(merged))



@dataclass(frozen=True)
class DBool(V):
    """A Go condition. ``canon``: the expression yields a real ``bool`` (not just a truthy value).

    ``when_true``/``when_false`` are facts the translator may assume inside the branches of an
    ``if`` on this condition: ``("eq", expr, "user")`` or ``("ne", expr, "user")``.
    """

    expr: str
    canon: bool = True
    when_true: tuple[tuple[str, str, str], ...] = ()
    when_false: tuple[tuple[str, str, str], ...] = ()
    volatile: bool = False

    def exprs(self) -> list[str]:
        return [self.expr]

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        return DBool(fn(self.expr), self.canon, (), (), self.volatile)


@dataclass(frozen=True)
class DInt(V):
    """A Go int expression. ``byte_len``: it is ``len`` of a string, which Go counts in bytes."""

    expr: str
    byte_len: bool = False
    volatile: bool = False
    #: ``("len", list_expr, k)``: the value is ``len(list) + k``; ``("idx", list_expr, k)``: it is
    #: ``k`` plus the index of a loop over that list. Lets ``range()`` over them become a Go range.
    sym: tuple[str, str, int] | None = None
    #: The length of a stripped string: only its emptiness is known (``len(x.strip()) > 0``).
    emptiness_only: bool = False
    #: With ``sym`` of kind ``idx``: the Go expression of the loop index it counts from.
    sym_base: str = field(default="", compare=False, repr=False)

    def exprs(self) -> list[str]:
        return [self.expr]

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        return DInt(fn(self.expr), self.byte_len, self.volatile, None, self.emptiness_only)


@dataclass(frozen=True)
class DMsg(V):
    """One message (a Go ``*templateMessage``). ``last``: whether it is the conversation's last.

    ``kind``: which of Ollama's template structs it is, when not a message: ``tool``, ``function``,
    ``parameters``, ``properties`` (a tool definition and its parts), ``call``, ``call_function``
    and ``arguments`` (a tool call and its parts); see :mod:`.tools`.
    """

    expr: str
    last: V = Static(False)
    volatile: bool = False
    kind: str = "msg"

    def exprs(self) -> list[str]:
        return [self.expr, *self.last.exprs()]

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        return DMsg(fn(self.expr), self.last.map_exprs(fn), self.volatile, self.kind)

    def field_expr(self, name: str) -> str:
        if self.expr.startswith("$") and " " not in self.expr:
            return f"{self.expr}.{name}"
        return f"({self.expr}).{name}"


def argument_pieces(value: DMsg) -> list[Piece]:
    """What Jinja's ``{{ value }}`` writes for a tool-call argument that is not a string, in Go:
    a number as JSON writes it (``3``, ``2.5``: Python's ``str`` of the decoded number), a boolean
    as Python's ``True``/``False``; an object or a list, which Python writes as its ``repr``, is a
    Go error (no template the proof accepts writes one so)."""
    if value.kind == "number":
        return [Atom(f"json {value.expr}")]
    if value.kind == "bool":
        return [Frag((If(value.expr, [Text("True")], [Text("False")]),))]
    return [Frag((Raise("writing a tool-call argument that is an object or a list (Python writes its repr)"),))]


@dataclass(frozen=True)
class DList(V):
    """A list of messages (a Go slice). ``suffix``: it ends with the conversation's last message;
    ``reverse``: iterate it backwards (only iteration and indexing are possible then); ``item``:
    the :attr:`DMsg.kind` of its items (tools, tool calls)."""

    expr: str
    suffix: bool = True
    reverse: bool = False
    volatile: bool = False
    #: For a slice ``base[offset:...]`` of a list that ends the conversation: whether item ``i``
    #: is the last message is ``i + offset == len(base) - 1``.
    lastbase: tuple[str, str] | None = None
    item: str = "msg"

    def exprs(self) -> list[str]:
        return [self.expr] + ([self.lastbase[0], self.lastbase[1]] if self.lastbase else [])

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        lb = (fn(self.lastbase[0]), fn(self.lastbase[1])) if self.lastbase else None
        return DList(fn(self.expr), self.suffix, self.reverse, self.volatile, lb, self.item)


@dataclass(frozen=True)
class DRange(V):
    """``range(len(lst))`` (or backwards): the indexes of a runtime list."""

    lst: str
    reverse: bool = False
    offset: str = "0"

    def exprs(self) -> list[str]:
        return [self.lst, self.offset]


@dataclass(frozen=True, eq=False)
class DFiltered(V):
    """``messages | selectattr(...)``: a runtime list filtered by a predicate on each message.

    ``pred`` maps a message value to a boolean value; ``what`` describes it for messages.
    """

    base: DList
    pred: Callable[[V], V]
    what: str


@dataclass(frozen=True)
class Choice(V):
    """One of several values, chosen by Go conditions: the first whose condition holds
    (``None``: otherwise). The result of joining an ``if`` whose branches set a variable
    differently, or of ``a if c else b``."""

    options: tuple[tuple[str | None, V], ...]

    @property
    def volatile(self) -> bool:  # type: ignore[override]  # a field on leaf values, derived from the parts here
        return any(v.volatile for _, v in self.options)

    def exprs(self) -> list[str]:
        out: list[str] = []
        for cond, v in self.options:
            if cond:
                out.append(cond)
            out.extend(v.exprs())
        return out

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        return Choice(tuple((fn(c) if c else None, v.map_exprs(fn)) for c, v in self.options))


@dataclass(frozen=True)
class Tup(V):
    """A list of known length whose items may be dynamic (``content.split(...)`` and the like)."""

    items: tuple[V, ...]

    def exprs(self) -> list[str]:
        return [e for i in self.items for e in i.exprs()]

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        return Tup(tuple(i.map_exprs(fn) for i in self.items))


@dataclass(frozen=True)
class Rec(V):
    """A dict literal holding runtime values (``{'role': 'assistant', 'content': m.content}``)."""

    items: tuple[tuple[Any, V], ...]

    def get(self, key: Any) -> V | None:
        for k, v in self.items:
            if k == key:
                return v
        return None

    def exprs(self) -> list[str]:
        return [e for _, v in self.items for e in v.exprs()]

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        return Rec(tuple((k, v.map_exprs(fn)) for k, v in self.items))


@dataclass(frozen=True)
class Raising(V):
    """A value whose computation makes the Jinja raise (in one option of a :class:`Choice`)."""

    message: str


@dataclass(frozen=True)
class Poison(V):
    """A value the translator could not compute; harmless until something uses it."""

    reason: str


class Namespace:
    """A Jinja ``namespace()``: attributes that may be set from inside loops."""

    def __init__(self, attrs: dict[str, V]) -> None:
        self.attrs = attrs

    def snapshot(self) -> dict[str, V]:
        return dict(self.attrs)


@dataclass(frozen=True, eq=False)
class NSRef(V):
    """A reference to a :class:`Namespace` (compared by identity, as Jinja's are)."""

    ns: Namespace

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NSRef) and other.ns is self.ns

    def __hash__(self) -> int:
        return id(self.ns)


@dataclass(frozen=True, eq=False)
class MacroV(V):
    """A ``{% macro %}``: its node and the scope it was defined in; calls are inlined."""

    node: Any
    scope: Any


@dataclass(frozen=True, eq=False)
class Builtin(V):
    """A global function the translator implements itself (``raise_exception``, ``namespace``...)."""

    name: str


@dataclass
class StaticLoop:
    """The ``loop`` object of a loop the translator unrolls (its list is known at build time)."""

    index0: int
    length: int
    items: list[Any] = field(default_factory=list)

    @property
    def index(self) -> int:
        return self.index0 + 1

    @property
    def first(self) -> bool:
        return self.index0 == 0

    @property
    def last(self) -> bool:
        return self.index0 == self.length - 1

    @property
    def revindex(self) -> int:
        return self.length - self.index0

    @property
    def revindex0(self) -> int:
        return self.length - self.index0 - 1


@dataclass(frozen=True, eq=False)
class DLoop(V):
    """The ``loop`` object of a Go ``range``: index variable and the list ranged over."""

    index: str
    lst: DList
    reverse: bool = False


@dataclass(frozen=True)
class Char(V):
    """One character of message text (``content[0]``): Go cannot index characters, but its
    attributes are all undefined, which is what templates that probe for content parts test."""


@dataclass(frozen=True)
class Folded(V):
    """Message text through ``lower``/``upper``: only tested for containing a constant."""

    base: V
    how: str


@dataclass(frozen=True)
class Parity(V):
    """``n % 2`` of a runtime number: only compared with 0 or 1."""

    expr: str

    def exprs(self) -> list[str]:
        return [self.expr]

    def map_exprs(self, fn: Callable[[str], str]) -> V:
        return Parity(fn(self.expr))


def dint(expr: str, sym: tuple[str, str, int], base: str) -> DInt:
    """A :class:`DInt` with a symbolic form (``DInt.sym``) and the Go expression it counts from."""
    return DInt(expr, sym=sym, sym_base=base)


def first_raising(*values: V) -> Raising | None:
    """An operand whose computation raises in the Jinja: the result raises too."""
    return next((v for v in values if isinstance(v, Raising)), None)


def no_poison(*values: V) -> None:
    """Refuse, with its reason, an operand the translator could not compute."""
    for v in values:
        if isinstance(v, Poison):
            raise Unsupported(v.reason)


def check_operands(*values: V) -> Raising | None:
    """What every operation checks first: no poisoned operand (refused), and the one that raises, if any."""
    no_poison(*values)
    return first_raising(*values)


def raise_static(msg: str) -> Any:
    """Raise :class:`StaticRaise` (in an expression)."""
    raise StaticRaise(msg)


def compute_static(fn: Callable[[], Any]) -> Static:
    """Compute a constant with Jinja's semantics; a Jinja runtime error is the template raising."""
    try:
        return Static(fn())
    except (Unsupported, StaticRaise):
        raise
    except jinja2.exceptions.TemplateError as exc:
        raise StaticRaise(str(exc) or type(exc).__name__) from exc
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError, OverflowError) as exc:
        raise StaticRaise(f"{type(exc).__name__}: {exc}") from exc


def as_value(x: Any) -> V:
    """A translator value for a loop item, which may be a value already or a Python constant."""
    return x if isinstance(x, V) else Static(x)


#: What Go can hold in one variable, by value class (a :class:`Static` goes by its Python type).
_KINDS: tuple[tuple[type, str], ...] = ((DStr, "str"), (DBool, "bool"), (DInt, "int"), (DList, "list"), (DMsg, "msg"))
_STATIC_KINDS: tuple[tuple[type, str], ...] = ((bool, "bool"), (int, "int"), (str, "str"))


def value_kind(v: V) -> str:
    """The kind of Go value ``v`` would be: str, bool, int, list, msg, or other (none Go holds)."""
    if isinstance(v, Static):
        return next((k for t, k in _STATIC_KINDS if isinstance(v.value, t)), "other")
    return next((k for t, k in _KINDS if isinstance(v, t)), "other")


def is_stringy(v: V) -> bool:
    """A string, constant or not."""
    return isinstance(v, DStr) or (isinstance(v, Static) and isinstance(v.value, str))


def is_boolish(v: V) -> bool:
    """A boolean, constant or not."""
    return isinstance(v, DBool) or (isinstance(v, Static) and isinstance(v.value, bool))


def all_static(values: Sequence[V]) -> TypeGuard[Sequence[Static]]:
    """Whether every value is known at build time (so Jinja can compute with them)."""
    return all(isinstance(v, Static) for v in values)


def all_static_kwargs(kwargs: Mapping[str, V]) -> TypeGuard[Mapping[str, Static]]:
    """Whether every keyword argument is known at build time."""
    return all(isinstance(v, Static) for v in kwargs.values())
