"""Compute an importance matrix of a full-precision model on calibration text (``llama-imatrix``).

Every quantization of that model then uses it (``llama-quantize --imatrix``): it tells the
quantizer which weights matter on the user's own data, which is what makes the low-bit IQ types
and Q2_K usable. On a CUDA toolchain every layer is offloaded to the GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.errors import StepError, UserError
from modelkit.steps.base import Recorded, Step, llama_demand, offload

# "you need at least 1024 tokens for a context of 512 tokens", then "... tokenizes to only 123 tokens"
TOO_SHORT = re.compile(r"need at least (\d+) tokens .*context of (\d+)")
TOKENIZED = re.compile(r"tokenizes to only (\d+) tokens")


@dataclass(kw_only=True, eq=False)
class Imatrix(Step, kind="imatrix", tool="quantize", reproducible=False):
    """``model``'s importance matrix on ``text`` (llama-imatrix's GGUF format)."""

    model: Path
    text: Recorded
    label: str
    context: int = 512
    model_file: Path | None = None
    """Set when ``model`` is the user's own GGUF rather than another target's output (then it is an input)."""

    def params(self) -> dict[str, Any]:
        return {"context": self.context, "text": self.text.name}

    def inputs(self) -> dict[str, Path]:
        return {"calibration": self.text.path, **({"model.gguf": self.model_file} if self.model_file else {})}

    def describe(self) -> str:
        return f"importance matrix of {self.label} on {self.text.path.name}"

    def demand(self) -> Demand:
        return llama_demand(gpu=True)

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        try:
            self.run_tool(ctx, [tc.imatrix, "-m", self.model, "-f", self.text.name, "-o", ctx.tmp(self.out),
                                "--output-format", "gguf", "-c", str(self.context), "-t", str(ctx.threads),
                                *offload(tc)], cwd=self.text.folder)
        except StepError as e:
            raise too_short(e.tail, "quantize.imatrix", self.text.path) or e from None


def too_short(output: list[str], field: str, text: Path) -> UserError | None:
    """The one-line error for a text that tokenizes to fewer tokens than llama.cpp needs, if the
    tool's last lines say that is why it failed (or stopped: llama-perplexity exits with 0 then)."""
    lines = " ".join(output)
    need, got = TOO_SHORT.search(lines), TOKENIZED.search(lines)
    if need is None:
        return None
    count = f"tokenizes to {got.group(1)} tokens" if got else "is too short"
    return UserError(f"{field}: {text} {count} with this model, and llama.cpp needs at least {need.group(1)} "
                     f"(two contexts of {need.group(2)}); give more text")
