"""Convert the base checkpoint with a LoRA adapter merged into its weights as they stream: no base GGUF.

llama.cpp's own route to a merged model writes the base as a GGUF (``convert_hf_to_gguf.py``),
the adapter as another (``convert_lora_to_gguf.py``), and then the merged model
(``llama-export-lora``): while the last runs, the base GGUF and the merged one are both on disk
beside the checkpoint (for an 8B model, 32 GB beyond its 16). With ``[build] keep = "shipped"``
the user chose disk over keeping intermediates, so there (see :mod:`modelkit.rules`) this step
makes the same ``gguf:base+x.f16`` in one pass: ``convert_hf_to_gguf.py`` itself, run on the base
checkpoint, with each weight the adapter changes replaced, lazily, by ``W + scale·(B @ A)``.

Merging at the Hugging Face level, before the converter's own changes to a tensor (Llama's q/k
permutation, a transposition, a split), is right because those are row and column operations:
they commute with adding the update. The merge reproduces ``llama-export-lora``'s arithmetic, so
that the two routes make the same model: W is first rounded to the type the base GGUF would hold
(``[convert] outtype``; a tensor the converter keeps in F32 is not rounded), A and B to the
adapter GGUF's type; the update is computed and added in float32, scaled by alpha/rank with the
rank read from each pair (so ``rank_pattern`` is honoured) and, as llama.cpp does, by 1 when alpha
is 0; the converter writes a merged weight as export-lora does, F16 (F32 where the base held F32),
every other tensor as the base GGUF holds it, and calls the file MOSTLY_F16. Only float32's order
of summation differs, so a merged tensor differs from export-lora's by at most one f16 ulp, in few
elements, and the metadata is the same (``tests/test_convert_merging.py`` holds it; the tiny
example: 111 of its 1.44M weights, all by one ulp). Adapters llama.cpp's route cannot take
(rsLoRA, DoRA, ``alpha_pattern``, added tokens, …: :func:`modelkit.formats.peft.merge_route`) keep
the PyTorch route (:mod:`modelkit.steps.merge_peft`).

The merge runs in the toolchain's Python as this file run as a script (:func:`main`), started
warm like the convert step (forked from the server that imported torch and the converter once),
with the same environment, so one server serves both.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import ALL_CORES, Demand
from modelkit.steps.base import TQDM_PERCENT, GGUFStep, converted_size, script_env, weights_size

BASE_TYPES = ("f32", "f16", "bf16", "auto")
"""The ``[convert] outtype`` values whose rounding the merge reproduces (not q8_0: export-lora
would read quantized blocks)."""


@dataclass(kw_only=True, eq=False)
class ConvertMerging(GGUFStep, kind="convert-merging", tool="convert"):
    """The base's Hugging Face folder converted with adapter ``name`` merged in, as
    ``llama-export-lora`` would merge it into the base's GGUF of ``base_type`` (its A and B of
    ``adapter_type``, the adapter GGUF's): the same file as :class:`~modelkit.steps.merge.MergeLora`
    makes, without the base GGUF and the adapter GGUF it reads."""

    name: str
    base_dir: Path
    base_files: dict[str, Path]
    """The base's files to hash (empty when a fetch target provides them)."""
    adapter_dir: Path
    adapter_files: dict[str, Path]
    """The adapter's files to hash (empty when a fetch target provides them)."""
    base_type: str
    adapter_type: str

    def params(self) -> dict[str, Any]:
        return {"base_type": self.base_type, "adapter_type": self.adapter_type, "merge": "while converting",
                "code": _code_digest()}

    def inputs(self) -> dict[str, Path]:
        named = {f"base/{n}": p for n, p in self.base_files.items()}
        named.update({f"adapter.{self.name}/{n}": p for n, p in self.adapter_files.items()})
        return named

    def describe(self) -> str:
        return f"merge adapter '{self.name}' into the base while converting it (no base GGUF written)"

    def precheck(self) -> None:
        from modelkit.formats.peft import check_adapter_fits_base

        if self.adapter_dir.is_dir() and self.base_dir.is_dir():
            check_adapter_fits_base(self.adapter_dir, self.base_dir, f"adapter '{self.name}'")

    def output_bytes(self) -> int | None:
        """The weights' element counts times the base type's bytes: the merged model has the base's shapes."""
        return converted_size(self.base_dir, self.base_type) or None

    def demand(self) -> Demand:
        """Every core it is given (the updates are matrix products in torch), and the weights in
        memory as a conversion holds them."""
        return Demand(cpu=ALL_CORES, memory=weights_size(self.base_dir, self.adapter_dir))

    def run(self, ctx: StepContext) -> None:
        tc = ctx.toolchain
        tc.check_convert_deps()
        made = self.made_path(ctx)
        self.run_tool(ctx, [tc.python, Path(__file__).resolve(), "--converter", tc.convert_hf,
                            "--adapter", self.adapter_dir, "--base-type", self.base_type,
                            "--adapter-type", self.adapter_type, "--threads", str(ctx.threads), self.base_dir, made],
                      progress_re=TQDM_PERCENT, env=script_env(), warm=tc.warm_convert)
        self.carry_chat_template(ctx, made)


