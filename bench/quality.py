"""What knowing the quality costs, and what the importance matrix buys, on the tiny example.

1. Wall time of the importance matrix (``imatrix:``), the full-precision logits (``logits:``) and
   one variant's evaluation (``eval:``), per MB of their text, as a ratio to the quantization step
   of the same model (Q4_K_M) — all measured in the same modelkit build, through its own steps.
2. The mean KL divergence of Q3_K_M, IQ3_M and IQ4_XS with the importance matrix (from that build)
   and without one (the same llama-quantize and llama-perplexity commands, minus ``--imatrix``,
   against the same logits): lower is better.

3. The quantization search (``[quantize] target``) for the Q4_K_M's own mean KLD: its cost
   (candidates, seconds, as a ratio to one variant's evaluation) and whether its choice is smaller
   than the smallest standard type that meets the same target — on the tiny example, and on the
   ~115M-parameter random Llama of ``bench/build.py`` (with the first 8 kB of the texts, so that a
   CPU affords it).

The tiny model is random apart from its LoRA, so its absolute numbers say little about a real
model; the ratios and the direction of the difference are what the bench is for. Numbers are
printed, nothing is asserted.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.build import make_models
from modelkit.core.engine import QuietReporter
from modelkit.core.graph import Target
from modelkit.project import Project
from modelkit.steps.evaluate import MEAN_KLD
from modelkit.toolchain import find_toolchain

ROOT = Path(__file__).resolve().parent.parent
TYPES = ["Q4_K_M", "Q3_K_M", "IQ3_M", "IQ4_XS"]
CONTEXT = 128
MB = 1 << 20


def threads() -> int:
    return len(os.sched_getaffinity(0))

SPEC = f"""\
name = "bench"
[base]
path = "./base"
[[adapters]]
name = "support"
path = "./lora"
[quantize]
types = {json.dumps(TYPES)}
imatrix = "./calibration.txt"
[evaluate]
text = "./eval.txt"
context = {CONTEXT}
[ollama]
register = "off"
"""


class Timings(QuietReporter):
    """Each target's wall time, as the engine reports it."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def done(self, target: Target, seconds: float, changed: bool) -> None:
        self.seconds[target.name] = seconds


def kld_without_imatrix(root: Path, quant: str) -> float:
    """Mean KLD of ``quant`` made without an importance matrix, against the build's own logits."""
    tc = find_toolchain()
    assert tc is not None
    build = root / "build"
    plain = root / f"plain.{quant}.gguf"
    subprocess.run([str(tc.quantize), str(build / "base+support.f16.gguf"), str(plain), quant],
                   check=True, capture_output=True)
    cmd = [str(tc.perplexity), "-m", str(plain), "--kl-divergence-base",
           str(root / ".modelkit" / "eval" / "base+support.logits"), "--kl-divergence",
           "-c", str(CONTEXT), "-b", str(CONTEXT), "-t", str(threads())]
    for _ in range(3):  # llama.cpp's asynchronous log can lose its last lines at exit
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        found = [m for line in (out.stdout + out.stderr).splitlines() if (m := MEAN_KLD.search(line))]
        if found:
            return float(found[-1].group(1))
    raise RuntimeError(f"llama-perplexity printed no mean KLD for {quant}")


def main() -> None:
    if find_toolchain() is None:
        print("needs the llama.cpp toolchain: modelkit toolchain install")
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tiny"
        runpy.run_path(str(ROOT / "examples" / "tiny" / "make_tiny.py"))["main"]([str(root)])
        costs(root)
        larger = Path(tmp) / "larger"
        _, models, params = make_models(Path(tmp) / "models")
        for folder in ("base", "lora"):
            shutil.copytree(models / folder, larger / folder)
        for text in ("calibration.txt", "eval.txt"):
            (larger / text).write_text((root / text).read_text()[:8000])
        (larger / "model.toml").write_text(SPEC.replace('"IQ3_M", "IQ4_XS"', '"Q8_0"'))
        print(f"the larger model ({params / 1e6:.0f}M parameters, random weights):")
        build = Timings()
        assert Project.open(larger / "model.toml").build(reporter=build).ok
        report = {row["quant"]: row for row in Project.open(larger / "model.toml").quality_report()["variants"]}
        search(larger, report["Q4_K_M"]["kld_mean"], build.seconds["eval:base+support.Q4_K_M"])


