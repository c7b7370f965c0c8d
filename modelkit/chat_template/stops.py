"""Stop strings for Ollama (``PARAMETER stop``), derived from the template and the tokenizer.

llama.cpp already ends generation at the tokenizer's end-of-generation tokens, but a fine-tuned
model that drifts past its end of turn keeps talking as the next speaker unless Ollama stops it.
So the stops are: the marker the template writes right after an assistant message (``<|im_end|>``,
``<|eot_id|>``, ``<end_of_turn>``), the marker that opens a user turn (``<|im_start|>``,
``<|start_header_id|>``), and the EOS and end-of-turn tokens the metadata names. Markers are
found by rendering a tiny conversation with the Jinja and reading what surrounds the messages.
"""

from __future__ import annotations

import re

import jinja2

from .reference import RenderContext, TemplateRaised, render_chat

_USER = "qz7userqz7"
_ASSISTANT = "qz7assistantqz7"
# What a special-token marker looks like: <...>, <|...|>, [INST]-style, or DeepSeek's <｜...｜>.
_MARKER = re.compile(r"<\|[^<>\s]{1,48}\|>|<｜[^<>\s]{1,48}｜>|</?[A-Za-z_][^<>\s]{0,40}>|\[/?[A-Z_]{2,30}\]")


def _first_marker(text: str) -> str | None:
    found = _MARKER.search(text)
    return found.group() if found else None


def derive_stops(template: str, bos_token: str | None, eos_token: str | None,
                 eot_tokens: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Suggested ``PARAMETER stop`` values, most specific first, without duplicates."""
    stops: list[str] = []
    ctx = RenderContext(bos_token=bos_token, eos_token=eos_token)
    convo = [{"role": "user", "content": _USER}, {"role": "assistant", "content": _ASSISTANT},
             {"role": "user", "content": _USER}]
    try:
        rendered = render_chat(template, convo, ctx)
    except (TemplateRaised, jinja2.TemplateError):
        rendered = ""
    if _ASSISTANT in rendered:
        after = rendered.split(_ASSISTANT, 1)[1].split(_USER, 1)[0].lstrip()
        end = _first_marker(after)
        if end and after.startswith(end):
            stops.append(end)
    if _USER in rendered:
        first_user = rendered.split(_USER, 1)[0]
        if bos_token and first_user.startswith(bos_token):
            first_user = first_user[len(bos_token):]
        # The user turn's opener: a marker naming the role (<|user|>, <｜User｜>), else the last
        # marker before the role's name (<|im_start|>user, <|start_header_id|>user), else the last.
        markers = [m.group() for m in _MARKER.finditer(first_user)]
        named = [m for m in markers if "user" in m.lower()]
        where = first_user.rfind("user")
        before = [m.group() for m in _MARKER.finditer(first_user[:where])] if where >= 0 else []
        opener = named[-1] if named else before[-1] if before else markers[-1] if markers else None
        if opener and opener != bos_token:
            stops.append(opener)
    for tok in (*eot_tokens, eos_token):
        if tok and tok != bos_token:
            stops.append(tok)
    out: list[str] = []
    for s in stops:
        if s.strip() and s not in out:
            out.append(s)
    return tuple(out)
