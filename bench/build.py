"""Clean build time against the same llama.cpp commands typed by hand: ``python -m bench build``.

For two projects, each a base model with one LoRA and two quantizations (Q4_K_M, Q8_0): the
tiny example's 2-layer Llama, and a ~115M-parameter Llama (hidden 768, 12 layers, random
weights, the tiny example's tokenizer, a rank-16 LoRA on the attention projections) made here.
Four clean builds per project, in one run so that the machine's load is the same for each:

1. ``modelkit build --no-ollama -j 1`` (one step at a time, as before parallel builds);
2. ``modelkit build --no-ollama`` (the default ``-j``);
3. the same with ``MODELKIT_WARM=0``: every convert script started cold, importing torch and
   transformers itself, as before warm starts (:mod:`modelkit.core.warm`);
4. *by hand*: the commands the ``-j 1`` build ran (read from its step logs, ``$ ...`` lines), one
   after another, as a person would type them: convert, convert the LoRA, llama-export-lora, the
   quantizations.

Each build is a fresh project folder (no state, no artifact cache). The ratios against the
hand-run sequence are printed; goals on a 2-core machine: default <= 0.75x on the tiny example,
<= 1.02x on the larger model. ``MODELKIT_BENCH_BUILD_REPEATS`` (default 1) repeats each build and
keeps the fastest; ``MODELKIT_BENCH_BUILD_MODELS=DIR`` keeps the made models in DIR for the next run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = """name = "bench"
[base]
path = "./base"
[[adapters]]
name = "support"
path = "./lora"
[quantize]
types = ["Q4_K_M", "Q8_0"]
[ollama]
system = "You are a support agent."
"""

MAKE_LARGER = r'''
import shutil, sys, torch
from pathlib import Path
from transformers import LlamaConfig, LlamaForCausalLM
from peft import LoraConfig, get_peft_model
tiny, out = Path(sys.argv[1]), Path(sys.argv[2])
vocab = LlamaConfig.from_pretrained(tiny).vocab_size
config = LlamaConfig(vocab_size=vocab, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                     num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=512,
                     rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2, tie_word_embeddings=False,
                     torch_dtype="float16")
torch.manual_seed(0)
model = LlamaForCausalLM(config).to(torch.float16)
model.save_pretrained(out / "base", safe_serialization=True)
for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
    shutil.copy(tiny / name, out / "base" / name)
lora = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, init_lora_weights=False,
                                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
lora.save_pretrained(out / "lora")
print(sum(p.numel() for p in model.parameters()))
'''


def python() -> str:
    return sys.executable


def make_models(work: Path) -> tuple[Path, Path, int]:
    """The tiny example's model and the larger one: (tiny folder, larger folder, its parameters).
    Made in ``work``, or kept in ``$MODELKIT_BENCH_BUILD_MODELS`` and reused from there."""
    kept = os.environ.get("MODELKIT_BENCH_BUILD_MODELS")
    where = Path(kept) if kept else work
    tiny, larger = where / "tiny", where / "larger"
    if not (tiny / "lora").is_dir():
        shutil.rmtree(tiny, ignore_errors=True)
        subprocess.run([python(), str(ROOT / "examples" / "tiny" / "make_tiny.py"), str(tiny)], check=True,
                       capture_output=True)
    if not (larger / "params").is_file():
        shutil.rmtree(larger, ignore_errors=True)
        larger.mkdir(parents=True)
        done = subprocess.run([python(), "-c", MAKE_LARGER, str(tiny / "base"), str(larger)], check=True,
                              capture_output=True, text=True)
        (larger / "params").write_text(done.stdout.split()[-1])
    return tiny, larger, int((larger / "params").read_text())


def project(models: Path, where: Path) -> Path:
    """A fresh project folder holding ``models``' base and LoRA and the bench's spec."""
    where.mkdir(parents=True)
    for folder in ("base", "lora"):
        shutil.copytree(models / folder, where / folder)
    (where / "model.toml").write_text(SPEC)
    return where


def modelkit_build(folder: Path, jobs: int | None, warm: bool = True) -> float:
    """Seconds for a clean ``modelkit build --no-ollama`` (with ``-j`` when given), as a user runs it."""
    cmd = [python(), "-m", "modelkit", "build", str(folder / "model.toml"), "--no-ollama"]
    cmd += ["-j", str(jobs)] if jobs else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "MODELKIT_WARM": "1" if warm else "0"}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"modelkit build failed in {folder}:\n{done.stderr[-2000:]}")
    return seconds


def typed_commands(folder: Path) -> list[list[str]]:
    """The tool commands a build ran, in its (sequential) order, from its step logs."""
    sys.path.insert(0, str(ROOT))
    from modelkit.core.engine import _safe
    from modelkit.project import Project

    commands = []
    for target in Project.open(folder / "model.toml").graph:
        log = folder / ".modelkit" / "logs" / f"{_safe(target.name)}.log"
        if log.is_file():
            # The bench's folders have no spaces in their paths, so a logged command splits back exactly.
            commands += [line[2:].split(" ") for line in log.read_text().splitlines() if line.startswith("$ ")]
    return commands


def by_hand(commands: list[list[str]], folder: Path) -> float:
    """Seconds to run ``commands`` one after another (into the temporary names they name, removed after)."""
    from modelkit.steps.convert import script_env

    env = script_env()
    start = time.perf_counter()
    for cmd in commands:
        subprocess.run(cmd, check=True, capture_output=True, env=env)
    seconds = time.perf_counter() - start
    for leftover in (folder / "build").glob("*.modelkit-tmp-*"):
        leftover.unlink()
    return seconds


def measure(name: str, models: Path, work: Path, repeats: int) -> dict[str, float]:
    """Fastest of ``repeats`` clean builds: -j 1, the default (warm and cold), and the same
    commands by hand."""
    times: dict[str, list[float]] = {"-j 1": [], "default": [], "cold": [], "by hand": []}
    for i in range(repeats):
        sequential = project(models, work / f"{name}-j1-{i}")
        times["-j 1"].append(modelkit_build(sequential, 1))
        times["by hand"].append(by_hand(typed_commands(sequential), sequential))
        times["default"].append(modelkit_build(project(models, work / f"{name}-default-{i}"), None))
        times["cold"].append(modelkit_build(project(models, work / f"{name}-cold-{i}"), None, warm=False))
    return {k: min(v) for k, v in times.items()}


def report(name: str, times: dict[str, float], goal: float) -> None:
    hand = times["by hand"]
    print(f"  {name}: by hand {hand:.2f}s, -j 1 {times['-j 1']:.2f}s ({times['-j 1'] / hand:.2f}x), "
          f"default {times['default']:.2f}s ({times['default'] / hand:.2f}x; goal <= {goal:.2f}x), "
          f"default started cold {times['cold']:.2f}s ({times['cold'] / hand:.2f}x)")


def main() -> None:
    from modelkit.core.resources import Machine, default_jobs

    repeats = int(os.environ.get("MODELKIT_BENCH_BUILD_REPEATS", "1"))
    machine = Machine.this()
    print(f"  {machine.cores} cores, default -j {default_jobs(machine)}, {repeats} build(s) each, fastest kept")
    with tempfile.TemporaryDirectory(prefix="modelkit-bench-build-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        tiny, larger, params = make_models(work)
        print(f"  made the models in {time.perf_counter() - start:.0f}s (larger: {params / 1e6:.0f}M parameters)")
        report("tiny example", measure("tiny", tiny, work, repeats), 0.75)
        report(f"{params / 1e6:.0f}M Llama", measure("larger", larger, work, repeats), 1.02)
    load = os.getloadavg()[0]
    print(f"  load average at the end: {load:.1f} on {machine.cores} cores"
          + (" (others were busy: ratios are noisier)" if load > machine.cores * 1.2 else ""))


if __name__ == "__main__":
    main()
