"""Measure what quantization lost: perplexity and KL divergence against the full-precision model.

``llama-perplexity --kl-divergence-base`` runs the full-precision model once over held-out text and
saves its logits (large: tokens × vocabulary; kept under ``.modelkit/eval/``, removed by
``modelkit gc`` once no target uses them); then ``--kl-divergence`` runs each variant over the same
tokens, with the same context and batch size, and compares. Each variant's numbers (file size,
bits per weight, perplexity, mean KL divergence, how often its top token is the full-precision
model's) are a small JSON file that ``modelkit report`` and ``build/report.png`` read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.core.units import human_size
from modelkit.errors import StepError, UserError
from modelkit.steps.base import Step, llama_demand, offload
from modelkit.steps.imatrix import too_short

FINAL_PPL = re.compile(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)")
MEAN_PPL_Q = re.compile(r"Mean PPL\(Q\)\s*:\s*([\d.]+)")
MEAN_PPL_BASE = re.compile(r"Mean PPL\(base\)\s*:\s*([\d.]+)")
MEAN_KLD = re.compile(r"Mean\s+KLD:\s*(-?[\d.]+)")
SAME_TOP = re.compile(r"Same top p:\s*([\d.]+)")
PASS = re.compile(r"^\[(\d+)\]")
ATTEMPTS = 3  # llama.cpp's asynchronous log can lose its last lines when the process exits
LOGITS_HEADER = 12  # "_logits_" and the context size, all llama-perplexity writes before tokenizing


@dataclass(kw_only=True, eq=False)
class Logits(Step, kind="kl-base", tool="quantize", reproducible=False):
    """The full-precision model's logits on ``text`` (``out``) and its perplexity (``summary``).
    Measurements are not locked: they depend on the machine's backend and thread count."""

    model: Path
    text: Path
    summary: Path
    label: str
    context: int
    model_file: Path | None = None
    """Set when ``model`` is the user's own GGUF rather than another target's output (then it is an input)."""

    def params(self) -> dict[str, Any]:
        return {"context": self.context, "batch": self.context}

    def inputs(self) -> dict[str, Path]:
        return {"evaluation": self.text, **({"model.gguf": self.model_file} if self.model_file else {})}

    def outputs(self) -> list[Path]:
        return [self.out, self.summary]

    def describe(self) -> str:
        return f"logits of {self.label} on {self.text.name}"

    def demand(self) -> Demand:
        return llama_demand(gpu=True)

    def _holds_no_tokens(self, logits: Path) -> UserError | None:
        """The text's error when llama-perplexity wrote only the logits file's header: it stops
        there when the text tokenizes to fewer than two contexts. Its log, which says so, is
        often lost (llama.cpp's asynchronous logger is not flushed at exit), the file never."""
        if not logits.is_file() or logits.stat().st_size > LOGITS_HEADER:
            return None
        need = 2 * self.context
        return UserError(f"evaluate.text: {self.text} tokenizes to fewer than {need} tokens with this model, and "
                         f"llama.cpp needs at least {need} (two contexts of {self.context}); give more text")

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        logits = ctx.tmp(self.out)
        lines = run_perplexity(ctx, self, [tc.perplexity, "-m", self.model, "-f", self.text, "--kl-divergence-base",
                                            logits, *_sizes(self.context, ctx.threads), *offload(tc)],
                               FINAL_PPL, lambda output: too_short(output, "evaluate.text", self.text)
                               or self._holds_no_tokens(logits))
        ppl = _number(FINAL_PPL, lines, "the perplexity")
        ctx.tmp(self.summary).write_text(json.dumps({"ppl": ppl, "context": self.context, "backend": tc.backend},
                                                    indent=2, sort_keys=True) + "\n")
        size = ctx.tmp(self.out).stat().st_size
        ctx.note(f"the logits of {self.label} take {human_size(size)} in {self.out.parent}; "
                 "`modelkit gc` removes them once no target uses them")


@dataclass(kw_only=True, eq=False)
class Evaluate(Step, kind="evaluate", tool="quantize", reproducible=False):
    """One variant's numbers against the full-precision model's logits (``out``, JSON)."""

    model: Path
    logits: Path
    quant: str
    label: str
    context: int

    def params(self) -> dict[str, Any]:
        return {"context": self.context, "batch": self.context, "quant": self.quant}

    def describe(self) -> str:
        return f"evaluate {self.label} against full precision"

    def demand(self) -> Demand:
        return llama_demand(gpu=True)

    def run(self, ctx: StepContext) -> None:
        numbers = {"quant": self.quant, **measure_kld(ctx, self, self.model, self.logits, self.context)}
        ctx.tmp(self.out).write_text(json.dumps(numbers, indent=2, sort_keys=True) + "\n")


def measure_kld(ctx: StepContext, step: Step, model: Path, logits: Path, context: int) -> dict[str, Any]:
    """``model``'s numbers against the full-precision ``logits``: size, bits per weight,
    perplexities, mean KL divergence, top-token agreement."""
    from modelkit.formats.gguf import parameter_count

    tc = ctx.toolchain
    lines = run_perplexity(ctx, step, [tc.perplexity, "-m", model, "--kl-divergence-base", logits,
                                       "--kl-divergence", *_sizes(context, ctx.threads), *offload(tc)], SAME_TOP)
    size = model.stat().st_size
    return {
        "bytes": size, "bits_per_weight": round(size * 8 / parameter_count(model), 3),
        "ppl": _number(MEAN_PPL_Q, lines, "the perplexity"),
        "ppl_base": _number(MEAN_PPL_BASE, lines, "the full-precision perplexity"),
        "kld_mean": _number(MEAN_KLD, lines, "the mean KL divergence"),
        "top1_agreement": _number(SAME_TOP, lines, "the top-token agreement") / 100,
        "context": context, "backend": tc.backend,
    }


def run_perplexity(ctx: StepContext, step: Step, cmd: list[Any], last: re.Pattern[str],
                   user_error: Callable[[list[str]], UserError | None] | None = None) -> list[str]:
    """Run llama-perplexity until its output holds ``last`` (its final result); return the lines.
    It exits with 0 even when its text is too short, so ``user_error`` recognises that after each
    run, and it is reported as the user's error it is."""
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        done = PASS.match(line)
        ctx.progress(None, f"chunk {done.group(1)}" if done else line[:120])

    for _ in range(ATTEMPTS):
        lines.clear()
        step.run_tool(ctx, cmd, on_line=on_line)
        if user_error is not None and (problem := user_error(lines)) is not None:
            raise problem
        if any(last.search(line) for line in reversed(lines)):
            return lines
    return lines  # the caller names what is missing


def _number(pattern: re.Pattern[str], lines: list[str], what: str) -> float:
    for line in reversed(lines):
        if found := pattern.search(line):
            return float(found.group(1))
    raise StepError(f"llama-perplexity did not print {what} (is the text at least two contexts long?); see its log")


def _sizes(context: int, threads: int) -> list[str]:
    """The same context and batch size for the reference and every variant, and the cores granted."""
    return ["-c", str(context), "-b", str(context), "-t", str(threads)]
