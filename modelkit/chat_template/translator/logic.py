"""Truth and boolean logic on translator values, with Python's semantics; and tests over filtered messages.

Jinja's ``if``, ``and``, ``or`` and ``not`` follow Python's truth: ``x or y`` is ``x`` itself
when it is true, not ``True``. On constants that is computed; on runtime values a boolean
becomes a Go condition that remembers what each outcome proves (``when_true``/``when_false``,
read into :mod:`.facts` by the branches), and ``x or y`` on other values a choice. Whether a
filtered list of messages is empty, or which message it starts or ends with, needs a Go loop
over the messages (:func:`count`, :func:`find`), as the filter's test may need the truth of
anything.
"""

from __future__ import annotations

from collections.abc import Callable

from . import goexpr as gx
from .choices import each, make_choice
from .goast import Break, If, Node, Range, Set
from .state import State
from .values import (
    Atom,
    Builtin,
    Choice,
    DBool,
    DFiltered,
    DInt,
    DList,
    DLoop,
    DMsg,
    DStr,
    MacroV,
    NSRef,
    Parity,
    Poison,
    Raising,
    Rec,
    Static,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    is_boolish,
)


def truth(st: State, v: V) -> Static | DBool:
    """``bool(v)``: a constant, or a Go condition (:class:`~.values.DBool`)."""
    if isinstance(v, Static):
        try:
            return Static(bool(v.value))
        except Exception as exc:  # the template's own error, raised where the template raises it
            raise StaticRaise(str(exc)) from exc
    if isinstance(v, DBool):
        return v
    if isinstance(v, DInt):
        return st.facts.dbool(v.expr, canon=False)
    if isinstance(v, DStr):
        return _string_truth(st, v)
    if isinstance(v, (DMsg, NSRef, MacroV, Builtin)):
        return Static(True)
    if isinstance(v, Rec):
        return Static(bool(v.items))
    if isinstance(v, DList):
        return st.facts.dbool(v.expr, canon=False)
    if isinstance(v, DFiltered):
        return st.facts.dbool(count(st, v).expr, canon=False)
    if isinstance(v, Tup):
        return Static(bool(v.items))
    if isinstance(v, DLoop):
        return Static(True)
    if isinstance(v, Choice):
        return dist_bool(st, v, lambda x: truth(st, x))
    if isinstance(v, Poison):
        raise Unsupported(v.reason)
    if isinstance(v, Parity):
        return not_(st, st.facts.dbool(gx.is_even(v.expr)))
    if isinstance(v, Raising):
        return Static(False)  # only reached where the Jinja raises: outside the contract
    raise Unsupported(f"truth of {type(v).__name__}")


def _string_truth(st: State, v: DStr) -> Static | DBool:
    """Whether a string is non-empty: literal text decides; Go strings are tested; a trimmed one only
    under the assumption that message text is never whitespace only."""
    if any(isinstance(p, str) and p for p in v.pieces):
        return Static(True)
    exprs: list[str] = []
    for p in v.pieces:
        if isinstance(p, Atom) and p.plain:
            exprs.append(p.expr)
        elif isinstance(p, Atom):
            if any(cs is not None and cs.strip() for cs in p.left + p.right):
                raise Unsupported("testing whether a string stripped of non-space characters is empty")
            st.report.assume("message text is never made of whitespace only")
            exprs.append(p.expr)
        else:
            raise Unsupported("testing whether generated text is empty")
    if len(exprs) == 1:
        return st.facts.dbool(exprs[0], canon=False)
    return st.facts.dbool("or " + " ".join(gx.arg(e) for e in exprs), canon=False)


def dist_bool(st: State, v: Choice, fn: Callable[[V], V]) -> Static | DBool:
    """Apply a boolean operation to each option of a choice: one boolean, true where the option that
    holds gives true."""
    return choice_bool(st, each(st, v, fn))


def choice_bool(st: State, options: list[tuple[str | None, V]]) -> Static | DBool:
    """A boolean that is ``options[k]`` for the first condition that holds."""
    acc: Static | DBool = Static(False)
    for cond, x in reversed(options):
        tx = truth(st, x)
        if cond is None:
            acc = tx
            continue
        acc = ite(st, cond, tx, acc)
    return acc


def ite(st: State, c: str, x: Static | DBool, y: Static | DBool) -> Static | DBool:
    """``x if c else y`` for booleans, with the facts each outcome implies."""
    dbool = st.facts.dbool
    ct, cf = (("bool", c, True),), (("bool", c, False),)
    if isinstance(x, Static) and isinstance(y, Static):
        if x.value == y.value:
            return Static(bool(x.value))
        if x.value:
            return dbool(c, canon=False, when_true=ct, when_false=cf)
        return dbool(f"not {gx.arg(c)}", when_true=cf, when_false=ct)
    if isinstance(x, Static):
        assert isinstance(y, DBool)
        if x.value:
            return dbool(f"or {gx.arg(c)} {gx.arg(y.expr)}", canon=False, when_false=cf + y.when_false)
        return dbool(f"and (not {gx.arg(c)}) {gx.arg(y.expr)}", canon=False, when_true=cf + y.when_true)
    if isinstance(y, Static):
        if y.value:
            return dbool(f"or (not {gx.arg(c)}) {gx.arg(x.expr)}", canon=False, when_false=ct + x.when_false)
        return dbool(f"and {gx.arg(c)} {gx.arg(x.expr)}", canon=False, when_true=ct + x.when_true)
    return dbool(f"or (and {gx.arg(c)} {gx.arg(x.expr)}) (and (not {gx.arg(c)}) {gx.arg(y.expr)})", canon=False)


