"""Ollama's built-in renderers and parsers, and the chat templates a real Ollama proved they reproduce.

A Modelfile's ``RENDERER``/``PARSER`` lines make Ollama render the prompt with its own Go code for a
model family (``model/renderers``) and read the reply with another (``model/parsers``), instead of
a TEMPLATE or the GGUF's Jinja. That code is written for one template: a fine-tune whose template
differs in one character would be rendered as its base was, silently. So modelkit writes the lines
only for a template whose exact text (:func:`jinja_digest`) is in :data:`PROVEN`, a table that a
real Ollama established and re-checks (``tests/test_real_renderers.py``, ``python -m bench
renderers``): every conversation of the battery the template supports, sent to ``/api/chat`` with
``_debug_render_only`` (Ollama answers the prompt its renderer wrote), equal byte for byte to what
``apply_chat_template`` renders (:func:`prove_builtin`). The architecture's name decides nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the proving machinery (Jinja, the translator) only where a proof runs, never in a build's plan
    from modelkit.chat_template.proof import Proof
    from modelkit.chat_template.proof.conversations import Conversation
    from modelkit.golang.template import Think

PROVEN_ON = "0.32.15"
"""The Ollama release whose renderers the table was proven against."""

#: The renderers of Ollama 0.32.15 (``model/renderers/renderer.go``), each with the parser of its
#: family (``model/parsers/parsers.go``), the first release that has both (by its git tags), and the
#: BOS text it writes first (its ``LeadingBOS``; "" where it writes none).
CANDIDATES: tuple[tuple[str, str, str, str], ...] = (
    ("qwen3-coder", "qwen3-coder", "0.12.0", ""), ("qwen3-vl-instruct", "qwen3-vl-instruct", "0.12.6", ""),
    ("qwen3-vl-thinking", "qwen3-vl-thinking", "0.12.7", ""), ("qwen3.5", "qwen3.5", "0.17.1", ""),
    ("qwen3.8", "qwen3.5", "0.32.12", ""), ("ornith", "ornith", "0.30.11", ""),
    ("cogito", "cogito", "0.13.1", "<｜begin▁of▁sentence｜>"),
    ("deepseek3.1", "deepseek3", "0.13.5", "<｜begin▁of▁sentence｜>"), ("olmo3", "olmo3", "0.13.3", ""),
    ("olmo3.1", "olmo3", "0.13.4", ""), ("olmo3-think", "olmo3-think", "0.13.3", ""),
    ("olmo3-32b-think", "olmo3-think", "0.13.4", ""), ("nemotron-3-nano", "nemotron-3-nano", "0.13.4", ""),
    ("nemotron-3.5-nano", "nemotron-3.5-nano", "0.32.9", ""), ("gemma4", "gemma4", "0.20.0", "<bos>"),
    ("gemma4-small", "gemma4", "0.21.0", "<bos>"), ("gemma4-large", "gemma4", "0.21.0", "<bos>"),
    ("functiongemma", "functiongemma", "0.13.5", "<bos>"), ("glm-4.7", "glm-4.7", "0.14.3", ""),
    ("glm-ocr", "glm-ocr", "0.15.5", ""), ("lfm2", "lfm2", "0.14.3", "<|startoftext|>"),
    ("lfm2-thinking", "lfm2-thinking", "0.14.3", "<|startoftext|>"), ("laguna", "laguna", "0.22.0", "〈|EOS|〉"),
    ("poolside-v1", "poolside-v1", "0.32.3", "〈|EOS|〉"), ("cohere", "cohere", "0.30.10", "<BOS_TOKEN>"),
    ("glimmer", "glimmer", "0.32.7", "<|begin_of_text|>"),
)


@dataclass(frozen=True)
class BuiltIn:
    """A renderer and parser a real Ollama proved reproduce one template, and since when Ollama has them."""

    renderer: str
    parser: str | None
    requires: str
    template: str
    """Which template it is (llama.cpp's ``models/templates`` file it was proven on)."""
    conversations: int
    """How many renderings of the battery were equal (conversations × think settings)."""
    bos_token: str
    """The BOS the renderer writes, which the template's ``bos_token`` must be (checked where it reads it)."""
    differs: str = ""
    """The one difference accepted ("" for none): :data:`CONTINUATIONS`."""


CONTINUATIONS = ("continuations: a conversation that ends with an assistant message renders differently (Ollama's "
                 "renderer may close it and open a new assistant turn, where apply_chat_template continues it)")
"""The only difference a built-in renderer is accepted with; every other rendering must be equal."""


def battery() -> tuple[Conversation, ...]:
    """Every conversation of the battery: plain, tools and thinking, whatever the template handles,
    since a built-in parser may give the model capabilities (tools, thinking) the template lacks."""
    from modelkit.chat_template.proof.conversations import BATTERY, THINKING, TOOLS

    return BATTERY + TOOLS + THINKING


def verdict(proof: Proof) -> tuple[bool, str]:
    """Whether a renderer's proof earns it a place in :data:`PROVEN`, and the difference accepted."""
    from modelkit.chat_template.proof import SAME

    if proof.proven:
        return True, ""
    continued = [o for o in proof.failures if o.conversation.messages[-1]["role"] == "assistant"]
    others = [o for o in proof.outcomes if o.status == SAME and o.conversation.messages[-1]["role"] != "assistant"]
    if not proof.error and proof.failures and len(continued) == len(proof.failures) and others:
        return True, CONTINUATIONS
    return False, proof.summary()




#: sha256 of a template's text (:func:`jinja_digest`) -> what renders it. Established by ``python -m
#: bench renderers`` against Ollama :data:`PROVEN_ON` on llama.cpp's templates, re-checked by
#: ``tests/test_real_renderers.py``. ``requires``: the first release whose renderer and parser source
#: is the one proven (glimmer's renderer changed in 0.32.11, four releases after it appeared).
PROVEN: dict[str, BuiltIn] = {
    "6cd0e94d9b489fdb9a000743791f20e7e52b62c1e5cbb66fcc91c6716595223a": BuiltIn(
        "glimmer", "glimmer", "0.32.11", "muse-glimmer", 16, "<|begin_of_text|>", CONTINUATIONS),
    "444819b8ad4612870827ac05b9147fe9e3344d3850cae8c2790898fc514099ff": BuiltIn(
        "poolside-v1", "poolside-v1", "0.32.3", "poolside-Laguna-S-2.1", 48, "〈|EOS|〉", CONTINUATIONS),
}


def proven_digest() -> str:
    """A digest of :data:`PROVEN`: part of a Modelfile's key, so a new entry writes it again."""
    rows = sorted((k, dataclasses.astuple(v)) for k, v in PROVEN.items())
    return hashlib.sha256(repr(rows).encode("utf-8")).hexdigest()[:16]


def jinja_digest(jinja: str) -> str:
    """The sha256 of the template's text, less the one final newline Jinja drops itself
    (``keep_trailing_newline`` is off in ``apply_chat_template``): any other byte counts."""
    return hashlib.sha256(jinja.removesuffix("\n").encode("utf-8")).hexdigest()


def builtin_for(jinja: str | None, bos_token: str | None) -> BuiltIn | None:
    """The built-in renderer proven for exactly this template with this BOS, or None (an edited
    template never has one; nor one whose tokenizer's BOS is not the one the renderer writes)."""
    found = PROVEN.get(jinja_digest(jinja)) if jinja else None
    if found is None or (jinja is not None and "bos_token" in jinja and bos_token != found.bos_token):
        return None
    return found


def ollama_chat_body(model: str, conv: Conversation, think: Think = None) -> dict[str, Any]:
    """The ``/api/chat`` request a client sends for ``conv``, asking only for the rendered prompt."""
    from modelkit.chat_template.proof.conversations import ollama_message

    body: dict[str, Any] = {"model": model, "stream": False, "_debug_render_only": True, "truncate": False,
                            "messages": [ollama_message(m) for m in conv.messages]}
    if conv.tools:
        body["tools"] = list(conv.tools)
    if think is not None:
        body["think"] = bool(think)
    return body


class RenderRefused(Exception):
    """Ollama refused to render a conversation (an HTTP error, with its message)."""


#: Renders a conversation as Ollama would: (conversation, think) -> the prompt; raises RenderRefused.
BuiltinRenderer = Callable[["Conversation", "Think"], str]


def prove_builtin(jinja: str, render: BuiltinRenderer, battery: Sequence[Conversation],
                  bos_token: str | None = None, eos_token: str | None = None, add_bos_token: bool = False,
                  today: date | None = None) -> Proof:
    """Each conversation of ``battery`` rendered by Ollama (``render``) and by ``apply_chat_template``,
    with each setting of think where the template reads a thinking switch (unset: Ollama decides,
    as a client that sends no ``think`` gets). Same verdicts as :func:`..chat_template.proof.prove`."""
    from modelkit.chat_template.proof.prove import prove_renderer

    return prove_renderer(jinja, render, RenderRefused, "Ollama", battery, bos_token, eos_token, add_bos_token,
                          today)
