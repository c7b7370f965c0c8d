"""Merge a PEFT adapter into the base in PyTorch, then convert the merged model with convert_hf_to_gguf.py.

llama.cpp's own path (convert_lora_to_gguf.py, then llama-export-lora) holds only LoRA's A and B
matrices and one alpha, and scales every update by alpha/r. That cannot express what many real
fine-tunes are: tokens added to the tokenizer with resized, trained embeddings (``modules_to_save``,
``trainable_token_indices``), rsLoRA (alpha/√r), DoRA (magnitude vectors), ``alpha_pattern``.
:func:`modelkit.formats.peft.merge_route` tells which adapters need this step; it makes the same
target and file as :class:`~modelkit.steps.merge.MergeLora` (``gguf:base+x.f16``), so the
quantizations, Modelfiles and registrations after it do not change.

The merge itself runs in a subprocess (``python -m modelkit.steps.merge_peft``, :func:`main`), so
torch and PEFT are imported only there, its log and progress go through the step's log like any
tool's, and its memory is returned when it exits. Peak memory is about the model in its own dtype
plus one layer: the base is loaded in its checkpoint's dtype with low_cpu_mem_usage (mapped from
its safetensors), each LoRA is merged in place (``merge_and_unload``), and the merged model is
saved in small shards. ``python -m bench merge`` measured, for a 0.85B-parameter bf16 Llama
(1.59 GB): a peak RSS of 1.08x the model beyond the 0.34 GB that importing torch, transformers and
PEFT costs, and 1.26x for an adapter with ``modules_to_save = ["embed_tokens", "lm_head"]`` (PEFT
holds a trained copy of both beside the originals). A bf16 base has the weights a LoRA changes
turned into f16, the GGUF's type, in their own memory before merging, so that each merged weight is
rounded once, to f16, as llama-export-lora rounds it, rather than to bf16 first.

The merged Hugging Face folder is scratch: beside the output, named ``<out>.modelkit-tmp-<pid>.hf``
(not dot-prefixed: the engine's clean-up of a killed build's leftovers unlinks files only), removed
when the step ends, and by the step's next run if a build was killed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.installed import installed_version
from modelkit.core.resources import ALL_CORES, Demand
from modelkit.errors import StepError, UserError
from modelkit.steps.base import GGUFStep, converted_size, weights_size

TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt",
                   "vocab.txt", "preprocessor_config.json", "processor_config.json")
"""What the merged folder takes from the adapter (or the base): the tokenizer, and a vision model's
image processor settings, which the projector's conversion reads."""
# A folder holding one of these has a whole tokenizer, not only its settings or chat template.
VOCABULARY_FILES = ("tokenizer.model", "tokenizer.json", "vocab.json", "vocab.txt")
SHARD_SIZE = "512MB"
SCRATCH_MARK = ".modelkit-tmp-"


