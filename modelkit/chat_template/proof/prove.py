"""Prove a translated TEMPLATE: render every conversation of the battery both ways and compare.

The reference is the Jinja, rendered in the ``transformers`` sandbox (:mod:`..reference`); the
candidate is the Go template, rendered on the data Ollama builds (:mod:`modelkit.golang.template`). They
must be equal byte for byte, with one accepted difference: when the tokenizer adds BOS itself
(``add_bos_token``), the Jinja's leading BOS is not expected from the Go template (llama.cpp
would otherwise see two). A conversation the Jinja refuses (``raise_exception``, say "roles must
alternate") is outside the model's contract: it is reported, not counted against the proof.

A template that reads a thinking switch (``enable_thinking``, :data:`~..translator.THINK_SWITCHES`)
is proven with each setting of Ollama's ``think`` (:data:`THINK_SETTINGS`): not set, where the
Jinja gets no switch at all, then true and false, where it gets ``enable_thinking=True``/``False``
and the Go template the data Ollama builds for ``--think``/``--think=false``. Every conversation
is rendered with each. The whole route the build and the bench take — translate, prove, declare —
is :mod:`.route`'s.

At build time the Go side runs in modelkit's own evaluator, so users need no Go; the tests
check that evaluator against Go's real ``text/template`` on every template and conversation.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import jinja2
import jinja2.meta

from modelkit.golang.template import (
    GoTemplateError,
    NoGoJSON,
    Think,
    check_ollama_parse,
    execute,
    go_tojson,
    identifiers,
    ollama_data,
)

from ..reference import RenderContext, TemplateRaised, compile_template, render_chat
from ..reference.sandbox import parsed
from ..translator import THINK_SWITCHES
from .conversations import BATTERY, THINKING, TOOLS, Conversation, ollama_message

SAME, OUTSIDE, DIFFERS, GO_ERROR = "same", "outside", "differs", "go-error"

#: The settings of Ollama's ``think`` a template with a thinking switch is proven with.
THINK_SETTINGS: tuple[Think, ...] = (None, True, False)

#: Renders a Go template for a conversation: (template text, messages and tools as Ollama's API
#: carries them, today, think) -> prompt.
GoRenderer = Callable[[str, Sequence[dict[str, Any]], Sequence[dict[str, Any]], date, Think], str]

#: What a TEMPLATE that renders tools is proven on: every kind of conversation.
TOOL_BATTERY: tuple[Conversation, ...] = BATTERY + TOOLS + THINKING

#: How the proof of such a TEMPLATE says what it accepts.
GO_JSON_NOTE = "tojson as Ollama's json writes it: no space after , and :"


@dataclass(frozen=True)
class Outcome:
    """What one conversation gave: the reference prompt, the Go prompt, and the verdict."""

    conversation: Conversation
    status: str
    expected: str | None = None
    actual: str | None = None
    detail: str = ""
    #: The think setting it was rendered with, and how :func:`think_label` says it ("" for a
    #: template without a thinking switch, rendered once).
    think: Think = None
    setting: str = ""

    @property
    def label(self) -> str:
        """The conversation's name, and the think setting where there are several."""
        return f"'{self.conversation.name}'" + (f" with {self.setting}" if self.setting else "")

    def diff(self) -> str:
        """A unified diff of the two prompts (reference first)."""
        a = (self.expected or "").splitlines(keepends=True)
        b = (self.actual or "").splitlines(keepends=True)
        lines = difflib.unified_diff(a, b, "jinja (reference)", "ollama TEMPLATE", n=2)
        return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)


