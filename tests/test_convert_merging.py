"""Merging a LoRA while converting the base (``keep = "shipped"``) makes llama-export-lora's model without the base GGUF.

On the tiny example (its base and LoRA, without the quality sections): a ``keep = "shipped"`` build
takes the route and never makes ``gguf:base.f16``; its merged GGUF holds export-lora's tensors (the
same names, types and metadata, each weight within one f16 ulp) and generates the same greedy
continuation; the step's key follows the adapter; and ``keep = "all"``, an ADAPTER line or an
adapter only PyTorch merges leave the graph as it was without the route.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import gguf
import numpy as np
import pytest
from conftest import copy_example, modelkit, without_quality

from modelkit import rules
from modelkit.project import Project

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]
MERGED = "gguf:base+support.f16"
ROUTE = "merge adapter 'support' into the base while converting it (no base GGUF written)"
PROMPT = "<|user|>\nThe printer does not start.</s>\n<|assistant|>\n"


def project(tiny_model: Path, folder: Path, keep: str) -> Path:
    """The tiny example without its quality sections, keeping ``keep``."""
    copy_example(tiny_model, folder)
    spec = folder / "model.toml"
    spec.write_text(without_quality(spec.read_text()) + f'\n[build]\nkeep = "{keep}"\n')
    return folder


def build(folder: Path, *targets: str) -> str:
    proc = modelkit("build", "--no-ollama", *targets, cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


@pytest.fixture(scope="module")
def routes(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same project built both ways, each with its merged GGUF asked for by name (so kept):
    ``shipped`` (merged while converting; its whole build first, then the merged GGUF again) and
    ``all`` (export-lora)."""
    root = tmp_path_factory.mktemp("routes")
    shipped, everything = project(tiny_model, root / "shipped", "shipped"), project(tiny_model, root / "all", "all")
    (root / "shipped.log").write_text(build(shipped) + build(shipped, MERGED))
    build(everything, MERGED)
    return {"shipped": shipped, "all": everything, "log": root / "shipped.log"}


