"""Prove what llama.cpp's own template engine renders from a shipped GGUF's Jinja: Ollama's native path.

Today's Ollama renders a model whose GGUF's Jinja can do more than its TEMPLATE (tools, thinking)
with that Jinja, through llama-server; llama-server and LM Studio always do. This step starts the
toolchain's ``llama-server`` on one shipped GGUF (its own Jinja, its own vocabulary), sends it
the battery as Ollama would (:mod:`modelkit.chat_template.proof.native`) — plain chats, and the
tool and thinking conversations where the template handles them — and compares with
``apply_chat_template``. A difference does not stop the build (the Go TEMPLATE is proven on its
own, and the GGUF's Jinja is the model's own): it is said once, naming the first conversation
that differs and where, and kept in the output for ``modelkit template show``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.steps.base import Step


@dataclass(kw_only=True, eq=False)
class ProveNative(Step, kind="native-proof", tool="quantize"):
    """``gguf``: a GGUF the model ships (another target's output); ``model``: its Ollama name."""

    gguf: Path
    model: str

    def params(self) -> dict[str, Any]:
        from modelkit.chat_template import translator_digest

        return {"proof": translator_digest()}  # the battery and the proof are modelkit's own code

    def describe(self) -> str:
        return f"prove {self.model}'s GGUF template through llama.cpp's engine"

    def demand(self) -> Demand:
        return Demand(cpu=1)

    def run(self, ctx: StepContext) -> None:
        result = native_result(ctx.toolchain, self.gguf, ctx.log_path)
        # What differs may hold the day it ran (a template writing today's date): kept in the log only.
        kept = {k: v for k, v in result.items() if k not in ("first_difference", "summary")}
        kept["first_difference"] = (result["first_difference"] or {}).get("conversation")
        ctx.tmp(self.out).write_text(json.dumps(kept, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        with open(ctx.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        if not result["proven"] and result["conversations"]:
            ctx.note(f"{self.model}: llama.cpp (the engine of Ollama's native chat mode, llama-server and LM "
                     f"Studio) renders the GGUF's chat template differently from apply_chat_template: "
                     f"{result['summary'].removeprefix('not proven: ')} "
                     f"(`modelkit template show {os.path.relpath(self.gguf)}`)")


def native_result(toolchain: Any, gguf: Path, log: Path | None = None) -> dict[str, Any]:
    """The native proof of ``gguf`` as data: summary, counts per kind, and the first difference.
    (The summary names the first difference: its text may hold the day it ran, as a template that
    writes today's date does; the step keeps it in its log, not its output.)"""
    from modelkit.chat_template import TemplateError, read_template
    from modelkit.chat_template.proof.native import LlamaServer, NativeError, prove_native

    engine = f"llama-server of {toolchain.version}"
    try:
        source = read_template(gguf)
    except TemplateError:
        return _result(engine, False, "the GGUF carries no chat template", [])
    jinja = source.template
    if not toolchain.server.is_file():
        return _result(engine, False, f"not proven: no llama-server in the toolchain ({toolchain.bin_dir})", [])
    from modelkit.ollama.engine import jinja_capabilities, think_states, without_think

    battery, caps = native_battery(jinja), jinja_capabilities(jinja)
    try:
        with LlamaServer(toolchain.server, gguf, None, log) as server:
            proof = prove_native(jinja, server.render, battery, source.bos_token, source.eos_token,
                                 source.add_bos_token, think=think_states(caps))
    except NativeError as e:
        return _result(engine, False, f"not proven: {e}", [])
    result = _result(engine, proof.proven, proof.summary(), list(proof.outcomes))
    return {**result, "without_think": without_think(caps)}


def native_battery(jinja: str) -> tuple[Any, ...]:
    """The conversations a template is proven on: the plain battery, and the tool and thinking ones
    where Ollama sees it handles tools or thinking."""
    from modelkit.chat_template.proof.conversations import BATTERY, THINKING, TOOLS
    from modelkit.ollama.engine import THINKING as THINKS
    from modelkit.ollama.engine import TOOLS as CALLS
    from modelkit.ollama.engine import jinja_capabilities

    caps = jinja_capabilities(jinja)
    return BATTERY + (TOOLS if CALLS in caps else ()) + (THINKING if THINKS in caps else ())


def _result(engine: str, proven: bool, summary: str, outcomes: list[Any]) -> dict[str, Any]:
    first = next((o for o in outcomes if o.status not in ("same", "outside")), None)
    kinds: dict[str, dict[str, int]] = {}
    for o in outcomes:
        kind = "tools" if o.conversation.tools or any("tool_calls" in m for m in o.conversation.messages) \
            else "thinking" if any("reasoning_content" in m for m in o.conversation.messages) else "plain"
        counts = kinds.setdefault(kind, {"same": 0, "differs": 0, "outside": 0})
        counts["same" if o.status == "same" else "outside" if o.status == "outside" else "differs"] += 1
    return {"engine": engine, "proven": proven, "summary": summary, "conversations": len(outcomes), "kinds": kinds,
            "first_difference": None if first is None else {
                "conversation": first.label, "detail": first.detail, "expected": first.expected,
                "llama.cpp": first.actual}}
