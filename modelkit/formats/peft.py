"""PEFT LoRA adapters: which base weight each LoRA matrix modifies, and whether an adapter fits a base.

An adapter trained on another base converts without complaint and fails (or silently
misbehaves) only when Ollama loads it. Safetensors files start with a JSON header of tensor
names and shapes, so comparing every LoRA matrix with the base weight it modifies costs a few
kilobytes of reading, not the model's gigabytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.errors import UserError
from modelkit.formats.jsonfile import read_json_object
from modelkit.formats.safetensors import NotSafetensors, read_header
from modelkit.formats.vision import touches_vision


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


def check_adapter_fits_base(adapter_dir: Path, base_dir: Path, label: str, rows: int | None = None) -> None:
    """Raise a :class:`UserError` naming the first mismatch between the adapter and the base.
    ``rows``: the embedding rows the base is resized to before merging (the adapter's own)."""
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
        if rows is not None:
            base = {n: [rows, *s[1:]] if len(s) == 2 and _is_embedding(n) else s for n, s in base.items()}
        _check_against_weights(lora, base, label, claimed)
    elif (base_dir / "config.json").is_file():
        config = json.loads((base_dir / "config.json").read_text())
        _check_against_config(lora, {**config, "vocab_size": rows} if rows else config, label, claimed)


def _claimed_base(adapter_dir: Path) -> str:
    try:
        name = json.loads((adapter_dir / "adapter_config.json").read_text()).get("base_model_name_or_path")
    except (OSError, ValueError):
        return ""
    return f" (its adapter_config.json names base '{name}')" if name else ""


_WRAPPERS = frozenset({"model", "language_model", "vision_model"})
"""Levels of a module path that checkpoints and loaded models spell differently: transformers 5
loads Gemma 3's ``language_model.model.layers`` as ``model.language_model.layers`` (what an
adapter names), and saves the SigLIP tower without the ``vision_model`` level transformers 4 had."""


def _unwrapped(weight: str) -> str:
    return ".".join(part for part in weight.split(".") if part not in _WRAPPERS)


def _check_against_weights(lora: dict[str, list[int]], base: dict[str, list[int]], label: str, claimed: str) -> None:
    unwrapped = {_unwrapped(name): name for name in base}
    for name, shape in sorted(lora.items()):
        mapped = base_weight_name(name)
        if mapped is None:
            continue
        weight, which = mapped
        weight = weight if weight in base else unwrapped.get(_unwrapped(weight), weight)
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


def _check_against_config(lora: dict[str, list[int]], config: dict[str, Any], label: str, claimed: str) -> None:
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


# -- which merge an adapter needs -----------------------------------------------------------------

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "added_tokens.json", "tokenizer_config.json",
                   "special_tokens_map.json", "chat_template.jinja", "chat_template.json")
_EMBEDDING_NAMES = ("embed_tokens", "lm_head", "wte", "embed_in", "embed_out", "word_embeddings", "tok_embeddings")


@dataclass(frozen=True)
class BaseFiles:
    """What a merge route is judged against: the base's Hugging Face folder (config.json and
    tokenizer files; None for a GGUF-only base) and its ready GGUF, if that is what it is."""

    folder: Path | None
    gguf: Path | None = None


@dataclass(frozen=True)
class MergeRoute:
    """How an adapter is merged: by llama.cpp (``convert_lora_to_gguf.py`` + ``llama-export-lora``)
    or in PyTorch by PEFT (:mod:`modelkit.steps.merge_peft`), and why, in one line.

    ``tokenizer``: the merged model takes the adapter folder's tokenizer; ``rows``: the embedding
    rows the adapter resized the base to; ``added``: the (id, text) of the tokens the adapter's
    tokenizer adds or changes, which the merged GGUF must hold.
    """

    pytorch: bool
    reason: str
    tokenizer: bool = False
    rows: int | None = None
    added: tuple[tuple[int, str], ...] = ()
    vision: bool = False
    """It changes the vision tower or projector: both halves are converted from the merged weights."""


