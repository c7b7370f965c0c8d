"""Merge a LoRA adapter into the base weights with llama.cpp's ``llama-export-lora``.

A merged model runs on every Ollama and every other GGUF runtime, and it quantizes better: the
adapter's update is quantized together with the weight it changes, instead of staying f16 beside
a 4-bit base. So by default every adapter is merged into the full-precision base GGUF, and the
quantizations are made from the merged model. llama-export-lora writes F16 tensors (F32 ones stay
F32).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import ALL_CORES, Demand
from modelkit.steps.base import GGUFStep, weights_size


@dataclass(kw_only=True, eq=False)
class MergeLora(GGUFStep, kind="merge-lora", tool="quantize"):
    """Adapter ``name`` (its GGUF) merged into ``base`` at scale 1."""

    name: str
    base: Path
    adapter: Path

    def params(self) -> dict[str, Any]:
        return {"scale": 1.0}

    def describe(self) -> str:
        return f"merge adapter '{self.name}' into the base"

    def output_bytes(self) -> int | None:
        """The base's size: the merged model has its tensors and types."""
        return weights_size(self.base) or None

    def demand(self) -> Demand:
        """Every core it is given, and the merged model in memory (it writes whole tensors)."""
        return Demand(cpu=ALL_CORES, memory=weights_size(self.base, self.adapter))

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        made = self.made_path(ctx)
        self.run_tool(ctx, [tc.export_lora, "-m", self.base, "--lora", self.adapter, "-o", made,
                            "-t", str(ctx.threads)])
        self.carry_chat_template(ctx, made)
