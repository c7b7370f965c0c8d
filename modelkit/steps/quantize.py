"""Quantize a GGUF with llama.cpp's ``llama-quantize``."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.errors import UserError
from modelkit.steps.base import GGUFStep, Recorded, llama_demand

# llama-quantize prints "[  12/ 291]  blk.0.attn_q.weight ..." per tensor.
TENSOR_COUNTER = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]")


@dataclass(frozen=True, kw_only=True)
class TensorRecipe:
    """Per-tensor types on top of the file type (a spec's ``[[quantize.recipes]]``): ``tensors``
    maps a pattern searched for in tensor names to a ggml type; ``where`` is the spec's
    ``file:line: field`` for messages (not part of the key)."""

    name: str
    tensors: dict[str, str]
    output: str | None = None
    embeddings: str | None = None
    where: str = field(default="", compare=False)

    def params(self) -> dict[str, Any]:
        return {"tensors": self.tensors, "output": self.output, "embeddings": self.embeddings}

    def flags(self) -> list[str]:
        """llama-quantize's options for the recipe, in a fixed order."""
        flags = [arg for pattern, qtype in self.tensors.items() for arg in ("--tensor-type", f"{pattern}={qtype}")]
        if self.output:
            flags += ["--output-tensor-type", self.output]
        if self.embeddings:
            flags += ["--token-embedding-type", self.embeddings]
        return flags

    def check_patterns(self, gguf: Path) -> None:
        """Every pattern matches a tensor of ``gguf`` (llama-quantize silently ignores one that
        does not: the recipe would quietly be the plain type); else the user's error, naming
        the tensor names closest to the pattern."""
        from modelkit.formats.gguf import tensor_names

        names = tensor_names(gguf)
        for pattern in self.tensors:
            if not any(re.search(pattern, name) for name in names):
                kinds = sorted({re.sub(r"^blk\.\d+\.|\.weight$|\.bias$", "", n) for n in names})
                near = difflib.get_close_matches(pattern, kinds, n=3, cutoff=0.4) or kinds[:6]
                raise UserError(f"{self.where or self.name}: '{pattern}' matches no tensor of {gguf.name} "
                                f"(closest: {', '.join(near)})")


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
    recipe: TensorRecipe | None = None
    """Types for some tensors other than ``qtype``'s."""
    recipe_file: Path | None = None
    """A search's result (another target's output, see :mod:`.search`): its chosen recipe, read
    when the step runs, replaces ``qtype`` and ``recipe``."""

    def params(self) -> dict[str, Any]:
        with_imatrix = {"imatrix": self.imatrix.name} if self.imatrix is not None else {}
        with_recipe = {"recipe": self.recipe.params()} if self.recipe is not None else {}
        searched = {"recipe_file": self.recipe_file.name} if self.recipe_file is not None else {}
        return {"type": self.qtype, "allow_requantize": self.requantize, **with_imatrix, **with_recipe, **searched}

    def inputs(self) -> dict[str, Path]:
        return {"base.gguf": self.src_file} if self.src_file else {}

    def describe(self) -> str:
        what = f"{self.recipe.name} ({self.qtype} and {len(self.recipe.flags()) // 2} overrides)" if self.recipe \
            else "the search's choice" if self.recipe_file else self.qtype
        return f"quantize {self.label} to {what}" + (" with its importance matrix" if self.imatrix else "")

    def output_bytes(self) -> int | None:
        """The source's size in the type's nominal bits per weight (a tenth more: some tensors keep
        more bits), from the source's header type."""
        from modelkit.formats.gguf import read_metadata
        from modelkit.formats.quant_types import QUANT_TYPES, file_type_name

        try:
            size = self.src.stat().st_size
            file_type = read_metadata(self.src).get("general.file_type")
        except (OSError, ValueError):
            return None
        source = file_type_name(file_type) if isinstance(file_type, int) else None
        wanted = QUANT_TYPES.get(self.qtype)
        bits = QUANT_TYPES[source].rough_bits if source in QUANT_TYPES else 16.0
        return int(size * (wanted.rough_bits if wanted else bits) / bits * 1.1) if bits else None

    def demand(self) -> Demand:
        return llama_demand()

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        flags = ["--allow-requantize"] if self.requantize else []
        if self.imatrix is not None:
            flags += ["--imatrix", self.imatrix.name]
        qtype, recipe = self._searched() if self.recipe_file is not None else (self.qtype, self.recipe)
        if recipe is not None:
            recipe.check_patterns(self.src)
            flags += recipe.flags()
        made = self.made_path(ctx)
        self.run_tool(ctx, [tc.quantize, *flags, self.src, made, qtype, str(ctx.threads)],
                      progress_re=TENSOR_COUNTER,
                      cwd=self.imatrix.folder if self.imatrix else None)
        self.carry_chat_template(ctx, made)

    def _searched(self) -> tuple[str, TensorRecipe]:
        assert self.recipe_file is not None
        chosen = json.loads(self.recipe_file.read_text())["chosen"]
        recipe = chosen["recipe"]
        return recipe["type"], TensorRecipe(name=chosen["name"], tensors=recipe["tensors"], output=recipe["output"],
                                            embeddings=recipe["embeddings"], where=str(self.recipe_file))
