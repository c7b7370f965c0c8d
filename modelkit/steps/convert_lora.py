"""Convert a PEFT LoRA adapter to GGUF with llama.cpp's ``convert_lora_to_gguf.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelkit.action import Action, StepContext
from modelkit.compat import check_adapter
from modelkit.steps.convert import TQDM_PERCENT, script_env


class ConvertLora(Action):
    kind = "convert-lora"
    tool = "convert"

    def __init__(self, name: str, adapter_dir: Path, files: dict[str, Path], base_dir: Path,
                 base_files: dict[str, Path], outtype: str, out: Path) -> None:
        """``files``/``base_files``: inputs to hash (empty when fetch targets provide them).

        The script reads the base model's config.json only, never its weights."""
        self.name = name
        self.adapter_dir = adapter_dir
        self.files = files
        self.base_dir = base_dir
        self.base_files = base_files
        self.outtype = outtype
        self.out = out

    def params(self) -> dict[str, Any]:
        return {"outtype": self.outtype}

    def inputs(self) -> dict[str, Path]:
        named = {f"adapter.{self.name}/{n}": p for n, p in self.files.items()}
        named.update({f"base/{n}": p for n, p in self.base_files.items()})
        return named

    def outputs(self) -> list[Path]:
        return [self.out]

    def describe(self) -> str:
        return f"convert adapter '{self.name}' to GGUF ({self.outtype})"

    def precheck(self) -> None:
        if self.adapter_dir.is_dir() and self.base_dir.is_dir():
            check_adapter(self.adapter_dir, self.base_dir, f"adapter '{self.name}'")

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        tc.check_convert_deps()
        ctx.run_tool([tc.python, tc.convert_lora, self.adapter_dir, "--base", self.base_dir,
                      "--outtype", self.outtype, "--outfile", ctx.tmp(self.out)],
                     what=self.describe(), progress_re=TQDM_PERCENT, env=script_env())