def costs(root: Path) -> None:
    """What the importance matrix, the logits and an evaluation cost, and what the matrix buys."""
    (root / "model.toml").write_text(SPEC)
    timings = Timings()
    started = time.perf_counter()
    result = Project.open(root / "model.toml").build(reporter=timings)
    assert result.ok, result.failed
    print(f"built the tiny example with {', '.join(TYPES)}, an importance matrix and an evaluation "
          f"in {time.perf_counter() - started:.1f} s ({threads()} threads)")
    quantize = timings.seconds["gguf:base+support.Q4_K_M"]
    calibration, evaluation = ((root / name).stat().st_size / MB for name in ("calibration.txt", "eval.txt"))
    print(f"  quantize to Q4_K_M (the baseline): {quantize:.2f} s")
    for what, target, size in (("importance matrix", "imatrix:base+support", calibration),
                               ("full-precision logits", "logits:base+support", evaluation),
                               ("one variant's evaluation", "eval:base+support.Q4_K_M", evaluation)):
        seconds = timings.seconds[target]
        print(f"  {what}: {seconds:.2f} s on {size:.3f} MB = {seconds / size:.1f} s/MB "
              f"= {seconds / size / quantize:.0f} x the quantization step per MB of text")
    report = {row["quant"]: row for row in Project.open(root / "model.toml").quality_report()["variants"]}
    print("  mean KL divergence vs full precision, with / without the importance matrix:")
    for quant in TYPES[1:]:
        plain = kld_without_imatrix(root, quant)
        with_matrix = report[quant]["kld_mean"]
        print(f"    {quant:7} {with_matrix:.5f} / {plain:.5f}  (without / with = {plain / with_matrix:.2f}; "
              "above 1: the matrix helps)")
    search(root, report["Q4_K_M"]["kld_mean"], timings.seconds["eval:base+support.Q4_K_M"])


def search(root: Path, max_kld: float, evaluation: float) -> None:
    """Search for the smallest quantization with ``max_kld``; say what it cost and what it found."""
    spec = root / "model.toml"
    spec.write_text(spec.read_text().replace("[evaluate]", f"target = {{ max_kld = {max_kld:.6f} }}\n[evaluate]"))
    started = time.perf_counter()
    result = Project.open(spec).build(["search:base+support"], reporter=QuietReporter())
    assert result.ok, result.failed
    elapsed = time.perf_counter() - started
    found = json.loads((root / "build" / "eval" / "base+support.search.json").read_text())
    chosen, candidates = found["chosen"], found["candidates"]
    standard = min((c for c in candidates if "+" not in c["name"] and c["kld_mean"] <= max_kld),
                   key=lambda c: c["bytes"], default=None)
    print(f"  search for max_kld = {max_kld:.6f} (Q4_K_M's): {len(candidates)} candidates "
          f"(and {len(found['screened'])} screened on a quarter of the text) in {elapsed:.1f} s "
          f"= {elapsed / evaluation:.1f} x one variant's evaluation ({evaluation:.2f} s)")
    print(f"    chose {chosen['name']}: {chosen['bytes']:,} bytes, mean KLD {chosen['kld_mean']:.5f}"
          + (f"; the smallest standard type meeting it, {standard['name']}: {standard['bytes']:,} bytes "
             f"({chosen['bytes'] / standard['bytes']:.3f} x)" if standard else "; no standard type measured meets it"))


if __name__ == "__main__":
    main()
