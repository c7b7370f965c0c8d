"""Stop strings for Ollama (``PARAMETER stop``), derived from the template and the tokenizer.

llama.cpp already ends generation at the tokenizer's end-of-generation tokens, but a fine-tuned
model that drifts past its end of turn keeps talking as the next speaker unless Ollama stops it.
So the stops are: the marker the template writes right after an assistant message (``<|im_end|>``,
``<|eot_id|>``, ``<end_of_turn>``), the marker that opens a user turn (``<|im_start|>``,
``<|start_header_id|>``), and the EOS and end-of-turn tokens the metadata names. Markers are
found by rendering a tiny conversation with the Jinja and reading what surrounds the messages.

A template that renders tool calls ends a tool-call turn with markers of its own (``<|eom_id|>``,
gpt-oss's ``<|call|>``, ``<|observation|>``), so a second conversation is rendered: a user, an
assistant that calls one tool, the tool's result, a user. Its stops are the first marker after
the call that is not part of the call, and the marker right after that one, which opens the
tool's result (``[TOOL_RESULTS]``, ``<|start_header_id|>``; ``<tool_response>`` only where it
follows the end directly, as in GLM's, not inside a ``<|im_start|>user`` turn).

The rule that keeps them safe: Ollama cuts a stop string out of the output, and its tool parser
needs the whole call, so **a stop is never a piece of the call's syntax** — nothing that occurs
in the model's text from its turn's start to the end of the call (``<tool_call>``,
``[TOOL_CALLS]``, Gemma's ``<|"|>``), and no marker closing what the call opened
(``</tool_call>``, ``<｜tool▁calls▁end｜>``, ``<|END_ACTION|>``). The rule holds for every stop,
also the plain-turn ones: one that occurs in a tool call is dropped, since with it the model
could never call a tool (GigaChat3 writes its call after the assistant's ``<|message_sep|>``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from .reference import RenderContext, TemplateRaised, render_chat

_USER = "qz7userqz7"
_ASSISTANT = "qz7assistantqz7"
_LAST = "qz7lastqz7"
_TOOL = "qz7lookup"
_VALUE = "qz7valueqz7"
_RESULT = "qz7resultqz7"
_CALL_ID = "qz7call01"  # nine letters and digits: Mistral's templates refuse any other id
# What a special-token marker looks like: <...>, <|...|>, [INST]-style, or DeepSeek's <｜...｜>.
_MARKER = re.compile(r"<\|[^<>\s]{1,48}\|>|<｜[^<>\s]{1,48}｜>|</?[A-Za-z_][^<>\s]{0,40}>|\[/?[A-Z_]{2,30}\]")
# In a tool turn also Gemma 4's half-open markers (<|tool_call>, <|turn>) and closing tags of any
# name (</｜DSML｜invoke>, which close what the call opened).
_PIECE = re.compile(_MARKER.pattern + r"|<\|[A-Za-z_][^<>\s|]{0,40}>|</[^<>\s]{1,48}>")
_PAIR_WORDS = re.compile(r"(?i)(?<![a-z])(begin|start|open|prefix|end|close|suffix)(?![a-z])")
TOOLS: tuple[Mapping[str, Any], ...] = ({"type": "function", "function": {
    "name": _TOOL, "description": "Look something up.",
    "parameters": {"type": "object", "properties": {"qz7arg": {"type": "string", "description": "What to look up."}},
                   "required": ["qz7arg"]}}},)


def _first_marker(text: str) -> str | None:
    found = _MARKER.search(text)
    return found.group() if found else None


def derive_stops(template: str, bos_token: str | None, eos_token: str | None,
                 eot_tokens: tuple[str, ...] = (), *, tool_calls: bool = True) -> tuple[str, ...]:
    """Suggested ``PARAMETER stop`` values, most specific first, without duplicates.

    ``tool_calls=False``: only the plain turn's stops, as before tool-call turns were read (a
    template that renders no tool call gets the same either way).
    """
    ctx = RenderContext(bos_token=bos_token, eos_token=eos_token)
    stops = _plain_stops(template, ctx)
    turns = _tool_turns(template, ctx) if tool_calls else []
    for turn in turns:
        stops += [m for m in (turn.end, turn.opener) if m and m != bos_token]
    stops += [tok for tok in (*eot_tokens, eos_token) if tok and tok != bos_token]
    out: list[str] = []
    for s in stops:
        if s.strip() and s not in out and not any(s in turn.call for turn in turns):
            out.append(s)
    return tuple(out)


def _plain_stops(template: str, ctx: RenderContext) -> list[str]:
    """The marker after an assistant message and the marker that opens a user turn."""
    stops: list[str] = []
    convo = [{"role": "user", "content": _USER}, {"role": "assistant", "content": _ASSISTANT},
             {"role": "user", "content": _USER}]
    rendered = _render(template, convo, ctx) or ""
    if _ASSISTANT in rendered:
        after = rendered.split(_ASSISTANT, 1)[1].split(_USER, 1)[0].lstrip()
        end = _first_marker(after)
        if end and after.startswith(end):
            stops.append(end)
    if _USER in rendered:
        first_user = rendered.split(_USER, 1)[0]
        if ctx.bos_token and first_user.startswith(ctx.bos_token):
            first_user = first_user[len(ctx.bos_token):]
        # The user turn's opener: a marker naming the role (<|user|>, <｜User｜>), else the last
        # marker before the role's name (<|im_start|>user, <|start_header_id|>user), else the last.
        markers = [m.group() for m in _MARKER.finditer(first_user)]
        named = [m for m in markers if "user" in m.lower()]
        where = first_user.rfind("user")
        before = [m.group() for m in _MARKER.finditer(first_user[:where])] if where >= 0 else []
        opener = named[-1] if named else before[-1] if before else markers[-1] if markers else None
        if opener and opener != ctx.bos_token:
            stops.append(opener)
    return stops


@dataclass(frozen=True)
class ToolTurn:
    """An assistant turn that calls a tool, as the template renders it after the generation prompt.

    ``call``: the model's text from its turn's start through the call's closing syntax, which
    Ollama's tool parser reads (no stop may occur in it); ``end``: the marker right after the call
    that ends the turn; ``opener``: the marker that opens the tool's result right after ``end``.
    """

    call: str
    end: str | None
    opener: str | None


def tool_conversations() -> Iterator[list[dict[str, Any]]]:
    """The tool conversations tried, in order, until the template renders one.

    Arguments as a mapping (Hugging Face's shape), then as a JSON string (OpenAI's, which
    functionary concatenates); then each again with the assistant's answer after the tool result,
    since Mistral's templates only accept a tool exchange that the assistant closes.
    """
    for answered in (False, True):
        for arguments in ({"qz7arg": _VALUE}, json.dumps({"qz7arg": _VALUE})):
            call = {"id": _CALL_ID, "type": "function", "function": {"name": _TOOL, "arguments": arguments}}
            convo: list[dict[str, Any]] = [
                {"role": "user", "content": _USER},
                {"role": "assistant", "content": "", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": _CALL_ID, "name": _TOOL, "content": _RESULT}]
            if answered:
                convo.append({"role": "assistant", "content": _ASSISTANT})
            yield [*convo, {"role": "user", "content": _LAST}]


def _render(template: str, convo: Sequence[Mapping[str, Any]], ctx: RenderContext,
            tools: Sequence[Mapping[str, Any]] | None = None) -> str | None:
    try:
        return render_chat(template, convo, ctx, tools)
    except (TemplateRaised, jinja2.TemplateError):
        return None


def _turn_start(rendered: str, at: int, tail: str) -> int:
    """Where the model's own text begins: after the generation prompt's tail (what the prompt
    writes after the user's message), or after as much of it as the rendering shares, never
    inside a marker (a thinking template's prompt opens ``<think>`` where history has ``</think>``)."""
    rest = rendered[at:]
    n = 0
    while n < min(len(tail), len(rest)) and tail[n] == rest[n]:
        n += 1
    for m in _PIECE.finditer(rest):
        if m.start() < n < m.end():
            return at + m.start()
    return at + n


def _pair_name(piece: str) -> str:
    """A marker's name without its brackets and begin/end words: ``<｜tool▁calls▁end｜>`` and
    ``<｜tool▁calls▁begin｜>`` both give ``tool calls``, ``</tool_call>`` and ``<tool_call>`` too."""
    name = re.split(r"[\s=]", piece.strip("<>[]|/｜"), maxsplit=1)[0].strip("<>[]|/｜")
    words = _PAIR_WORDS.sub(" ", re.sub(r"[_▁:\-]", " ", name))
    return " ".join(words.lower().split())


def _is_call_syntax(piece: str, call: str) -> bool:
    """Whether ``piece`` belongs to the call: it occurs in it, or closes something the call opened
    (``</parameter>`` after ``<parameter name="x">``, ``<|tool_call_end|>`` after ``<|tool_call_begin|>``)."""
    if piece in call:
        return True
    if piece.startswith("</") and re.search("<" + re.escape(piece[2:-1]) + r"[\s=>]", call):
        return True
    name = _pair_name(piece)
    return bool(name) and any(_pair_name(m.group()) == name for m in _PIECE.finditer(call))


def _read_tool_turn(rendered: str, prompt: str | None) -> ToolTurn | None:
    """The tool-call turn of a rendered tool conversation; None when the template does not render
    the call (the argument's value is not between the user's message and the tool's result), or
    renders no prompt to tell where the model's own text begins.

    After the argument's value, the pieces of call syntax are skipped (they belong to the call);
    the first other marker ends the turn if only punctuation and the call's id lie before it —
    words there (MiniMax's ``]~b]tool``) mean a new turn has begun without a marker we know.
    """
    at = rendered.find(_USER)
    result = rendered.find(_RESULT, at + 1)
    value = rendered.rfind(_VALUE, at, result)
    if at < 0 or result < 0 or value < 0 or prompt is None or _USER not in prompt:
        return None
    start = _turn_start(rendered, at + len(_USER), prompt.split(_USER, 1)[1])
    base = call_end = value + len(_VALUE)
    for m in _PIECE.finditer(rendered[base:result]):
        lo, hi = base + m.start(), base + m.end()
        if _is_call_syntax(m.group(), rendered[start:call_end]):
            call_end = hi
            continue
        if re.search(r"\w", rendered[call_end:lo].replace(_CALL_ID, "").replace('"id"', "")):
            break
        call = rendered[start:lo]
        return ToolTurn(call, m.group(), _opener(rendered[hi:result], call))
    return ToolTurn(rendered[start:call_end], None, None)


def _opener(after_end: str, call: str) -> str | None:
    """The marker right after the turn's end (whitespace between), unless the call holds it."""
    found = _PIECE.match(after_end.lstrip())
    return found.group() if found and found.group() not in call else None


def tool_turns(template: str, bos_token: str | None, eos_token: str | None) -> list[ToolTurn]:
    """The tool-call turns :func:`derive_stops` reads its tool-turn stops from."""
    return _tool_turns(template, RenderContext(bos_token=bos_token, eos_token=eos_token))


def _tool_turns(template: str, ctx: RenderContext) -> list[ToolTurn]:
    """The tool-call turns the template renders: the first tool conversation it accepts, and, for
    a template that reads ``builtin_tools`` (Llama 3.1's ``<|python_tag|>`` calls, which end in
    ``<|eom_id|>``), the same call to a builtin tool. Empty when it renders no tool call."""
    turns: list[ToolTurn] = []
    contexts = [ctx]
    if "builtin_tools" in template:
        contexts.append(RenderContext(ctx.bos_token, ctx.eos_token, {**ctx.extra, "builtin_tools": [_TOOL]}, ctx.now))
    for c in contexts:
        prompt = _render(template, [{"role": "user", "content": _USER}], c, TOOLS)
        for convo in tool_conversations():
            rendered = _render(template, convo, c, TOOLS)
            turn = _read_tool_turn(rendered, prompt) if rendered else None
            if turn is not None:
                turns.append(turn)
                break
    return turns
