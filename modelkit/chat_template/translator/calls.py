"""Calls in a Jinja template: globals, macros and methods.

Macros are inlined (their output becomes a string value or Go nodes; their body is translated
through the walk, :class:`~.state.Walk`); ``raise_exception`` is a Go error; ``namespace()`` an
object whose attributes may become Go variables in loops; ``strftime_now`` reads Ollama's
``currentDate``; ``range()`` over a list's length a Go ``range``. String methods on message text
are those Go can do (``strip``, ``startswith``) or those that hold under a stated assumption
(``content.split('</think>')`` is the whole text when message text never contains ``</think>``);
the rest are refused.
"""

from __future__ import annotations

from typing import Any

import jinja2
import jinja2.nodes as jn

from . import goexpr as gx
from .access import msg_field
from .choices import dist
from .goast import If, Raise, Range, go_string
from .govalue import str_expr
from .nesting import NSInfo, Scope
from .ollama_data import MESSAGE_FIELDS
from .operators import assume_absent
from .state import State
from .text import nodes_value, pieces, strip
from .tools import arguments_items, data_or
from .values import (
    Atom,
    Builtin,
    Choice,
    DInt,
    DLoop,
    DMsg,
    DRange,
    DStr,
    Frag,
    MacroV,
    Namespace,
    NSRef,
    Piece,
    Poison,
    Rec,
    Static,
    StaticLoop,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    all_static,
    all_static_kwargs,
    check_operands,
    compute_static,
    make_str,
    no_poison,
    raise_static,
)


def call(st: State, callee: V, args: list[V], kwargs: dict[str, V]) -> V:
    """``callee(*args, **kwargs)``."""
    no_poison(callee, *args, *kwargs.values())
    if isinstance(callee, Builtin):
        return _builtin(st, callee.name, args, kwargs)
    if isinstance(callee, MacroV):
        return _call_macro(st, callee, args, kwargs)
    if isinstance(callee, Static):
        if isinstance(callee.value, jinja2.Undefined):
            raise StaticRaise(f"{callee.value._undefined_name!r} is undefined")
        if all_static(args) and all_static_kwargs(kwargs):
            return compute_static(lambda: st.jinja.env.call(st.jinja.jctx, callee.value, *[a.value for a in args],
                                                            **{k: v.value for k, v in kwargs.items()}))
        raise Unsupported("calling a function with runtime values")
    if isinstance(callee, Poison):
        raise Unsupported(callee.reason)
    raise Unsupported(f"calling a {type(callee).__name__}")


def _builtin(st: State, name: str, args: list[V], kwargs: dict[str, V]) -> V:
    """A global of the sandbox: the ones that touch the conversation or the output here, the rest
    computed by Jinja."""
    if name == "raise_exception":
        msg = args[0] if args else Static("")
        if isinstance(msg, Static):
            raise StaticRaise(str(msg.value))
        raise StaticRaise("the template raised an error")
    if name == "namespace":
        return _namespace(st, args, kwargs)
    if name == "strftime_now":
        return _strftime_now(st, args)
    if name == "range" and any(not isinstance(a, Static) for a in args):
        return _dyn_range(args)
    globals_ = st.jinja.env.globals
    fn = {"dict": globals_.get("dict"), "range": globals_.get("range"), "cycler": globals_.get("cycler"),
          "joiner": globals_.get("joiner"), "lipsum": globals_.get("lipsum")}[name]
    return call(st, Static(fn), args, kwargs)


def _namespace(st: State, args: list[V], kwargs: dict[str, V]) -> V:
    """``namespace(...)``: a new namespace, remembered with the loop depth it was made at."""
    attrs: dict[str, V] = {}
    for a in args:
        if isinstance(a, Static) and isinstance(a.value, dict):
            attrs.update({k: Static(v) for k, v in a.value.items()})
        else:
            raise Unsupported("namespace() from a runtime value")
    for k, v in kwargs.items():
        if k.startswith("_"):
            raise StaticRaise(f"namespace attributes may not start with '_': {k!r}")
        attrs[k] = st.emitter.stable(v, f"ns_{k}")
    ns = Namespace(attrs)
    st.nesting.namespaces.append(NSInfo(ns, st.nesting.dyn_depth))
    return NSRef(ns)


def _strftime_now(st: State, args: list[V]) -> V:
    """``strftime_now(format)``: pieces of Ollama's ``currentDate``."""
    fmt = args[0] if args else Static("")
    if not isinstance(fmt, Static) or not isinstance(fmt.value, str):
        raise Unsupported("strftime_now with a runtime format")
    st.emitter.prelude(gx.TODAY_VAR)
    found: list[Piece] = []
    for p in gx.strftime_pieces(fmt.value):
        if isinstance(p, str):
            found.append(p)
        elif isinstance(p, tuple):
            found.append(Atom(p[1]))
        else:
            found.append(Frag((p,)))
    return make_str(found)


