"""Knowing what a build ships, end to end on the tiny example through real llama.cpp: the importance
matrix and the IQ type it unlocks, perplexity and KL divergence of every variant, the prompt checks,
the max_kld gate, the report (JSON and picture), and which edits re-run which of them.

The tiny model is random apart from its LoRA, so the tests assert orderings that must hold for any
model (Q8_0 closer to full precision than Q4_K_M, more bits for larger types), never timings or
exact numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gguf
import pytest
from conftest import ROOT, build_log, copy_built, load_module, modelkit

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]
sys.path.insert(0, str(ROOT / "tests" / "ollama"))
fake_server = load_module(ROOT / "tests" / "ollama" / "fake_server.py")

VARIANTS = ("Q4_K_M", "Q8_0", "IQ4_XS")


@pytest.fixture(scope="module")
def measured(toolchain, built_example: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole example built by the CLI without Ollama (a copy of the session's build of it, the
    same spec and inputs, so it is not built twice); its build's stderr kept in build.log."""
    project = copy_built(built_example, tmp_path_factory.mktemp("measured") / "example")
    (project / "build.log").write_text(build_log(built_example))
    return project


def copy_of(project: Path, tmp_path: Path) -> Path:
    """A copy of a built project, state and artifacts included, to edit without disturbing others."""
    return copy_built(project, tmp_path / "copy")


