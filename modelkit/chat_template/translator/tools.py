"""Tool definitions, tool calls and earlier reasoning: the parts of Ollama's data that carry them.

With ``tools=True`` (:func:`~.translation.translate`) the translator gives the Jinja what Ollama
gives a TEMPLATE (``template.go``: ``templateMessage``, ``templateTool``, ``templateToolCall``):
``tools`` is ``$.Tools`` (None when the request has none), a message's ``tool_calls``,
``reasoning_content``, ``tool_call_id`` and ``name`` are its ``.ToolCalls``, ``.Thinking``,
``.ToolCallID`` and ``.ToolName`` — each *undefined* where Ollama's field is empty, as a client
leaves the key out — and a tool's or a call's parts are fields of Ollama's structs. ``tojson``
of those becomes Ollama's ``json``: Go's ``json.Marshal``, which writes no space after ``,``
and ``:`` (and sorts map keys, escapes ``<>&``), so such a TEMPLATE equals the Jinja only up to
that; the proof renders the Jinja with a ``tojson`` that writes as Go does and says so.

Without it, these keys stay absent (what a plain chat sends), and reading them is reported
(:attr:`~.translation.Translation.ignored`).
"""

from __future__ import annotations

from .choices import dist, make_choice
from .ollama_data import IGNORED_MESSAGE_KEYS
from .state import State
from .values import Atom, Choice, DList, DMsg, DStr, Static, Unsupported, V, compute_static, is_undefined

#: A message's keys that Ollama's data carries once tools are translated: (Go field, value kind).
MESSAGE_DATA = {"reasoning_content": ("Thinking", "str"), "tool_calls": ("ToolCalls", "call"),
                "tool_call_id": ("ToolCallID", "str"), "name": ("ToolName", "str")}

#: The parts of a tool definition or call: key -> (Go field, kind); kind ``str`` is a string,
#: ``str?`` one that is undefined when empty, ``=X`` the constant X, any other a :class:`DMsg` kind.
PARTS: dict[str, dict[str, tuple[str, str]]] = {
    "tool": {"type": ("Type", "str"), "function": ("Function", "function")},
    "function": {"name": ("Name", "str"), "description": ("Description", "str"),
                 "parameters": ("Parameters", "parameters")},
    "parameters": {"type": ("Type", "str"), "properties": ("Properties", "properties")},
    "call": {"id": ("ID", "str?"), "type": ("", "=function"), "function": ("Function", "call_function")},
    "call_function": {"name": ("Name", "str"), "arguments": ("Arguments", "arguments")},
}

#: What ``tojson`` may write with Go's ``json``: whole definitions, parameters and arguments, and
#: one argument's value (a number, a boolean, an object or a list).
JSON_KINDS = ("tool", "function", "parameters", "properties", "arguments", "number", "bool", "object", "array")

#: The Go type (``printf "%T"``) of an argument's value after ``json.Unmarshal``, by kind.
VALUE_TYPES = {"str": "string", "number": "float64", "bool": "bool", "object": "map[string]interface {}",
               "array": "[]interface {}"}


def tools_value(st: State) -> V:
    """``tools``: the request's tool definitions, or None."""
    if not st.with_tools:
        st.report.ignore("tool definitions")
        return Static(None)
    return make_choice(st, [("$.Tools", DList("$.Tools", suffix=False, item="tool")), (None, Static(None))])


def data(st: State, obj: DMsg, key: str) -> tuple[str | None, V] | None:
    """Key ``key`` of a message or tool struct: (the Go condition under which it is defined,
    None for always; its value), or None where it is never defined."""
    if obj.kind == "msg":
        if not st.with_tools or key not in MESSAGE_DATA:
            if key in IGNORED_MESSAGE_KEYS:
                st.report.ignore(IGNORED_MESSAGE_KEYS[key])
            return None
        field, kind = MESSAGE_DATA[key]
        expr = obj.field_expr(field)
        return expr, st.facts.atom(expr) if kind == "str" else DList(expr, suffix=False, item=kind)
    parts = PARTS.get(obj.kind)
    if parts is None:
        raise Unsupported(f"a key of the tool {obj.kind.replace('_', ' ')} (Go sorts map keys)")
    if key not in parts:
        return None
    field, kind = parts[key]
    if kind.startswith("="):
        return None, Static(kind[1:])
    expr = obj.field_expr(field)
    if kind in ("str", "str?"):
        return (expr if kind == "str?" else None), st.facts.atom(expr)
    return None, DMsg(expr, kind=kind)


