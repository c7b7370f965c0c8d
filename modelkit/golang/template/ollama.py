"""What Ollama adds around ``text/template``: its checks on loading, its functions, and its data.

:func:`ollama_data` builds the data exactly as Ollama's ``template.Execute`` does for a template
that uses ``.Messages``: consecutive messages of the same role merged with a blank line (tool
messages excepted), ``.System`` the system messages joined, ``.Messages`` still holding them, and
the request's ``think`` option as ``.Think``, ``.ThinkLevel`` and ``.IsThinkSet`` (:func:`think_data`).
:func:`check_ollama_parse` applies the checks Ollama makes when it loads a template, and
:func:`ollama_funcs` is its ``json``, ``currentDate`` and ``yesterdayDate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from .fmt import json_marshal
from .nodes import ActionNode, GoTemplate, IfNode, Node, Operand, Pipe, RangeNode, TemplateNode
from .parser import parse
from .values import GoMap, GoSlice, GoStruct, GoTemplateError


def identifiers(tmpl: GoTemplate) -> set[str]:
    """The field and variable names the template mentions, lower-cased, as Ollama's ``Vars`` sees them.

    Raises :class:`GoTemplateError` where Ollama's walk fails (a ``template`` call without a
    pipeline makes Ollama refuse the whole template).
    """
    names: set[str] = set()
    _walk_nodes(tmpl.root, names)
    for body in tmpl.defines.values():
        _walk_nodes(body, names)
    return names


def _walk_nodes(nodes: list[Node], names: set[str]) -> None:
    for n in nodes:
        if isinstance(n, ActionNode):
            _walk_pipe(n.pipe, names)
        elif isinstance(n, (IfNode, RangeNode)):
            _walk_pipe(n.pipe, names)
            _walk_nodes(n.body, names)
            _walk_nodes(n.orelse, names)
        elif isinstance(n, TemplateNode):
            if n.pipe is None:
                raise GoTemplateError(f"Ollama refuses {{{{template {n.name!r}}}}} without an argument")
            _walk_pipe(n.pipe, names)


def _walk_pipe(p: Pipe, names: set[str]) -> None:
    names.update(v.lower() for v in p.decl)
    for c in p.cmds:
        for a in c.args:
            _walk_operand(a, names)


def _walk_operand(a: Operand, names: set[str]) -> None:
    if a.kind == "var":
        names.add(a.value.lower())
    if a.kind == "pipe":
        if a.chain:
            return  # a ChainNode: Ollama's walk does not look inside
        _walk_pipe(a.value, names)
    names.update(x.lower() for x in a.chain)


def check_ollama_parse(source: str) -> GoTemplate:
    """Parse as Ollama does and insist on the ``.Messages`` path (the only one modelkit emits)."""
    tmpl = parse(source)
    if "messages" not in identifiers(tmpl):
        raise GoTemplateError("the template does not use .Messages, so Ollama would render it one turn at a time")
    return tmpl


def ollama_funcs(today: date) -> dict[str, Callable[..., Any]]:
    """Ollama's extra template functions (``template.go`` ``funcs``), with ``today`` as the clock."""
    return {
        "json": json_marshal,
        "currentDate": lambda *args: today.strftime("%Y-%m-%d").encode(),
        "yesterdayDate": lambda *args: (today - timedelta(days=1)).strftime("%Y-%m-%d").encode(),
    }


def collate(messages: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Ollama's ``collate``: merge consecutive same-role messages (not tool ones), gather system text."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.get("role") == "system":
            system.append(m.get("content", ""))
        if out and out[-1]["role"] == m.get("role") and m.get("role") != "tool":
            out[-1]["content"] += "\n\n" + m.get("content", "")
        else:
            out.append(dict(m))
    return "\n\n".join(system), out


#: The think levels Ollama accepts besides true and false (``api.ThinkValue``).
THINK_LEVELS = ("high", "medium", "low", "max")

#: A request's ``think``: not set (None), true or false, or a level.
Think = None | bool | str


def think_data(think: Think) -> dict[str, Any]:
    """``.Think``, ``.ThinkLevel`` and ``.IsThinkSet`` for a request's ``think``.

    As ``server/prompt.go`` ``renderPrompt`` fills ``template.Values`` with ``api.ThinkValue``'s
    ``Bool`` (any level is true) and ``String`` (true is ``"medium"``, false ``""``); ``IsThinkSet``
    says whether the request set it at all. (For a model Ollama sees as thinking-capable the chat
    route sets an unset ``think`` to true first; a TEMPLATE that never mentions ``.Thinking`` does
    not make a model so, and Ollama then refuses ``think: true`` for it.)
    """
    if think is None:
        return {"Think": False, "ThinkLevel": b"", "IsThinkSet": False}
    if isinstance(think, bool):
        return {"Think": think, "ThinkLevel": b"medium" if think else b"", "IsThinkSet": True}
    return {"Think": think in THINK_LEVELS, "ThinkLevel": str(think).encode(), "IsThinkSet": True}


def ollama_data(messages: Sequence[Mapping[str, Any]], system: str | None = None,
                think: Think = None, tools: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The data Ollama's chat path passes to a TEMPLATE that uses ``.Messages``.

    ``messages`` and ``tools`` as Ollama's API carries them (``thinking``, ``tool_calls`` with
    ``function.arguments`` an object, ``tool_name``, ``tool_call_id``; ``api.Tool``), converted as
    ``template.go`` does (``convertMessagesForTemplate``, ``convertToolsForTemplate``). ``system``
    is the Modelfile's SYSTEM, which Ollama puts first when the request has no system message of
    its own; ``think`` the request's think option (None: not set).
    """
    msgs = [dict(m) for m in messages]
    if system and (not msgs or msgs[0].get("role") != "system"):
        msgs.insert(0, {"role": "system", "content": system})
    joined, collated = collate(msgs)
    return {
        "System": joined.encode(),
        "Messages": [_template_message(m) for m in collated],
        "Tools": GoSlice(_template_tool(t) for t in tools) if tools else GoSlice(nil=True),
        "Response": b"",
        **think_data(think),
    }


def _template_message(m: Mapping[str, Any]) -> GoStruct:
    calls = [GoStruct("template.templateToolCall", {
        "ID": str(c.get("id", "")).encode(),
        "Function": GoStruct("template.templateToolCallFunction", {
            "Index": int(c["function"].get("index", 0)), "Name": str(c["function"]["name"]).encode(),
            "Arguments": _go_map(c["function"].get("arguments") or {})})})
        for c in m.get("tool_calls") or ()]
    return GoStruct("template.templateMessage", {
        "Role": str(m.get("role", "")).encode(),
        "Content": str(m.get("content", "")).encode(),
        "Thinking": str(m.get("thinking", "")).encode(),
        "Images": None,
        "ToolCalls": calls or None,
        "ToolName": str(m.get("tool_name", "")).encode(),
        "ToolCallID": str(m.get("tool_call_id", "")).encode(),
    })


def go_value(v: Any) -> Any:
    """A JSON value as Go's ``any`` holds it after ``json.Unmarshal`` (numbers are float64)."""
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, Mapping):
        return {str(k).encode(): go_value(x) for k, x in v.items()}
    return [go_value(x) for x in v]