def report(project: Path) -> dict:
    proc = modelkit("report", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def rows(project: Path) -> dict[str, dict]:
    return {row["quant"]: row for row in report(project)["variants"]}


def plan(project: Path) -> dict[str, str]:
    proc = modelkit("plan", "--json", cwd=project)
    assert proc.returncode == 0, proc.stderr
    return {row["target"]: row["status"] for row in json.loads(proc.stdout)}


def not_fresh(statuses: dict[str, str]) -> set[str]:
    return {name for name, status in statuses.items() if status != "fresh" and not name.startswith("ollama:")}


def test_the_importance_matrix_is_made_once_and_read_by_the_types_that_use_it(measured: Path) -> None:
    imatrix = measured / "build" / "imatrix.base+support.gguf"
    reader = gguf.GGUFReader(imatrix)
    assert reader.fields["general.type"].contents() == "imatrix"
    assert any(t.name.endswith(".in_sum2") for t in reader.tensors)  # llama-imatrix's GGUF format
    log = (measured / "build.log").read_text()
    assert log.count("-> importance matrix of base+support") == 1
    assert "quantize base+support to Q4_K_M with its importance matrix" in log
    assert "quantize base+support to IQ4_XS with its importance matrix" in log
    assert "quantize base+support to Q8_0 (" in log  # Q8_0 ignores an importance matrix: it does not wait for one
    shipped = gguf.GGUFReader(measured / "build" / "base+support.IQ4_XS.gguf").fields["general.file_type"].contents()
    assert shipped == 30  # LLAMA_FTYPE_MOSTLY_IQ4_XS


def test_the_report_measures_every_variant_against_full_precision(measured: Path) -> None:
    data = report(measured)
    assert data == json.loads((measured / "build" / "report.json").read_text())
    reference = data["reference"]
    assert reference["quant"] == "F16" and reference["ppl"] > 1
    assert reference["bytes"] == (measured / "build" / "base+support.f16.gguf").stat().st_size
    by_quant = {row["quant"]: row for row in data["variants"]}
    assert sorted(by_quant) == sorted(VARIANTS)
    for quant, row in by_quant.items():
        assert set(row) == {"ref", "quant", "bytes", "bits_per_weight", "ppl", "kld_mean", "top1_agreement",
                            "prompts_passed", "prompts_total", "renderer"}
        assert row["ref"] == f"tiny-support:{quant.lower()}"
        assert row["bytes"] == (measured / "build" / f"base+support.{quant}.gguf").stat().st_size
        assert 0 < row["top1_agreement"] <= 1 and row["kld_mean"] >= 0 and row["ppl"] > 1
        assert (row["prompts_passed"], row["prompts_total"]) == (1, 1)
    assert by_quant["Q8_0"]["kld_mean"] < by_quant["Q4_K_M"]["kld_mean"]
    assert by_quant["Q8_0"]["top1_agreement"] > by_quant["Q4_K_M"]["top1_agreement"]
    assert by_quant["IQ4_XS"]["bits_per_weight"] < by_quant["Q4_K_M"]["bits_per_weight"] \
        < by_quant["Q8_0"]["bits_per_weight"] < 16


def test_the_build_prints_the_ladder_and_the_logits_size(measured: Path) -> None:
    log = (measured / "build.log").read_text()
    assert "mean KLD" in log and "tiny-support:iq4_xs" in log
    assert "report: build/report.json, build/report.png" in log
    assert "the logits of base+support take" in log and "`modelkit gc` removes them" in log
    table = modelkit("report", cwd=measured)
    assert table.returncode == 0 and "ΔPPL" in table.stdout and "full precision F16" in table.stdout


def test_the_report_picture_is_a_drawing_of_the_ladder(measured: Path) -> None:
    from matplotlib import image

    png = measured / "build" / "report.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(png)
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 600
    assert pixels.std() > 0.05  # not a blank canvas


def test_the_logits_live_under_modelkit_and_gc_removes_them_once_unused(measured: Path, tmp_path: Path) -> None:
    project = copy_of(measured, tmp_path)
    logits = project / ".modelkit" / "eval" / "base+support.logits"
    assert logits.is_file() and not (project / "build" / "base+support.logits").exists()
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace('text = "./eval.txt"', ""))  # the prompt checks stay
    proc = modelkit("gc", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert ".modelkit/eval/base+support.logits" in proc.stdout
    assert not logits.exists()
    assert (project / "build" / "base+support.Q4_K_M.gguf").is_file()  # what the spec still makes stays


def test_editing_the_eval_text_reruns_only_the_evaluation(measured: Path, tmp_path: Path) -> None:
    project = copy_of(measured, tmp_path)
    before = rows(project)
    eval_text = project / "eval.txt"
    lines = eval_text.read_text().splitlines(keepends=True)
    eval_text.write_text("".join(lines[len(lines) // 3:]))  # a different held-out text
    assert not_fresh(plan(project)) == {"logits:base+support", *(f"eval:base+support.{q}" for q in VARIANTS)}
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0, proc.stderr
    after = rows(project)
    for quant in VARIANTS:
        assert after[quant]["bytes"] == before[quant]["bytes"]
        assert after[quant]["ppl"] != before[quant]["ppl"]


def test_editing_the_calibration_requantizes_without_converting(measured: Path, tmp_path: Path) -> None:
    project = copy_of(measured, tmp_path)
    calibration = project / "calibration.txt"
    calibration.write_text(calibration.read_text()[: calibration.stat().st_size // 2])
    stale = not_fresh(plan(project))
    assert "imatrix:base+support" in stale
    assert {"gguf:base+support.Q4_K_M", "gguf:base+support.IQ4_XS"} <= stale
    assert not stale & {"gguf:base.f16", "gguf:adapter.support", "gguf:base+support.f16",
                        "gguf:base+support.Q8_0", "logits:base+support"}


def test_a_rows_numbers_change_only_when_its_inputs_do(measured: Path, tmp_path: Path) -> None:
    project = copy_of(measured, tmp_path)
    before = rows(project)
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace("Answer in one short sentence.", "Be polite."))
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "-> check" in proc.stderr and "-> evaluate" not in proc.stderr and "-> logits" not in proc.stderr
    assert rows(project) == before


def test_a_prompt_check_that_misses_fails_only_its_variant_which_is_not_registered(
        measured: Path, tmp_path: Path, toolchain) -> None:
    project = copy_of(measured, tmp_path)
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace("[ollama]\n", '[[evaluate.prompts]]\nprompt = "My account is locked."\n'
                                             'expect_regex = "(?i)call the police"\nvariants = ["Q8_0"]\n\n[ollama]\n'))
    good = (project / "build" / "base+support.Q8_0.gguf").read_bytes()
    with fake_server.FakeOllama(generation="current", quantize=toolchain.quantize) as ollama:
        proc = modelkit("build", "--keep-going", cwd=project, ollama_host=ollama.host)
        registered = {key[-1] for key in ollama.models}
    assert proc.returncode == 1
    assert "error: tiny-support:q8_0: expected the answer to match '(?i)call the police', got '" in proc.stderr
    assert "(prompt: '<|system|>\\\\nYou are a support agent." in proc.stderr  # both texts shown
    assert registered == {"q4_k_m", "iq4_xs", "latest"}  # latest is Q4_K_M, the first type
    assert (project / "build" / "base+support.Q8_0.gguf").read_bytes() == good


def test_the_gate_fails_a_variant_above_max_kld_and_names_the_type_that_passes(measured: Path, tmp_path: Path) -> None:
    project = copy_of(measured, tmp_path)
    by_quant = rows(project)
    gate = (by_quant["Q8_0"]["kld_mean"] + by_quant["Q4_K_M"]["kld_mean"]) / 2
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace("context = 128", f"context = 128\nmax_kld = {gate:.6f}"))
    proc = modelkit("build", "--keep-going", "--no-ollama", cwd=project)
    assert proc.returncode == 1
    assert "-> evaluate" not in proc.stderr  # the gate reads the measurements; it does not redo them
    for ref in ("tiny-support:q4_k_m", "tiny-support:iq4_xs"):
        line = next(x for x in proc.stderr.splitlines() if x.startswith(f"error: {ref}: mean KL divergence"))
        assert f"is above evaluate.max_kld = {float(f'{gate:.6f}')}" in line
        assert "; Q8_0 passes (mean KLD" in line
    assert "error: tiny-support:q8_0" not in proc.stderr
    assert json.loads((project / "build" / "report.json").read_text())["max_kld"] == pytest.approx(gate, rel=1e-3)


def test_an_eval_text_with_too_few_tokens_is_a_one_line_error_and_loses_nothing(measured: Path, tmp_path: Path) -> None:
    project = copy_of(measured, tmp_path)
    (project / "eval.txt").write_text("printer " * 40)  # 320 bytes: enough bytes, too few tokens
    before = {p.name: p.read_bytes() for p in (project / "build").glob("*.gguf")}
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 2, proc.stderr
    error = next(line for line in proc.stderr.splitlines() if line.startswith("error:"))
    assert "evaluate.text:" in error and "tokenizes to" in error and "llama.cpp needs at least 256" in error
    assert "give more text" in error
    assert {p.name: p.read_bytes() for p in (project / "build").glob("*.gguf")} == before
