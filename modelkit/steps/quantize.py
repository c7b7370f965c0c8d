"""Quantize a GGUF with llama.cpp's ``llama-quantize``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.steps.base import GGUFStep, Recorded, llama_demand

# llama-quantize prints "[  12/ 291]  blk.0.attn_q.weight ..." per tensor.
TENSOR_COUNTER = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]")


@dataclass(kw_only=True, eq=False)
class Quantize(GGUFStep, kind="quantize", tool="quantize"):
    """``src`` quantized to ``qtype``; ``requantize`` for a source that is already quantized."""

    src: Path
    qtype: str
    requantize: bool = False
    src_file: Path | None = None
    """Set when ``src`` is a user's file rather than another target's output (then it is an input)."""
    label: str = "base"
    imatrix: Recorded | None = None
    """The importance matrix of ``src`` (another target's output), which the quantizer then uses."""

    def params(self) -> dict[str, Any]:
        with_imatrix = {"imatrix": self.imatrix.name} if self.imatrix is not None else {}
        return {"type": self.qtype, "allow_requantize": self.requantize, **with_imatrix}

    def inputs(self) -> dict[str, Path]:
        return {"base.gguf": self.src_file} if self.src_file else {}

    def describe(self) -> str:
        return f"quantize {self.label} to {self.qtype}" + (" with its importance matrix" if self.imatrix else "")

    def demand(self) -> Demand:
        return llama_demand()

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        flags = ["--allow-requantize"] if self.requantize else []
        if self.imatrix is not None:
            flags += ["--imatrix", self.imatrix.name]
        made = self.made_path(ctx)
        self.run_tool(ctx, [tc.quantize, *flags, self.src, made, self.qtype, str(ctx.threads)],
                      progress_re=TENSOR_COUNTER,
                      cwd=self.imatrix.folder if self.imatrix else None)
        self.carry_chat_template(ctx, made)
