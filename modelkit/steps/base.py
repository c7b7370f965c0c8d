"""What every build step shares: the one file it writes, and running its tool."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from modelkit.core.action import Action, StepContext
from modelkit.core.resources import ALL_CORES, Demand
from modelkit.core.warm import Warm

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")

TQDM_PERCENT = re.compile(r"(\d+)%\|")
"""The progress of a Python tool that draws tqdm bars (llama.cpp's convert scripts, PEFT's merge)."""

LIGHT = Demand(cpu=0)
"""In-process work of a moment, or waiting on the network: it holds nothing and overlaps everything."""


@dataclass(kw_only=True, eq=False)
class Step(Action):
    """An action that writes one file, ``out``; subclasses add their fields and ``run``."""

    out: Path

    def outputs(self) -> list[Path]:
        return [self.out]

    def run_tool(self, ctx: StepContext, cmd: Sequence[str | PathLike[str]], *,
                 progress_re: re.Pattern[str] | None = None, env: dict[str, str] | None = None,
                 on_line: Callable[[str], None] | None = None, cwd: Path | None = None,
                 warm: Warm | None = None) -> None:
        """Run the step's tool; failures are reported as this step's (``describe()``)."""
        ctx.run_tool(cmd, what=self.describe(), progress_re=progress_re, env=env, on_line=on_line, cwd=cwd,
                     warm=warm)


@dataclass(frozen=True)
class Recorded:
    """A file whose path a tool writes into what it makes (llama-imatrix its calibration text,
    llama-quantize its importance matrix and that text): the tool is given ``name`` and run from
    ``folder``, so the artifact says ``calibration.txt`` wherever the project lives and whoever
    builds it, and is the bytes llama.cpp writes for that relative invocation. ``name`` is part
    of the step's key, since it is part of the output."""

    path: Path
    name: str

    @property
    def folder(self) -> Path:
        """Where ``name`` leads to ``path``."""
        return self.path.parents[len(Path(self.name).parts) - 1]


def recorded(path: Path, root: Path) -> Recorded:
    """``path`` as a tool should record it: relative to the project ``root`` when inside it, else
    its bare name (an absolute path would carry a user name and a machine's layout)."""
    try:
        name = path.relative_to(root).as_posix()
    except ValueError:
        name = path.name
    return Recorded(path, name)


def weights_size(*places: Path | None) -> int:
    """Bytes of model weights in ``places`` (files, or folders of weight files; missing ones count
    nothing): what a step that loads them holds in memory, known before it starts."""
    total = 0
    for place in places:
        if place is None:
            continue
        try:
            if place.is_dir():
                total += sum(p.stat().st_size for p in place.iterdir() if p.name.endswith(WEIGHT_SUFFIXES))
            elif place.is_file():
                total += place.stat().st_size
        except OSError:
            pass
    return total


OUTTYPE_BYTES = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "auto": 2.0}
"""Bytes per weight of each type the converters write (Q8_0: 32 weights in 34 bytes)."""


def converted_size(folder: Path, outtype: str) -> int:
    """About how big ``folder``'s safetensors weights are as a GGUF of ``outtype``: their element
    counts, from the files' headers (no tensor is read), times the type's bytes per weight."""
    from modelkit.formats.safetensors import NotSafetensors, read_header

    elements = 0
    for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
        try:
            shapes = read_header(path).shapes
        except (OSError, NotSafetensors):
            continue
        elements += sum(math.prod(shape) for shape in shapes.values())
    return int(elements * OUTTYPE_BYTES.get(outtype, 2.0))


def llama_demand(*, gpu: bool = False) -> Demand:
    """A llama.cpp binary that uses every core it is given (its ``-t``/nthreads is the grant's);
    ``gpu`` when it offloads to the GPU on a CUDA toolchain, which it then holds alone."""
    return Demand(cpu=ALL_CORES, gpu=gpu)


def offload(toolchain: Any) -> list[str]:
    """llama.cpp's options to run every layer on the GPU when the toolchain is built for CUDA."""
    return ["-ngl", "999"] if toolchain.backend == "cuda" else ["-ngl", "0"]


@dataclass(kw_only=True, eq=False)
class GGUFStep(Step):
    """A step that makes a shipped (or full-precision) GGUF, which must carry the chat template the
    Modelfile was proven against: ``chat_template`` is the template step's output when that is
    another template than the one the step's input carries (the adapter's, or the spec's Jinja).

    llama-server, LM Studio and Ollama ≥ 0.30 read the template from the GGUF; writing it costs one
    streamed copy of the file, made only when the template or its special tokens really differ.
    That copy is made by gguf-py's ``gguf_new_metadata.py`` from the toolchain's own tree, so the
    step's key then covers the convert scripts too.
    """

    chat_template: Path | None = None

    def __post_init__(self) -> None:
        if self.chat_template is not None:
            # The scripts' fingerprint covers llama.cpp's version too: the step's key then covers both.
            self.tool = "convert"  # type: ignore[misc]  # the class default, overridden: this one runs convert scripts too

    def made_path(self, ctx: StepContext) -> Path:
        """Where the tool writes: the output's temporary name, or beside it when the chat template
        may still have to be written in (a temporary name too, removed if the build is killed)."""
        final = ctx.tmp(self.out)
        return final if self.chat_template is None else final.with_name(final.name + ".made")

    def carry_chat_template(self, ctx: StepContext, made: Path) -> None:
        """Put the tool's output ``made`` at ``ctx.tmp(out)``, with the chat template written in."""
        final = ctx.tmp(self.out)
        template = self.chat_template
        changes = None if template is None else self._template_changes(made, template)
        if template is None or changes is None:
            if made != final:
                made.replace(final)
            return
        jinja = made.with_name(made.name + ".jinja")
        jinja.write_text(_read_json(template)["jinja"], encoding="utf-8")
        tc = ctx.toolchain
        try:
            self.run_tool(ctx, [tc.python, tc.source / "gguf-py" / "gguf" / "scripts" / "gguf_new_metadata.py",
                                made, final, "--force", "--chat-template-file", jinja, *changes],
                          progress_re=TQDM_PERCENT, env=script_env())
        finally:
            for leftover in (jinja, made):
                if leftover != final and leftover.exists():
                    os.unlink(leftover)

    def _template_changes(self, made: Path, template: Path) -> list[str] | None:
        """The script's token options when ``made`` carries another template or other special
        tokens than the template step's output; None when it already carries them."""
        from modelkit.formats.gguf import read_header

        wanted = _read_json(template)
        meta = read_header(made).metadata
        tokens = meta.get("tokenizer.ggml.tokens") or []

        def token(key: str) -> str | None:
            tid = meta.get(key)
            return tokens[tid] if isinstance(tid, int) and 0 <= tid < len(tokens) else None

        options = []
        if wanted.get("eos_token") and token("tokenizer.ggml.eos_token_id") != wanted["eos_token"]:
            options += ["--special-token", "eos", wanted["eos_token"]]
        eot = wanted.get("eot_tokens") or []
        if eot and token("tokenizer.ggml.eot_token_id") != eot[0]:
            options += ["--special-token", "eot", eot[0]]
        return options if options or meta.get("tokenizer.chat_template") != wanted["jinja"] else None


def _read_json(path: Path) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def script_env() -> dict[str, str]:
    """The convert scripts' environment: never reach for the Hub (every input is local by now)."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("NO_LOCAL_GGUF", None)  # the scripts must use their own tree's gguf-py
    return env
