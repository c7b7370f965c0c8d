#!/usr/bin/env python3
"""A fine-tune at real size, built clean, against the same llama.cpp commands typed by hand: ``python -m bench scale``.

Usage::

    python -m bench scale                    # Llama-3.1-8B's shape (MODELKIT_BENCH_SCALE_PARAMS=1B for less)
    python bench/scale.py --params 8B

Makes, once (kept in ``$MODELKIT_BENCH_SCALE_DIR``, default ``~/.cache/modelkit/bench-scale``), a
checkpoint of Llama-3.1-8B's shape (hidden 4096, 32 layers, 32 heads and 8 KV heads, feed-forward
14336, vocabulary 128256, untied embeddings) with random bf16 weights, written in shards of 5 GB as
the Hub's are, the tiny example's tokenizer (padded to the vocabulary by the converter), and a
rank-16 LoRA on every projection of every layer. Then, each in a clean folder:

1. ``modelkit build --no-ollama`` of Q4_K_M and Q8_0 with ``[build] keep = "shipped"``, by each
   of its two routes to the merged model: merging the LoRA while converting the base (the route
   ``keep = "shipped"`` takes, :mod:`modelkit.steps.convert_merging`), and llama.cpp's own
   (convert the base and the LoRA, ``llama-export-lora``), the same spec with
   ``modelkit.rules.MERGE_WHILE_CONVERTING`` off;
2. the same llama.cpp commands by hand: convert the base, convert the LoRA, ``llama-export-lora``,
   ``llama-quantize`` twice (the hand flow keeps every file it made, as a person would).

Each is measured while it runs: wall time; peak disk (the file system's used bytes, sampled every
0.5 s, against the start); bytes written (the block device's, from ``/proc/diskstats``); peak
private memory (the sum of every descendant process's anonymous RSS: a model's mmap'd pages are the
page cache's, not the process's). After each modelkit build, two no-op builds (the intermediates
are gone): the first plans, the second answers from the stamp the first left; their times, and
that they ran nothing. Last, the proof that the two routes make one model: the merged GGUF of the
first route (built by name) against export-lora's from the hand flow, weight by weight (how many
differ, by how many f16 ulps), and their greedy continuations (32 tokens, ``--temp 0``).
It checks first that the disk holds the largest flow, and removes everything but the kept
checkpoint at the end. Not run by CI: about 6 minutes at 1B on 2 cores, about half an hour at 8B
(once the checkpoint is made).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHAPES = {  # hidden, intermediate, layers, heads, kv heads, vocabulary
    "8B": (4096, 14336, 32, 32, 8, 128256),
    "1B": (2048, 8192, 16, 32, 8, 128256),
    "0.1B": (512, 2048, 8, 8, 4, 32000),
}
SHARD = 5 << 30
RANK = 16
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SPEC = """name = "scale"
[base]
path = "./base"
[[adapters]]
name = "tuned"
path = "./lora"
[quantize]
types = ["Q4_K_M", "Q8_0"]
[build]
keep = "shipped"
[ollama]
template = "{{ .Prompt }}"
"""


def tensors(shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """Every weight of a Llama of ``shape``, as a Hugging Face checkpoint names it."""
    hidden, ff, layers, heads, kv, vocab = shape
    head = hidden // heads
    out = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (hidden,)), (p + "post_attention_layernorm.weight", (hidden,)),
                (p + "self_attn.q_proj.weight", (hidden, hidden)), (p + "self_attn.k_proj.weight", (kv * head, hidden)),
                (p + "self_attn.v_proj.weight", (kv * head, hidden)), (p + "self_attn.o_proj.weight", (hidden, hidden)),
                (p + "mlp.gate_proj.weight", (ff, hidden)), (p + "mlp.up_proj.weight", (ff, hidden)),
                (p + "mlp.down_proj.weight", (hidden, ff))]
    return out + [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]


def write_safetensors(path: Path, items: list[tuple[str, tuple[int, ...]]], dtype: str, seed: int) -> None:
    """A safetensors file of random ``dtype`` (BF16 or F32) tensors, written tensor by tensor: the
    format is a JSON header and the raw bytes, so nothing but one tensor is ever in memory."""
    import numpy as np

    size = 2 if dtype == "BF16" else 4
    header, offset = {}, 0
    for name, shape in items:
        count = int(np.prod(shape))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + count * size]}
        offset += count * size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for name, shape in items:
            values = rng.standard_normal(int(np.prod(shape)), dtype=np.float32) * 0.02
            if name.endswith("norm.weight"):
                values = np.ones_like(values)
            out.write((values.view(np.uint32) >> 16).astype(np.uint16).tobytes() if size == 2 else values.tobytes())


def make_checkpoint(where: Path, params: str) -> Path:
    """The base checkpoint and its LoRA in ``where`` (made once; a ``done`` file marks it whole)."""
    if (where / "done").is_file():
        return where
    shutil.rmtree(where, ignore_errors=True)
    (where / "base").mkdir(parents=True)
    shape = SHAPES[params]
    hidden, ff, layers, heads, kv, vocab = shape
    items = tensors(shape)
    shards, current, used = [], [], 0
    for name, dims in items:
        bytes_ = 2 * int.__mul__(*dims) if len(dims) == 2 else 2 * dims[0]
        if current and used + bytes_ > SHARD:
            shards.append(current)
            current, used = [], 0
        current.append((name, dims))
        used += bytes_
    shards.append(current)
    index = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(where / "base" / name, shard, "BF16", i)
        index.update({tensor: name for tensor, _ in shard})
    (where / "base" / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": index}))
    (where / "base" / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "intermediate_size": ff, "num_hidden_layers": layers, "num_attention_heads": heads,
        "num_key_value_heads": kv, "vocab_size": vocab, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "bos_token_id": 1,
        "eos_token_id": 2}))
    tiny = Path(tempfile.mkdtemp(prefix="modelkit-scale-tiny-"))
    subprocess.run([sys.executable, str(ROOT / "examples" / "tiny" / "make_tiny.py"), str(tiny)], check=True,
                   capture_output=True)
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tiny / "base" / name, where / "base" / name)
    shutil.rmtree(tiny)
    make_lora(where / "lora", shape)
    (where / "done").write_text(params)
    return where


def make_lora(folder: Path, shape: tuple[int, ...]) -> None:
    """A rank-16 PEFT LoRA on every projection (random A and B: it changes every layer)."""
    hidden, ff, layers, heads, kv, _ = shape
    head = hidden // heads
    dims = {"q_proj": (hidden, hidden), "k_proj": (kv * head, hidden), "v_proj": (kv * head, hidden),
            "o_proj": (hidden, hidden), "gate_proj": (ff, hidden), "up_proj": (ff, hidden), "down_proj": (hidden, ff)}
    items = []
    for i in range(layers):
        for module, (out_features, in_features) in dims.items():
            where = "self_attn" if module.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            prefix = f"base_model.model.model.layers.{i}.{where}.{module}"
            items += [(f"{prefix}.lora_A.weight", (RANK, in_features)),
                      (f"{prefix}.lora_B.weight", (out_features, RANK))]
    folder.mkdir(parents=True)
    write_safetensors(folder / "adapter_model.safetensors", items, "F32", 99)
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": RANK, "lora_alpha": 2 * RANK, "target_modules": list(TARGETS), "bias": "none",
        "lora_dropout": 0.0, "task_type": "CAUSAL_LM", "base_model_name_or_path": "scale-base",
        "fan_in_fan_out": False}))


@dataclass
class Sampler:
    """Peak disk used, bytes written and peak private memory while a flow runs (sampled)."""

    root_pid: int = 0
    start_used: int = 0
    start_written: int = 0
    peak_disk: int = 0
    peak_private: int = 0
    written: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self.start_used, self.start_written = shutil.disk_usage("/").used, _sectors_written()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self.written = _sectors_written() - self.start_written

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            self.peak_disk = max(self.peak_disk, shutil.disk_usage("/").used - self.start_used)
            self.peak_private = max(self.peak_private, _private_bytes(os.getpid()))


def _sectors_written() -> int:
    """Bytes written to every block device so far (``/proc/diskstats``, field 10: sectors of 512 bytes)."""
    total = 0
    for line in Path("/proc/diskstats").read_text().splitlines():
        parts = line.split()
        if len(parts) > 9 and not parts[2].startswith(("loop", "ram")) and not parts[2][-1].isdigit():
            total += int(parts[9]) * 512
    return total


def _private_bytes(root: int) -> int:
    """The anonymous RSS of ``root``'s descendants (not itself), summed."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(status.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("RssAnon:"))
            total += int(line.split()[1]) * 1024
        except (OSError, StopIteration):
            continue
    return total


