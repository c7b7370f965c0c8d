"""The whole command when nothing changed: ``modelkit build --no-ollama`` and ``modelkit plan``.

A make-like tool is judged by its no-op: watch mode and editors run it all the time. Measured as
a user runs it (a fresh interpreter each time, start-up and imports included) against a bare
``python -c pass`` in the same run, on two projects:

1. the shipped example (``make example`` builds it), a 512-token vocabulary;
2. a project made here whose base and adapter each carry a real-size tokenizer (150,016 tokens
   in ``tokenizer.json`` and ``tokenizer.model``, as Llama 3 or Qwen ship them), built once.

Each no-op is measured twice: **planned** (the no-op stamp removed before each run, as after any
change: the spec loaded, the graph planned, every target found fresh) and **stamped** (answered
from the stamp the last no-op left, see ``modelkit/core/stamp.py``: only stats). Goals: the
example's no-op ≤ 0.25 s, and the big vocabulary's within 1.2 × the example's (a no-op reads no
file contents: facts read from big inputs are kept per input digest).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tiny" / "model.toml"
BIG_VOCABULARY = 150_016
REPEATS = 9


def median_seconds(cmd: list[str], repeats: int = REPEATS, before: Callable[[], None] = lambda: None) -> float:
    """The median wall time of ``cmd``, run ``repeats`` times after one warm-up run, each after ``before()``."""
    subprocess.run(cmd, capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def modelkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "modelkit", *args]


def big_vocabulary_pieces(proto: bytes, size: int) -> bytes:
    """The tiny example's SentencePiece model grown to ``size`` pieces (made-up words, each a
    normal piece with a low score), so llama.cpp converts it as it would a real one."""
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2

    model = spm_pb2.ModelProto()
    model.ParseFromString(proto)
    for i in range(size - len(model.pieces)):
        piece = model.pieces.add()
        piece.piece, piece.score, piece.type = f"▁w{i:06d}", -1000.0 - i, spm_pb2.ModelProto.SentencePiece.NORMAL
    return model.SerializeToString()


def tokenizer_json(proto: bytes) -> str:
    """A ``tokenizer.json`` of the same vocabulary, in the layout transformers saves (a BPE
    model's ``vocab`` map and ``added_tokens``): the 30 MB of JSON a fine-tune ships beside it."""
    from sentencepiece import sentencepiece_model_pb2 as spm_pb2

    model = spm_pb2.ModelProto()
    model.ParseFromString(proto)
    vocab = {p.piece: i for i, p in enumerate(model.pieces)}
    added = [{"id": i, "content": p.piece, "special": True, "single_word": False, "lstrip": False,
              "rstrip": False, "normalized": False} for i, p in enumerate(model.pieces)
             if p.type in (spm_pb2.ModelProto.SentencePiece.CONTROL, spm_pb2.ModelProto.SentencePiece.UNKNOWN)]
    return json.dumps({"version": "1.0", "added_tokens": added,
                       "model": {"type": "BPE", "byte_fallback": True, "vocab": vocab, "merges": []}})


def make_big_vocabulary_project(root: Path) -> Path:
    """A one-layer Llama with a 150k vocabulary and an untrained LoRA, both carrying the
    tokenizer; returns its spec."""
    import random

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    sys.path.insert(0, str(ROOT / "examples" / "tiny"))
    import make_tiny

    proto = big_vocabulary_pieces(make_tiny.train_tokenizer(make_tiny.corpus(random.Random(0))), BIG_VOCABULARY)
    base, lora = root / "base", root / "lora"
    config = LlamaConfig(vocab_size=BIG_VOCABULARY, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, bos_token_id=1, eos_token_id=2,
                         tie_word_embeddings=False, torch_dtype="float32")
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(base, safe_serialization=True)
    get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                     task_type="CAUSAL_LM")).save_pretrained(lora, safe_serialization=True)
    tiny_config = json.loads((ROOT / "examples" / "tiny" / "base" / "tokenizer_config.json").read_text())
    for folder in (base, lora):
        (folder / "tokenizer.model").write_bytes(proto)
        (folder / "tokenizer.json").write_text(tokenizer_json(proto))
        (folder / "tokenizer_config.json").write_text(json.dumps(tiny_config))
    spec = root / "model.toml"
    spec.write_text('name = "big-vocab"\n[base]\npath = "./base"\n[[adapters]]\nname = "tuned"\npath = "./lora"\n'
                    '[quantize]\ntypes = ["Q8_0"]\n')
    return spec


def no_op(spec: Path) -> tuple[float, float]:
    """(planned, stamped) median seconds of ``modelkit build --no-ollama`` on the built ``spec``."""
    cmd = modelkit("build", str(spec), "--no-ollama")
    stamp = spec.parent / ".modelkit" / "noop.json"
    planned = median_seconds(cmd, before=lambda: stamp.unlink(missing_ok=True))
    return planned, median_seconds(cmd)


def main() -> None:
    if not (EXAMPLE.parent / "build").is_dir():
        print("the example is not built: run `make example` first")
        return
    compiled = (ROOT / "modelkit" / "__pycache__").is_dir()
    bytecode = "" if compiled else " (modelkit's bytecode is not compiled: run make setup)"
    bare = median_seconds([sys.executable, "-c", "pass"])
    planned, stamped = no_op(EXAMPLE)
    plan = median_seconds(modelkit("plan", str(EXAMPLE)))
    print(f"bare interpreter (`python -c pass`, median of {REPEATS}): {bare * 1000:.0f} ms{bytecode}")
    print(f"no-op `modelkit build --no-ollama`, the example: {stamped * 1000:.0f} ms from its stamp "
          f"({stamped / bare:.1f} x bare; goal <= 250 ms), {planned * 1000:.0f} ms planned ({planned / bare:.1f} x)")
    print(f"`modelkit plan`, the example: {plan * 1000:.0f} ms ({plan / bare:.1f} x bare)")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        spec = make_big_vocabulary_project(Path(tmp))
        subprocess.run(modelkit("build", str(spec), "--no-ollama"), capture_output=True, check=True)
        made = time.perf_counter() - start
        big_planned, big_stamped = no_op(spec)
        size = sum(f.stat().st_size for f in Path(tmp).glob("*/tokenizer.json"))
    print(f"no-op, base and adapter with {BIG_VOCABULARY:,}-token tokenizers ({size / 1e6:.0f} MB of tokenizer.json; "
          f"made and built once in {made:.0f} s): {big_stamped * 1000:.0f} ms from its stamp -> "
          f"{big_stamped / stamped:.2f} x the example's, {big_planned * 1000:.0f} ms planned -> "
          f"{big_planned / planned:.2f} x (goal <= 1.2)")


if __name__ == "__main__":
    main()
