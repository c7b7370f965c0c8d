"""Convert a Hugging Face model folder to GGUF with llama.cpp's ``convert_hf_to_gguf.py``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.steps.base import TQDM_PERCENT, GGUFStep, converted_size, script_env, weights_size


# tqdm's "Writing:  45%|####" lines.
@dataclass(kw_only=True, eq=False)
class Convert(GGUFStep, kind="convert", tool="convert"):
    """The base model's Hugging Face folder, converted whole; tensors of ``outtype``. ``mmproj``:
    its projector instead (the vision tower and its projection: ``--mmproj``), the other half of a
    model that sees images."""

    folder: Path
    files: dict[str, Path]
    """The folder's files to hash as inputs (empty when a fetch target provides them)."""
    outtype: str
    label: str = "base"
    mmproj: bool = False

    def params(self) -> dict[str, Any]:
        return {"outtype": self.outtype, **({"mmproj": True} if self.mmproj else {})}

    def inputs(self) -> dict[str, Path]:
        return {f"{self.label}/{name}": path for name, path in self.files.items()}

    def describe(self) -> str:
        return f"convert {self.label}'s projector to GGUF ({self.outtype})" if self.mmproj else \
            f"convert {self.label} to GGUF ({self.outtype})"

    def output_bytes(self) -> int | None:
        """The weights' element counts times the outtype's bytes (the whole model, or a projector's share)."""
        return converted_size(self.folder, self.outtype) or None

    def demand(self) -> Demand:
        """One core (Python, mostly start-up and reading), and the weights in memory: two
        conversions of a model run at once only when both fit."""
        return Demand(cpu=1, memory=weights_size(self.folder))

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        tc.check_convert_deps()
        made = self.made_path(ctx)
        self.run_tool(ctx, [tc.python, tc.convert_hf, self.folder, *(["--mmproj"] if self.mmproj else []),
                            "--outtype", self.outtype, "--outfile", made],
                      progress_re=TQDM_PERCENT, env=script_env(), warm=tc.warm_convert)
        self.carry_chat_template(ctx, made)