def run_flow(name: str, commands: list[list[str]], cwd: Path, env: dict[str, str]) -> dict[str, float]:
    with Sampler() as seen:
        start = time.perf_counter()
        for cmd in commands:
            done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{name}: {' '.join(cmd[:3])} failed:\n{done.stderr[-3000:]}")
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_disk": seen.peak_disk, "written": seen.written, "private": seen.peak_private}


def hand_commands(model: Path, folder: Path) -> list[list[str]]:
    """The flow a person types (llama.cpp's README): convert, convert the LoRA, merge, quantize twice."""
    sys.path.insert(0, str(ROOT))
    from modelkit.toolchain import find_toolchain

    tc = find_toolchain()
    assert tc is not None, "no toolchain: run `modelkit toolchain install`"
    out = folder / "out"
    return [["mkdir", "-p", str(out)],
            [tc.python, str(tc.convert_hf), str(model / "base"), "--outtype", "f16", "--outfile",
             str(out / "base.f16.gguf")],
            [tc.python, str(tc.convert_lora), str(model / "lora"), "--base", str(model / "base"), "--outtype", "f16",
             "--outfile", str(out / "lora.gguf")],
            [str(tc.export_lora), "-m", str(out / "base.f16.gguf"), "--lora", str(out / "lora.gguf"), "-o",
             str(out / "merged.f16.gguf")],
            [str(tc.quantize), str(out / "merged.f16.gguf"), str(out / "merged.Q4_K_M.gguf"), "Q4_K_M"],
            [str(tc.quantize), str(out / "merged.f16.gguf"), str(out / "merged.Q8_0.gguf"), "Q8_0"]]


