"""Quantize a GGUF with llama.cpp's ``llama-quantize``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.steps.base import Step, threads

# llama-quantize prints "[  12/ 291]  blk.0.attn_q.weight ..." per tensor.
TENSOR_COUNTER = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]")


@dataclass(kw_only=True, eq=False)
class Quantize(Step, kind="quantize", tool="quantize"):
    """``src`` quantized to ``qtype``; ``requantize`` for a source that is already quantized."""

    src: Path
    qtype: str
    requantize: bool = False
    src_file: Path | None = None
    """Set when ``src`` is a user's file rather than another target's output (then it is an input)."""
    label: str = "base"

    def params(self) -> dict[str, Any]:
        return {"type": self.qtype, "allow_requantize": self.requantize}

    def inputs(self) -> dict[str, Path]:
        return {"base.gguf": self.src_file} if self.src_file else {}

    def describe(self) -> str:
        return f"quantize {self.label} to {self.qtype}"

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        flags = ["--allow-requantize"] if self.requantize else []
        self.run_tool(ctx, [tc.quantize, *flags, self.src, ctx.tmp(self.out), self.qtype, str(threads())],
                      progress_re=TENSOR_COUNTER)