def _code_digest() -> str:
    """This file's digest: the merge is modelkit's own code, so a change to it may change the bytes."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


# -- the merge, in the toolchain's Python -------------------------------------------------------

TORCH_TYPES = {"f16": "float16", "bf16": "bfloat16", "f32": None}
"""Each GGUF type as the torch dtype a tensor is rounded to (None: float32, nothing to round)."""


def main(argv: list[str] | None = None) -> int:
    """``python convert_merging.py --converter convert_hf_to_gguf.py --adapter DIR [...] MODEL OUT``:
    convert MODEL as ``convert_hf_to_gguf.py MODEL --outtype BASE_TYPE --outfile OUT`` would, with the
    adapter merged in."""
    parser = argparse.ArgumentParser(prog="convert_merging.py", description=main.__doc__)
    parser.add_argument("--converter", type=Path, required=True, help="llama.cpp's convert_hf_to_gguf.py")
    parser.add_argument("--adapter", type=Path, required=True, help="the PEFT adapter folder")
    parser.add_argument("--base-type", choices=BASE_TYPES, required=True,
                        help="the base GGUF's type llama.cpp's route would merge into (weights are rounded to it)")
    parser.add_argument("--adapter-type", choices=("f32", "f16", "bf16"), required=True,
                        help="the adapter GGUF's type llama.cpp's route would read (A and B are rounded to it)")
    parser.add_argument("--threads", type=int, default=1, help="torch's threads for the updates")
    parser.add_argument("model", type=Path, help="the base's Hugging Face folder")
    parser.add_argument("out", type=Path, help="the GGUF to write")
    args = parser.parse_args(argv)
    tree = args.converter.resolve().parent
    sys.path[:1] = [str(tree), str(tree / "gguf-py")]  # as when the converter runs: its folder first, not ours
    import torch

    torch.set_num_threads(max(1, args.threads))
    updates = read_updates(args.adapter, args.adapter_type)
    say(f"{len(updates)} LoRA updates from {args.adapter.name} (the adapter GGUF's type: {args.adapter_type}); "
        f"weights rounded to {args.base_type} first, as in the base GGUF")
    converter = _load_converter(args.converter)
    merges = Merges(updates, args.base_type)
    chosen = converter.get_model_class
    converter.get_model_class = lambda name, mmproj=False: merging_class(chosen(name, mmproj=mmproj), merges)
    sys.argv = [str(args.converter), str(args.model), "--outtype", args.base_type, "--outfile", str(args.out)]
    converter.main()
    if not merges.indexed:  # a model class that never dequantizes: the file holds the base alone
        raise SystemExit("convert_merging: the converter never indexed the base's tensors through dequant_model(): "
                         "nothing was merged")
    done = sum(m.done for m in merges.made)
    say(f"{done} of {len(merges.made)} weights merged ({len(merges.made) - done} dropped by the converter, "
        "as llama.cpp's route drops their updates)")
    return 0


def say(text: str) -> None:
    """One line for the step's log."""
    print(f"convert_merging: {text}", flush=True)


def _load_converter(path: Path) -> Any:
    """``convert_hf_to_gguf.py`` as a module (its ``main`` not run), fresh, so patching it touches nothing else."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("convert_hf_to_gguf", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Update:
    """One LoRA pair, as llama-export-lora reads it from the adapter GGUF: A and B rounded to its
    type, kept in float32; ``scale`` alpha/rank in float32; ``embedding``: a ``lora_embedding_*``
    pair, whose product is the transpose of the embedding's shape; ``transposed``: ``fan_in_fan_out``."""

    a: Any
    b: Any
    scale: float
    embedding: bool = False
    transposed: bool = False

    def delta(self) -> Any:
        """``scale·(B @ A)`` in float32, in the base weight's shape."""
        import torch

        product = self.b @ self.a
        if self.embedding != self.transposed:
            product = product.T.contiguous()
        return product.mul_(torch.tensor(self.scale, dtype=torch.float32))


