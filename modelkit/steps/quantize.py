"""Quantize a GGUF with llama.cpp's ``llama-quantize``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelkit.action import Action, StepContext

# llama-quantize prints "[  12/ 291]  blk.0.attn_q.weight ..." per tensor.
TENSOR_COUNTER = re.compile(r"^\[\s*(\d+)/\s*(\d+)\]")


class Quantize(Action):
    kind = "quantize"
    tool = "quantize"

    def __init__(self, src: Path, qtype: str, out: Path, requantize: bool = False,
                 src_file: Path | None = None, label: str = "base") -> None:
        """``src_file``: set when ``src`` is a user's file rather than another target's output."""
        self.label = label
        self.src = src
        self.qtype = qtype
        self.out = out
        self.requantize = requantize
        self.src_file = src_file

    def params(self) -> dict[str, Any]:
        return {"type": self.qtype, "allow_requantize": self.requantize}

    def inputs(self) -> dict[str, Path]:
        return {"base.gguf": self.src_file} if self.src_file else {}

    def outputs(self) -> list[Path]:
        return [self.out]

    def describe(self) -> str:
        return f"quantize {self.label} to {self.qtype}"

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        flags = ["--allow-requantize"] if self.requantize else []
        ctx.run_tool([tc.quantize, *flags, self.src, ctx.tmp(self.out), self.qtype, str(threads())],
                     what=self.describe(), progress_re=TENSOR_COUNTER)


def threads() -> int:
    """The cores this process may use (affinity-aware, as in a container)."""
    import os

    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