@dataclass(frozen=True)
class Proof:
    """The outcomes of a whole battery, under each think setting in ``think``.

    ``think_note``, when set, says why the TEMPLATE does not follow Ollama's think option though
    the template reads a thinking switch: it was proven with think unset only.
    """

    outcomes: tuple[Outcome, ...] = field(default_factory=tuple)
    error: str = ""
    think: tuple[Think, ...] = (None,)
    think_note: str = ""
    #: The TEMPLATE renders tools and reasoning: proven on :data:`TOOL_BATTERY`, the Jinja's
    #: ``tojson`` writing JSON as Go's does (:data:`GO_JSON_NOTE`).
    tools: bool = False

    @property
    def follows_think(self) -> bool:
        """Whether it was proven with think set as well as unset."""
        return len(self.think) > 1

    @property
    def proven(self) -> bool:
        return not self.error and any(o.status == SAME for o in self.outcomes) and all(
            o.status in (SAME, OUTSIDE) for o in self.outcomes)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status not in (SAME, OUTSIDE)]

    @property
    def outside(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == OUTSIDE]

    def summary(self) -> str:
        """One line: proven on how many conversations (and think settings), or the first failure."""
        if self.error:
            return f"not proven: {self.error}"
        same = len({o.conversation.name for o in self.outcomes if o.status == SAME})
        out = self.outside
        extra = ""
        if out:
            reasons = sorted({o.detail for o in out})
            n_out = len({o.conversation.name for o in out})
            extra = f" ({n_out} outside the template's contract: {'; '.join(reasons)})"
        settings = ""
        if self.follows_think:
            settings = f" with think {', '.join(think_label(t, bare=True) for t in self.think)}"
        note = f"; with think unset only: {self.think_note}" if self.think_note else ""
        tools = f" with tools and reasoning ({GO_JSON_NOTE})" if self.tools else ""
        if self.proven:
            return f"proven on {same} conversations{tools}{settings}{extra}{note}"
        if not same and not self.failures:
            return f"not proven: the template refuses every conversation{extra}"
        fail = self.failures[0]
        what = "renderings" if self.follows_think else "conversations"
        return (f"not proven: {len(self.failures)} of {len(self.outcomes)} {what} differ, "
                f"first {fail.label}{': ' + fail.detail if fail.detail else ''}")


def think_label(think: Think, bare: bool = False) -> str:
    """How a think setting is said: ``think unset``, ``think=true``... (``bare``: ``unset``, ``true``...)."""
    word = "unset" if think is None else str(think).lower()
    return word if bare else ("think unset" if think is None else f"think={word}")


@functools.lru_cache(maxsize=32)
def think_switches_read(jinja_source: str) -> tuple[str, ...]:
    """The thinking switches the template reads without setting them first (() if it does not parse)."""
    try:
        names = jinja2.meta.find_undeclared_variables(parsed(jinja_source))
    except jinja2.TemplateError:  # it does not parse or compile: the proof says so elsewhere
        return ()
    return tuple(s for s in THINK_SWITCHES if s in names)


#: The Go template parsed once for all the renderings of a proof (a parsed tree is only read).
_parsed = functools.lru_cache(maxsize=8)(check_ollama_parse)


def python_renderer(template: str, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]],
                    today: date, think: Think = None) -> str:
    """The default Go renderer: modelkit's evaluator of Go templates, on Ollama's data."""
    return execute(_parsed(template), ollama_data(messages, think=think, tools=tools), today)


def renders_tools(go_template: str) -> bool:
    """Whether a TEMPLATE reads tools, tool calls or reasoning (then it is proven on them)."""
    try:
        return bool({"tools", "toolcalls", "thinking"} & identifiers(_parsed(go_template)))
    except GoTemplateError:
        return False


def expected_prompt(rendered: str, bos_token: str | None, add_bos_token: bool) -> str:
    """What the Go template must write: the Jinja's prompt, less a leading BOS llama.cpp adds."""
    if add_bos_token and bos_token and rendered.startswith(bos_token):
        return rendered[len(bos_token):]
    return rendered


def prove(go_template: str, jinja_source: str, bos_token: str | None, eos_token: str | None,
          add_bos_token: bool, battery: Sequence[Conversation] | None = None,
          renderer: GoRenderer = python_renderer, today: date | None = None,
          think: Sequence[Think] | None = None, think_note: str = "") -> Proof:
    """Render each conversation with the Jinja and with the Go template, and compare.

    ``battery``: by default :data:`BATTERY`, or :data:`TOOL_BATTERY` for a TEMPLATE that renders
    tools (:func:`renders_tools`), whose Jinja then writes ``tojson`` as Go does.
    ``think``: the settings of Ollama's think to render each conversation with; by default all of
    :data:`THINK_SETTINGS` when the Jinja reads a thinking switch, else think unset only.
    ``think_note`` is said in the summary (why the TEMPLATE does not follow think).
    """
    day = today or date.today()
    ctx = RenderContext(bos_token=bos_token, eos_token=eos_token, now=lambda: datetime.combine(day, time(12, 0)))
    switches = think_switches_read(jinja_source)
    settings = tuple(think) if think is not None else THINK_SETTINGS if switches else (None,)
    tools = renders_tools(go_template)
    battery = battery if battery is not None else TOOL_BATTERY if tools else BATTERY
    try:
        compiled = compile_template(jinja_source, ctx.now, go_tojson if tools else None)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the template's
        return Proof((), f"the Jinja does not parse: {exc}", settings, think_note, tools)
    try:
        check_ollama_parse(go_template)
    except GoTemplateError as exc:
        return Proof((), f"the Go template is not valid for Ollama: {exc}", settings, think_note, tools)
    outcomes: list[Outcome] = []
    for setting in settings:
        jinja_ctx = ctx if setting is None else dataclasses.replace(ctx, extra={s: bool(setting) for s in switches})
        label = think_label(setting) if len(settings) > 1 else ""
        for conv in battery:
            go = _Engine(lambda c: renderer(go_template, [ollama_message(m) for m in c.messages],
                                            c.tools, day, setting),  # noqa: B023 - called at once
                         GoTemplateError, GO_ERROR, "the Go template fails")
            outcome = _compare(compiled, conv, jinja_ctx, (bos_token, add_bos_token), go)
            outcomes.append(dataclasses.replace(outcome, think=setting, setting=label))
    return Proof(tuple(outcomes), "", settings, think_note, tools)