@dataclass(kw_only=True, eq=False)
class MergePeft(GGUFStep, kind="merge-peft", tool="convert"):
    """Adapter ``name`` merged into the base's Hugging Face weights by PEFT, converted to an f16 GGUF.

    ``tokenizer`` is "adapter" when the merged model takes the adapter folder's tokenizer (what the
    fine-tune was trained with), "base" otherwise; ``rows`` the embedding rows the base is resized
    to first (the adapter's, when it resized them); ``added`` the tokens (id, text) that the GGUF's
    vocabulary must hold, checked after converting.
    """

    name: str
    base_dir: Path
    base_files: dict[str, Path]
    """The base's files to hash (empty when a fetch target provides them)."""
    adapter_dir: Path
    adapter_files: dict[str, Path]
    """The adapter's files to hash, its tokenizer's included (empty when a fetch target provides them)."""
    tokenizer: str = "base"
    rows: int | None = None
    added: tuple[tuple[int, str], ...] = ()
    reason: str = ""
    projector: Path | None = None
    """Where the merged model's projector goes (an adapter that changes the vision half), of ``projector_type``."""
    projector_type: str = "f16"

    def params(self) -> dict[str, Any]:
        vision = {"projector": self.projector_type} if self.projector else {}
        return {"outtype": "f16", "tokenizer": self.tokenizer, "rows": self.rows,
                "added": [list(t) for t in self.added], "merge": "merge_and_unload",
                "peft": installed_version("peft"), "code": _code_digest(), **vision}

    def outputs(self) -> list[Path]:
        return [self.out, *([self.projector] if self.projector else [])]

    def inputs(self) -> dict[str, Path]:
        named = {f"base/{n}": p for n, p in self.base_files.items()}
        named.update({f"adapter.{self.name}/{n}": p for n, p in self.adapter_files.items()})
        return named

    def describe(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"merge adapter '{self.name}' into the base in PyTorch{why}"

    def precheck(self) -> None:
        from modelkit.formats.peft import check_adapter_fits_base

        if self.adapter_dir.is_dir() and self.base_dir.is_dir():
            check_adapter_fits_base(self.adapter_dir, self.base_dir, f"adapter '{self.name}'", rows=self.rows)

    def output_bytes(self) -> int | None:
        """The merged Hugging Face folder (scratch, beside the output, in the base's dtype) and the f16 GGUF."""
        return (weights_size(self.base_dir) + converted_size(self.base_dir, "f16")) or None

    def demand(self) -> Demand:
        """torch uses every core it is given; peak memory is about the model plus its adapter
        (measured: 1.08-1.26x the base), then the conversion of the merged copy."""
        return Demand(cpu=ALL_CORES, memory=weights_size(self.base_dir, self.adapter_dir) * 5 // 4)

    def run(self, ctx: StepContext) -> None:
        from modelkit.steps.base import TQDM_PERCENT, script_env

        tc = ctx.toolchain
        tc.check_convert_deps()
        if installed_version("peft") is None:
            raise UserError(f"merging adapter '{self.name}' in PyTorch needs peft in this Python ({tc.python}): "
                            "pip install 'modelkit[convert]'")
        made = self.made_path(ctx)
        remove_scratch(self.out)
        scratch = self.out.with_name(f"{self.out.name}{SCRATCH_MARK}{os.getpid()}.hf")
        env = {**script_env(), "PYTHONPATH": _with_modelkit(os.environ.get("PYTHONPATH")),
               "OMP_NUM_THREADS": str(ctx.threads)}
        try:
            self.run_tool(ctx, [tc.python, "-m", "modelkit.steps.merge_peft", "--base", self.base_dir,
                                "--adapter", self.adapter_dir, "--out", scratch, "--tokenizer", self.tokenizer,
                                *(["--rows", str(self.rows)] if self.rows else [])],
                          progress_re=TQDM_PERCENT, env=env)
            self.run_tool(ctx, [tc.python, tc.convert_hf, scratch, "--outtype", "f16", "--outfile", made],
                          progress_re=TQDM_PERCENT, env=script_env(), warm=tc.warm_convert)
            if self.projector is not None:
                self.run_tool(ctx, [tc.python, tc.convert_hf, scratch, "--mmproj", "--outtype", self.projector_type,
                                    "--outfile", ctx.tmp(self.projector)],
                              progress_re=TQDM_PERCENT, env=script_env(), warm=tc.warm_convert)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self._check_vocabulary(made)
        self.carry_chat_template(ctx, made)

    def _check_vocabulary(self, made: Path) -> None:
        """Fail, rather than ship, when the GGUF lacks a token the fine-tune added (a tokenizer file
        the converter did not read): a model that cannot say the token it was trained to end with."""
        if not self.added:
            return
        from modelkit.formats.gguf import read_header

        tokens = read_header(made).metadata.get("tokenizer.ggml.tokens") or []
        for tid, text in self.added:
            found = tokens[tid] if tid < len(tokens) else None
            if found != text:
                made.unlink(missing_ok=True)
                raise StepError(f"{self.describe()}: the converted GGUF has {found!r} at id {tid}, not the "
                                f"adapter's token {text!r}: convert_hf_to_gguf.py did not read the adapter's "
                                "tokenizer")


def remove_scratch(out: Path) -> None:
    """Remove merged folders that a killed build left beside ``out``."""
    if out.parent.is_dir():
        for leftover in out.parent.glob(f"{out.name}{SCRATCH_MARK}*"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)


def _code_digest() -> str:
    """This file's digest: the merge is modelkit's own code, so a change to it may change the bytes."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def _with_modelkit(pythonpath: str | None) -> str:
    """PYTHONPATH with the folder that holds this modelkit first, so ``-m`` finds the same code."""
    root = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join([root, *([pythonpath] if pythonpath else [])])


# -- the merge, in its own process --------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m modelkit.steps.merge_peft --base B --adapter A --out DIR``: write the merged model
    as a Hugging Face folder (small safetensors shards, config, tokenizer) for convert_hf_to_gguf.py."""
    parser = argparse.ArgumentParser(prog="python -m modelkit.steps.merge_peft", description=main.__doc__)
    parser.add_argument("--base", type=Path, required=True, help="the base model's Hugging Face folder")
    parser.add_argument("--adapter", type=Path, required=True, help="the PEFT adapter folder")
    parser.add_argument("--out", type=Path, required=True, help="the folder to write the merged model to")
    parser.add_argument("--tokenizer", choices=("adapter", "base"), default="base",
                        help="whose tokenizer the merged model gets")
    parser.add_argument("--rows", type=int, help="resize the base's embeddings to this many rows first")
    parser.add_argument("--shard-size", default=SHARD_SIZE, help="largest safetensors shard to write")
    args = parser.parse_args(argv)
    merged = merge(args.base, args.adapter, args.rows)
    say(f"saving the merged model to {args.out} (shards of at most {args.shard_size})")
    merged.save_pretrained(args.out, max_shard_size=args.shard_size, safe_serialization=True)
    del merged
    copied = copy_tokenizer(args.base, args.adapter if args.tokenizer == "adapter" else None, args.out)
    say(f"tokenizer from the {args.tokenizer}: {', '.join(copied) or 'no files'}")
    return 0


def say(text: str) -> None:
    """One line for the step's log, with this process's resident memory (the merge's cost)."""
    print(f"merge_peft: {text} [RSS {_rss_gb():.2f} GB]", flush=True)


def _rss_gb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 30)
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)  # the peak, on Linux in KB


