"""Render a conversation with a chat template exactly as ``transformers.apply_chat_template`` does.

What the model saw in training is what ``apply_chat_template`` rendered, so that is the
reference every translation is proven against: :func:`render_chat` reproduces its handling of
``add_generation_prompt`` and ``continue_final_message``, in the sandbox of :mod:`.sandbox`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jinja2

from .sandbox import compile_template

#: What ``transformers`` appends to the final message before rendering a continuation, then
#: cuts the rendered text at. Reproduced so that continuations are cut exactly where it cuts.
CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


class TemplateRaised(Exception):
    """The template refused a conversation (``raise_exception``, or a runtime error in the template)."""


@dataclass(frozen=True)
class RenderContext:
    """What the template sees besides the messages: the special tokens and the clock."""

    bos_token: str | None = None
    eos_token: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    now: Callable[[], datetime] = datetime.now

    def variables(self) -> dict[str, Any]:
        """Template variables as ``transformers`` passes them: tokens only when the tokenizer has them."""
        out: dict[str, Any] = {}
        if self.bos_token is not None:
            out["bos_token"] = self.bos_token
        if self.eos_token is not None:
            out["eos_token"] = self.eos_token
        out.update(self.extra)
        return out


def render_chat(source: str | jinja2.Template, messages: Sequence[Mapping[str, Any]], ctx: RenderContext,
                tools: Sequence[Mapping[str, Any]] | None = None) -> str:
    """Render a conversation the way ``apply_chat_template`` does for a prompt.

    A conversation that ends with the user (or a tool) gets ``add_generation_prompt=True``; one
    that ends with the assistant is a continuation (``continue_final_message=True``): the output
    is cut right after the final message's content. ``tools``: the tool definitions, as
    ``apply_chat_template(tools=...)`` passes them. Raises :class:`TemplateRaised` when the
    template refuses the conversation.
    """
    template = source if isinstance(source, jinja2.Template) else compile_template(source, ctx.now)
    chat = [dict(m) for m in messages]
    continuation = bool(chat) and chat[-1].get("role") == "assistant"
    final = ""
    if continuation:
        final = chat[-1].get("content") or ""
        chat[-1]["content"] = final + CONTINUE_TAG
    try:
        rendered = template.render(messages=chat, tools=list(tools) if tools else None, documents=None,
                                   add_generation_prompt=not continuation, **ctx.variables())
    except jinja2.exceptions.TemplateError as exc:
        raise TemplateRaised(str(exc) or type(exc).__name__) from exc
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ZeroDivisionError) as exc:
        raise TemplateRaised(f"{type(exc).__name__}: {exc}") from exc
    if not continuation:
        return rendered
    tag = CONTINUE_TAG.strip()
    if final.strip() not in rendered or tag not in rendered:
        raise TemplateRaised("the template drops the final assistant message, so it cannot be continued")
    if rendered.count(tag) > 1:
        # transformers would leave its marker inside the earlier copies: no model saw such a prompt
        raise TemplateRaised("the template writes the final assistant message twice, so it cannot be continued")
    at = rendered.rindex(tag)
    if rendered[at:at + len(CONTINUE_TAG)] == CONTINUE_TAG:
        return rendered[:at]
    return rendered[:at].rstrip()
