"""PEFT LoRA adapters: which base weight each LoRA matrix modifies, and whether an adapter fits a base.

An adapter trained on another base converts without complaint and fails (or silently
misbehaves) only when Ollama loads it. Safetensors files start with a JSON header of tensor
names and shapes, so comparing every LoRA matrix with the base weight it modifies costs a few
kilobytes of reading, not the model's gigabytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from modelkit.errors import UserError
from modelkit.formats.safetensors import NotSafetensors, read_header


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    """Tensor name -> shape, from a safetensors file's header only; :class:`UserError` if it has none."""
    try:
        return read_header(path).shapes
    except NotSafetensors as e:
        raise UserError(str(e)) from None


def base_weight_name(lora_name: str) -> tuple[str, str] | None:
    """(base weight name, which matrix) for a PEFT tensor name, or None if it is not a LoRA matrix."""
    m = re.match(r"^base_model\.model\.(.+)\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.[^.]+)?\.weight$"
                 r"|^base_model\.model\.(.+)\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)(?:\.[^.]+)?$",
                 lora_name)
    if not m:
        return None
    module, which = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    return f"{module}.weight", which


def check_adapter_fits_base(adapter_dir: Path, base_dir: Path, label: str) -> None:
    """Raise a :class:`UserError` naming the first mismatch between the adapter and the base."""
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        return  # a .bin adapter: the conversion itself will check it
    lora = safetensors_shapes(weights)
    claimed = _claimed_base(adapter_dir)
    base_files = sorted(base_dir.glob("*.safetensors"))
    if base_files:
        base: dict[str, list[int]] = {}
        for f in base_files:
            base.update(safetensors_shapes(f))
        _check_against_weights(lora, base, label, claimed)
    elif (base_dir / "config.json").is_file():
        _check_against_config(lora, json.loads((base_dir / "config.json").read_text()), label, claimed)


def _claimed_base(adapter_dir: Path) -> str:
    try:
        name = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError):
        return ""
    return f" (its adapter_config.json names base '{name}')" if name else ""


def _check_against_weights(lora: dict[str, list[int]], base: dict[str, list[int]], label: str, claimed: str) -> None:
    for name, shape in sorted(lora.items()):
        mapped = base_weight_name(name)
        if mapped is None:
            continue
        weight, which = mapped
        if weight not in base:
            raise UserError(f"{label}: made for another base{claimed}: it modifies {weight}, "
                            "which this base model does not have")
        out_features, in_features = base[weight][0], base[weight][-1]
        if which == "lora_embedding_A":  # [r, vocab] against an embedding [vocab, dim]
            expected, actual, side = base[weight][0], shape[-1], "rows"
        elif which == "lora_embedding_B":
            expected, actual, side = base[weight][-1], shape[0], "columns"
        elif which == "lora_A":
            expected, actual, side = in_features, shape[-1], "inputs"
        else:
            expected, actual, side = out_features, shape[0], "outputs"
        if expected != actual:
            raise UserError(f"{label}: made for another base{claimed}: {weight} has {expected} {side} "
                            f"in this base but {actual} in the adapter")


def _check_against_config(lora: dict[str, list[int]], config: dict, label: str, claimed: str) -> None:
    config = {**config, **config.get("text_config", {})}
    layers = config.get("num_hidden_layers")
    hidden = config.get("hidden_size")
    heads = config.get("num_attention_heads") or 1
    head_dim = config.get("head_dim") or (hidden // heads if hidden else None)
    dims = {hidden, config.get("intermediate_size"), config.get("vocab_size"),
            heads * head_dim if head_dim else None,
            (config.get("num_key_value_heads") or heads) * head_dim if head_dim else None}
    for name, shape in sorted(lora.items()):
        mapped = base_weight_name(name)
        if mapped is None:
            continue
        weight, which = mapped
        m = re.search(r"\.layers\.(\d+)\.", weight)
        if m and layers is not None and int(m.group(1)) >= layers:
            raise UserError(f"{label}: made for another base{claimed}: it modifies layer {m.group(1)}, "
                            f"but this base has {layers} layers")
        size = shape[-1] if which in ("lora_A", "lora_embedding_A") else shape[0]
        if None not in dims and size not in dims:
            raise UserError(f"{label}: made for another base{claimed}: {weight} has size {size}, which "
                            f"matches no dimension of this base (hidden size {hidden})")
