"""Jinja expressions, evaluated by the translator: names, access, comparisons, arithmetic.

Each operation has two cases: constants are computed with Jinja's own semantics (in the
sandbox, so a template raising at build time raises in Go too), and runtime values become Go
expressions — ``message.role`` is ``$m.Role``, ``messages[-1]`` is
``index $.Messages (len (slice $.Messages 1))``, ``loop.index0 + 1`` uses ``printf`` padding
(:mod:`.goexpr`) — or a :class:`~.values.Poison` value saying why they cannot be.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jinja2.nodes as jn

from . import goexpr as gx
from .context import ADD_GEN_VAR, MESSAGE_FIELDS, MESSAGES, THINK_SWITCHES, Scope
from .goast import go_string
from .tools import ToolData
from .values import (
    Atom,
    Builtin,
    Char,
    Choice,
    DBool,
    DFiltered,
    DInt,
    DList,
    DLoop,
    DMsg,
    DStr,
    Folded,
    NSRef,
    Parity,
    Piece,
    Poison,
    Raising,
    Rec,
    Static,
    StaticLoop,
    StaticRaise,
    Tup,
    Unsupported,
    V,
    as_value,
    check_operands,
    compute_static,
    dint,
    is_stringy,
    make_str,
)


class Expressions(ToolData):
    """Expressions of the template (see the module docstring)."""

    def ev(self, node: jn.Node, scope: Scope) -> V:
        """Evaluate an expression. What cannot be expressed becomes a :class:`Poison` value, which
        only fails the translation if it is written or decides something."""
        method = getattr(self, "ev_" + type(node).__name__, None)
        if method is None:
            return Poison(f"the {type(node).__name__} expression")
        try:
            value: V = method(node, scope)
            return value
        except Unsupported as exc:
            return Poison(str(exc))

    def ev_Const(self, node: jn.Const, scope: Scope) -> V:
        return Static(node.value)

    def ev_TemplateData(self, node: jn.TemplateData, scope: Scope) -> V:
        return Static(node.data)

    def ev_MarkSafe(self, node: jn.MarkSafe, scope: Scope) -> V:
        return self.ev(node.expr, scope)

    def ev_MarkSafeIfAutoescape(self, node: jn.MarkSafeIfAutoescape, scope: Scope) -> V:
        return self.ev(node.expr, scope)

    def ev_Name(self, node: jn.Name, scope: Scope) -> V:
        name = node.name
        found = scope.lookup(name)
        if found is not None:
            return found
        if name == "messages":
            return DList(MESSAGES, suffix=True)
        if name == "add_generation_prompt":
            return self.dbool(self.prelude(ADD_GEN_VAR))
        if name == "tools":
            return self.tools_value()
        if name == "documents":
            self.ignore("documents (RAG)")
        if name in self.statics:
            return Static(self.statics[name])
        if name in THINK_SWITCHES:
            return self.think_switch(name)
        if name in ("raise_exception", "strftime_now", "namespace", "dict", "range", "cycler", "joiner", "lipsum"):
            return Builtin(name)
        return self.undefined(name)

    def ev_List(self, node: jn.List, scope: Scope) -> V:
        items = [self.ev(x, scope) for x in node.items]
        if all(isinstance(i, Static) for i in items):
            return Static([i.value for i in items])
        return Tup(tuple(items))

    def ev_Tuple(self, node: jn.Tuple, scope: Scope) -> V:
        items = [self.ev(x, scope) for x in node.items]
        if all(isinstance(i, Static) for i in items):
            return Static(tuple(i.value for i in items))
        return Tup(tuple(items))

    def ev_Dict(self, node: jn.Dict, scope: Scope) -> V:
        out: dict[Any, Any] = {}
        for pair in node.items:
            k, v = self.ev(pair.key, scope), self.ev(pair.value, scope)
            if not isinstance(k, Static):
                return Poison("a dict with runtime keys")
            out[k.value] = v
        if all(isinstance(v, Static) for v in out.values()):
            return Static({k: v.value for k, v in out.items()})
        return Rec(tuple(out.items()))

    def ev_CondExpr(self, node: jn.CondExpr, scope: Scope) -> V:
        c = self.truth(self.ev(node.test, scope))
        if isinstance(c, Static):
            if c.value:
                return self.ev(node.expr1, scope)
            return self.ev(node.expr2, scope) if node.expr2 is not None else self.undefined("cond")
        assert isinstance(c, DBool)
        with self.assuming(self.branch_facts(c, True)):
            a = self.ev(node.expr1, scope)
        with self.assuming(self.branch_facts(c, False)):
            b = self.ev(node.expr2, scope) if node.expr2 is not None else self.undefined("cond")
        return self.make_choice([(c.expr, a), (None, b)])

    def ev_And(self, node: jn.And, scope: Scope) -> V:
        return self.and_(self.ev(node.left, scope), lambda: self.ev(node.right, scope))

    def ev_Or(self, node: jn.Or, scope: Scope) -> V:
        return self.or_(self.ev(node.left, scope), lambda: self.ev(node.right, scope))

    def ev_Not(self, node: jn.Not, scope: Scope) -> V:
        return self.not_(self.ev(node.node, scope))

    def ev_Concat(self, node: jn.Concat, scope: Scope) -> V:
        pieces: list[Piece] = []
        for n in node.nodes:
            pieces.extend(self.pieces(self.ev(n, scope)))
        return make_str(pieces)

    def ev_Compare(self, node: jn.Compare, scope: Scope) -> V:
        left = self.ev(node.expr, scope)
        result: V | None = None
        for op in node.ops:
            right = self.ev(op.expr, scope)
            r = self.compare(op.op, left, right)
            result = r if result is None else self.and_(result, lambda r=r: r)
            left = right
        assert result is not None
        return result

    def _binop(self, node: jn.BinExpr, scope: Scope) -> V:
        """``a + b`` and the other arithmetic operators (``node.operator``: ``+ - * / // % **``)."""
        a, b = self.ev(node.left, scope), self.ev(node.right, scope)
        return self.arith(node.operator, a, b)

    ev_Add = ev_Sub = ev_Mul = ev_Div = ev_FloorDiv = ev_Mod = ev_Pow = _binop

    def ev_Neg(self, node: jn.Neg, scope: Scope) -> V:
        v = self.ev(node.node, scope)
        if isinstance(v, Static):
            return compute_static(lambda: -v.value)
        raise Unsupported("negating a runtime number")

    def ev_Pos(self, node: jn.Pos, scope: Scope) -> V:
        return self.ev(node.node, scope)

    def ev_Getattr(self, node: jn.Getattr, scope: Scope) -> V:
        return self.getattr(self.ev(node.node, scope), node.attr)

    def ev_Getitem(self, node: jn.Getitem, scope: Scope) -> V:
        obj = self.ev(node.node, scope)
        if isinstance(node.arg, jn.Slice):
            parts = [self.ev(x, scope) if x is not None else Static(None)
                     for x in (node.arg.start, node.arg.stop, node.arg.step)]
            return self.getslice(obj, parts)
        return self.getitem(obj, self.ev(node.arg, scope))

    def ev_Slice(self, node: jn.Slice, scope: Scope) -> V:
        raise Unsupported("a slice outside []")

    def ev_Filter(self, node: jn.Filter, scope: Scope) -> V:
        value = self.ev(node.node, scope) if node.node is not None else self.undefined("filter")
        return self.filter_node(node, value, scope)

    def ev_Test(self, node: jn.Test, scope: Scope) -> V:
        value = self.ev(node.node, scope)
        args = [self.ev(a, scope) for a in node.args]
        kwargs = {str(k.key): self.ev(k.value, scope) for k in node.kwargs}
        return self.test(node.name, value, args, kwargs)

    def ev_Call(self, node: jn.Call, scope: Scope) -> V:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported("calls with *args or **kwargs")
        args = [self.ev(a, scope) for a in node.args]
        kwargs = {k.key: self.ev(k.value, scope) for k in node.kwargs}
        if isinstance(node.node, jn.Getattr):
            obj = self.ev(node.node.node, scope)
            return self.method(obj, node.node.attr, args, kwargs)
        callee = self.ev(node.node, scope)
        return self.call(callee, args, kwargs)

    def getattr(self, obj: V, attr: str) -> V:
        if isinstance(obj, Raising):
            return obj
        if isinstance(obj, Static):
            if isinstance(obj.value, StaticLoop) and attr in ("index0", "index", "first", "last", "length",
                                                              "revindex", "revindex0", "previtem", "nextitem"):
                loop = obj.value
                if attr == "previtem":
                    return as_value(loop.items[loop.index0 - 1]) if loop.index0 > 0 else self.undefined("previtem")
                if attr == "nextitem":
                    return as_value(loop.items[loop.index0 + 1]) if not loop.last else self.undefined("nextitem")
                return Static(getattr(loop, attr))
            return compute_static(lambda: self.env.getattr(obj.value, attr))
        if isinstance(obj, DMsg):
            return self.msg_field(obj, attr)
        if isinstance(obj, Rec):
            found = obj.get(attr)
            return found if found is not None else self.undefined(attr)
        if isinstance(obj, DLoop):
            return self.loop_attr(obj, attr)
        if isinstance(obj, NSRef):
            return obj.ns.attrs.get(attr, self.undefined(attr))
        if isinstance(obj, Choice):
            return self.dist(obj, lambda x: self.getattr(x, attr))
        if isinstance(obj, Poison):
            raise Unsupported(obj.reason)
        if isinstance(obj, (DStr, Char)) and not hasattr(str, attr):
            return self.undefined(attr)  # Jinja: a string has no such attribute
        if isinstance(obj, (DStr, DList, Tup)):
            return Poison(f"attribute {attr!r} of a runtime {type(obj).__name__}")
        raise Unsupported(f"attribute {attr!r} of a {type(obj).__name__}")

    def msg_field(self, msg: DMsg, key: str) -> V:
        if msg.kind == "msg" and key == "role":
            return self.atom(msg.field_expr("Role"))
        if msg.kind == "msg" and key == "content":
            return self.atom(msg.field_expr("Content"), cut=self.cut_cond(msg))
        return self.data_or(msg, key, self.undefined(key))

    def cut_cond(self, msg: DMsg) -> str | None:
        last = msg.last
        if isinstance(last, Poison):
            role = self.eq(self.atom(msg.field_expr("Role")), Static("assistant"))
            if isinstance(role, Static) and not role.value:
                return None
            raise Unsupported(last.reason)
        c = self.and_(last, lambda: self.eq(self.atom(msg.field_expr("Role")), Static("assistant")))
        c = self.truth(c)
        if isinstance(c, Static):
            return "true" if c.value else None
        assert isinstance(c, DBool)
        return c.expr

    def loop_attr(self, loop: DLoop, attr: str) -> V:
        i, lst = loop.index, loop.lst.expr
        if attr == "index0":
            return dint(i, ("idx", lst, 0), i) if not loop.reverse else DInt(i)
        if attr == "index":
            return dint(str(gx.add(i, 1)), ("idx", lst, 1), i) if not loop.reverse else DInt(str(gx.add(i, 1)))
        if attr == "first":
            return self.dbool(f"eq {i} 0")
        if attr == "last":
            return self.dbool(f"eq (len (slice {gx.arg(lst)} {i})) 1")
        if attr == "length":
            return DInt(f"len {gx.arg(lst)}")
        if attr == "revindex0":
            return DInt(f"len (slice {gx.arg(lst)} {gx.arg(gx.add(i, 1))})")
        if attr == "revindex":
            return DInt(f"len (slice {gx.arg(lst)} {i})")
        if attr in ("previtem", "nextitem") and not loop.reverse:
            L = gx.arg(lst)
            if attr == "previtem":
                item = DMsg(f"index {L} {gx.arg(gx.sub(i, 1))}",
                            last=Static(False), kind=loop.lst.item)
                return self.make_choice([(f"eq {i} 0", self.undefined("previtem")), (None, item)])
            item = DMsg(f"index {L} {gx.arg(gx.add(i, 1))}",
                        last=self.dbool(f"eq (len (slice {L} {i})) 2") if loop.lst.suffix else Static(False),
                        kind=loop.lst.item)
            return self.make_choice([(f"eq (len (slice {L} {i})) 1", self.undefined("nextitem")), (None, item)])
        if attr == "cycle":
            return Poison("loop.cycle over messages")
        return self.undefined(attr)

    def getitem(self, obj: V, key: V) -> V:
        raising = check_operands(obj, key)
        if raising is not None:
            return raising
        if isinstance(obj, Static) and isinstance(key, Static):
            return compute_static(lambda: self.env.getitem(obj.value, key.value))
        if isinstance(obj, DMsg) and isinstance(key, Static) and isinstance(key.value, str):
            return self.msg_field(obj, key.value)
        if isinstance(obj, Rec) and isinstance(key, Static):
            found = obj.get(key.value)
            return found if found is not None else self.undefined(str(key.value))
        if isinstance(obj, NSRef) and isinstance(key, Static):
            return obj.ns.attrs.get(key.value, self.undefined(str(key.value)))
        if isinstance(obj, DList):
            return self.list_index(obj, key)
        if isinstance(obj, DFiltered) and isinstance(key, Static) and key.value in (0, -1):
            return self.find(obj, last=key.value == -1)
        if isinstance(obj, Tup) and isinstance(key, Static) and isinstance(key.value, int):
            try:
                return obj.items[key.value]
            except IndexError:
                return self.undefined("item")
        if isinstance(obj, Choice):
            return self.dist(obj, lambda x: self.getitem(x, key))
        if isinstance(key, Choice):
            return self.dist(key, lambda x: self.getitem(obj, x))
        if isinstance(obj, Poison):
            raise Unsupported(obj.reason)
        if isinstance(obj, DStr) and isinstance(key, Static) and isinstance(key.value, int):
            return Char()
        if isinstance(obj, DStr):
            raise Unsupported("indexing a runtime string (Go counts bytes, Python characters)")
        raise Unsupported(f"indexing a {type(obj).__name__}")

    def list_index(self, lst: DList, key: V) -> V:
        L = gx.arg(lst.expr)
        n_minus_1 = f"len (slice {L} 1)"
        if isinstance(key, Static) and isinstance(key.value, int) and not isinstance(key.value, bool):
            k = key.value
            if lst.reverse:
                k = -1 - k
            if k >= 0:
                expr = f"index {L} {k}"
                last = self.elem_last(lst, str(k))
            elif k == -1:
                expr = f"index {L} ({n_minus_1})"
                last = Static(True) if lst.suffix else self.elem_last(lst, n_minus_1)
            else:
                expr = f"index {L} ({gx.sub(f'len {L}', -k)})"
                last = Static(False)
            return DMsg(expr, last=last, kind=lst.item)
        if isinstance(key, DInt) and not lst.reverse and not key.byte_len:
            expr = f"index {L} {gx.arg(key.expr)}"
            return DMsg(expr, last=self.elem_last(lst, key.expr), kind=lst.item)
        if isinstance(key, Static) and isinstance(key.value, str):
            return self.undefined(key.value)
        raise Unsupported("indexing messages with a runtime value")

    def getslice(self, obj: V, parts: list[V]) -> V:
        if all(isinstance(p, Static) for p in parts) and isinstance(obj, Static):
            start, stop, step = (p.value for p in parts)
            return compute_static(lambda: obj.value[start:stop:step])
        if isinstance(obj, Tup) and all(isinstance(p, Static) for p in parts):
            start, stop, step = (p.value for p in parts)
            return Tup(obj.items[start:stop:step])
        if isinstance(obj, Choice):
            return self.dist(obj, lambda x: self.getslice(x, parts))
        for k, part in enumerate(parts):
            if isinstance(part, Choice):
                return self.dist(part, lambda x, k=k: self.getslice(obj, parts[:k] + [x] + parts[k + 1:]))
        if isinstance(obj, DList) and not obj.reverse:
            start, stop, step = parts
            if not (isinstance(step, Static) and step.value in (None, 1, -1)):
                raise Unsupported("slicing messages with a step")
            if step.value == -1:
                if isinstance(start, Static) and start.value is None \
                        and isinstance(stop, Static) and stop.value is None:
                    return dataclasses.replace(obj, reverse=True)
                raise Unsupported("slicing messages backwards between bounds")
            L = gx.arg(obj.expr)

            def bound(v: V) -> str | None:
                if isinstance(v, Static) and v.value is None:
                    return None
                if isinstance(v, Static) and isinstance(v.value, int) and not isinstance(v.value, bool):
                    return str(v.value) if v.value >= 0 else str(gx.sub(f"len {L}", -v.value))
                if isinstance(v, DInt) and not v.byte_len:
                    return v.expr
                raise Unsupported("slicing messages with a runtime bound that is not a number")

            lo, hi = bound(start), bound(stop)
            if lo is None and hi is None:
                return obj
            expr = f"slice {L} {gx.arg(lo or '0')}" + (f" {gx.arg(hi)}" if hi is not None else "")
            lastbase: tuple[str, str] | None = None
            if obj.suffix or obj.lastbase:
                base, off = obj.lastbase or (obj.expr, "0")
                lastbase = (base, str(gx.add(gx.int_or(off), gx.int_or(lo or "0"))))
            return DList(expr, suffix=obj.suffix and hi is None,
                         lastbase=lastbase if hi is not None or obj.lastbase else None, item=obj.item)
        if isinstance(obj, DStr):
            raise Unsupported("slicing a runtime string (Go counts bytes, Python characters)")
        if isinstance(obj, Poison):
            raise Unsupported(obj.reason)
        raise Unsupported(f"slicing a {type(obj).__name__}")

    def arith(self, op: str, a: V, b: V) -> V:
        folded = self.binary(a, b, lambda x, y: _ARITH[op](x, y), lambda x, y: self.arith(op, x, y))
        if folded is not None:
            return folded
        if op == "+" and (is_stringy(a) or is_stringy(b)):
            if not (is_stringy(a) and is_stringy(b)):
                raise StaticRaise("can only concatenate str (not a number) to str")
            return self.concat(a, b)
        if op == "+" and isinstance(a, (Tup, Static)) and isinstance(b, (Tup, Static)):
            ai = a.items if isinstance(a, Tup) else _static_items(a)
            bi = b.items if isinstance(b, Tup) else _static_items(b)
            return Tup(tuple(ai) + tuple(bi))
        if op in ("+", "-") and isinstance(a, DInt) and a.sym and isinstance(b, Static) and isinstance(b.value, int) \
                and not isinstance(b.value, bool):
            kind, lst, k0 = a.sym
            k = k0 + (b.value if op == "+" else -b.value)
            base = f"len {gx.arg(lst)}" if kind == "len" else a.sym_base
            expr = str(gx.add(base, k)) if k >= 0 else str(gx.sub(base, -k))
            return dint(expr, (kind, lst, k), base)
        ia, ib = self.int_of(a), self.int_of(b)
        if op == "+":
            return DInt(str(gx.add(ia, ib)))
        if op == "-":
            if isinstance(ib, int) and ib < 0:
                return DInt(str(gx.add(ia, -ib)))
            return DInt(str(gx.sub(ia, ib)))
        if op == "%" and ib == 2 and isinstance(ia, str):
            return Parity(ia)
        raise Unsupported(f"the operator {op} on runtime numbers")

    def int_of(self, v: V) -> str | int:
        if isinstance(v, Static) and isinstance(v.value, int) and not isinstance(v.value, bool):
            return v.value
        if isinstance(v, DInt):
            if v.byte_len:
                raise Unsupported("arithmetic on the length of a string (Go counts bytes)")
            return v.expr
        raise Unsupported(f"arithmetic on a {type(v).__name__}")

    def eq(self, a: V, b: V) -> V:
        """``a == b``; a runtime value compared with a constant of another type is simply unequal."""
        folded = self.binary(a, b, lambda x, y: x == y, self.eq, as_bool=True)
        if folded is not None:
            return folded
        if isinstance(a, Static) and not isinstance(b, Static):
            a, b = b, a
        if isinstance(a, DStr):
            return self._eq_str(a, b)
        if isinstance(a, DInt):
            return self._eq_int(a, b)
        if isinstance(a, Parity):
            if isinstance(b, Static) and b.value in (0, 1) and not isinstance(b.value, bool):
                even = self.dbool(gx.is_even(a.expr))
                return even if b.value == 0 else self.not_(even)
            raise Unsupported("comparing a remainder")
        if isinstance(a, DBool):
            return self._eq_bool(a, b)
        if isinstance(a, DMsg):
            if isinstance(b, DMsg):
                raise Unsupported("comparing whole messages (Jinja compares contents, Go pointers)")
            return Static(False)
        if isinstance(a, (DList, Tup)):
            raise Unsupported("comparing lists")
        if isinstance(a, NSRef):
            return Static(False)
        raise Unsupported(f"comparing a {type(a).__name__}")

    def _eq_str(self, a: DStr, b: V) -> V:
        if isinstance(b, Static):
            if not isinstance(b.value, str):
                return Static(False)
            if b.value == "":
                return self.not_(self.truth(a))
            x = self.str_expr(a)
            if len(a.pieces) == 1 and isinstance(a.pieces[0], Atom):
                known_not = self.fact(("ne", x)) or set()
                if b.value in known_not:
                    return Static(False)
            return self.dbool(f"eq {gx.arg(x)} {go_string(b.value)}",
                              when_true=(("eq", x, b.value),), when_false=(("ne", x, b.value),))
        if isinstance(b, DStr):
            return self.dbool(f"eq {gx.arg(self.str_expr(a))} {gx.arg(self.str_expr(b))}")
        return Static(False)

    def _eq_int(self, a: DInt, b: V) -> V:
        if isinstance(b, Static):
            if isinstance(b.value, bool) or not isinstance(b.value, (int, float)):
                return Static(False)
            if a.byte_len and b.value != 0:
                raise Unsupported("comparing the length of a string with a number (Go counts bytes)")
            if a.emptiness_only:
                return self.not_(self.dbool(a.expr, canon=False))
            if isinstance(b.value, float) and not b.value.is_integer():
                return Static(False)
            return self.dbool(f"eq {gx.arg(a.expr)} {int(b.value)}")
        if isinstance(b, DInt):
            if a.byte_len or b.byte_len:
                raise Unsupported("comparing string lengths (Go counts bytes)")
            return self.dbool(f"eq {gx.arg(a.expr)} {gx.arg(b.expr)}")
        return Static(False)

    def _eq_bool(self, a: DBool, b: V) -> V:
        if isinstance(b, Static) and isinstance(b.value, (bool, int)):
            if b.value in (True, 1) and b.value is not None:
                return self.truth(a) if a.canon else self.dbool(self.canon(a))
            if b.value == 0:
                return self.not_(a)
            return Static(False)
        if isinstance(b, DBool):
            return self.dbool(f"eq {gx.arg(self.canon(a))} {gx.arg(self.canon(b))}")
        return Static(False)

    def compare(self, op: str, a: V, b: V) -> V:
        """A Jinja comparison (``node.ops``' operators: ``eq ne lt lteq gt gteq in notin``)."""
        raising = check_operands(a, b)
        if raising is not None:
            return raising
        if op == "eq":
            return self.eq(a, b)
        if op == "ne":
            return self.not_(self.eq(a, b))
        if op in ("in", "notin"):
            r = self.contains(b, a)
            return self.not_(r) if op == "notin" else r
        folded = self.binary(a, b, lambda x, y: _ORDER[op](x, y), lambda x, y: self.compare(op, x, y), as_bool=True)
        if folded is not None:
            return folded
        go = {"lt": "lt", "lteq": "le", "gt": "gt", "gteq": "ge"}[op]
        if isinstance(a, DInt) or isinstance(b, DInt):
            if (isinstance(a, DInt) and a.byte_len) or (isinstance(b, DInt) and b.byte_len):
                return self._compare_byte_len(op, a, b)
            ea, eb = self.int_of_cmp(a), self.int_of_cmp(b)
            return self.dbool(f"{go} {gx.arg(ea)} {gx.arg(eb)}")
        if isinstance(a, DStr) and isinstance(b, (DStr, Static)) or isinstance(b, DStr) and isinstance(a, Static):
            return self.dbool(f"{go} {gx.arg(self.str_expr(a))} {gx.arg(self.str_expr(b))}")
        raise Unsupported(f"ordering a {type(a).__name__} and a {type(b).__name__}")

    def _compare_byte_len(self, op: str, a: V, b: V) -> V:
        """Ordering the length of a string: Go counts bytes, Python characters, so only emptiness
        tests (``> 0``, ``>= 1``, ``< 1``, ``<= 0``) agree."""
        lenv, other, flipped = (a, b, False) if isinstance(a, DInt) and a.byte_len else (b, a, True)
        o = other.value if isinstance(other, Static) else None
        opx = {"lt": "gt", "gt": "lt", "lteq": "gteq", "gteq": "lteq"}[op] if flipped else op
        nonempty = (opx, o) in (("gt", 0), ("gteq", 1))
        empty = (opx, o) in (("lt", 1), ("lteq", 0))
        if not (nonempty or empty):
            raise Unsupported("comparing the length of a string with a number (Go counts bytes)")
        assert isinstance(lenv, DInt)
        t = self.dbool(lenv.expr, canon=False)
        return t if nonempty else self.not_(t)

    def int_of_cmp(self, v: V) -> str:
        if isinstance(v, Static) and isinstance(v.value, int) and not isinstance(v.value, bool):
            return str(v.value)
        if isinstance(v, DInt):
            return v.expr
        raise Unsupported(f"comparing a number with a {type(v).__name__}")

    def contains(self, container: V, item: V) -> V:
        """``item in container``."""
        folded = self.binary(container, item, lambda c, i: i in c, self.contains, as_bool=True)
        if folded is not None:
            return folded
        if isinstance(container, Rec) and isinstance(item, Static):
            return Static(container.get(item.value) is not None)
        if isinstance(container, DMsg):
            if isinstance(item, Static) and isinstance(item.value, str):
                if container.kind == "msg" and item.value in MESSAGE_FIELDS:
                    return Static(True)
                return self.has_data(container, item.value)
            raise Unsupported("testing a runtime key of a message")
        if isinstance(container, DStr) and isinstance(item, Static) and isinstance(item.value, str):
            return self.assume_absent(item.value)
        if isinstance(container, Folded) and isinstance(item, Static) and isinstance(item.value, str):
            if not item.value.strip():
                raise Unsupported(f"testing whether message text contains {item.value!r}")
            self.assume(f"message text never contains {item.value!r} in any letter case")
            return Static(False)
        if isinstance(container, Static) and isinstance(container.value, (list, tuple, set, frozenset, dict)):
            return self._in_constant(list(container.value), item)
        if isinstance(container, Tup):
            result: V = Static(False)
            for x in container.items:
                r = self.eq(item, x)
                result = self.or_(result, lambda r=r: r)
            return result
        if isinstance(container, Static) and isinstance(container.value, str) and isinstance(item, DStr):
            raise Unsupported("testing whether a runtime string is part of a constant one")
        if isinstance(container, Poison):
            raise Unsupported(container.reason)
        raise Unsupported(f"'in' on a {type(container).__name__}")

    def _in_constant(self, options: list[Any], item: V) -> V:
        """A runtime string or number in a constant collection: Go's ``eq`` with several operands."""
        if isinstance(item, DStr):
            strs = [x for x in options if isinstance(x, str)]
            if not strs:
                return Static(False)
            x = self.str_expr(item)
            return self.dbool(f"eq {gx.arg(x)} " + " ".join(go_string(s) for s in strs))
        if isinstance(item, DInt):
            ints = [x for x in options if isinstance(x, int) and not isinstance(x, bool)]
            if not ints:
                return Static(False)
            return self.dbool(f"eq {gx.arg(item.expr)} " + " ".join(str(i) for i in ints))
        return Static(False)

    def assume_absent(self, needle: str) -> V:
        if not needle.strip():
            raise Unsupported(f"testing whether message text contains {needle!r}")
        self.assume(f"message text never contains {needle!r}")
        return Static(False)


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "/": lambda x, y: x / y, "//": lambda x, y: x // y, "%": lambda x, y: x % y,
    "**": lambda x, y: x ** y}

_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "lt": lambda x, y: x < y, "lteq": lambda x, y: x <= y, "gt": lambda x, y: x > y, "gteq": lambda x, y: x >= y}


def _static_items(value: Static) -> tuple[Static, ...]:
    """The items of a known sequence, each known (a list or tuple concatenated in the template)."""
    return tuple(Static(x) for x in compute_static(lambda: list(value.value)).value)