def read_updates(adapter: Path, adapter_type: str) -> dict[str, Update]:
    """The adapter's updates by the base weight they change, named as ``convert_lora_to_gguf.py``
    names them (so the same weights are merged); the scale as ``llama-export-lora`` computes it."""
    import numpy as np

    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    alpha = np.float32(config.get("lora_alpha") or 0)
    pairs: dict[str, dict[str, Any]] = {}
    for name, tensor in _adapter_tensors(adapter).items():
        which = next((w for w in ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B") if f".{w}" in name), None)
        if which is None or ".base_layer." in name:
            continue  # merge_route sends an adapter with anything else to the PyTorch route
        base = name.replace("base_model.model.", "")  # as convert_lora_to_gguf.py's get_base_tensor_name
        base = base.replace(f".{which}.weight", ".weight").replace(f".{which}", ".weight")
        pairs.setdefault(base, {})[which[-1]] = _rounded(tensor, adapter_type)
        pairs[base]["embedding"] = which.startswith("lora_embedding")
    updates = {}
    for base, pair in pairs.items():
        if "A" not in pair or "B" not in pair:
            raise SystemExit(f"convert_merging: {adapter.name}: {base} has lora_{'B' if 'A' in pair else 'A'} only")
        rank = np.float32(pair["B"].shape[-1])
        scale = float(alpha / rank) if alpha else 1.0  # llama-export-lora: alpha ? scale * alpha / rank : scale
        updates[base] = Update(pair["A"], pair["B"], scale, pair["embedding"], bool(config.get("fan_in_fan_out")))
    return updates


def _adapter_tensors(adapter: Path) -> dict[str, Any]:
    import torch

    if (adapter / "adapter_model.safetensors").is_file():
        from safetensors.torch import load_file

        return dict(load_file(adapter / "adapter_model.safetensors"))
    return dict(torch.load(adapter / "adapter_model.bin", map_location="cpu", weights_only=True))


def _rounded(tensor: Any, gguf_type: str) -> Any:
    """``tensor`` as a GGUF of ``gguf_type`` holds it, back in float32 (exactly)."""
    import torch

    wide = tensor.to(torch.float32)
    name = TORCH_TYPES[gguf_type]
    return wide if name is None else wide.to(getattr(torch, name)).to(torch.float32)


@dataclass
class Merges:
    """What one conversion merges: the adapter's ``updates``, the base GGUF's type, and the merges
    ``made`` of them once the converter has indexed the base's tensors (``indexed``)."""

    updates: dict[str, Update]
    base_type: str
    made: list[Merge] = field(default_factory=list)
    indexed: bool = False

    @property
    def names(self) -> set[str]:
        """The merged weights, as the converter names them before its own changes."""
        return {merge.name for merge in self.made}


def merging_class(model_class: Any, merges: Merges) -> Any:
    """``model_class`` whose tensors are merged once the converter has indexed (and dequantized)
    them: each weight an update changes becomes a lazy ``W + ΔW``. The rest is written as in the
    base GGUF, and the merged weights as llama-export-lora writes them: F16 (F32 where the base held
    F32), in a file it calls MOSTLY_F16."""
    import gguf

    class Merging(model_class):  # type: ignore[misc]  # a class chosen at run time
        model_arch = model_class.model_arch

        def dequant_model(self) -> None:
            rounding = _base_dtype(self, merges.base_type)  # before dequantizing, as the converter guesses "auto"
            super().dequant_model()
            merges.made.extend(merge_lazily(self, merges.updates, rounding))
            merges.indexed = True

        def tensor_force_quant(self, name: str, new_name: str, bid: int | None, n_dims: int) -> Any:
            forced = super().tensor_force_quant(name, new_name, bid, n_dims)
            merged = forced is False and self.ftype != gguf.LlamaFileType.ALL_F32 and name in merges.names
            return gguf.GGMLQuantizationType.F16 if merged else forced  # the converter still keeps F32 ones F32

        def set_gguf_parameters(self) -> None:
            super().set_gguf_parameters()
            if self.ftype != gguf.LlamaFileType.MOSTLY_F16:
                say("general.file_type: MOSTLY_F16, as llama-export-lora writes it (the next line says so too)")
                self.gguf_writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

    Merging.__name__ = Merging.__qualname__ = model_class.__name__
    return Merging


def _base_dtype(model: Any, base_type: str) -> Any:
    """The torch dtype the base GGUF holds weights in (None: float32); ``auto`` as the converter
    decides it: the first matrix's type when bf16 or f16, else f16."""
    import torch

    if base_type == "auto":
        first = next((t for _, t in model.get_tensors() if t.dim() >= 2), None)
        dtype = first.dtype if first is not None else None
        return dtype if dtype in (torch.bfloat16, torch.float16) else torch.float16
    name = TORCH_TYPES[base_type]
    return None if name is None else getattr(torch, name)


@dataclass(eq=False)
class Merge:
    """The converter's lazy function for one merged weight: rounded ``W`` plus the update, in float32.
    ``keeps_f32``: the converter writes this tensor as F32 (then the base GGUF held it unrounded)."""

    name: str
    delta: Callable[[], Any]
    rounding: Any
    keeps_f32: bool = False
    done: bool = False

    def __call__(self, weight: Any) -> Any:
        from gguf.lazy import LazyBase

        rounding = None if self.keeps_f32 else self.rounding
        base = weight if rounding is None or weight.dtype == rounding else weight.to(rounding)
        merged = LazyBase.to_eager(self.delta())
        if tuple(merged.shape) != tuple(base.shape):
            raise SystemExit(f"convert_merging: {self.name}: the update is {list(merged.shape)}, "
                             f"the weight {list(base.shape)}")
        self.done = True
        # export-lora: ggml_add(delta, base) in float32, then the writer's cast; adding the
        # rounded weight in place widens each element exactly, without a float32 copy of it
        return merged.add_(base)


def merge_lazily(model: Any, updates: dict[str, Update], rounding: Any) -> Iterator[Merge]:
    """Replace each weight ``updates`` changes in ``model.model_tensors`` by a lazy merge, named
    as the converter names it (through ``filter_tensors``, as convert_lora_to_gguf.py does: a
    weight it drops is not merged, as llama.cpp's route would not). Tells each merge whether the
    converter keeps its tensor in F32, from what it is written as."""
    import torch
    from conversion import LazyTorchTensor  # type: ignore[import-not-found]  # the converter's, on its sys.path

    _watch_written_types(model)
    for base_name, update in updates.items():
        item = model.filter_tensors((base_name, update.delta))
        if item is None:
            continue
        name = _weight_named(model.model_tensors, item[0])
        merge = Merge(name, item[1], rounding)
        weight = model.model_tensors[name]

        def merged(weight: Callable[[], Any] = weight, merge: Merge = merge) -> Any:
            tensor = weight()
            if not isinstance(tensor, LazyTorchTensor):
                return merge(tensor)
            meta = LazyTorchTensor.meta_with_dtype_and_shape(torch.float32, tensor.shape)
            return LazyTorchTensor(meta=meta, args=(tensor,), func=merge)

        model.model_tensors[name] = merged
        yield merge


def _weight_named(tensors: dict[str, Any], name: str) -> str:
    """The checkpoint's name for the weight an adapter names ``name``: the same, or the one that
    differs only in wrapper levels (``model.language_model.`` against ``language_model.model.``)."""
    if name in tensors:
        return name
    wrappers = {"model", "language_model"}
    bare = [part for part in name.split(".") if part not in wrappers]
    found = [n for n in tensors if [p for p in n.split(".") if p not in wrappers] == bare]
    if len(found) != 1:
        raise SystemExit(f"convert_merging: the adapter changes {name}, which the base checkpoint does not have")
    return found[0]


def _watch_written_types(model: Any) -> None:
    """Wrap the GGUF writer's ``add_tensor`` to tell each merge in a tensor's lazy graph which
    type the converter writes it as, before anything is computed (writing comes after)."""
    import gguf

    add = model.gguf_writer.add_tensor

    def add_tensor(name: str, tensor: Any, *args: Any, raw_dtype: Any = None, **kwargs: Any) -> Any:
        for merge in _merges_in(tensor):
            if merge.done and raw_dtype == gguf.GGMLQuantizationType.F32 and merge.rounding is not None:
                raise SystemExit(f"convert_merging: {merge.name} was merged before its type (F32) was known")
            merge.keeps_f32 = raw_dtype == gguf.GGMLQuantizationType.F32
        return add(name, tensor, *args, raw_dtype=raw_dtype, **kwargs)

    model.gguf_writer.add_tensor = add_tensor


def _merges_in(tensor: Any) -> Iterator[Merge]:
    """The merges a lazy tensor is computed from (its graph of ``_func``/``_args``, walked once)."""
    seen: set[int] = set()
    todo = [tensor]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, (list, tuple)):
            todo.extend(node)
            continue
        func, args = getattr(node, "_func", None), getattr(node, "_args", None)
        if isinstance(func, Merge):
            yield func
        if isinstance(args, (list, tuple)):
            todo.extend(args)


if __name__ == "__main__":
    sys.exit(main())