def plan(folder: Path) -> dict[str, dict[str, str]]:
    proc = modelkit("plan", "--json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    return {row["target"]: row for row in json.loads(proc.stdout)}


def tensors(path: Path) -> tuple[dict[str, tuple[str, np.ndarray]], dict[str, object]]:
    """A GGUF's tensors (type, data) and metadata, through the gguf package's own reader."""
    reader = gguf.GGUFReader(path)
    found = {t.name: (t.tensor_type.name, np.array(t.data)) for t in reader.tensors}
    return found, {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}


def f16_ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many f16 steps apart each pair of elements is (the bits as one ordered integer line)."""
    def line(x: np.ndarray) -> np.ndarray:
        bits = x.view(np.int16).astype(np.int32)
        return np.where(bits < 0, -0x8000 - bits, bits)

    return np.abs(line(a) - line(b))


def test_keep_shipped_merges_while_converting_and_never_makes_the_base_gguf(routes: dict[str, Path]) -> None:
    rows, log = plan(routes["shipped"]), routes["log"].read_text()
    assert rows[MERGED]["action"] == ROUTE
    assert "gguf:base.f16" not in rows and "gguf:adapter.support" not in rows
    assert not any("base.f16.gguf" in out for row in rows.values() for out in row["outputs"])
    assert f"-> {ROUTE}" in log and "convert base to GGUF" not in log and "convert adapter" not in log
    assert not (routes["shipped"] / "build" / "base.f16.gguf").exists()
    assert plan(routes["all"])[MERGED]["action"] == "merge adapter 'support' into the base"  # export-lora


def test_its_tensors_are_export_loras_within_one_f16_ulp(routes: dict[str, Path]) -> None:
    ours, our_meta = tensors(routes["shipped"] / "build" / "base+support.f16.gguf")
    theirs, their_meta = tensors(routes["all"] / "build" / "base+support.f16.gguf")
    base, _ = tensors(routes["all"] / "build" / "base.f16.gguf")
    assert our_meta == their_meta
    assert sorted(ours) == sorted(theirs)
    differ = total = merged = 0
    for name, (kind, data) in theirs.items():
        assert ours[name][0] == kind, name
        if kind == "F16":
            ulps = f16_ulps(ours[name][1], data)
            assert ulps.max() <= 1, f"{name}: {int(ulps.max())} f16 ulps from export-lora's"
            differ, total = differ + int((ulps > 0).sum()), total + ulps.size
            merged += int(f16_ulps(base[name][1], data).max() > 1)  # the adapter changed it
        else:
            assert np.array_equal(ours[name][1], data), name
    print(f"{differ} of {total} f16 weights differ from export-lora's, each by one ulp")
    assert merged == 14  # q, k, v, o, gate, up, down in both layers: the merge did happen
    assert differ < total / 1000


def generate(toolchain, model: Path) -> bytes:
    """32 greedy tokens (one thread: a random model's near-tied logits make threads disagree)."""
    cmd = [str(toolchain.completion), "-m", str(model), "-p", PROMPT, "-n", "32", "--temp", "0", "--seed", "1",
           "--ignore-eos", "-no-cnv", "--no-warmup", "--special", "-t", "1", "-tb", "1"]
    for _ in range(5):  # llama-completion's log thread can lose the end of the output (see test_e2e_tiny)
        proc = subprocess.run(cmd, capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        if proc.stdout.startswith(b"<s><|user|>") and proc.stdout.endswith(b"\n\n"):
            return proc.stdout
    raise AssertionError(f"llama-completion never printed a complete output: {proc.stdout!r}")


def test_it_generates_export_loras_greedy_continuation(routes: dict[str, Path], toolchain) -> None:
    ours = generate(toolchain, routes["shipped"] / "build" / "base+support.f16.gguf")
    theirs = generate(toolchain, routes["all"] / "build" / "base+support.f16.gguf")
    assert ours == theirs
    assert generate(toolchain, routes["all"] / "build" / "base.f16.gguf") != theirs  # the adapter shows


def test_a_changed_adapter_is_merged_again_by_the_same_route_and_a_no_op_runs_nothing(
        routes: dict[str, Path], tmp_path: Path) -> None:
    folder = shutil.copytree(routes["shipped"], tmp_path / "shipped", symlinks=True)
    assert "everything is up to date" in build(folder)
    config = folder / "lora" / "adapter_config.json"
    config.write_text(config.read_text().replace('"lora_alpha": 16', '"lora_alpha": 8'))
    rebuilt = build(folder)
    assert f"-> {ROUTE} (" in rebuilt and "convert base to GGUF" not in rebuilt
    assert "-> quantize base+support to Q4_K_M" in rebuilt  # the merged model changed
    assert "everything is up to date" in build(folder)


def graph(folder: Path) -> list[tuple[object, ...]]:
    """Every target as the engine sees it: name, step, parameters, inputs, dependencies."""
    made = Project.open(folder / "model.toml").graph
    return [(t.name, t.action.kind, json.dumps(t.action.params(), sort_keys=True, default=str),
             sorted(t.action.inputs()), t.deps, t.intermediate) for t in made]


@pytest.mark.parametrize("keep, extra", [
    ("all", ""),  # the default: the base GGUF is kept, so llama.cpp's route makes it and merges
    ("shipped", '[ollama]\nlora = "adapter"\n'),  # the base GGUF ships, with an ADAPTER line
])
def test_elsewhere_the_graph_is_the_one_without_the_route(tiny_model: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, keep: str,
                                                          extra: str) -> None:
    folder = project(tiny_model, tmp_path / "p", keep)
    spec = folder / "model.toml"
    spec.write_text(spec.read_text().replace("[ollama]\n", extra, 1) if extra else spec.read_text())
    with_route = graph(folder)
    monkeypatch.setattr(rules, "MERGE_WHILE_CONVERTING", False)
    assert graph(folder) == with_route
    assert "convert-merging" not in {kind for _, kind, *_ in with_route}


def test_an_adapter_only_pytorch_merges_keeps_its_route(tiny_model: Path, tmp_path: Path) -> None:
    folder = project(tiny_model, tmp_path / "p", "shipped")
    config = folder / "lora" / "adapter_config.json"
    config.write_text(config.read_text().replace('"use_rslora": false', '"use_rslora": true'))
    kinds = {name: kind for name, kind, *_ in graph(folder)}
    assert kinds[MERGED] == "merge-peft" and "gguf:base.f16" not in kinds


def test_off_the_bench_switch_keep_shipped_is_export_loras_route_again(tiny_model: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder = project(tiny_model, tmp_path / "p", "shipped")
    assert {name: kind for name, kind, *_ in graph(folder)}[MERGED] == "convert-merging"
    monkeypatch.setattr(rules, "MERGE_WHILE_CONVERTING", False)  # what bench/scale.py measures it against
    kinds = {name: kind for name, kind, *_ in graph(folder)}
    assert (kinds[MERGED], kinds["gguf:base.f16"], kinds["gguf:adapter.support"]) == (
        "merge-lora", "convert", "convert-lora")
