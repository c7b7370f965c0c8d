#!/usr/bin/env python3
"""Per engine Ollama uses, how many conversations of the battery render what ``apply_chat_template`` renders.

Usage::

    python -m bench engines            # or: python bench/engines.py [TEMPLATES_DIR]

For each chat template in llama.cpp's ``models/templates`` (the toolchain's, or TEMPLATES_DIR):
translate and prove its Go TEMPLATE (as the build does), predict which renderer today's Ollama
picks for a GGUF carrying the Jinja beside that TEMPLATE (``modelkit.ollama.engine``), and render
the battery with that engine — the TEMPLATE through modelkit's Go evaluator (held equal to Go's
``text/template`` by the tests), the Jinja through the toolchain's llama-server (``/apply-template``,
as Ollama's native chat mode asks it) — against the reference. Plain conversations for every
template; the tool conversations for templates that handle tools, the thinking ones for
templates that handle thinking (as Ollama reads the Jinja), each with the settings of think Ollama
lets a chat reach that model (``think_states``: a model that thinks gets think=true when a request
says nothing, so "unset" is never rendered for it). A template modelkit gives a built-in
RENDERER/PARSER (``modelkit.ollama.renderers.PROVEN``) is rendered by that renderer on the real
Ollama instead (the whole battery; not measured where there is no real Ollama). Prints a Markdown
table and the misses.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ollama"))

from bench.renderers import prove_with, real_server  # noqa: E402 - after the sys.path entry that finds it
from modelkit.chat_template.proof import SAME, translate_and_prove  # noqa: E402 - after the sys.path entry that finds it
from modelkit.chat_template.proof.native import LlamaServer, NativeError, prove_native  # noqa: E402 - after the sys.path entry that finds it
from modelkit.chat_template.translator import Unsupported  # noqa: E402 - after the sys.path entry that finds it
from modelkit.ollama.engine import predict_engine, think_states  # noqa: E402 - after the sys.path entry that finds it
from modelkit.ollama.renderers import PROVEN, jinja_digest  # noqa: E402 - after the sys.path entry that finds it
from modelkit.steps.native import native_battery  # noqa: E402 - after the sys.path entry that finds it
from modelkit.toolchain import find_toolchain  # noqa: E402 - after the sys.path entry that finds it

KINDS = ("plain", "tools", "thinking")


@dataclass
class Tally:
    """Conversations that render the same, out of those a template supports, per kind; and misses."""

    templates: int = 0
    same: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)


def kind_of(outcome: object) -> str:
    conv = outcome.conversation
    if conv.tools or any("tool_calls" in m for m in conv.messages):
        return "tools"
    return "thinking" if any("reasoning_content" in m for m in conv.messages) else "plain"


def measure(name: str, jinja: str, server_bin: Path, gguf: Path, tallies: dict[str, Tally],
            ollama: Any = None) -> None:
    """Prove ``jinja`` with the engine Ollama picks for it, and add the outcome to ``tallies``.
    A template with a proven built-in renderer (which modelkit writes RENDERER/PARSER for) is
    rendered by that renderer on the real Ollama (``ollama``: :class:`bench.renderers.Server`)."""
    entry = PROVEN.get(jinja_digest(jinja))
    if entry is not None:
        engine = "renderer_parser"
        if ollama is None:
            tallies[engine].templates += 1
            tallies[engine].misses.append(f"{name}: not measured (no real Ollama)")
            return
        add(tallies[engine], name, list(prove_with(ollama, entry.renderer, jinja).outcomes))
        return
    try:
        translation, go_proof = translate_and_prove(jinja, "<s>", "</s>", True)
    except Unsupported:
        tallies["no TEMPLATE (not translated)"].templates += 1
        return
    choice = predict_engine(jinja, translation.go_template)
    engine, states = choice.selected, think_states(choice.capabilities)
    if engine == "go_template":  # the TEMPLATE is proven on every setting: count those Ollama produces
        outcomes = [o for o in go_proof.outcomes if o.think in states or len(go_proof.think) == 1]
    else:
        try:
            with LlamaServer(server_bin, gguf, jinja) as server:
                outcomes = list(prove_native(jinja, server.render, native_battery(jinja), "<s>", "</s>", True,
                                             think=states).outcomes)
        except NativeError as e:
            tallies[engine].templates += 1
            tallies[engine].misses.append(f"{name}: llama-server {e}")
            return
    add(tallies[engine], name, outcomes)


def add(tally: Tally, name: str, outcomes: list[Any]) -> None:
    """Count one template's outcomes (those it refuses are left out)."""
    tally.templates += 1
    for o in outcomes:
        if o.status == "outside":
            continue
        kind = kind_of(o)
        tally.total[kind] += 1
        tally.same[kind] += o.status == SAME
        if o.status != SAME:
            tally.misses.append(f"{name} {o.label}: {o.detail}")


def cause(miss: str) -> str:
    """Why a conversation differs, as far as its name and setting say."""
    if "with think unset" in miss:
        return ("think unset (a model that does not think, as Ollama sees it): llama-server renders with "
                "enable_thinking=true (its default), the reference with the template's own default")
    if "continue assistant" in miss:
        return "a final assistant message: llama.cpp continues it its own way, not as apply_chat_template does"
    if "reasoning" in miss:
        return "earlier reasoning: Ollama does not send it to llama-server"
    return "other"


def tiny_gguf(folder: Path) -> Path:
    """A small GGUF whose vocabulary has ``<s>``/``</s>`` (made by the tests' helper)."""
    from gguf_files import write_tiny_gguf

    return write_tiny_gguf(folder / "tiny.gguf")


def table(tallies: dict[str, Tally]) -> str:
    rows = ["| engine Ollama uses | templates | plain chats | tool conversations | thinking conversations |",
            "|---|---|---|---|---|"]
    for engine, t in tallies.items():
        cells = [f"{t.same[k]}/{t.total[k]} ({100 * t.same[k] / t.total[k]:.0f} %)" if t.total[k] else "-"
                 for k in KINDS]
        rows.append(f"| {engine} | {t.templates} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    args = argv or []
    toolchain = find_toolchain()
    if toolchain is None or not toolchain.server.is_file():
        print("needs the toolchain with llama-server: modelkit toolchain install")
        return
    folder = Path(args[0]) if args else toolchain.templates
    tallies = {e: Tally() for e in ("go_template", "gguf_chat_template", "renderer_parser",
                                    "no TEMPLATE (not translated)")}
    with tempfile.TemporaryDirectory() as tmp, real_server(Path(tmp)) as ollama:
        gguf = tiny_gguf(Path(tmp))
        for path in sorted(folder.glob("*.jinja")):
            measure(path.stem, path.read_text(encoding="utf-8"), toolchain.server, gguf, tallies, ollama)
    print(table(tallies))
    causes = Counter(cause(m) for t in tallies.values() for m in t.misses)
    print("\nmisses by cause:")
    for why, n in causes.most_common():
        print(f"- {n}: {why}")
    for engine, t in tallies.items():
        if t.misses:
            print(f"\nmisses, {engine} ({len(t.misses)}):")
            for miss in t.misses:
                print(f"- {miss}")


if __name__ == "__main__":
    main(sys.argv[1:])