ROUTES = {"merging while converting": True, "export-lora": False}
"""Each modelkit flow by its route, and ``modelkit.rules.MERGE_WHILE_CONVERTING`` for it."""
PROMPT = "The printer does not start."
NOOPS = ("planned", "stamped", "planned, warm")
"""The no-op builds after each build: the first, whose files the build's writes pushed out of the
page cache; the next, from the stamp the first left; one more without the stamp, the cache warm."""


def modelkit_command(merging: bool, *args: str) -> list[str]:
    """``python -m modelkit build --no-ollama ARGS`` with the route to the merged model chosen: the
    command a user types for the default route, the switch set first for the other (importing the
    rules first costs that route's no-op about 0.1 s that a user's would not pay)."""
    sys.path.insert(0, str(ROOT))
    from modelkit.rules import MERGE_WHILE_CONVERTING

    build = ["build", "--no-ollama", *args]
    if merging == MERGE_WHILE_CONVERTING:
        return [sys.executable, "-m", "modelkit", *build]
    return [sys.executable, "-c", "import sys, modelkit.rules as r; "
            f"r.MERGE_WHILE_CONVERTING = {merging}; from modelkit.cli import main; sys.exit(main(sys.argv[1:]))",
            *build]


def new_project(model: Path, folder: Path) -> Path:
    """A project of ``SPEC`` reading the kept checkpoint and LoRA in place."""
    folder.mkdir()
    for part in ("base", "lora"):
        (folder / part).symlink_to(model / part)
    (folder / "model.toml").write_text(SPEC)
    return folder


