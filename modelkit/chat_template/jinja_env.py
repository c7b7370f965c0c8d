"""The Jinja sandbox that renders chat templates exactly as Hugging Face ``transformers`` does.

A chat template is untrusted code from the Hub, so it is only ever rendered here: an
:class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with ``trim_blocks`` and
``lstrip_blocks``, the ``loopcontrols`` extension and a ``{% generation %}`` block, and the
globals ``transformers`` adds (``raise_exception``, ``strftime_now``, ``namespace``, ``dict``)
and its ``tojson`` filter (no HTML escaping, ``ensure_ascii=False``). What the model saw in
training is what ``transformers.apply_chat_template`` rendered, so that is the reference every
translation is proven against; :func:`render_chat` reproduces its handling of
``add_generation_prompt`` and ``continue_final_message`` as well.

The translator (``translate.py``) parses templates with the same environment, so a template
that parses here parses there, with the same extensions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment

#: What ``transformers`` appends to the final message before rendering a continuation, then
#: cuts the rendered text at. Reproduced so that continuations are cut exactly where it cuts.
CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "

GENERATION_METHOD = "_generation_block"


class GenerationBlock(jinja2.ext.Extension):
    """``{% generation %}…{% endgeneration %}``: marks assistant text for training masks.

    For rendering it is transparent (the body is output unchanged), which is all a prompt needs.
    """

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        call = self.call_method(GENERATION_METHOD)
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _generation_block(self, caller: Callable[[], str]) -> str:
        return caller()


class _Namespace(jinja2.utils.Namespace):
    """``namespace()`` that refuses underscore names, as ``transformers`` does (no dunder tricks)."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805 - same signature trick as Jinja's
        self, rest = args[0], args[1:]
        attrs = dict(*rest, **kwargs)
        for name in attrs:
            _Namespace._check(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _Namespace._check(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise jinja2.exceptions.SecurityError(f"namespace attributes may not start with '_': {name!r}")


class _Dict:
    """``dict`` for templates without access to the real type (no ``dict.__class__`` tricks)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def make_environment(now: Callable[[], datetime] = datetime.now) -> ImmutableSandboxedEnvironment:
    """A fresh sandbox configured like ``transformers``; ``now`` is the clock ``strftime_now`` reads."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: now().strftime(fmt)
    env.globals["dict"] = _Dict()
    env.globals["namespace"] = _Namespace
    return env


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


def compile_template(source: str, now: Callable[[], datetime] = datetime.now) -> jinja2.Template:
    """Parse ``source`` in the sandbox; raises :class:`jinja2.TemplateSyntaxError` when it does not parse."""
    return make_environment(now).from_string(source)


def render_chat(source: str | jinja2.Template, messages: Sequence[Mapping[str, Any]], ctx: RenderContext) -> str:
    """Render a conversation the way ``apply_chat_template`` does for a prompt.

    A conversation that ends with the user (or a tool) gets ``add_generation_prompt=True``; one
    that ends with the assistant is a continuation (``continue_final_message=True``): the output
    is cut right after the final message's content. Raises :class:`TemplateRaised` when the
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
        rendered = template.render(messages=chat, tools=None, documents=None,
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
