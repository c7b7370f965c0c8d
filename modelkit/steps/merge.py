"""Merge a LoRA adapter into the base weights with llama.cpp's ``llama-export-lora``.

Ollama 0.34 and later refuse ``ADAPTER`` ("LoRA adapters are no longer supported"), and even
where adapters work, a merged model runs faster and quantizes better (the adapter's update is
quantized together with the weight it changes, instead of staying f16 beside a 4-bit base). So
by default every adapter is merged into the full-precision base GGUF, and the quantizations are
made from the merged model. llama-export-lora writes F16 tensors (F32 ones stay F32).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelkit.action import Action, StepContext
from modelkit.steps.quantize import threads

class MergeLora(Action):
    kind = "merge-lora"
    tool = "quantize"  # the same compiled llama.cpp as llama-quantize

    def __init__(self, name: str, base: Path, adapter: Path, out: Path) -> None:
        self.name = name
        self.base = base
        self.adapter = adapter
        self.out = out

    def params(self) -> dict[str, Any]:
        return {"scale": 1.0}

    def outputs(self) -> list[Path]:
        return [self.out]

    def describe(self) -> str:
        return f"merge adapter '{self.name}' into the base"

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        ctx.run_tool([tc.export_lora, "-m", self.base, "--lora", self.adapter, "-o", ctx.tmp(self.out),
                      "-t", str(threads())], what=self.describe(), progress_re=None)
