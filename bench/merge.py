"""Peak memory of the PyTorch merge (``python -m modelkit.steps.merge_peft``) against the model's size.

The merge loads the base in its own dtype, merges each LoRA in place and saves small shards, so
its peak resident memory should be about the model's size on disk plus one layer and the fixed
cost of importing torch, transformers and PEFT. The bench makes a random-weights Llama of ~0.85B
parameters in bf16 (1.7 GB; ``MODELKIT_BENCH_MERGE_LAYERS`` changes its depth) and a rank-16 LoRA
on every projection, runs the merge subprocess exactly as the ``merge-peft`` step does, and reads
its peak RSS from the kernel (``wait4``; the bench itself never imports torch, since a child's peak
starts at its parent's size). It does the same for an adapter that adds two tokens
with ``modules_to_save = ["embed_tokens", "lm_head"]``, which costs PEFT one more copy of both
embeddings, and, when the llama.cpp toolchain is installed, for convert_hf_to_gguf.py on the merged
folder (the step's second process). Numbers are printed, nothing is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GB = 1 << 30


def make_base(folder: Path, layers: int) -> int:
    """A random Llama in bf16 (hidden 2048, MLP 5632, GQA 16/4 heads, vocab 32000); its parameter count."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=layers,
                         num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048,
                         tie_word_embeddings=False, torch_dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.02)
    count = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder, max_shard_size="2GB")
    _write_tokenizer(folder)
    return count


def _write_tokenizer(folder: Path) -> None:
    """The tiny example's SentencePiece tokenizer (512 pieces; the converter pads the vocabulary to
    the model's 32000 rows): the merge only copies it, and it keeps the bench free of downloads."""
    import json
    import random
    import runpy

    make_tiny = runpy.run_path(str(ROOT / "examples" / "tiny" / "make_tiny.py"))
    (folder / "tokenizer.model").write_bytes(make_tiny["train_tokenizer"](make_tiny["corpus"](random.Random(0))))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer",
                                                              "bos_token": "<s>", "eos_token": "</s>"}))


def make_adapter(base: Path, folder: Path, chat_tokens: bool) -> None:
    """A rank-16 LoRA on every projection with random weights; with ``chat_tokens``, two added
    tokens and trained embeddings (``modules_to_save``), as a chat fine-tune saves them."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    extra: dict[str, Any] = {}
    if chat_tokens:
        model.resize_token_embeddings(32002, mean_resizing=False)
        extra["modules_to_save"] = ["embed_tokens", "lm_head"]
    tuned = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], **extra))
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    tuned.save_pretrained(folder)


def make_all(root: str, layers: int) -> None:
    """The base and both adapters under ``root``; prints the base's parameter count."""
    params = make_base(Path(root) / "base", layers)
    make_adapter(Path(root) / "base", Path(root) / "lora", chat_tokens=False)
    make_adapter(Path(root) / "base", Path(root) / "chat", chat_tokens=True)
    print(params)


@dataclass
class Peak:
    rss: int  # the kernel's peak resident set (wait4's ru_maxrss)
    anon: int  # the largest anonymous part seen (sampled): memory that cannot be dropped and re-read
    seconds: float


def peak_rss(cmd: list[str], env: dict[str, str] | None = None) -> Peak:
    """One process's peak memory. Resident memory counts the pages of mapped files too (the
    safetensors a model is loaded from), which the kernel can drop and read again; the anonymous
    part, sampled from /proc every 10 ms, is what the process really holds."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        anon = 0
        while True:
            anon = max(anon, _anon_bytes(proc.pid))
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd[2:4]} failed: {err.read().decode(errors='replace')[-2000:]}")
    return Peak(usage.ru_maxrss * 1024, anon, time.perf_counter() - start)


def _anon_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def size_of(folder: Path, pattern: str = "*.safetensors") -> int:
    return sum(p.stat().st_size for p in folder.glob(pattern))


def merge_cmd(base: Path, adapter: Path, out: Path) -> list[str]:
    """The merge subprocess as the ``merge-peft`` step runs it, with the rows its route gives."""
    from modelkit.formats.peft import BaseFiles, merge_route, safetensors_shapes

    route = merge_route(adapter, safetensors_shapes(adapter / "adapter_model.safetensors"), lambda: BaseFiles(base),
                        "bench")
    return [sys.executable, "-m", "modelkit.steps.merge_peft", "--base", str(base), "--adapter", str(adapter),
            "--out", str(out), "--tokenizer", "base", *(["--rows", str(route.rows)] if route.rows else [])]


def convert_peak(merged: Path, out: Path) -> Peak | None:
    """convert_hf_to_gguf.py's peak on the merged folder, when the toolchain is installed."""
    from modelkit.steps.convert import script_env
    from modelkit.toolchain import find_toolchain

    toolchain = find_toolchain()
    if toolchain is None:
        return None
    return peak_rss([toolchain.python, str(toolchain.convert_hf), str(merged), "--outtype", "f16",
                     "--outfile", str(out)], env=script_env())


def main() -> None:
    layers = int(os.environ.get("MODELKIT_BENCH_MERGE_LAYERS", "16"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(dir=os.environ.get("MODELKIT_BENCH_TMP")) as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        # Made in a child: a child's peak RSS starts at its parent's size when it forks, so the
        # parent must stay small (it never imports torch).
        made = subprocess.run([sys.executable, "-c", f"from bench.merge import make_all; make_all({str(root)!r}, "
                               f"{layers})"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        params = int(made.stdout.split()[-1])
        disk = size_of(root / "base")
        print(f"model: random Llama, {layers} layers, {params / 1e9:.2f}B parameters in bf16, {disk / GB:.2f} GB of "
              f"safetensors (made in {time.perf_counter() - start:.0f} s)")
        imports = peak_rss([sys.executable, "-c", "import torch, transformers, peft, modelkit.steps.merge_peft"],
                           env=env)
        print(f"importing torch + transformers + peft alone: peak RSS {imports.rss / GB:.2f} GB "
              f"({imports.anon / GB:.2f} GB anonymous)")
        for name, adapter in (("LoRA r16 on every projection", root / "lora"),
                              ("+ 2 added tokens, modules_to_save embed_tokens/lm_head", root / "chat")):
            out = root / f"merged-{adapter.name}"
            peak = peak_rss(merge_cmd(root / "base", adapter, out), env=env)
            print(f"merge ({name}): peak RSS {peak.rss / GB:.2f} GB = {peak.rss / disk:.2f} x the model on disk, "
                  f"{(peak.rss - imports.rss) / disk:.2f} x without the imports; "
                  f"peak anonymous {peak.anon / GB:.2f} GB "
                  f"= {(peak.anon - imports.anon) / disk:.2f} x the model without the imports; {peak.seconds:.0f} s; "
                  f"wrote {size_of(out) / GB:.2f} GB in {len(list(out.glob('*.safetensors')))} shards")
            if adapter.name == "lora":
                converted = convert_peak(out, root / "merged.gguf")
                if converted is not None:
                    print(f"convert_hf_to_gguf.py on the merged folder (f16): peak RSS {converted.rss / GB:.2f} GB "
                          f"= {converted.rss / disk:.2f} x the model, {converted.anon / GB:.2f} GB anonymous; "
                          f"{converted.seconds:.0f} s")
                (root / "merged.gguf").unlink(missing_ok=True)
            for shard in out.glob("*"):
                shard.unlink()

if __name__ == "__main__":
    main()
