#!/usr/bin/env python3
"""Translate and prove every chat template in llama.cpp's ``models/templates``; print the table.

Usage::

    python -m bench templates            # or: python bench/templates.py [TEMPLATES_DIR]

TEMPLATES_DIR defaults to ``$MODELKIT_LLAMA_CPP/models/templates``, else the templates of the
toolchain modelkit uses (``modelkit toolchain install``). The output is Markdown, for the README.

For every template: translate it and prove it on the conversation battery twice — once for a
tokenizer that adds BOS itself and once for one that does not — and report proven, not proven
(why), cannot translate (why), or "no plain chat" (the template refuses every plain
conversation: tool-use-only variants). A template with a thinking switch (``enable_thinking``)
is proven with Ollama's think unset, true and false; the table says whether its TEMPLATE
follows ``--think`` or was proven with think unset only. ``tests/chat_template/test_report.py`` holds the
translator to this measure.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelkit.chat_template.proof import (
    GO_JSON_NOTE,
    SAME,
    TOOL_RESULTS,
    Proof,
    prove,
    think_switches_read,
    translate_and_prove,
)
from modelkit.chat_template.translator import Translation, Unsupported

PROVEN, NOT_PROVEN, UNTRANSLATABLE, NO_PLAIN_CHAT = "proven", "not proven", "cannot translate", "no plain chat"

#: How a template with a thinking switch answers Ollama's think: its TEMPLATE follows it (proven
#: with think unset, true and false), or it was proven with think unset only.
FOLLOWS_THINK, THINK_UNSET_ONLY = "follows think", "think unset only"

#: The families people fine-tune most, and how their templates are named in llama.cpp's folder.
KEY_FAMILIES: dict[str, tuple[str, ...]] = {
    "Llama 3.x": ("meta-llama-Llama-3.",),
    "Qwen 2.5/3": ("Qwen-Qwen2.5", "Qwen-Qwen3", "Qwen-QwQ", "Qwen3-", "Qwen3.5"),
    "Mistral": ("mistralai-", "Mistral-Small", "unsloth-mistral"),
    "Gemma 2/3": ("google-gemma-2", "google-gemma-3"),
    "Phi-3.5": ("microsoft-Phi-3.5",),
    "DeepSeek-R1 distills": ("DeepSeek-R1-Distill",),
    "Granite": ("ibm-granite",),
    "SmolLM": ("SmolLM",),
    "Hermes": ("Hermes",),
}


@dataclass
class TemplateResult:
    """The outcome for one template file."""

    name: str
    status: str
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    tool_results: str = ""  # "same", "differs", "refused" (by the Jinja) or "" (not checked)
    think: str = ""  # FOLLOWS_THINK, THINK_UNSET_ONLY, or "" (no thinking switch, or not proven)
    switches: tuple[str, ...] = ()  # the thinking switches the Jinja reads
    tools: bool = False  # the TEMPLATE renders tools and reasoning (proven on the tool battery)
    reads: tuple[str, ...] = ()  # what of tools and reasoning the Jinja reads: "tools", "reasoning"
    #: sha256 of every TEMPLATE written and every proof outcome: the same digest means the
    #: translator wrote the same bytes and the proof found the same (tests hold it across rewrites)
    fingerprint: str = ""


def check_template(name: str, source: str, bos: str = "<s>", eos: str = "</s>",
                   today: date | None = None) -> TemplateResult:
    """Translate and prove one template, for a tokenizer that adds BOS and for one that does not
    (``today``: the date the templates that print one see; the real one by default)."""
    start = time.perf_counter()
    fingerprint = hashlib.sha256()
    notes: list[str] = []
    details: list[str] = []
    statuses: list[str] = []
    thinks: list[str] = []
    with_tools: list[bool] = []
    for add_bos in (True, False):
        try:
            tr, proof = translate_and_prove(source, bos, eos, add_bos, today=today)
        except Unsupported as exc:
            return TemplateResult(name, UNTRANSLATABLE, str(exc), seconds=time.perf_counter() - start,
                                  fingerprint=hashlib.sha256(str(exc).encode()).hexdigest())
        fingerprint.update(_fingerprint_of(tr, proof))
        if proof.outcomes and not any(o.status == SAME for o in proof.outcomes) and not proof.failures:
            return TemplateResult(name, NO_PLAIN_CHAT, proof.outside[0].detail, seconds=time.perf_counter() - start)
        statuses.append(PROVEN if proof.proven else NOT_PROVEN)
        with_tools.append(tr.tools)
        if not proof.proven:
            details.append(f"add_bos={add_bos}: {proof.summary()}")
        elif proof.outside:
            details.append(proof.summary())
        if proof.proven and tr.think_switches:
            thinks.append(FOLLOWS_THINK if proof.follows_think else THINK_UNSET_ONLY)
            notes.append(f"follows think ({', '.join(tr.think_switches)}), proven with it unset, true and false"
                         if proof.follows_think else f"think not followed: {proof.think_note}")
        for a in tr.assumptions:
            notes.append(f"assumes {a}")
        if tr.ignored:
            notes.append("not rendered: " + ", ".join(tr.ignored))
        for u in tr.untranslated:
            notes.append(f"errors on: {u}")
    status = PROVEN if all(s == PROVEN for s in statuses) else NOT_PROVEN
    if status == PROVEN and all(with_tools):
        notes.insert(0, f"renders tools and reasoning ({GO_JSON_NOTE})")
    tools = ""
    if status == PROVEN and not any(with_tools):
        tool_proof = prove(tr.go_template, source, bos, eos, False, battery=TOOL_RESULTS, think=proof.think,
                           today=today)
        fingerprint.update(_fingerprint_of(None, tool_proof))
        tools = "same" if tool_proof.proven else "refused" if not tool_proof.failures else "differs"
    think = (FOLLOWS_THINK if all(t == FOLLOWS_THINK for t in thinks) else THINK_UNSET_ONLY) if thinks else ""
    return TemplateResult(name, status, "; ".join(dict.fromkeys(details)), list(dict.fromkeys(notes)),
                          time.perf_counter() - start, tools, think if status == PROVEN else "",
                          tools=status == PROVEN and all(with_tools), fingerprint=fingerprint.hexdigest())


def _fingerprint_of(translation: Translation | None, proof: Proof) -> bytes:
    """The bytes a translation and its proof stand for: the TEMPLATE and what it assumed, and
    each outcome's conversation, verdict and both renderings."""
    outcomes = [(o.label, o.status, o.expected, o.actual, o.detail) for o in proof.outcomes]
    return repr((translation, outcomes, proof.error, proof.think, proof.think_note, proof.tools)).encode()