def _go_map(v: Mapping[str, Any]) -> GoMap:
    return GoMap({str(k).encode(): go_value(x) for k, x in v.items()})


_PROPERTY_JSON = {"AnyOf": ("anyOf", True), "Type": ("type", True), "Items": ("items", True),
                  "Description": ("description", True), "Enum": ("enum", True),
                  "Properties": ("properties", True), "Required": ("required", True)}


def _template_property(p: Mapping[str, Any]) -> GoStruct:
    """``api.ToolProperty``; its type is one name, or a list of them (``PropertyType``)."""
    kind = p.get("type")
    return GoStruct("api.ToolProperty", {
        "AnyOf": None, "Type": [t.encode() for t in kind] if isinstance(kind, list) else (kind or "").encode(),
        "Items": go_value(p["items"]) if "items" in p else None,
        "Description": str(p.get("description", "")).encode(),
        "Enum": [go_value(x) for x in p["enum"]] if "enum" in p else None,
        "Properties": None, "Required": None}, json=_PROPERTY_JSON)


def _template_tool(tool: Mapping[str, Any]) -> GoStruct:
    """``templateTool``: ``api.Tool`` with its properties as a map, written as JSON when printed."""
    fn, params = tool.get("function", {}), tool.get("function", {}).get("parameters", {})
    properties = GoMap({str(k).encode(): _template_property(v) for k, v in params.get("properties", {}).items()})
    parameters = GoStruct("template.templateToolFunctionParameters", {
        "Type": str(params.get("type", "")).encode(), "Defs": None, "Items": None,
        "Required": [str(r).encode() for r in params.get("required", ())] or None, "Properties": properties},
        json={"Type": ("type", False), "Defs": ("$defs", True), "Items": ("items", True),
              "Required": ("required", True), "Properties": ("properties", False)})
    function = GoStruct("template.templateToolFunction", {
        "Name": str(fn.get("name", "")).encode(), "Description": str(fn.get("description", "")).encode(),
        "Parameters": parameters},
        json={"Name": ("name", False), "Description": ("description", False), "Parameters": ("parameters", False)})
    return GoStruct("template.templateTool", {"Type": str(tool.get("type", "")).encode(), "Items": None,
                                              "Function": function},
                    json={"Type": ("type", False), "Items": ("items", True), "Function": ("function", False)},
                    json_string=True)


class NoGoJSON(Exception):
    """The Jinja asks ``tojson`` for formatting Go's ``json`` cannot do: a difference, not a refusal."""


def go_tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
              sort_keys: bool = False) -> str:
    """Jinja's ``tojson`` as Ollama's ``json`` writes the same value (Go's ``json.Marshal``): how
    the proof renders the Jinja of a TEMPLATE with tools. Objects keep their keys' order — the
    proof's tools and arguments list them in the order Go writes them (struct fields, sorted map
    keys) — so what differs from Python's ``tojson`` is only the formatting: no space after ``,``
    and ``:``, and ``<``, ``>``, ``&`` escaped. Formatting Go cannot do is refused."""
    if indent is not None or separators is not None or sort_keys or ensure_ascii:
        raise NoGoJSON("tojson with indent, separators, sort_keys or ensure_ascii has no Go equivalent")
    return json_marshal(_ordered(go_value(value))).decode()


def _ordered(v: Any) -> Any:
    """Objects as structs whose fields are their keys, in order (``json.Marshal`` sorts map keys)."""
    if isinstance(v, dict):
        return GoStruct("object", {k.decode(): _ordered(x) for k, x in v.items()})
    if isinstance(v, list):
        return [_ordered(x) for x in v]
    return v
