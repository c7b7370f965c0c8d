"""Tiny but well-formed GGUF files for the registration tests, written with the ``gguf`` package.

A 1-layer Llama (F32, the layout ``convert_hf_to_gguf.py``-style writers produce, which the real
``llama-quantize`` accepts and ``COPY`` rewrites) with a byte-level SentencePiece-style
vocabulary, and a LoRA adapter for it: small enough to write in milliseconds, real enough for
Ollama to parse when a real server is used. ``seed`` changes the weights, so two calls with
different seeds give different digests; a chat template, another architecture name, extra tensors
(e.g. ``v.`` vision tensors, which Ollama's ``hasEmbeddedCompatibilityTensors`` looks for) or
another ``general.type`` make the files the stand-in's own tests need.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

DIM, FF, HEADS, LAYERS, RANK = 32, 64, 4, 1, 4


def _vocab() -> tuple[list[str], list[float], list[int]]:
    import gguf

    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)] + ["▁hello", "▁world", "▁the"]
    scores = [0.0] * 3 + [0.0] * 256 + [-1.0, -2.0, -3.0]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * 3
    return tokens, scores, [int(t) for t in types]


def write_tiny_gguf(path: Path, *, seed: int = 0, name: str = "tiny", arch: str = "llama",
                    chat_template: str | None = None, extra_tensors: Sequence[str] = (), kind: str = "model",
                    context: int = 256) -> Path:
    """A 1-layer Llama GGUF (F32) at ``path`` (``context``: its trained context length)."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    vocab = len(tokens)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_type(kind)
    w.add_name(name)
    w.add_context_length(context)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(HEADS)
    w.add_rope_dimension_count(DIM // HEADS)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    if chat_template is not None:
        w.add_chat_template(chat_template)

    def tensor(name: str, *shape: int) -> None:
        w.add_tensor(name, rng.standard_normal(shape, dtype=np.float32) * 0.02)

    tensor("token_embd.weight", vocab, DIM)
    w.add_tensor("output_norm.weight", np.ones(DIM, dtype=np.float32))
    tensor("output.weight", vocab, DIM)
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(DIM, dtype=np.float32))
        for part in ("q", "k", "v", "output"):
            tensor(f"blk.{i}.attn_{part}.weight", DIM, DIM)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(DIM, dtype=np.float32))
        tensor(f"blk.{i}.ffn_gate.weight", FF, DIM)
        tensor(f"blk.{i}.ffn_up.weight", FF, DIM)
        tensor(f"blk.{i}.ffn_down.weight", DIM, FF)
    for extra in extra_tensors:
        tensor(extra, DIM)
    _finish(w)
    return path


def write_tiny_lora(path: Path, *, seed: int = 1) -> Path:
    """A LoRA adapter GGUF for :func:`write_tiny_gguf`'s model (q and v projections, rank 4)."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 8.0)
    for i in range(LAYERS):
        for part in ("q", "v"):
            w.add_tensor(f"blk.{i}.attn_{part}.weight.lora_a", rng.standard_normal((RANK, DIM), dtype=np.float32))
            w.add_tensor(f"blk.{i}.attn_{part}.weight.lora_b", np.zeros((DIM, RANK), dtype=np.float32))
    _finish(w)
    return path


def _finish(w: object) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
