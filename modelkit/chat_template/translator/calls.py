"""Calls in a Jinja template: globals, macros, methods, filters and tests.

Macros are inlined (their output becomes a string value or Go nodes); ``raise_exception`` is a
Go error; ``namespace()`` an object whose attributes may become Go variables in loops;
``strftime_now`` reads Ollama's ``currentDate``; ``range()`` over a list's length a Go ``range``.
String methods and filters on message text are those Go can do (``strip``, ``startswith``,
``length`` as an emptiness test) or those that hold under a stated assumption (``'</think>' in
content`` is false when message text never contains ``</think>``); the rest are refused.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jinja2
import jinja2.nodes as jn

from . import goexpr as gx
from .context import MESSAGE_FIELDS, NSInfo, Scope
from .goast import If, Raise, Range, go_string
from .tools import ToolData
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
    DRange,
    DStr,
    Folded,
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
    check_operands,
    compute_static,
    make_str,
    no_poison,
    raise_static,
    value_kind,
)

#: A filter or test on a runtime value: the result, or None when this value is not one it can take.
_Handler = Callable[["Calls", str, V, list[V], dict[str, V]], V | None]


class Calls(ToolData):
    """Calls, filters and tests (see the module docstring)."""

    def call(self, callee: V, args: list[V], kwargs: dict[str, V]) -> V:
        no_poison(callee, *args, *kwargs.values())
        if isinstance(callee, Builtin):
            return self.builtin(callee.name, args, kwargs)
        if isinstance(callee, MacroV):
            return self.call_macro(callee, args, kwargs)
        if isinstance(callee, Static):
            if isinstance(callee.value, jinja2.Undefined):
                raise StaticRaise(f"{callee.value._undefined_name!r} is undefined")
            if all(isinstance(a, Static) for a in args) and all(isinstance(v, Static) for v in kwargs.values()):
                return compute_static(lambda: self.env.call(self.jctx, callee.value, *[a.value for a in args],
                                                     **{k: v.value for k, v in kwargs.items()}))
            raise Unsupported("calling a function with runtime values")
        if isinstance(callee, Poison):
            raise Unsupported(callee.reason)
        raise Unsupported(f"calling a {type(callee).__name__}")

    def builtin(self, name: str, args: list[V], kwargs: dict[str, V]) -> V:
        if name == "raise_exception":
            msg = args[0] if args else Static("")
            if isinstance(msg, Static):
                raise StaticRaise(str(msg.value))
            raise StaticRaise("the template raised an error")
        if name == "namespace":
            attrs: dict[str, V] = {}
            for a in args:
                if isinstance(a, Static) and isinstance(a.value, dict):
                    attrs.update({k: Static(v) for k, v in a.value.items()})
                else:
                    raise Unsupported("namespace() from a runtime value")
            for k, v in kwargs.items():
                if k.startswith("_"):
                    raise StaticRaise(f"namespace attributes may not start with '_': {k!r}")
                attrs[k] = self.stable(v, f"ns_{k}")
            ns = Namespace(attrs)
            self.namespaces.append(NSInfo(ns, self.dyn_depth))
            return NSRef(ns)
        if name == "strftime_now":
            fmt = args[0] if args else Static("")
            if not isinstance(fmt, Static) or not isinstance(fmt.value, str):
                raise Unsupported("strftime_now with a runtime format")
            self.prelude(gx.TODAY_VAR)
            pieces: list[Piece] = []
            for p in gx.strftime_pieces(fmt.value):
                if isinstance(p, str):
                    pieces.append(p)
                elif isinstance(p, tuple):
                    pieces.append(Atom(p[1]))
                else:
                    pieces.append(Frag((p,)))
            return make_str(pieces)
        if name == "range" and any(not isinstance(a, Static) for a in args):
            return self.dyn_range(args)
        fn = {"dict": self.env.globals.get("dict"), "range": self.env.globals.get("range"),
              "cycler": self.env.globals.get("cycler"), "joiner": self.env.globals.get("joiner"),
              "lipsum": self.env.globals.get("lipsum")}[name]
        return self.call(Static(fn), args, kwargs)

    def dyn_range(self, args: list[V]) -> V:
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
                end = str(gx.add(gx.int_or(start.expr), 1))
                return DRange(f"slice {gx.arg(lst)} 0 {gx.arg(end)}", reverse=True)
        raise Unsupported("range() over runtime bounds other than a list's indexes")

    def call_macro(self, macro: MacroV, args: list[V], kwargs: dict[str, V]) -> V:
        node: jn.Macro = macro.node
        if self.macro_depth > 50:
            raise Unsupported("macro recursion")
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
                inner.vars[name] = self.ev(defaults[i - first_default], inner)
            else:
                inner.vars[name] = self.undefined(name)
        inner.vars["varargs"] = Tup(tuple(extra)) if any(not isinstance(x, Static) for x in extra) else \
            Static(tuple(x.value for x in extra))
        if kwargs:
            if not all(isinstance(v, Static) for v in kwargs.values()):
                raise Unsupported("macro keyword arguments with runtime values")
            inner.vars["kwargs"] = Static({k: v.value for k, v in kwargs.items()})
        else:
            inner.vars["kwargs"] = Static({})
        self.macro_depth += 1
        try:
            with self.capture() as body:
                completes = self.stmts(node.body, inner)
        finally:
            self.macro_depth -= 1
        if not completes and not any(isinstance(n, (If, Range)) for n in body):
            raised = [n for n in body if isinstance(n, Raise)]
            if raised:
                raise StaticRaise(raised[-1].message)
        return self.nodes_value(body)

    def method(self, obj: V, name: str, args: list[V], kwargs: dict[str, V]) -> V:
        raising = check_operands(obj, *args, *kwargs.values())
        if raising is not None:
            return raising
        if isinstance(obj, Static):
            if isinstance(obj.value, str) and name == "join" and args and isinstance(args[0], Tup):
                sep = obj.value
                pieces: list[Piece] = []
                for i, item in enumerate(args[0].items):
                    if i:
                        pieces.append(sep)
                    pieces.extend(self.pieces(item))
                return make_str(pieces)
            if isinstance(obj.value, StaticLoop) and name == "cycle":
                if not args:
                    raise StaticRaise("no items for cycling given")
                return args[obj.value.index0 % len(args)]
            fn = compute_static(lambda: self.env.getattr(obj.value, name))
            return self.call(fn, args, kwargs)
        if isinstance(obj, Choice):
            return self.dist(obj, lambda x: self.method(x, name, args, kwargs))
        if isinstance(obj, DStr):
            return self.str_method(obj, name, args, kwargs)
        if isinstance(obj, Rec) and name == "get":
            key = args[0] if args else kwargs.get("key", Static(None))
            default = args[1] if len(args) > 1 else kwargs.get("default", Static(None))
            if not isinstance(key, Static):
                raise Unsupported("dict.get with a runtime key")
            found = obj.get(key.value)
            return found if found is not None else default
        if isinstance(obj, DMsg):
            if name == "get":
                key = args[0] if args else kwargs.get("key", Static(None))
                default = args[1] if len(args) > 1 else kwargs.get("default", Static(None))
                if not isinstance(key, Static) or not isinstance(key.value, str):
                    raise Unsupported("message.get with a runtime key")
                if obj.kind == "msg" and key.value in MESSAGE_FIELDS:
                    field: V = self.msg_field(obj, key.value)
                    return field
                return self.data_or(obj, key.value, default)
            if name == "items" and not args and not kwargs:
                return self.arguments_items(obj)
            raise Unsupported(f"message.{name}()")
        if isinstance(obj, NSRef):
            raise StaticRaise(f"namespace has no method {name}")
        if isinstance(obj, DLoop) and name == "cycle":
            raise Unsupported("loop.cycle over messages")
        if isinstance(obj, Poison):
            raise Unsupported(obj.reason)
        raise Unsupported(f"the method {name}() of a {type(obj).__name__}")

    def str_method(self, s: DStr, name: str, args: list[V], kwargs: dict[str, V]) -> V:
        def static_arg(i: int, default: Any = None) -> Any:
            if len(args) <= i:
                return default
            a = args[i]
            if not isinstance(a, Static):
                raise Unsupported(f"str.{name} with a runtime argument")
            return a.value

        if name in ("strip", "lstrip", "rstrip"):
            chars = static_arg(0)
            return self.strip(s, chars, name != "rstrip", name != "lstrip")
        if name in ("startswith", "endswith"):
            prefix = static_arg(0)
            prefixes = prefix if isinstance(prefix, tuple) else (prefix,)
            if any(isinstance(p, Atom) and not p.plain for p in s.pieces):
                for p in prefixes:
                    if isinstance(p, str) and p.strip():
                        self.assume_absent(p)
                    else:
                        raise Unsupported(f"str.{name} on a stripped string")
                return Static(False)
            x = gx.arg(self.str_expr(s))
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
            return self.dbool(expr)
        if name == "split":
            sep = static_arg(0)
            if not isinstance(sep, str) or not sep:
                raise Unsupported("splitting message text on whitespace")
            self.assume_absent(sep)
            return Tup((s,))
        if name == "replace":
            old = static_arg(0)
            if isinstance(old, str) and old.strip():
                self.assume_absent(old)
                return s
            raise Unsupported(f"str.replace({old!r}, ...) on message text")
        if name in ("find", "rfind", "count", "index", "rindex"):
            needle = static_arg(0)
            if isinstance(needle, str) and needle.strip():
                self.assume_absent(needle)
                return Static(-1) if name in ("find", "rfind") else Static(0) if name == "count" else \
                    raise_static(f"substring not found: {needle!r}")
        raise Unsupported(f"str.{name}() on message text")

    def filter_node(self, node: jn.Filter, value: V, scope: Scope) -> V:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported("filters with *args or **kwargs")
        args = [self.ev(a, scope) for a in node.args]
        kwargs = {str(k.key): self.ev(k.value, scope) for k in node.kwargs}
        return self.filter(node.name, value, args, kwargs)

    def filter(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V:
        """A Jinja filter: computed in the sandbox on constants, else one Go can do (:data:`_RUNTIME_FILTERS`)."""
        raising = check_operands(value, *args, *kwargs.values())
        if raising is not None:
            return raising
        if name not in self.env.filters:
            raise StaticRaise(f"No filter named {name!r}.")
        if isinstance(value, Static) and all(isinstance(a, Static) for a in args) and \
                all(isinstance(v, Static) for v in kwargs.values()):
            return compute_static(lambda: self.env.call_filter(
                name, value.value, [a.value for a in args], {k: v.value for k, v in kwargs.items()},
                context=self.jctx, eval_ctx=self.eval_ctx))
        if isinstance(value, Choice):
            return self.dist(value, lambda x: self.filter(name, x, args, kwargs))
        return self._on_runtime(_RUNTIME_FILTERS, name, value, args, kwargs, f"the {name} filter on runtime values")

    def _on_runtime(self, handlers: dict[str, _Handler], name: str, value: V, args: list[V], kwargs: dict[str, V],
                    refusal: str) -> V:
        """The filter or test ``name`` on a runtime value, by its handler; refused when there is none
        or it cannot take this value."""
        handler = handlers.get(name)
        result = handler(self, name, value, args, kwargs) if handler else None
        if result is None:
            raise Unsupported(refusal)
        return result

    def _filter_string(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        if isinstance(value, (DStr, Static)):
            return value
        return make_str(self.pieces(value))

    def _filter_default(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        boolean = (args[1] if len(args) > 1 else kwargs.get("boolean", Static(False)))
        if isinstance(boolean, Static) and not boolean.value:
            return value
        default = args[0] if args else kwargs.get("default_value", Static(""))
        t = self.truth(value)
        if isinstance(t, Static):
            return value if t.value else default
        return self.make_choice([(t.expr, value), (None, default)])

    def _filter_trim(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        chars = args[0] if args else kwargs.get("chars", Static(None))
        if not isinstance(chars, Static):
            raise Unsupported("trim with runtime characters")
        return self.strip(value, chars.value, True, True)

    def _filter_length(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        """``length`` (``count``): of a list, or of message text as far as Go can count it (bytes)."""
        if isinstance(value, DStr):
            if any(isinstance(p, Atom) and not p.plain for p in value.pieces):
                t = self.truth(value)
                if isinstance(t, Static):
                    return Static(1 if t.value else 0)
                return DInt(t.expr, byte_len=True, emptiness_only=True)
            return DInt(f"len {gx.arg(self.str_expr(value))}", byte_len=True)
        if isinstance(value, DList):
            return DInt(f"len {gx.arg(value.expr)}", sym=("len", value.expr, 0))
        if isinstance(value, DFiltered):
            return self.count(value)
        if isinstance(value, Tup):
            return Static(len(value.items))
        if isinstance(value, DMsg):
            raise Unsupported("the length of a message")
        return None

    def _filter_first_last(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        if isinstance(value, DList):
            return self.list_index(value, Static(0 if name == "first" else -1))
        if isinstance(value, Tup):
            return value.items[0 if name == "first" else -1] if value.items else self.undefined(name)
        if isinstance(value, DFiltered):
            return self.find(value, last=name == "last")
        return None

    def _filter_list(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        return value if isinstance(value, (DList, Tup, DFiltered)) else None

    def _filter_reverse(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        return dataclasses.replace(value, reverse=not value.reverse) if isinstance(value, DList) else None

    def _filter_join(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        if not isinstance(value, Tup):
            return None
        sep = args[0] if args else Static("")
        if not isinstance(sep, Static):
            raise Unsupported("join with a runtime separator")
        return self.method(Static(str(sep.value)), "join", [value], {})

    def _filter_select(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        """``selectattr``/``rejectattr`` on messages; other list filters cannot run in Go (a value
        that fails only if used)."""
        if name in ("selectattr", "rejectattr") and isinstance(value, DList) and not value.reverse:
            return self.filtered(value, name == "rejectattr", args)
        return Poison(f"the {name} filter on runtime values")

    def _filter_replace(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        if isinstance(value, DStr) and args and isinstance(args[0], Static) \
                and isinstance(args[0].value, str) and args[0].value.strip():
            self.assume_absent(args[0].value)
            return value
        return None

    def _filter_tojson(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        if args:
            raise Unsupported("tojson with positional arguments")
        json = self.to_json(value, kwargs)
        if json is None:
            raise Unsupported("tojson of runtime values (Go's json differs from Python's)")
        return json

    def _filter_case(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        return self.case_fold(value, name)

    def case_fold(self, value: V, how: str) -> V:
        if isinstance(value, DStr) and len(value.pieces) == 1 and isinstance(value.pieces[0], Atom) \
                and value.pieces[0].expr.endswith(".Role") and how == "lower":
            self.assume("roles are lower-case (user, assistant, system, tool)")
            return value
        if isinstance(value, DStr):
            return Folded(value, how)
        raise Unsupported(f"the {how} filter on a runtime {type(value).__name__}")

    def filtered(self, base: DList, reject: bool, args: list[V]) -> V:
        if not args or not all(isinstance(a, Static) for a in args):
            raise Unsupported("selectattr with runtime arguments")
        attr, rest = args[0].value, [a.value for a in args[1:]]
        test_name = rest[0] if rest else None
        test_args: list[V] = [Static(x) for x in rest[1:]]

        def pred(msg: V) -> V:
            field = self.getattr(msg, attr)
            r = self.test(test_name, field, test_args, {}) if test_name else self.truth(field)
            return self.not_(r) if reject else r

        return DFiltered(base, pred, f"messages filtered on {attr}")

    def test(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V:
        """A Jinja test (``is ...``): computed on constants, else by the kind of value, else in Go."""
        raising = check_operands(value, *args, *kwargs.values())
        if raising is not None:
            return raising
        if name not in self.env.tests:
            raise StaticRaise(f"No test named {name!r}.")
        if isinstance(value, Static) and all(isinstance(a, Static) for a in args) and not kwargs:
            return compute_static(lambda: self.env.call_test(name, value.value, [a.value for a in args], {},
                                                             context=self.jctx, eval_ctx=self.eval_ctx))
        if isinstance(value, Choice):
            return self.dist(value, lambda x: self.test(name, x, args, kwargs), as_bool=True)
        if isinstance(value, DMsg) and value.kind in VALUE_TESTS["defined"]:
            if name not in VALUE_TESTS:
                raise Unsupported(f"the test 'is {name}' on a tool-call argument")
            return Static(value.kind in VALUE_TESTS[name])
        if name in _TYPE_TESTS:
            return Static(_TYPE_TESTS[name](value_kind(value), value))
        return self._on_runtime(_RUNTIME_TESTS, name, value, args, kwargs, f"the test 'is {name}' on runtime values")

    def _test_true_false(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        if value_kind(value) != "bool":
            return Static(False)
        if not isinstance(value, DBool):
            raise Unsupported("is true/false of a runtime value")
        c = self.dbool(self.canon(value))
        return c if name == "true" else self.not_(c)

    def _test_eq(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        if name == "sameas":
            raise Unsupported("the sameas test")
        return self.eq(value, args[0] if args else kwargs.get("other", Static(None)))

    def _test_ne(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        return self.not_(self.eq(value, args[0]))

    def _test_order(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        return self.compare(_ORDER_TESTS[name], value, args[0])

    def _test_in(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        return self.contains(args[0], value)

    def _test_parity(self, name: str, value: V, args: list[V], kwargs: dict[str, V]) -> V | None:
        """``odd``, ``even``, and ``divisibleby(2)``: the last binary digit, in Go."""
        if not isinstance(value, DInt) or value.byte_len:
            return None
        if name == "divisibleby":
            if not (args and isinstance(args[0], Static) and args[0].value == 2):
                return None
            return self.dbool(gx.is_even(value.expr))
        even = self.dbool(gx.is_even(value.expr))
        return even if name == "even" else self.not_(even)


_RUNTIME_FILTERS: dict[str, _Handler] = {
    "string": Calls._filter_string, "safe": Calls._filter_string,
    "default": Calls._filter_default, "d": Calls._filter_default,
    "trim": Calls._filter_trim,
    "length": Calls._filter_length, "count": Calls._filter_length,
    "first": Calls._filter_first_last, "last": Calls._filter_first_last,
    "list": Calls._filter_list,
    "reverse": Calls._filter_reverse,
    "join": Calls._filter_join,
    "replace": Calls._filter_replace,
    "tojson": Calls._filter_tojson,
    **dict.fromkeys(("upper", "lower", "capitalize", "title"), Calls._filter_case),
    **dict.fromkeys(("selectattr", "rejectattr", "map", "select", "reject", "groupby", "unique", "sort", "batch",
                     "slice", "sum", "min", "max", "items", "dictsort"), Calls._filter_select),
}

#: Tests a runtime value answers by its kind alone (message text is a string, messages a list...).
_TYPE_TESTS: dict[str, Callable[[str, V], bool]] = {
    "defined": lambda kind, v: True,
    "undefined": lambda kind, v: False,
    "none": lambda kind, v: False,
    "string": lambda kind, v: kind == "str",
    "mapping": lambda kind, v: kind == "msg" or isinstance(v, (NSRef, Rec)),
    "iterable": lambda kind, v: kind in ("str", "list", "msg") or isinstance(v, (Tup, Rec)),
    "sequence": lambda kind, v: kind in ("str", "list", "msg") or isinstance(v, (Tup, Rec)),
    "number": lambda kind, v: kind in ("int", "bool"),
    "integer": lambda kind, v: kind in ("int", "bool"),
    "float": lambda kind, v: False,
    "boolean": lambda kind, v: kind == "bool",
    "callable": lambda kind, v: isinstance(v, (MacroV, Builtin)),
}

#: Type tests on a tool-call argument's value that is not a string, by its kind (:mod:`.tools`).
VALUE_TESTS: dict[str, frozenset[str]] = {
    "defined": frozenset({"number", "bool", "object", "array"}), "undefined": frozenset(), "none": frozenset(),
    "string": frozenset(), "mapping": frozenset({"object"}), "iterable": frozenset({"object", "array"}),
    "sequence": frozenset({"object", "array"}), "number": frozenset({"number", "bool"}),
    "boolean": frozenset({"bool"}),
}

_ORDER_TESTS = {"lt": "lt", "<": "lt", "le": "lteq", "<=": "lteq", "gt": "gt", ">": "gt", "ge": "gteq", ">=": "gteq"}

_RUNTIME_TESTS: dict[str, _Handler] = {
    "true": Calls._test_true_false, "false": Calls._test_true_false,
    **dict.fromkeys(("equalto", "eq", "==", "sameas"), Calls._test_eq),
    "ne": Calls._test_ne, "!=": Calls._test_ne,
    **dict.fromkeys(_ORDER_TESTS, Calls._test_order),
    "in": Calls._test_in,
    "odd": Calls._test_parity, "even": Calls._test_parity, "divisibleby": Calls._test_parity,
}
