"""Convert a PEFT LoRA adapter to GGUF with llama.cpp's ``convert_lora_to_gguf.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.formats.peft import check_adapter_fits_base
from modelkit.steps.base import TQDM_PERCENT, Step, script_env, weights_size


@dataclass(kw_only=True, eq=False)
class ConvertLora(Step, kind="convert-lora", tool="convert"):
    """The script reads the base model's config.json only, never its weights."""

    name: str
    adapter_dir: Path
    files: dict[str, Path]
    """The adapter's files to hash as inputs (empty when a fetch target provides them)."""
    base_dir: Path
    base_files: dict[str, Path]
    """The base's config.json to hash (empty when a fetch target provides it)."""
    outtype: str

    def params(self) -> dict[str, Any]:
        return {"outtype": self.outtype}

    def inputs(self) -> dict[str, Path]:
        named = {f"adapter.{self.name}/{n}": p for n, p in self.files.items()}
        named.update({f"base/{n}": p for n, p in self.base_files.items()})
        return named

    def describe(self) -> str:
        return f"convert adapter '{self.name}' to GGUF ({self.outtype})"

    def demand(self) -> Demand:
        """One core and the adapter's weights (the script reads the base's config only)."""
        return Demand(cpu=1, memory=weights_size(self.adapter_dir))

    def precheck(self) -> None:
        if self.adapter_dir.is_dir() and self.base_dir.is_dir():
            check_adapter_fits_base(self.adapter_dir, self.base_dir, f"adapter '{self.name}'")

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        tc.check_convert_deps()
        self.run_tool(ctx, [tc.python, tc.convert_lora, self.adapter_dir, "--base", self.base_dir,
                            "--outtype", self.outtype, "--outfile", ctx.tmp(self.out)],
                      progress_re=TQDM_PERCENT, env=script_env(), warm=tc.warm_convert)