def data_or(st: State, obj: DMsg, key: str, default: V) -> V:
    """Key ``key`` where it is defined, else ``default`` (``obj[key]``, ``obj.get(key, default)``)."""
    found = data(st, obj, key)
    if found is None:
        return default
    cond, value = found
    return value if cond is None else make_choice(st, [(cond, value), (None, default)])


def has_data(st: State, obj: DMsg, key: str) -> V:
    """``key in obj``."""
    found = data(st, obj, key)
    if found is None:
        return Static(False)
    return Static(True) if found[0] is None else st.facts.dbool(found[0])


def optional_list(st: State, v: Choice) -> DList | None:
    """A list of tool data where it is defined, else undefined, empty or None: the list itself,
    for a loop (Go ranges over a nil slice as Jinja over nothing: not at all; over None Jinja
    raises, which the proof counts as outside the template's contract)."""
    options = st.facts.flatten(v)
    lists = {x for _, x in options if isinstance(x, DList) and x.item != "msg"}
    rest = [x for _, x in options if not isinstance(x, DList)]
    if len(lists) == 1 and all(isinstance(x, Static) and (is_undefined(x.value) or x.value in ([], (), None))
                               for x in rest):
        return lists.pop()
    return None


def arguments_items(obj: DMsg) -> DList:
    """``arguments.items()``: a Go ``range $key, $value`` over the map, in sorted key order
    (Jinja goes in the client's order: the proof's arguments are listed sorted)."""
    if obj.kind != "arguments":
        raise Unsupported(f"the items of the tool {obj.kind.replace('_', ' ')}")
    return DList(obj.expr, suffix=False, item="argument")


def argument_value(st: State, var: str) -> V:
    """One argument's value, by its Go type: a string, a number, a boolean, an object or a list."""
    def is_type(kind: str) -> str:
        return f'eq (printf "%T" {var}) "{VALUE_TYPES[kind]}"'
    return Choice(((is_type("str"), st.facts.atom(var)), (is_type("number"), DMsg(var, kind="number")),
                   (is_type("bool"), DMsg(var, kind="bool")), (is_type("object"), DMsg(var, kind="object")),
                   (None, DMsg(var, kind="array"))))


def to_json(st: State, value: V, kwargs: dict[str, V]) -> V | None:
    """``tojson`` of tool data: Ollama's ``json`` (None where it does not apply)."""
    if not st.with_tools:
        return None
    if any(k != "ensure_ascii" or v != Static(False) for k, v in kwargs.items()):
        raise Unsupported(f"tojson with {', '.join(sorted(kwargs))} (Ollama's json cannot indent or sort)")
    if isinstance(value, DMsg) and value.kind in JSON_KINDS:
        return DStr((Atom(f"json {value.expr}"),))
    if isinstance(value, DList) and value.item == "tool":
        return DStr((Atom(f"json {value.expr}"),))
    if isinstance(value, DStr) and len(value.pieces) == 1 and isinstance(value.pieces[0], Atom) \
            and value.pieces[0].plain:
        return DStr((Atom(f"json {value.pieces[0].expr}"),))
    if isinstance(value, Choice):
        return dist(st, value, lambda x: _json_or_raise(st, x, kwargs))
    return None


def _json_or_raise(st: State, value: V, kwargs: dict[str, V]) -> V:
    out = to_json(st, value, kwargs)
    if out is not None:
        return out
    if isinstance(value, Static):
        return compute_static(lambda: st.jinja.env.filters["tojson"](value.value))
    raise Unsupported("tojson of runtime values other than tool definitions and arguments")
