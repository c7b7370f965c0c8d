"""Where an image lands in the prompt: the template's place for it, against the place each of Ollama's engines gives it.

A client shows an image as a content part (``{"type": "image"}``) where it belongs in its message,
and the model's template writes its image text there (Gemma 3: ``<start_of_image>``, which the
processor expands into the image's tokens). Ollama keeps images apart from the text
(``api.Message.images``) and places them itself (``server/prompt.go``, ``llm/llama_server.go``):

- with the Go TEMPLATE, ``[img-N]`` before the message's text (or at an ``[img]`` the text holds);
  its runner has llama.cpp's mtmd put the image there, wrapped in the model's own image tokens;
- in native chat mode, the text part first and the image parts after it, which llama.cpp's Jinja
  engine renders with the template's image text.

So for each conversation of :data:`IMAGES` and each engine, one question: does the image land
where the template puts it, with the same text around it? The template's image text is found by
rendering each conversation with and without its images; what the images add, and where, is what
the engine must match with its own image (the image's tokens themselves are mtmd's and the
processor's, not the template's). A template that writes nothing for an image has no place for it:
said, not counted.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from modelkit.golang.template import GoTemplateError, check_ollama_parse, execute, ollama_data

from ..reference import RenderContext, TemplateRaised, compile_template, render_chat
from .conversations import SYSTEM, Conversation
from .prove import DIFFERS, OUTSIDE, SAME, expected_prompt, first_difference

IMAGE: dict[str, str] = {"type": "image"}
GO_TEMPLATE, NATIVE = "Go TEMPLATE", "native chat mode"


def _parts(role: str, *parts: dict[str, str] | str) -> dict[str, Any]:
    return {"role": role, "content": [p if isinstance(p, dict) else {"type": "text", "text": p} for p in parts]}


IMAGES: tuple[Conversation, ...] = (
    Conversation("image+question", (_parts("user", IMAGE, "What is in the picture?"),)),
    Conversation("system+image+question", ({"role": "system", "content": SYSTEM},
                                           _parts("user", IMAGE, "Describe it in one line."))),
    Conversation("image, answer, question", (_parts("user", IMAGE, "What colour is it?"),
                                             {"role": "assistant", "content": "Red."},
                                             {"role": "user", "content": "And the shape?"})),
    Conversation("question+image", (_parts("user", "Look at this:", IMAGE),)),
    Conversation("two images", (_parts("user", IMAGE, IMAGE, "Which is larger?"),)),
)
"""Conversations that show images, in the places clients put them (the last two are where Ollama's
Go TEMPLATE, which always writes images first and knows no order between them and the text, cannot follow)."""


@dataclass(frozen=True)
class Placement:
    """One conversation on one engine: ``status`` as the text proof's (same, differs, outside)."""

    conversation: str
    engine: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class ImageProof:
    """Every placement of :data:`IMAGES` on both engines."""

    placements: tuple[Placement, ...]
    error: str = ""

    def summary(self, engine: str = GO_TEMPLATE) -> str:
        """One line for ``engine``: where its images land, against the template."""
        if self.error:
            return f"images: not proven ({self.error})"
        mine = [p for p in self.placements if p.engine == engine]
        same = [p for p in mine if p.status == SAME]
        differ = [p for p in mine if p.status == DIFFERS]
        outside = sorted({p.detail for p in mine if p.status == OUTSIDE})
        text = f"images ({engine}): placed as the template places them in {len(same)} of {len(mine)} conversations"
        if differ:
            text += "; elsewhere in " + "; ".join(f"'{p.conversation}' ({p.detail})" for p in differ)
        return text + (f"; not placed: {'; '.join(outside)}" if outside else "")


def prove_images(go_template: str, jinja_source: str, bos_token: str | None, eos_token: str | None,
                 add_bos_token: bool, today: date | None = None) -> ImageProof:
    """Each conversation of :data:`IMAGES`, its images placed by the template and by each engine."""
    day = today or date.today()
    ctx = RenderContext(bos_token=bos_token, eos_token=eos_token, now=lambda: datetime.combine(day, time(12, 0)))
    try:
        compiled = compile_template(jinja_source, ctx.now)
        check_ollama_parse(go_template)
    except GoTemplateError as exc:
        return ImageProof((), f"the Go template is not valid for Ollama: {exc}")
    except Exception as exc:  # noqa: BLE001 - any parse failure is the template's
        return ImageProof((), f"the Jinja does not parse: {exc}")

    def reference(messages: Sequence[dict[str, Any]]) -> str:
        return expected_prompt(render_chat(compiled, messages, ctx), bos_token, add_bos_token)

    placements: list[Placement] = []
    for conv in IMAGES:
        placements.append(_place(conv, GO_TEMPLATE, reference,
                                 lambda c: execute(go_template, ollama_data(_ollama_messages(c)), day)))
        placements.append(_place(conv, NATIVE, reference, lambda c: _tagged(reference, _native_order(c))))
    return ImageProof(tuple(placements))