def survey(folder: Path, today: date | None = None) -> list[TemplateResult]:
    """Check every ``*.jinja`` file in ``folder`` (sorted by name); :attr:`TemplateResult.switches` is
    set for the templates that read a thinking switch."""
    out = []
    for p in sorted(folder.glob("*.jinja")):
        source = p.read_text(encoding="utf-8")
        reads = tuple(what for what, word in (("tools", "tool"), ("reasoning", "reasoning_content")) if word in source)
        checked = check_template(p.stem, source, today=today)
        out.append(dataclasses.replace(checked, switches=think_switches_read(source), reads=reads))
    return out


def _family_of(name: str) -> str | None:
    """The key family a template file belongs to, by its name."""
    for family, prefixes in KEY_FAMILIES.items():
        if any(p in name for p in prefixes):
            return family
    return None


def format_report(results: list[TemplateResult]) -> str:
    """A Markdown report: totals, the key families, tools and reasoning, and one row per template."""
    plain = [r for r in results if r.status != NO_PLAIN_CHAT]
    translated = [r for r in plain if r.status != UNTRANSLATABLE]
    proven = [r for r in plain if r.status == PROVEN]
    pct = 100.0 * len(proven) / len(plain) if plain else 0.0
    lines = [
        f"Templates: {len(results)}; rendering a plain chat: {len(plain)} "
        f"(the other {len(results) - len(plain)} refuse every plain conversation: tool-use-only variants).",
        f"Translated: {len(translated)}/{len(plain)}; proven equivalent: {len(proven)}/{len(plain)} ({pct:.1f}%).",
        "",
        "| Family | Proven |",
        "|---|---|",
    ]
    for family in KEY_FAMILIES:
        members = [r for r in results if _family_of(r.name) == family]
        chat = [r for r in members if r.status != NO_PLAIN_CHAT]
        ok = [r for r in chat if r.status == PROVEN]
        extra = f" ({len(members) - len(chat)} tool-use-only)" if len(members) != len(chat) else ""
        shown = f"{len(ok)}/{len(chat)}{extra}" if members else "not in this set"
        lines.append(f"| {family} | {shown} |")
    tool_same = sum(r.tool_results == "same" for r in proven)
    tool_refused = sum(r.tool_results == "refused" for r in proven)
    tools = sum("tools" in r.reads for r in plain)
    reasoning = sum("reasoning" in r.reads for r in plain)
    rendering = [r for r in proven if r.tools]
    erroring = sum(any(n.startswith("errors on") for n in r.notes) for r in plain)
    switched = [r for r in plain if r.switches]
    following = [r for r in proven if r.think == FOLLOWS_THINK]
    unset_only = [r for r in proven if r.think == THINK_UNSET_ONLY]
    lines += [
        "",
        f"Thinking switch: {len(switched)} of the {len(plain)} templates read `enable_thinking`; the TEMPLATE of "
        f"{len(following)} follows Ollama's think (`.IsThinkSet`/`.Think`), proven with think unset, true and "
        f"false; {len(unset_only)} {'is' if len(unset_only) == 1 else 'are'} proven with think unset only "
        f"(`--think` not followed); {len(switched) - len(following) - len(unset_only)} not proven.",
    ]
    lines += [
        "",
        f"Tools and reasoning: {tools} of the {len(plain)} templates read tools or tool calls and {reasoning} "
        f"the reasoning of past turns. The TEMPLATE renders them too for {len(rendering)} "
        f"({', '.join(r.name for r in rendering)}): proven on the conversations with tools, tool calls, results "
        f"and reasoning, with {GO_JSON_NOTE}, and nothing left untranslated. For the others the TEMPLATE "
        "renders plain chats and leaves tools to the GGUF's own Jinja; there, tool *results* (role tool) "
        f"after a plain assistant turn render exactly in {tool_same} ({tool_refused} refuse such "
        f"conversations), and in {erroring} templates some tool branch could not be expressed and stops with "
        "an error instead.",
        "",
        "| Template | Result | Details |",
        "|---|---|---|",
    ]
    for r in results:
        detail = "; ".join(x for x in [r.detail, *r.notes] if x).replace("|", "\\|")
        lines.append(f"| {r.name} | {r.status} | {detail} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table for ``argv[1]`` (else the default folder); 2 when there is no such folder."""
    argv = argv if argv is not None else [sys.argv[0]]
    if len(argv) > 1:
        folder = Path(argv[1])
    elif os.environ.get("MODELKIT_LLAMA_CPP"):
        folder = Path(os.environ["MODELKIT_LLAMA_CPP"]) / "models" / "templates"
    else:
        from modelkit.toolchain import find_toolchain

        toolchain = find_toolchain()
        if toolchain is None:
            print("no llama.cpp sources: run `modelkit toolchain install` or pass TEMPLATES_DIR", file=sys.stderr)
            return 2
        folder = toolchain.templates
    if not folder.is_dir():
        print(f"{folder}: not a folder", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = survey(folder)
    print(format_report(results))
    print(f"\n({len(results)} templates in {time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