#: Another renderer of the Jinja (llama.cpp's, one of Ollama's built-ins): (conversation, think) -> prompt.
JinjaRenderer = Callable[[Conversation, Think], str]


def prove_renderer(jinja_source: str, render: JinjaRenderer, refused: type[Exception], who: str,
                   battery: Sequence[Conversation], bos_token: str | None, eos_token: str | None,
                   add_bos_token: bool, today: date | None = None, think: Sequence[Think] | None = None) -> Proof:
    """Each conversation of ``battery`` rendered by another engine (``render``; ``refused`` is what
    it raises when it will not, ``who`` names it) and by the reference, with each setting of think
    where the template reads a thinking switch (``think``: only those, the ones Ollama produces), as
    :func:`prove` does; a leading BOS is not expected where the tokenizer adds it (``add_bos_token``):
    such engines leave it to the tokenizer."""
    day = today or date.today()
    ctx = RenderContext(bos_token=bos_token, eos_token=eos_token, now=lambda: datetime.combine(day, time(12, 0)))
    switches = think_switches_read(jinja_source)
    settings = (tuple(think) if think is not None else THINK_SETTINGS) if switches else (None,)
    try:
        compiled = compile_template(jinja_source, ctx.now)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the template's
        return Proof((), f"the Jinja does not parse: {exc}", settings)
    outcomes = []
    for setting in settings:
        jinja_ctx = dataclasses.replace(ctx, extra={s: bool(setting) for s in switches} if setting is not None else {})
        for conv in battery:
            other = _Engine(lambda c: render(c, setting), refused, DIFFERS,  # noqa: B023 - called at once
                            f"{who} refuses it")
            outcome = _compare(compiled, conv, jinja_ctx, (bos_token, add_bos_token), other)
            outcomes.append(dataclasses.replace(outcome, think=setting,
                                                setting=think_label(setting) if len(settings) > 1 else ""))
    return Proof(tuple(outcomes), "", settings)


@dataclasses.dataclass(frozen=True)
class _Engine:
    """The renderer set against the reference: ``render`` a conversation; what it raises when it
    will not (``refused``) is an outcome of ``status`` whose detail starts with ``says``."""
    render: Callable[[Conversation], str]
    refused: type[Exception]
    status: str
    says: str


def _compare(compiled: jinja2.Template, conv: Conversation, ctx: RenderContext, bos: tuple[str | None, bool],
             engine: _Engine) -> Outcome:
    """One conversation rendered by the reference Jinja (in ``ctx``) and by ``engine``, compared."""
    try:
        expected = expected_prompt(render_chat(compiled, conv.messages, ctx, conv.tools), *bos)
    except TemplateRaised as exc:
        return Outcome(conv, OUTSIDE, detail=shorten(str(exc)))
    except NoGoJSON as exc:
        return Outcome(conv, DIFFERS, detail=str(exc))
    try:
        actual = engine.render(conv)
    except engine.refused as exc:
        return Outcome(conv, engine.status, expected, None, f"{engine.says}: {shorten(str(exc))}")
    if actual == expected:
        return Outcome(conv, SAME, expected, actual)
    return Outcome(conv, DIFFERS, expected, actual, first_difference(expected, actual))


def shorten(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def first_difference(a: str, b: str) -> str:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return f"first difference at character {i}: expected {a[i:i + 20]!r}, got {b[i:i + 20]!r}"