def _dyn_range(args: list[V]) -> V:
    """``range()`` over a runtime length: the indexes of a list, forwards or backwards."""
    vals = [a.value if isinstance(a, Static) else a for a in args]
    if len(vals) == 1:
        vals = [0, vals[0], 1]
    elif len(vals) == 2:
        vals = [vals[0], vals[1], 1]
    start, stop, step = vals
    sym_start = start.sym if isinstance(start, DInt) else None
    sym_stop = stop.sym if isinstance(stop, DInt) else None
    if step == 1 and sym_stop and sym_stop[0] == "len" and sym_stop[2] == 0:
        lst = sym_stop[1]
        if start == 0:
            return DRange(lst)
        if isinstance(start, DInt) and not start.byte_len and (not sym_start or sym_start[2] >= 0):
            # start is an index of lst (a loop index, or a small count such as 0 or 1)
            first = start.expr
            return DRange(f"slice {gx.arg(lst)} {gx.arg(first)}", offset=first)
    if step == -1 and stop == -1 and sym_start:
        kind, lst, k = sym_start
        if kind == "len" and k == -1:
            return DRange(lst, reverse=True)
        if kind == "idx" and k <= 0:
            # indexes start, start-1, ..., 0 of a loop over lst: a prefix of lst, backwards
            assert isinstance(start, DInt)
            end = str(gx.add(gx.int_or(start.expr), 1))
            return DRange(f"slice {gx.arg(lst)} 0 {gx.arg(end)}", reverse=True)
    raise Unsupported("range() over runtime bounds other than a list's indexes")


def _call_macro(st: State, macro: MacroV, args: list[V], kwargs: dict[str, V]) -> V:
    """A macro, inlined: its body translated with the arguments bound, its output as a value (a
    macro that always raises raises here)."""
    node: jn.Macro = macro.node
    if st.nesting.macro_depth > 50:
        raise Unsupported("macro recursion")
    inner = _macro_scope(st, macro, args, kwargs)
    st.nesting.macro_depth += 1
    try:
        with st.emitter.capture() as body:
            completes = st.walk.statements(st, node.body, inner)
    finally:
        st.nesting.macro_depth -= 1
    if not completes and not any(isinstance(n, (If, Range)) for n in body):
        raised = [n for n in body if isinstance(n, Raise)]
        if raised:
            raise StaticRaise(raised[-1].message)
    return nodes_value(body)


def _macro_scope(st: State, macro: MacroV, args: list[V], kwargs: dict[str, V]) -> Scope:
    """The scope a macro's body runs in: its parameters bound as Jinja binds them."""
    node: jn.Macro = macro.node
    inner = Scope(macro.scope)
    names = [a.name for a in node.args]
    defaults = node.defaults
    first_default = len(names) - len(defaults)
    extra = list(args[len(names):])
    for i, name in enumerate(names):
        if i < len(args):
            inner.vars[name] = args[i]
        elif name in kwargs:
            inner.vars[name] = kwargs.pop(name)
        elif i >= first_default:
            inner.vars[name] = st.walk.expression(st, defaults[i - first_default], inner)
        else:
            inner.vars[name] = st.jinja.undefined(name)
    inner.vars["varargs"] = Tup(tuple(extra)) if not all_static(extra) else \
        Static(tuple(x.value for x in extra))
    if kwargs:
        if not all_static_kwargs(kwargs):
            raise Unsupported("macro keyword arguments with runtime values")
        inner.vars["kwargs"] = Static({k: v.value for k, v in kwargs.items()})
    else:
        inner.vars["kwargs"] = Static({})
    return inner


def method(st: State, obj: V, name: str, args: list[V], kwargs: dict[str, V]) -> V:
    """``obj.name(*args, **kwargs)``."""
    raising = check_operands(obj, *args, *kwargs.values())
    if raising is not None:
        return raising
    if isinstance(obj, Static):
        return _static_method(st, obj, name, args, kwargs)
    if isinstance(obj, Choice):
        return dist(st, obj, lambda x: method(st, x, name, args, kwargs))
    if isinstance(obj, DStr):
        return _str_method(st, obj, name, args)
    if isinstance(obj, Rec) and name == "get":
        key = args[0] if args else kwargs.get("key", Static(None))
        default = args[1] if len(args) > 1 else kwargs.get("default", Static(None))
        if not isinstance(key, Static):
            raise Unsupported("dict.get with a runtime key")
        found = obj.get(key.value)
        return found if found is not None else default
    if isinstance(obj, DMsg):
        return _message_method(st, obj, name, args, kwargs)
    if isinstance(obj, NSRef):
        raise StaticRaise(f"namespace has no method {name}")
    if isinstance(obj, DLoop) and name == "cycle":
        raise Unsupported("loop.cycle over messages")
    if isinstance(obj, Poison):
        raise Unsupported(obj.reason)
    raise Unsupported(f"the method {name}() of a {type(obj).__name__}")