def merge(base: Path, adapter: Path, rows: int | None) -> Any:
    """The base with the adapter merged in: loaded in its own dtype, merged module by module."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    from modelkit.formats.vision import read_vision_tower

    torch.set_grad_enabled(False)
    say(f"loading the base from {base}")
    auto = AutoModelForImageTextToText if read_vision_tower(base) else AutoModelForCausalLM  # both halves, or one
    model = auto.from_pretrained(base, dtype="auto", low_cpu_mem_usage=True)
    say(f"base loaded: {sum(p.numel() for p in model.parameters()):,} parameters in {model.dtype}")
    embeddings = int(model.get_input_embeddings().weight.shape[0])  # type: ignore[index]  # torch types .weight loosely
    if rows and rows != embeddings:
        say(f"resizing the embeddings from {embeddings} to {rows} rows, as the adapter did")
        model.resize_token_embeddings(rows, mean_resizing=False)  # its saved rows replace them
    say(f"loading the adapter from {adapter}")
    tuned = PeftModel.from_pretrained(model, adapter, low_cpu_mem_usage=True)
    halved = _merge_into_half(tuned)
    if halved:
        say(f"{halved} bf16 weights are merged into f16, the GGUF's type (rounded once)")
    say("merging")
    merged = tuned.merge_and_unload(progressbar=True)
    _untie_if_diverged(merged)
    return merged


def _merge_into_half(tuned: Any) -> int:
    """Turn the bf16 weights that a LoRA changes into f16 before merging, so that W + ΔW is rounded
    once, to the GGUF's type, instead of to bf16 first. Returns how many.

    Both types take two bytes, so each weight is converted in its own memory, a few MB at a time:
    the base's weights are the safetensors files mapped into memory, and a converted copy beside
    each would hold the model twice."""
    import torch

    count = 0
    for module in tuned.modules():
        weight = getattr(getattr(module, "base_layer", None), "weight", None)
        if not (isinstance(weight, torch.nn.Parameter) and weight.dtype == torch.bfloat16 and weight.ndim == 2
                and weight.is_contiguous()):
            continue
        if weight.abs().max().item() >= torch.finfo(torch.float16).max:
            continue  # f16 cannot hold it; merged in bf16
        data = weight.data
        half = data.view(torch.float16)
        step = max(1, (8 << 20) // max(1, data.shape[1] * 2))
        for row in range(0, data.shape[0], step):
            half[row:row + step] = data[row:row + step].to(torch.float16)  # read before written over
        weight.data = half
        count += 1
    return count


def _untie_if_diverged(merged: Any) -> None:
    """A base with tied embeddings whose input and output embeddings the fine-tune changed apart
    (``modules_to_save = ["lm_head"]``, say) must be saved untied, or saving would drop one."""
    output = merged.get_output_embeddings()
    config = merged.config.get_text_config() if hasattr(merged.config, "get_text_config") else merged.config
    if output is None or not getattr(config, "tie_word_embeddings", False):
        return
    if output.weight.data_ptr() != merged.get_input_embeddings().weight.data_ptr():
        say("the input and output embeddings were trained apart: saving them untied")
        config.tie_word_embeddings = False
        merged.config.tie_word_embeddings = False


def copy_tokenizer(base: Path, adapter: Path | None, out: Path) -> list[str]:
    """Give ``out`` the adapter's tokenizer when it has one, else the base's. An adapter folder with
    only tokenizer settings or a chat template gets the base's vocabulary files under its own
    settings; one with a vocabulary file of its own gets nothing of the base's, so that the
    converter cannot read the base's vocabulary instead of the fine-tune's."""
    sources: list[Path] = [base]
    if adapter is not None:
        own = any((adapter / n).is_file() for n in VOCABULARY_FILES)
        sources = [adapter] if own else [base, adapter]
    copied: dict[str, Path] = {}
    for folder in sources:
        for name in TOKENIZER_FILES:
            if (folder / name).is_file():
                copied[name] = folder
    for name, folder in copied.items():
        shutil.copyfile(folder / name, out / name)
    return [f"{folder.name}/{name}" for name, folder in copied.items()]


if __name__ == "__main__":
    sys.exit(main())
