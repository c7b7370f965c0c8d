"""Inherit a base model's chat template as an Ollama TEMPLATE: translate, prove, and say how it went.

This is what the build's ``inherit-template`` step calls. The general translator comes first
(following Ollama's ``think`` where the template has a thinking switch, see
:func:`~.proof.translate_and_prove`); when it cannot express the template, a recognised family
template is tried; whatever is chosen must pass the proof (:mod:`.proof`) or nothing is
produced: a :class:`TemplateError` carries the conversation that differs and a diff of the two
prompts, and the user can give the template explicitly (``[ollama] template``). modelkit never
falls back to ``{{ .Prompt }}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from modelkit.errors import TemplateError

from .proof import SAME, Outcome, Proof, cross_check, prove, translate_and_prove
from .source import HINT, ChatTemplateSource
from .stops import derive_stops
from .translator import Translation, Unsupported


@dataclass(frozen=True)
class InheritedTemplate:
    """An Ollama TEMPLATE proven to render the prompts the model's own Jinja renders."""

    go_template: str
    stop: tuple[str, ...]
    summary: str
    notes: tuple[str, ...] = field(default_factory=tuple)
    family: str | None = None


def _notes(tr: Translation | None, proof: Proof | None = None) -> list[str]:
    """What a user should know about the translation: assumptions, what it leaves out, think."""
    if tr is None:
        return []
    notes = [f"assumes {a}" for a in tr.assumptions]
    if proof is not None and proof.think_note:
        notes.append(f"`--think` is not followed: {proof.think_note}")
    elif tr.think_switches and proof is not None and proof.follows_think:
        notes.append(f"follows Ollama's think option: {', '.join(tr.think_switches)} is undefined when a request "
                     "sets no think, else think's value (--think=false is enable_thinking=False)")
    if tr.ignored:
        notes.append("not rendered: " + ", ".join(tr.ignored))
    notes += [f"stops with an error: {u}" for u in tr.untranslated]
    if tr.bos_removed:
        notes.append("leaves out the leading BOS (the tokenizer adds it)")
    return notes


def failure_message(source: ChatTemplateSource, proof: Proof, what: str) -> str:
    """The error for a proof that failed: which conversation, and a diff of the two prompts."""
    lines = [f"{source.origin}: the translated TEMPLATE is not proven ({proof.summary()}); {HINT}"]
    fail: Outcome | None = proof.failures[0] if proof.failures else None
    if fail is not None:
        lines.append(f"conversation {fail.label} ({what}):")
        for m in fail.conversation.messages:
            lines.append(f"  {m['role']}: {m['content']!r}")
        if fail.actual is None:
            lines.append(f"  {fail.detail}")
        else:
            lines.append(fail.diff().rstrip("\n"))
    return "\n".join(lines)


def inherit_template(source: ChatTemplateSource, today: date | None = None) -> InheritedTemplate:
    """Translate the template, prove it on the conversation battery, derive stop strings."""
    tr: Translation | None = None
    reason = ""
    proof: Proof | None = None
    try:
        tr, proof = translate_and_prove(source.template, source.bos_token, source.eos_token, source.add_bos_token,
                                        today)
    except Unsupported as exc:
        reason = str(exc)
    if proof is not None:
        if proof.error.startswith("the Jinja does not parse"):
            raise TemplateError(f"{source.origin}: {proof.error}; {HINT}")
        if proof.outcomes and not proof.failures and not any(o.status == SAME for o in proof.outcomes):
            raise TemplateError(f"{source.origin}: the template refuses every test conversation "
                                f"({proof.outside[0].detail}); {HINT}")
    stop = derive_stops(source.template, source.bos_token, source.eos_token, source.eot_tokens)
    checks = cross_check(source)
    if tr is not None and proof is not None and proof.proven:
        notes = _notes(tr, proof)
        agreeing = [c.family for c in checks if c.proof.proven and c.proof.think == proof.think]
        summary = proof.summary()
        if agreeing:
            summary += f"; agrees with the {agreeing[0]} family template"
        return InheritedTemplate(tr.go_template, stop, summary, tuple(notes), agreeing[0] if agreeing else None)
    for check in checks:
        if check.proof.proven:
            why = f"the general translation {'failed: ' + reason if reason else 'was not proven'}"
            think = (f"`--think` is not followed: {check.proof.think_note}",) if check.proof.think_note else ()
            return InheritedTemplate(check.go_template, stop,
                                     f"{check.proof.summary()} (the {check.family} family template; {why})",
                                     (f"{why}",) + think, check.family)
    if tr is None:
        if reason.startswith("the template does not parse"):
            raise TemplateError(f"{source.origin}: {reason}; {HINT}")
        raise TemplateError(f"{source.origin}: cannot translate the chat template: {reason}; {HINT}")
    assert proof is not None
    raise TemplateError(failure_message(source, proof, "rendered by the Jinja and by the translation"))


def check_given(source: ChatTemplateSource, go_template: str, today: date | None = None) -> InheritedTemplate:
    """A Go TEMPLATE the user gave, proven against the Jinja they gave beside it (which the GGUFs
    carry): both must render the same prompts, or the Modelfile and the GGUF would disagree. A
    given TEMPLATE is not required to follow Ollama's think option."""
    proof = prove(go_template, source.template, source.bos_token, source.eos_token, source.add_bos_token,
                  today=today, think=(None,))
    if proof.error:
        raise TemplateError(f"{source.origin}: {proof.error}; {HINT}")
    if not proof.proven:
        raise TemplateError(failure_message(source, proof, "rendered by the Jinja and by the given TEMPLATE")
                            .replace("the translated TEMPLATE", "the given TEMPLATE", 1))
    stop = derive_stops(source.template, source.bos_token, source.eos_token, source.eot_tokens)
    return InheritedTemplate(go_template, stop, proof.summary() + " (the given TEMPLATE)")