@dataclass(frozen=True)
class Vocabulary:
    """The token ids a tokenizer's files declare. ``size``: how many tokens its vocabulary file
    (with the added tokens) declares, None when the folder holds only settings; ``tokens``: every
    id whose text is known; ``added``: the added (special) tokens; ``where``: the file, for messages."""

    size: int | None
    tokens: dict[int, str]
    added: dict[int, str]
    where: str


def merge_route(adapter_dir: Path, shapes: dict[str, list[int]] | None, base: Callable[[], BaseFiles],
                label: str) -> MergeRoute:
    """Which merge ``adapter_dir`` needs, from its files alone (no torch): ``shapes`` are its
    safetensors' tensor shapes (None for a ``.bin`` adapter: judged by its config and tokenizer);
    ``base`` gives the base's files, asked only when the adapter resizes embeddings or brings a
    tokenizer. llama.cpp's path holds LoRA's A and B matrices and one alpha and scales each update
    by alpha/r (the rank read from each matrix, so ``rank_pattern`` alone is merged right); anything
    else it would refuse or, worse, merge wrongly without a word, so it goes through PyTorch.
    Raises :class:`UserError` (naming the file) for an adapter no merge can make right."""
    config_path = adapter_dir / "adapter_config.json"
    config = read_json_object(config_path, f"{label}: {_short(config_path)}")
    reasons = _config_reasons(config)
    vision = [n for n in (shapes or {}) if touches_vision(n)]
    if vision:
        reasons.append(f"it changes the vision half ({vision[0]}), which no GGUF LoRA can carry: the projector "
                       "is converted from the merged weights too")
    others = [n for n in (shapes or {}) if base_weight_name(n) is None]
    rows = _embedding_rows(shapes or {})
    vocabulary = read_vocabulary(adapter_dir)
    facts: BaseFiles | None = None
    if rows is not None or vocabulary is not None or config.get("trainable_token_indices"):
        facts = base()
    base_rows = _base_rows(facts) if facts else None
    if rows is not None and base_rows is not None and rows != base_rows:
        reasons.append(f"its embeddings have {rows} rows, the base's {base_rows}")
    else:
        rows = None
    added: dict[int, str] = {}
    if vocabulary is not None and facts is not None:
        added = _new_tokens(vocabulary, _base_vocabulary(facts), adapter_dir, label)
        if added:
            shown = ", ".join(list(added.values())[:3]) + (", …" if len(added) > 3 else "")
            reasons.append(f"its tokenizer adds {len(added)} token{'s' if len(added) > 1 else ''} ({shown})")
    _check_new_rows(config, added, rows, base_rows, adapter_dir, label)
    if others and not reasons:
        reasons.append(f"it holds {others[0]}, which is not a LoRA matrix")
    if not reasons:
        return MergeRoute(False, f"LoRA (alpha {config.get('lora_alpha')}, r {config.get('r')}): llama.cpp merges it",
                          tokenizer=vocabulary is not None)
    return MergeRoute(True, "; ".join(reasons), tokenizer=vocabulary is not None, rows=rows,
                      added=tuple(sorted(added.items())), vision=bool(vision))


def _config_reasons(config: dict[str, Any]) -> list[str]:
    """The adapter_config.json settings that llama.cpp's path cannot merge right."""
    reasons = []
    peft_type = config.get("peft_type") or "LORA"
    if peft_type != "LORA":
        reasons.append(f"peft_type {peft_type} (llama.cpp merges LoRA only)")
    if config.get("use_dora"):
        reasons.append("use_dora (DoRA's magnitude vectors, which llama.cpp cannot apply)")
    if config.get("use_rslora"):
        reasons.append("use_rslora (it scales by alpha/√r; llama.cpp scales by alpha/r)")
    alpha = config.get("lora_alpha")
    if any(v != alpha for v in (config.get("alpha_pattern") or {}).values()):
        reasons.append("alpha_pattern (llama.cpp has one alpha per adapter)")
    if config.get("modules_to_save"):
        reasons.append(f"modules_to_save = {list(config['modules_to_save'])} (whole trained modules)")
    if config.get("trainable_token_indices"):
        reasons.append("trainable_token_indices (trained embedding rows)")
    if config.get("lora_bias") or config.get("bias") not in (None, "none"):
        reasons.append("trained biases (lora_bias or bias)")
    for setting in ("target_parameters", "layer_replication"):
        if config.get(setting):
            reasons.append(f"{setting} (which llama.cpp's converter does not read)")
    return reasons