def _place(conv: Conversation, engine: str, reference: Callable[[Sequence[dict[str, Any]]], str],
           render: Callable[[Sequence[dict[str, Any]]], str]) -> Placement:
    """Where ``render`` (the engine, ``[img-N]`` standing for each image) puts the images of ``conv``,
    against where the template does."""
    try:
        wanted = _tagged(reference, conv.messages)
    except TemplateRaised as exc:
        return Placement(conv.name, engine, OUTSIDE, f"the template refuses it: {exc}"[:120])
    except _NoPlace as exc:
        return Placement(conv.name, engine, OUTSIDE, str(exc))
    try:
        placed = render(conv.messages)
    except (GoTemplateError, TemplateRaised, _NoPlace) as exc:
        return Placement(conv.name, engine, DIFFERS, f"{engine} fails: {exc}"[:120])
    if placed == wanted:
        return Placement(conv.name, engine, SAME)
    return Placement(conv.name, engine, DIFFERS, _where(engine, wanted, placed))


class _NoPlace(Exception):
    """The template writes nothing for an image (or merges it into other text): it has no place for one."""


def _tagged(reference: Callable[[Sequence[dict[str, Any]]], str], messages: Sequence[dict[str, Any]]) -> str:
    """The template's prompt with the text it writes for each image replaced by ``[img-N]``: found
    as what the images add to the prompt of the same conversation without them."""
    shown, plain = reference(messages), reference(_without_images(messages))
    count = sum(1 for m in messages for p in _content_parts(m) if p.get("type") == "image")
    added = [op for op in difflib.SequenceMatcher(None, plain, shown, autojunk=False).get_opcodes() if op[0] != "equal"]
    if any(tag != "insert" for tag, *_ in added):
        raise _NoPlace("the template's text for an image is not an insertion")
    spans = [(start, end) for _, _, _, start, end in added]
    if len(spans) < count:
        spans = [span for start, end in spans for span in _repeats(shown, start, end)]
    if len(spans) != count:
        raise _NoPlace("the template writes nothing of its own for an image" if not spans else
                       "the template's text for an image is not one insertion per image")
    out, last = [], 0
    for index, (start, end) in enumerate(spans):
        out += [shown[last:start], f"[img-{index}]"]
        last = end
    return "".join([*out, shown[last:]])


def _repeats(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """An insertion as the images that made it: images side by side insert one text, repeated."""
    inserted = text[start:end]
    for size in range(1, len(inserted) // 2 + 1):
        if len(inserted) % size == 0 and inserted == inserted[:size] * (len(inserted) // size):
            return [(start + i, start + i + size) for i in range(0, len(inserted), size)]
    return [(start, end)]


def _content_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return list(content) if isinstance(content, list) else []


def _without_images(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**m, "content": [p for p in _content_parts(m) if p.get("type") != "image"]} if _content_parts(m) else m
            for m in messages]


def _native_order(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as Ollama's native chat mode sends them: the text part first, its images after."""
    out = []
    for m in messages:
        parts = _content_parts(m)
        if not parts:
            out.append(m)
            continue
        text = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
        out.append({**m, "content": [{"type": "text", "text": text}, *(p for p in parts if p.get("type") == "image")]})
    return out


def _ollama_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as Ollama's Go TEMPLATE sees them: each text joined, ``[img-N]`` before it."""
    out, index = [], 0
    for m in messages:
        parts = _content_parts(m)
        if not parts:
            out.append({"role": m["role"], "content": m.get("content") or ""})
            continue
        tags = ""
        for _ in (p for p in parts if p.get("type") == "image"):
            tags, index = tags + f"[img-{index}]", index + 1
        text = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
        out.append({"role": m["role"], "content": tags + text})
    return out


def _where(engine: str, wanted: str, placed: str) -> str:
    """How an engine's placement differs, in words where it can say (images first, text first)."""
    first = wanted.find("[img-0]")
    if first >= 0 and placed.find("[img-0]") < first:
        return "Ollama puts the image before the text, the template after it"
    if first >= 0 and placed.find("[img-0]") > first:
        return "Ollama puts the image after the text, the template before it"
    return first_difference(wanted, placed)
