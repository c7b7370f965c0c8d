"""Prove a translated TEMPLATE: render every conversation of the battery both ways and compare.

The reference is the Jinja, rendered in the ``transformers`` sandbox (:mod:`..reference`); the
candidate is the Go template, rendered on the data Ollama builds (:mod:`..gotemplate`). They
must be equal byte for byte, with one accepted difference: when the tokenizer adds BOS itself
(``add_bos_token``), the Jinja's leading BOS is not expected from the Go template (llama.cpp
would otherwise see two). A conversation the Jinja refuses (``raise_exception``, say "roles must
alternate") is outside the model's contract: it is reported, not counted against the proof.

At build time the Go side runs in modelkit's own evaluator, so users need no Go; the tests
check that evaluator against Go's real ``text/template`` on every template and conversation.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Callable, Optional, Sequence

from ..gotemplate import GoTemplateError, check_ollama_parse, execute, ollama_data
from ..reference import RenderContext, TemplateRaised, compile_template, render_chat
from .conversations import BATTERY, Conversation

SAME, OUTSIDE, DIFFERS, GO_ERROR = "same", "outside", "differs", "go-error"

#: Renders a Go template for a conversation: (template text, messages, today) -> prompt.
GoRenderer = Callable[[str, Sequence[dict], date], str]


@dataclass(frozen=True)
class Outcome:
    """What one conversation gave: the reference prompt, the Go prompt, and the verdict."""

    conversation: Conversation
    status: str
    expected: Optional[str] = None
    actual: Optional[str] = None
    detail: str = ""

    def diff(self) -> str:
        """A unified diff of the two prompts (reference first)."""
        a = (self.expected or "").splitlines(keepends=True)
        b = (self.actual or "").splitlines(keepends=True)
        lines = difflib.unified_diff(a, b, "jinja (reference)", "ollama TEMPLATE", n=2)
        return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)


@dataclass(frozen=True)
class Proof:
    """The outcomes of a whole battery."""

    outcomes: tuple[Outcome, ...] = field(default_factory=tuple)
    error: str = ""

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
        if self.error:
            return f"not proven: {self.error}"
        same = sum(o.status == SAME for o in self.outcomes)
        out = self.outside
        extra = ""
        if out:
            reasons = sorted({o.detail for o in out})
            extra = f" ({len(out)} outside the template's contract: {'; '.join(reasons)})"
        if self.proven:
            return f"proven on {same} conversations{extra}"
        if not same and not self.failures:
            return f"not proven: the template refuses every conversation{extra}"
        fail = self.failures[0]
        return (f"not proven: {len(self.failures)} of {len(self.outcomes)} conversations differ, "
                f"first '{fail.conversation.name}'{': ' + fail.detail if fail.detail else ''}")


def python_renderer(template: str, messages: Sequence[dict], today: date) -> str:
    """The default Go renderer: modelkit's evaluator of Go templates, on Ollama's data."""
    return execute(check_ollama_parse(template), ollama_data(messages), today)


def expected_prompt(rendered: str, bos_token: Optional[str], add_bos_token: bool) -> str:
    """What the Go template must write: the Jinja's prompt, less a leading BOS llama.cpp adds."""
    if add_bos_token and bos_token and rendered.startswith(bos_token):
        return rendered[len(bos_token):]
    return rendered


def prove(go_template: str, jinja_source: str, bos_token: Optional[str], eos_token: Optional[str],
          add_bos_token: bool, battery: Sequence[Conversation] = BATTERY,
          renderer: GoRenderer = python_renderer, today: Optional[date] = None) -> Proof:
    """Render each conversation with the Jinja and with the Go template, and compare."""
    day = today or date.today()
    ctx = RenderContext(bos_token=bos_token, eos_token=eos_token, now=lambda: datetime.combine(day, time(12, 0)))
    try:
        compiled = compile_template(jinja_source, ctx.now)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the template's
        return Proof((), f"the Jinja does not parse: {exc}")
    try:
        check_ollama_parse(go_template)
    except GoTemplateError as exc:
        return Proof((), f"the Go template is not valid for Ollama: {exc}")
    outcomes: list[Outcome] = []
    for conv in battery:
        try:
            reference = render_chat(compiled, conv.messages, ctx)
        except TemplateRaised as exc:
            outcomes.append(Outcome(conv, OUTSIDE, detail=_short(str(exc))))
            continue
        expected = expected_prompt(reference, bos_token, add_bos_token)
        try:
            actual = renderer(go_template, list(conv.messages), day)
        except GoTemplateError as exc:
            outcomes.append(Outcome(conv, GO_ERROR, expected, None, f"the Go template fails: {exc}"))
            continue
        if actual == expected:
            outcomes.append(Outcome(conv, SAME, expected, actual))
        else:
            outcomes.append(Outcome(conv, DIFFERS, expected, actual, _first_difference(expected, actual)))
    return Proof(tuple(outcomes))


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _first_difference(a: str, b: str) -> str:
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return f"first difference at character {i}: expected {a[i:i + 20]!r}, got {b[i:i + 20]!r}"