def _embedding_rows(shapes: dict[str, list[int]]) -> int | None:
    """Rows of the whole embedding (or output) matrices an adapter holds, if it holds any."""
    rows = [shape[0] for name, shape in shapes.items()
            if len(shape) == 2 and base_weight_name(name) is None and "trainable_tokens_delta" not in name
            and _is_embedding(name)]
    return max(rows) if rows else None


def _is_embedding(name: str) -> bool:
    """Whether a tensor belongs to the input or output embeddings (``model.embed_tokens.weight``)."""
    return any(f".{e}." in f".{name}." for e in _EMBEDDING_NAMES)


def _base_rows(base: BaseFiles) -> int | None:
    """The base's embedding rows: its config's vocab_size (or its GGUF's)."""
    if base.folder is not None and (base.folder / "config.json").is_file():
        path = base.folder / "config.json"
        config = read_json_object(path, f"the base model's {_short(path)}")
        size = {**config, **(config.get("text_config") or {})}.get("vocab_size")
        if isinstance(size, int):
            return size
    if base.gguf is not None:
        meta = _gguf_metadata(base.gguf)
        size = meta.get(f"{meta.get('general.architecture')}.vocab_size")
        return size if isinstance(size, int) else len(meta.get("tokenizer.ggml.tokens") or []) or None
    return None


def _base_vocabulary(base: BaseFiles) -> Vocabulary | None:
    if base.folder is not None:
        found = read_vocabulary(base.folder)
        if found is not None:
            return found
    if base.gguf is not None:
        tokens = _gguf_metadata(base.gguf).get("tokenizer.ggml.tokens") or []
        return Vocabulary(len(tokens), dict(enumerate(tokens)), {}, base.gguf.name)
    return None


def _new_tokens(adapter: Vocabulary, base: Vocabulary | None, adapter_dir: Path, label: str) -> dict[int, str]:
    """The tokens the adapter's tokenizer adds to the base's or gives another text; a
    :class:`UserError` when it is smaller than the base's (not a tokenizer of this base)."""
    if base is None:
        return dict(adapter.added)
    if adapter.size is not None and base.size is not None and adapter.size < base.size:
        raise UserError(f"{label}: {adapter_dir.name}/{adapter.where} has {adapter.size} tokens, fewer than the "
                        f"base's {base.size} ({base.where}): it is not a tokenizer of this base; save the fine-tune's "
                        "own tokenizer beside the adapter, or remove it")
    new = {i: t for i, t in adapter.added.items() if base.tokens.get(i) != t}
    if adapter.size is not None and base.size is not None:
        new.update({i: t for i, t in adapter.tokens.items() if i >= base.size})
    return dict(sorted(new.items()))


def _check_new_rows(config: dict[str, Any], added: dict[int, str], rows: int | None, base_rows: int | None,
                    adapter_dir: Path, label: str) -> None:
    """Refuse an adapter whose new tokens have no trained rows in it: the fine-tune's model had
    rows there (initialised at random when it resized) that the adapter did not save, so no merge
    can rebuild it."""
    if base_rows is None or rows is not None:
        return
    indices = config.get("trainable_token_indices") or []
    if isinstance(indices, dict):
        indices = [i for v in indices.values() for i in v]
    beyond = sorted({i for i in [*added, *indices] if i >= base_rows})
    if beyond:
        raise UserError(f"{label}: {_short(adapter_dir / 'adapter_config.json')}: token {beyond[0]} is beyond the "
                        f"base's {base_rows} embedding rows, and the adapter holds no embeddings for it; save the "
                        "adapter with save_embedding_layers=True (PEFT), or modules_to_save = [\"embed_tokens\", "
                        "\"lm_head\"]")


