"""The build's route through the proof: translate, prove, and show Ollama what was proven.

:func:`translate_and_prove` first tries the TEMPLATE that renders tools and reasoning (where the
Jinja reads them), and keeps it only where it is proven whole; where the translation cannot
follow the template's thinking switch, it takes the translation that leaves the switch at the
template's default, proven with think unset and saying so. A TEMPLATE kept with tools gets the
declaration Ollama reads (:mod:`.declare`).
"""

from __future__ import annotations

import dataclasses
from datetime import date

from ..translator import Translation, Unsupported, translate
from .declare import declared_for_ollama
from .prove import Proof, prove, think_switches_read


def translate_and_prove(source: str, bos_token: str | None, eos_token: str | None, add_bos_token: bool,
                        today: date | None = None) -> tuple[Translation, Proof]:
    """Translate and prove: with tools and reasoning where that is proven, else without.

    A template that reads tools, tool calls or earlier reasoning is first translated to render
    them from Ollama's data (:mod:`..translator.tools`) and proven on :data:`TOOL_BATTERY`; the
    rule (README, "Tools in the TEMPLATE"): that TEMPLATE is taken only where every conversation
    renders as the Jinja's, up to :data:`GO_JSON_NOTE`, and no branch of the Jinja was left
    untranslated (a tool request must never reach a Go error) — then Ollama, before and since
    native chat mode, renders tools and thinking with it. Otherwise tools are left to the GGUF's
    Jinja and the TEMPLATE renders plain chats (:func:`_translate_and_prove`).
    Raises :class:`~..translator.Unsupported` when the template cannot be translated at all.
    """
    if reads_tool_data(source):
        try:
            tr, proof = _translate_and_prove(source, bos_token, eos_token, add_bos_token, today, tools=True)
        except Unsupported:
            pass
        else:
            if tr.tools and proof.proven and not tr.untranslated:
                tr = dataclasses.replace(tr, go_template=declared_for_ollama(tr.go_template, proof, source))
                return tr, prove(tr.go_template, source, bos_token, eos_token, add_bos_token, today=today,
                                 think=proof.think, think_note=proof.think_note)
    return _translate_and_prove(source, bos_token, eos_token, add_bos_token, today, tools=False)


def reads_tool_data(jinja_source: str) -> bool:
    """Whether the Jinja mentions tools, tool calls or earlier reasoning at all."""
    return any(word in jinja_source for word in ("tools", "tool_calls", "reasoning_content"))


def _translate_and_prove(source: str, bos_token: str | None, eos_token: str | None, add_bos_token: bool,
                         today: date | None, tools: bool) -> tuple[Translation, Proof]:
    """Translate, following Ollama's think where the template reads a thinking switch, and prove.

    Where the switch cannot be followed (the translation refuses it, or is not proven with think
    set), the translation that leaves it at the template's default is proven with think unset,
    and its proof says, in :attr:`Proof.think_note`, that the TEMPLATE does not follow think.
    """
    first: tuple[Translation, Proof] | None = None
    try:
        tr = translate(source, bos_token, eos_token, add_bos_token, tools=tools)
        proof = prove(tr.go_template, source, bos_token, eos_token, add_bos_token, today=today)
        if proof.proven or not proof.follows_think:
            return tr, proof
        first, why = (tr, proof), proof.summary().removeprefix("not proven: ")
    except Unsupported as exc:
        if not think_switches_read(source):
            raise
        why = str(exc)
    try:
        plain = translate(source, bos_token, eos_token, add_bos_token, follow_think=False, tools=tools)
    except Unsupported:
        if first is None or any(o.think is None for o in first[1].failures):
            raise  # not even think unset renders right: what cannot be translated is the answer
        return first
    note = f"the TEMPLATE does not follow Ollama's think option ({why})"
    fallback = prove(plain.go_template, source, bos_token, eos_token, add_bos_token, today=today,
                     think=(None,), think_note=note)
    return (plain, fallback) if fallback.proven or first is None else first