def modelkit_flow(name: str, merging: bool, model: Path, work: Path, env: dict[str, str],
                  results: dict[str, dict[str, float]]) -> None:
    """One modelkit build measured, its disk at rest, then two no-op builds (see the module's docstring)."""
    project = new_project(model, work / "modelkit")
    build = modelkit_command(merging)
    results[name] = run_flow(name, [build], project, env)
    results[name]["at_rest"] = du(project)  # .modelkit/ (the artifact cache) is below it
    for which in NOOPS:  # the first no-op plans, and leaves the stamp the next answers from
        if which == "planned, warm":
            (project / ".modelkit" / "noop.json").unlink(missing_ok=True)
        noop_start = time.perf_counter()
        noop = subprocess.run(build, cwd=project, env=env, capture_output=True, text=True)
        results[f"{name}: noop {which}"] = {"seconds": time.perf_counter() - noop_start,
                                            "ran_nothing": "everything is up to date" in noop.stderr}
    shutil.rmtree(project)


def prove(model: Path, work: Path, theirs: Path, env: dict[str, str]) -> dict[str, float]:
    """The merged GGUF made while converting against export-lora's (``theirs``): weights, and greedy text."""
    project = new_project(model, work / "proof")
    done = subprocess.run(modelkit_command(True, "gguf:base+tuned.f16"), cwd=project, env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"proof: the merged GGUF failed:\n{done.stderr[-3000:]}")
    ours = project / "build" / "base+tuned.f16.gguf"
    proof: dict[str, float] = dict(compare_weights(ours, theirs))
    proof["same_greedy"] = greedy(ours) == greedy(theirs)
    shutil.rmtree(project)
    return proof


def compare_weights(ours: Path, theirs: Path) -> dict[str, float]:
    """How many f16 weights of ``ours`` differ from ``theirs``, and by at most how many ulps; the
    largest difference in the other (F32) tensors. A tensor of another type stops the bench."""
    import numpy as np
    from gguf import GGUFReader

    def line(x: np.ndarray) -> np.ndarray:
        bits = x.view(np.int16).astype(np.int32)
        return np.where(bits < 0, -0x8000 - bits, bits)

    mine = {t.name: t for t in GGUFReader(ours).tensors}
    counts = {"weights": 0.0, "differ": 0.0, "worst_ulps": 0.0, "f32_worst": 0.0}
    for tensor in GGUFReader(theirs).tensors:
        if tensor.tensor_type.name != mine[tensor.name].tensor_type.name:
            raise SystemExit(f"proof: {tensor.name} is {mine[tensor.name].tensor_type.name} here, "
                             f"{tensor.tensor_type.name} in export-lora's")
        a, b = np.asarray(mine[tensor.name].data).reshape(-1), np.asarray(tensor.data).reshape(-1)
        for at in range(0, a.size, 1 << 24):  # a slice at a time: an 8B model's embeddings are 0.5G weights
            x, y = a[at:at + (1 << 24)], b[at:at + (1 << 24)]
            if x.dtype == np.float16:
                ulps = np.abs(line(x) - line(y))
                counts["weights"] += ulps.size
                counts["differ"] += int((ulps > 0).sum())
                counts["worst_ulps"] = max(counts["worst_ulps"], int(ulps.max()))
            else:
                counts["f32_worst"] = max(counts["f32_worst"], float(np.abs(x.astype(np.float64) - y).max()))
    return counts