def read_vocabulary(folder: Path) -> Vocabulary | None:
    """The token ids ``folder``'s tokenizer files declare (tokenizer.json, tokenizer.model,
    vocab.json, added_tokens.json, tokenizer_config.json's added_tokens_decoder); None when it has
    no tokenizer files. Read as JSON and protobuf, without transformers or sentencepiece."""
    tokens: dict[int, str] = {}
    added: dict[int, str] = {}
    where = None
    if (folder / "tokenizer.json").is_file():
        data = read_json_object(folder / "tokenizer.json", str(folder / "tokenizer.json"))
        vocab = (data.get("model") or {}).get("vocab") or {}
        items = vocab.items() if isinstance(vocab, dict) else ((v[0], i) for i, v in enumerate(vocab))
        tokens.update({int(i): str(t) for t, i in items})
        added.update({int(t["id"]): str(t["content"]) for t in data.get("added_tokens") or []})
        where = "tokenizer.json"
    elif (folder / "tokenizer.model").is_file():
        tokens.update(enumerate(sentencepiece_pieces(folder / "tokenizer.model")))
        where = "tokenizer.model"
    elif (folder / "vocab.json").is_file():
        vocab = read_json_object(folder / "vocab.json", str(folder / "vocab.json"))
        tokens.update({int(i): t for t, i in vocab.items()})
        where = "vocab.json"
    if (folder / "added_tokens.json").is_file():
        found = read_json_object(folder / "added_tokens.json", str(folder / "added_tokens.json"))
        added.update({int(i): t for t, i in found.items()})
    if (folder / "tokenizer_config.json").is_file():
        found = read_json_object(folder / "tokenizer_config.json", str(folder / "tokenizer_config.json"))
        added.update({int(i): t["content"] for i, t in (found.get("added_tokens_decoder") or {}).items()})
    if where is None and not any((folder / n).is_file() for n in TOKENIZER_FILES):
        return None
    known = {**tokens, **added}
    size = max(known) + 1 if where is not None and known else None
    return Vocabulary(size, {**tokens, **added}, added, where or "tokenizer_config.json")


def sentencepiece_pieces(path: Path) -> list[str]:
    """The pieces of a SentencePiece model, in id order, read from its protobuf (``ModelProto``:
    field 1 is each piece, whose own field 1 is its text) without the sentencepiece package."""
    data = path.read_bytes()
    pieces = []
    at = 0
    try:
        while at < len(data):
            key, at = _varint(data, at)
            field_no, wire = key >> 3, key & 7
            if wire == 2:
                size, at = _varint(data, at)
                if field_no == 1:
                    pieces.append(_piece_text(data[at:at + size]))
                at += size
            elif wire == 0:
                _, at = _varint(data, at)
            elif wire in (1, 5):
                at += 8 if wire == 1 else 4
            else:
                raise ValueError(f"wire type {wire}")
    except (IndexError, ValueError, UnicodeDecodeError):
        raise UserError(f"{path}: not a SentencePiece model (unreadable protobuf)") from None
    return pieces


def _piece_text(message: bytes) -> str:
    """Field 1 (the text) of one ``SentencePiece`` message."""
    at = 0
    while at < len(message):
        key, at = _varint(message, at)
        wire = key & 7
        if wire == 2:
            size, at = _varint(message, at)
            if key >> 3 == 1:
                return message[at:at + size].decode("utf-8")
            at += size
        elif wire == 0:
            at = _varint(message, at)[1]
        else:
            at += 8 if wire == 1 else 4
    return ""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def _gguf_metadata(path: Path) -> dict[str, Any]:
    from modelkit.formats.gguf import read_metadata

    return read_metadata(path)


def _short(path: Path) -> str:
    """``lora/adapter_config.json``: the file and its folder, enough to find it in a message."""
    return f"{path.parent.name}/{path.name}"