def canon(v: V) -> str:
    """A Go expression that is ``true`` or ``false`` (Go's ``and``/``or`` give operands, as Python's do)."""
    if isinstance(v, DBool):
        return v.expr if v.canon else f"not (not {gx.arg(v.expr)})"
    if isinstance(v, Static):
        return "true" if v.value else "false"
    raise Unsupported("boolean of a non-boolean")


def not_(st: State, v: V) -> Static | DBool:
    """``not v``, with the facts of each outcome swapped."""
    t = truth(st, v)
    if isinstance(t, Static):
        return Static(not t.value)
    inner = t.expr
    if inner.startswith("not ") and _is_single_arg(inner[4:]):
        rest = inner[4:]
        return st.facts.dbool(rest.strip("()") if rest.startswith("(") and gx.balanced(rest) else rest,
                              canon=False, when_true=t.when_false, when_false=t.when_true)
    return st.facts.dbool(f"not {gx.arg(inner)}", canon=True, when_true=t.when_false, when_false=t.when_true)


def and_(st: State, a: V, b_thunk: Callable[[], V]) -> V:
    """``a and b``: ``b`` is evaluated knowing ``a`` holds (and only where it can)."""
    ta = truth(st, a)
    if isinstance(ta, Static):
        return b_thunk() if ta.value else a
    with st.facts.assuming(st.facts.branch_facts(ta, True)):
        b = b_thunk()
    tb = truth(st, b)
    if is_boolish(a) and is_boolish(b):
        if isinstance(tb, Static):
            return ta if tb.value else Static(False)
        return st.facts.dbool(f"and {gx.arg(ta.expr)} {gx.arg(tb.expr)}", canon=ta.canon and tb.canon,
                              when_true=ta.when_true + tb.when_true)
    return make_choice(st, [(ta.expr, b), (None, a)])


def or_(st: State, a: V, b_thunk: Callable[[], V]) -> V:
    """``a or b``: ``b`` is evaluated knowing ``a`` does not hold."""
    if isinstance(a, (DStr, DList)):
        b = b_thunk()
        if isinstance(b, Static) and (b.value == "" if isinstance(a, DStr) else b.value in ([], ())):
            return a  # "x or ''" is x when x is a string, "x or []" when it is a list
        ta = truth(st, a)
        if isinstance(ta, Static):
            return a if ta.value else b
        return make_choice(st, [(ta.expr, a), (None, b)])
    ta = truth(st, a)
    if isinstance(ta, Static):
        return a if ta.value else b_thunk()
    with st.facts.assuming(st.facts.branch_facts(ta, False)):
        b = b_thunk()
    tb = truth(st, b)
    if is_boolish(a) and is_boolish(b):
        if isinstance(tb, Static):
            return Static(True) if tb.value else ta
        return st.facts.dbool(f"or {gx.arg(ta.expr)} {gx.arg(tb.expr)}", canon=ta.canon and tb.canon,
                              when_false=ta.when_false + tb.when_false)
    return make_choice(st, [(ta.expr, a), (None, b)])


def and_value(st: State, a: V, b: V) -> V:
    """``a and b`` where ``b`` is already evaluated (a chained comparison)."""
    return and_(st, a, lambda: b)


def or_value(st: State, a: V, b: V) -> V:
    """``a or b`` where ``b`` is already evaluated (``x in (a, b)``)."""
    return or_(st, a, lambda: b)


def elem_last(st: State, lst: DList, i: str) -> V:
    """Whether item ``i`` (a Go int expression) of a list is the conversation's last message."""
    if lst.lastbase:
        base, off = lst.lastbase
        return st.facts.dbool(f"eq (len (slice {gx.arg(base)} {gx.arg(gx.add(gx.int_or(off), gx.int_or(i)))})) 1")
    if lst.suffix:
        return st.facts.dbool(f"eq (len (slice {gx.arg(lst.expr)} {gx.arg(i)})) 1")
    return Static(False)


def count(st: State, f: DFiltered) -> DInt:
    """Emit a loop counting the messages a filter keeps; the count as a value."""
    out = st.emitter
    var = out.declare("count")
    elem = out.fresh("m")
    i = out.fresh("i")
    L = gx.arg(f.base.expr)
    t = truth(st, f.pred(DMsg(elem, last=st.facts.dbool(f"eq (len (slice {L} {i})) 1") if f.base.suffix
                              else Static(False))))
    inc = Set(var, str(gx.add(var, 1)))
    body: list[Node] = [inc] if isinstance(t, Static) and t.value else [] if isinstance(t, Static) else \
        [If(t.expr, [inc])]
    out.emit(Set(var, "0"), Range(i, elem, f.base.expr, body))
    return DInt(var)


def find(st: State, f: DFiltered, last: bool) -> V:
    """Emit a loop finding the first (or last) message a filter keeps."""
    out = st.emitter
    found = out.declare("found", init="false")
    var = out.declare("message")
    is_last = out.declare("is_last", init="false")
    elem = out.fresh("m")
    i = out.fresh("i")
    L = gx.arg(f.base.expr)
    last_expr = f"eq (len (slice {L} {i})) 1" if f.base.suffix else "false"
    t = truth(st, f.pred(DMsg(elem, last=st.facts.dbool(last_expr))))
    take: list[Node] = [Set(var, elem), Set(is_last, last_expr), Set(found, "true")]
    if not last:
        take.append(Break())
    body: list[Node] = take if isinstance(t, Static) and t.value else [] if isinstance(t, Static) else \
        [If(t.expr, take)]
    out.emit(Set(found, "false"), Range(i, elem, f.base.expr, body))
    msg = DMsg(var, last=DBool(is_last))
    return Choice(((found, msg), (None, st.jinja.undefined("message"))))


def _is_single_arg(e: str) -> bool:
    e = e.strip()
    return (e.startswith("(") and gx.balanced(e)) or " " not in e