def _static_method(st: State, obj: Static, name: str, args: list[V], kwargs: dict[str, V]) -> V:
    """A method of a constant: Jinja's, except ``sep.join`` of runtime items and ``loop.cycle``."""
    if isinstance(obj.value, str) and name == "join" and args and isinstance(args[0], Tup):
        sep = obj.value
        found: list[Piece] = []
        for i, item in enumerate(args[0].items):
            if i:
                found.append(sep)
            found.extend(pieces(st, item))
        return make_str(found)
    if isinstance(obj.value, StaticLoop) and name == "cycle":
        if not args:
            raise StaticRaise("no items for cycling given")
        return args[obj.value.index0 % len(args)]
    fn = compute_static(lambda: st.jinja.env.getattr(obj.value, name))
    return call(st, fn, args, kwargs)


def _message_method(st: State, obj: DMsg, name: str, args: list[V], kwargs: dict[str, V]) -> V:
    """``message.get(key, default)`` and ``arguments.items()``."""
    if name == "get":
        key = args[0] if args else kwargs.get("key", Static(None))
        default = args[1] if len(args) > 1 else kwargs.get("default", Static(None))
        if not isinstance(key, Static) or not isinstance(key.value, str):
            raise Unsupported("message.get with a runtime key")
        if obj.kind == "msg" and key.value in MESSAGE_FIELDS:
            return msg_field(st, obj, key.value)
        return data_or(st, obj, key.value, default)
    if name == "items" and not args and not kwargs:
        return arguments_items(obj)
    raise Unsupported(f"message.{name}()")


def _str_method(st: State, s: DStr, name: str, args: list[V]) -> V:
    """A string method on a runtime string."""
    def static_arg(i: int, default: Any = None) -> Any:
        if len(args) <= i:
            return default
        a = args[i]
        if not isinstance(a, Static):
            raise Unsupported(f"str.{name} with a runtime argument")
        return a.value

    if name in ("strip", "lstrip", "rstrip"):
        chars = static_arg(0)
        return strip(st, s, chars, name != "rstrip", name != "lstrip")
    if name in ("startswith", "endswith"):
        return _affix_test(st, s, name, static_arg(0))
    if name == "split":
        sep = static_arg(0)
        if not isinstance(sep, str) or not sep:
            raise Unsupported("splitting message text on whitespace")
        assume_absent(st, sep)
        return Tup((s,))
    if name == "replace":
        old = static_arg(0)
        if isinstance(old, str) and old.strip():
            assume_absent(st, old)
            return s
        raise Unsupported(f"str.replace({old!r}, ...) on message text")
    if name in ("find", "rfind", "count", "index", "rindex"):
        needle = static_arg(0)
        if isinstance(needle, str) and needle.strip():
            assume_absent(st, needle)
            return Static(-1) if name in ("find", "rfind") else Static(0) if name == "count" else \
                raise_static(f"substring not found: {needle!r}")
    raise Unsupported(f"str.{name}() on message text")


def _affix_test(st: State, s: DStr, name: str, prefix: Any) -> V:
    """``startswith``/``endswith``: Go slices and compares bytes; on a trimmed string, false under
    the assumption that message text never contains the affix."""
    prefixes = prefix if isinstance(prefix, tuple) else (prefix,)
    if any(isinstance(p, Atom) and not p.plain for p in s.pieces):
        for p in prefixes:
            if isinstance(p, str) and p.strip():
                assume_absent(st, p)
            else:
                raise Unsupported(f"str.{name} on a stripped string")
        return Static(False)
    x = gx.arg(str_expr(s))
    conds = []
    for p in prefixes:
        if not isinstance(p, str):
            raise StaticRaise(f"{name} first arg must be str or a tuple of str")
        k = len(p.encode())
        if k == 0:
            return Static(True)
        part = f"slice {x} 0 {k}" if name == "startswith" else f"slice {x} (len (slice {x} {k}))"
        conds.append(f"and (ge (len {x}) {k}) (eq ({part}) {go_string(p)})")
    expr = conds[0] if len(conds) == 1 else "or " + " ".join(f"({c})" for c in conds)
    return st.facts.dbool(expr)