def greedy(gguf_file: Path) -> bytes:
    """32 greedy tokens of ``PROMPT`` (every core, the same for both models)."""
    sys.path.insert(0, str(ROOT))
    from modelkit.toolchain import find_toolchain

    tc = find_toolchain()
    assert tc is not None
    cmd = [str(tc.completion), "-m", str(gguf_file), "-p", PROMPT, "-n", "32", "--temp", "0", "--seed", "1",
           "--ignore-eos", "-no-cnv", "--no-warmup", "-t", str(os.cpu_count() or 1)]
    for _ in range(5):  # its log thread can lose the end of the output; a whole one ends with a blank line
        done = subprocess.run(cmd, capture_output=True, timeout=3600)
        if done.returncode != 0:
            raise SystemExit(f"proof: llama-completion failed:\n{done.stderr[-3000:].decode(errors='replace')}")
        if done.stdout.endswith(b"\n\n"):
            break
    return done.stdout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.splitlines()[0])
    parser.add_argument("--params", choices=sorted(SHAPES), default=os.environ.get("MODELKIT_BENCH_SCALE_PARAMS", "8B"))
    args = parser.parse_args(argv)
    kept = Path(os.environ.get("MODELKIT_BENCH_SCALE_DIR") or Path.home() / ".cache" / "modelkit" / "bench-scale")
    model = kept / args.params
    params = sum(int(__import__("math").prod(s)) for _, s in tensors(SHAPES[args.params]))
    need = params * 2 * (0 if (model / "done").is_file() else 1) + params * 2 * 2 + params * (0.6 + 1.07) + (4 << 30)
    free = shutil.disk_usage(kept.parent if kept.parent.exists() else Path.home()).free
    if free < need:
        raise SystemExit(f"bench scale needs {need / 1e9:.0f} GB free for {args.params}, {free / 1e9:.0f} GB is")
    start = time.perf_counter()
    make_checkpoint(model, args.params)
    print(f"  checkpoint: {params / 1e9:.2f}B parameters, {du(model / 'base') / 1e9:.1f} GB "
          f"(made or found in {time.perf_counter() - start:.0f} s)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="modelkit-scale-", dir=kept) as tmp:
        work = Path(tmp)
        for name, merging in ROUTES.items():
            modelkit_flow(name, merging, model, work, env, results)
        hand = work / "hand"
        hand.mkdir()
        results["by hand"] = run_flow("by hand", hand_commands(model, hand), hand, env)
        results["by hand"]["at_rest"] = du(hand)
        for made in ("base.f16.gguf", "lora.gguf", "merged.Q4_K_M.gguf", "merged.Q8_0.gguf"):
            (hand / "out" / made).unlink()  # room for the proof's merged GGUF beside export-lora's
        results["proof"] = prove(model, work, hand / "out" / "merged.f16.gguf", env)
    report(args.params, params, du(model / "base"), results)


def du(path: Path) -> int:
    """Bytes of the files under ``path`` (links followed once; hard links counted once)."""
    seen, total = set(), 0
    for folder, _, files in os.walk(path, followlinks=False):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def report(shape: str, params: int, checkpoint: int, results: dict[str, dict[str, float]]) -> None:
    flows = [*ROUTES, "by hand"]
    ours, theirs = (results[name] for name in ROUTES)
    print(f"  {shape}: {params / 1e9:.2f}B parameters, checkpoint {checkpoint / 1e9:.1f} GB; "
          "each flow builds Q4_K_M and Q8_0 from a merged rank-16 LoRA")
    print("  | | " + " | ".join(f"modelkit, {name}" for name in ROUTES) + " | by hand | merging / export-lora |")
    print("  |---|---|---|---|---|")
    for label, key, unit in (("wall time", "seconds", "s"), ("peak disk (beyond the checkpoint)", "peak_disk", "GB"),
                             ("bytes written", "written", "GB"), ("peak private memory", "private", "GB"),
                             ("disk at rest (beyond the checkpoint)", "at_rest", "GB")):
        shown = (lambda v: f"{v:.0f} s") if unit == "s" else (lambda v: f"{v / 1e9:.1f} GB")
        ratio = f"{ours[key] / theirs[key]:.2f}" if theirs[key] else "-"
        print(f"  | {label} | " + " | ".join(shown(results[name][key]) for name in flows) + f" | {ratio} |")
    for name in ROUTES:
        for which in NOOPS:
            noop = results[f"{name}: noop {which}"]
            print(f"  {name}: no-op after the intermediates were removed ({which}): {noop['seconds']:.2f} s, "
                  f"{'ran nothing' if noop['ran_nothing'] else 'RAN SOMETHING'}")
    proof = results["proof"]
    print(f"  proof: {proof['differ']:.0f} of {proof['weights']:.0f} f16 weights differ from export-lora's, by at most "
          f"{proof['worst_ulps']:.0f} ulp (F32 tensors: at most {proof['f32_worst']:.2g} apart); greedy continuation "
          f"{'the same' if proof['same_greedy'] else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
