"""Jinja statements, translated: one function per kind of statement node, and the walk they make up.

:func:`stmts` is the door for a list of statements; it looks each node's class up in
:data:`_STATEMENTS`: output here, ``if`` in :mod:`.branches`, ``for`` in :mod:`.loops`,
assignments in :mod:`.binding`, expressions in :mod:`.expressions`. A statement where the Jinja
raises whatever the conversation becomes a Go error, and the statements after it are dropped.
:data:`WALK` hands :func:`stmts` and :func:`~.expressions.ev` to the parts below that recurse
into the template (macros, branches, loop bodies).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jinja2.nodes as jn

from ..reference import GENERATION_METHOD
from .binding import assign
from .branches import if_stmt
from .expressions import ev, filter_node
from .goast import Raise, Text
from .loops import for_stmt, loop_control
from .nesting import Scope
from .state import State, Walk
from .text import nodes_value, write
from .values import MacroV, StaticRaise, Unsupported


def stmts(st: State, nodes: Sequence[jn.Node], scope: Scope) -> bool:
    """Translate statements into the output; False when they never complete (raise/break)."""
    for node in nodes:
        try:
            if not stmt(st, node, scope):
                return False
        except StaticRaise as exc:
            st.emitter.emit(Raise(str(exc)))
            return False
    return True


def stmt(st: State, node: jn.Node, scope: Scope) -> bool:
    """Translate one statement; False when it never completes (it raises, breaks or continues)."""
    translate = _STATEMENTS.get(type(node))
    if translate is None:
        raise Unsupported(f"the {type(node).__name__} statement")
    return translate(st, node, scope)


def _output(st: State, node: jn.Output, scope: Scope) -> bool:
    for child in node.nodes:
        if isinstance(child, jn.TemplateData):
            st.emitter.emit(Text(child.data))
        else:
            write(st, ev(st, child, scope))
    return True


def _assign(st: State, node: jn.Assign, scope: Scope) -> bool:
    assign(st, node.target, ev(st, node.node, scope), scope)
    return True


def _set_block(st: State, node: jn.AssignBlock, scope: Scope) -> bool:
    """``{% set x %}...{% endset %}``: the captured output, as a string value."""
    with st.emitter.capture() as body:
        completes = stmts(st, node.body, scope)
    if not completes:
        st.emitter.emit(*body)
        return False
    value = nodes_value(body)
    if node.filter is not None:
        value = filter_node(st, node.filter, value, scope)
    assign(st, node.target, value, scope)
    return True


def _macro(st: State, node: jn.Macro, scope: Scope) -> bool:
    scope.vars[node.name] = MacroV(node, scope)
    return True


def _call_block(st: State, node: jn.CallBlock, scope: Scope) -> bool:
    """``{% generation %}`` blocks (transformers' marker for assistant text) are their body."""
    call = node.call
    if isinstance(call, jn.Call) and isinstance(call.node, jn.ExtensionAttribute) \
            and call.node.name == GENERATION_METHOD:
        return stmts(st, node.body, scope)
    raise Unsupported("{% call %} blocks")


def _loop_control(st: State, node: jn.Break | jn.Continue, scope: Scope) -> bool:
    return loop_control(st, isinstance(node, jn.Break))


def _expr_stmt(st: State, node: jn.ExprStmt, scope: Scope) -> bool:
    ev(st, node.node, scope)
    return True


def _filter_block(st: State, node: jn.FilterBlock, scope: Scope) -> bool:
    with st.emitter.capture() as body:
        completes = stmts(st, node.body, scope)
    write(st, filter_node(st, node.filter, nodes_value(body), scope))
    return completes


def _with(st: State, node: jn.With, scope: Scope) -> bool:
    inner = Scope(scope)
    for target, expr in zip(node.targets, node.values):
        assign(st, target, ev(st, expr, scope), inner)
    return stmts(st, node.body, inner)


def _scope(st: State, node: jn.Scope, scope: Scope) -> bool:
    return stmts(st, node.body, Scope(scope))


def _eval_context(st: State, node: jn.EvalContextModifier, scope: Scope) -> bool:
    return stmts(st, getattr(node, "body", []), scope)


#: Each kind of statement node and the function that translates it.
_STATEMENTS: dict[type[jn.Node], Callable[[State, Any, Scope], bool]] = {
    jn.Output: _output, jn.If: if_stmt, jn.For: for_stmt, jn.Assign: _assign, jn.AssignBlock: _set_block,
    jn.Macro: _macro, jn.CallBlock: _call_block, jn.Break: _loop_control, jn.Continue: _loop_control,
    jn.ExprStmt: _expr_stmt, jn.FilterBlock: _filter_block, jn.With: _with, jn.Scope: _scope,
    jn.ScopedEvalContextModifier: _eval_context, jn.EvalContextModifier: _eval_context,
}

#: The walk over the template, for the parts that recurse into it (:class:`~.state.Walk`).
WALK = Walk(expression=ev, statements=stmts)
