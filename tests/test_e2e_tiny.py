"""End to end on a tiny real model, through real llama.cpp: model.toml -> GGUFs -> Modelfiles."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gguf
import pytest
from conftest import ROOT, copy_built, copy_example, load_module, modelkit

from modelkit.formats.quant_types import QUANT_TYPES

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]
grammar = load_module(ROOT / "tests" / "ollama" / "modelfile_grammar.py")
sys.path.insert(0, str(ROOT / "tests" / "ollama"))
fake_server = load_module(ROOT / "tests" / "ollama" / "fake_server.py")

PROMPT = "<|user|>\nThe printer does not start.</s>\n<|assistant|>\n"


def metadata(path: Path) -> dict[str, object]:
    """GGUF metadata through the gguf package's own reader (an oracle independent of modelkit)."""
    reader = gguf.GGUFReader(path)
    return {name: field.contents() for name, field in reader.fields.items()}


def generate(toolchain, model: Path, lora: Path | None = None) -> bytes:
    cmd = [str(toolchain.completion), "-m", str(model), "-p", PROMPT, "-n", "16", "--temp", "0", "--seed", "1",
           "--ignore-eos", "-no-cnv", "--no-warmup", "--special",
           "-t", "1", "-tb", "1"]  # one thread: a random model's near-tied logits make threads disagree
    if lora:
        cmd += ["--lora", str(lora)]
    # llama-completion prints through an asynchronous log thread, which can lose the end of the
    # output when the process exits (seen with this llama.cpp). A complete run echoes the prompt
    # first and ends with the blank line printed after generating; retry until one is complete.
    for _ in range(5):
        proc = subprocess.run(cmd, capture_output=True, timeout=120)  # bytes: a tiny model emits broken UTF-8
        assert proc.returncode == 0, proc.stderr[-2000:]
        if proc.stdout.startswith(b"<s><|user|>") and proc.stdout.endswith(b"\n\n"):
            return proc.stdout
    raise AssertionError(f"llama-completion never printed a complete output: {proc.stdout!r}")


@pytest.fixture(scope="module")
def ollama(toolchain) -> Iterator:
    """A stand-in for today's Ollama, which cannot be installed here (modelled on Ollama's source:
    see tests/ollama/fake_server.py); it re-encodes GGUFs with the real llama-quantize."""
    with fake_server.FakeOllama(generation="current", quantize=toolchain.quantize) as server:
        yield server


@pytest.fixture(scope="module")
def built(toolchain, built_example: Path, tmp_path_factory: pytest.TempPathFactory, ollama) -> Path:
    """The example built by the CLI, as a user would, registering with the stand-in Ollama: a copy
    of the session's build of it (the same spec and inputs), whose build then only registers."""
    project = copy_built(built_example, tmp_path_factory.mktemp("built") / "example")
    proc = modelkit("build", cwd=project, ollama_host=ollama.host)
    assert proc.returncode == 0, proc.stderr
    return project


def test_every_artifact_exists(built: Path) -> None:
    names = sorted(p.name for p in (built / "build").iterdir())
    assert names == ["adapter.support.gguf", "base+support.IQ4_XS.gguf", "base+support.Q4_K_M.gguf",
                     "base+support.Q8_0.gguf", "base+support.f16.gguf", "base.f16.gguf", "eval",
                     "imatrix.base+support.gguf", "report.json", "report.png", "template.json",
                     "tiny-support-iq4_xs.Modelfile", "tiny-support-q4_k_m.Modelfile",
                     "tiny-support-q8_0.Modelfile", "tiny-support.native.json"]


def test_second_build_runs_nothing(built: Path, ollama) -> None:
    proc = modelkit("build", cwd=built, ollama_host=ollama.host)
    assert proc.returncode == 0, proc.stderr
    assert "everything is up to date" in proc.stderr
    assert "->" not in proc.stderr
    plan = json.loads(modelkit("plan", "--json", cwd=built, ollama_host=ollama.host).stdout)
    assert {p["status"] for p in plan} == {"fresh"}


def artifacts(project: Path) -> dict[str, bytes]:
    """Every file a build made in the project (build/, the evaluation logits) and the lock."""
    files = [*(project / "build").rglob("*"), *(project / ".modelkit" / "eval").rglob("*"), project / "modelkit.lock"]
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in files if p.is_file()}


@pytest.mark.from_scratch("reproducibility: every step run again elsewhere must make the same bytes")
def test_the_example_is_the_same_bytes_in_another_folder_on_one_core_one_step_at_a_time(
        built: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same spec and inputs built from nothing elsewhere (another depth and name, -j 1, one core,
    so every llama.cpp tool runs on one thread instead of two) under --locked: every artifact,
    the importance matrix and its quantizations and evaluations included, is the same bytes."""
    other = tmp_path_factory.mktemp("elsewhere") / "a" / "much" / "deeper" / "copy"
    other.mkdir(parents=True)
    for name in ("base", "lora"):
        shutil.copytree(built / name, other / name)
    for name in ("calibration.txt", "eval.txt", "model.toml", "modelkit.lock"):
        shutil.copy(built / name, other / name)
    proc = modelkit("build", "--locked", "-j", "1", "--no-ollama", cwd=other, cores=1)
    assert proc.returncode == 0, proc.stderr
    mine, theirs = artifacts(built), artifacts(other)
    assert sorted(mine) == sorted(theirs) and len(mine) >= 18
    assert [name for name in mine if mine[name] != theirs[name]] == []
    # the run's folder: under pytest-xdist the session's build of the example is there, beside this worker's
    run_folder = tmp_path_factory.getbasetemp().parent
    private = {str(built), str(other), str(Path.home()), str(run_folder), socket.gethostname()}
    for name, data in mine.items():
        found = [p for p in private if len(p) > 3 and p.encode() in data]
        assert found == [], f"{name} holds {found}"


@pytest.mark.from_scratch("--locked in a fresh checkout with nothing cached must refuse before any step")
def test_a_lock_pinning_the_matrix_from_a_gpu_is_restored_or_refused_never_recomputed(
        built: Path, tmp_path: Path) -> None:
    """The importance matrix runs on the GPU where there is one, and a GPU's bytes are not a CPU's:
    a lock made there pins them, and --locked here must restore them, not compute other ones."""
    lock = json.loads((built / "modelkit.lock").read_text())
    assert lock["artifacts"]["imatrix:base+support"]["platform"] == "cpu"
    lock["artifacts"]["imatrix:base+support"]["platform"] = "cuda"
    project = copy_example(built, tmp_path / "ci")
    (project / "modelkit.lock").write_text(json.dumps(lock))
    proc = modelkit("build", "--locked", "--no-ollama", cwd=project)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: imatrix:base+support: the lock pins bytes computed on cuda (key ")
    assert "which this machine (cpu) computes differently, and no cache holds them" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and not (project / "build").exists()


def test_every_variant_is_registered_with_the_inherited_template(built: Path, ollama) -> None:
    template = json.loads((built / "build" / "template.json").read_text())["template"]
    tags = {key[-1]: model for key, model in ollama.models.items() if key[-2] == "tiny-support"}
    assert set(tags) == {"q4_k_m", "q8_0", "iq4_xs", "latest"}
    for model in tags.values():
        assert model.template == template
        assert model.system == "You are a support agent. Answer in one short sentence."


def test_without_ollama_everything_else_is_built_and_the_build_says_so(built: Path, tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(built, project, symlinks=True)
    proc = modelkit("build", cwd=project)  # OLLAMA_HOST points where nothing listens
    assert proc.returncode == 0, proc.stderr
    assert "not registered (4 models): Ollama is not reachable at http://127.0.0.1:9" in proc.stderr
    assert "->" not in proc.stderr  # nothing else had to run


@pytest.mark.parametrize("name, file_type", [
    ("base.f16.gguf", QUANT_TYPES["F16"].file_type), ("base+support.f16.gguf", QUANT_TYPES["F16"].file_type),
    ("base+support.Q4_K_M.gguf", QUANT_TYPES["Q4_K_M"].file_type),
    ("base+support.Q8_0.gguf", QUANT_TYPES["Q8_0"].file_type),
    ("base+support.IQ4_XS.gguf", QUANT_TYPES["IQ4_XS"].file_type)])
def test_model_metadata(built: Path, name: str, file_type: int) -> None:
    meta = metadata(built / "build" / name)
    assert meta["general.architecture"] == "llama"
    assert meta["general.file_type"] == file_type
    assert meta["llama.block_count"] == 2
    assert meta["llama.embedding_length"] == 256
    assert "<|assistant|>" in str(meta["tokenizer.chat_template"])


def test_adapter_metadata(built: Path) -> None:
    meta = metadata(built / "build" / "adapter.support.gguf")
    assert meta["general.type"] == "adapter"
    assert meta["adapter.type"] == "lora"
    assert meta["adapter.lora.alpha"] == 16
    assert meta["general.architecture"] == "llama"


def test_llama_cpp_loads_the_adapter_and_it_changes_greedy_output(built: Path, toolchain) -> None:
    model = built / "build" / "base.f16.gguf"
    plain = generate(toolchain, model)
    tuned = generate(toolchain, model, built / "build" / "adapter.support.gguf")
    assert b"The printer does not start." in plain  # llama.cpp echoes the prompt, then generates
    assert plain != tuned
    assert generate(toolchain, model) == plain  # greedy decoding is deterministic


def test_merged_model_generates_what_base_plus_adapter_generates(built: Path, toolchain) -> None:
    runtime = generate(toolchain, built / "build" / "base.f16.gguf", built / "build" / "adapter.support.gguf")
    merged = generate(toolchain, built / "build" / "base+support.f16.gguf")
    assert merged == runtime
    assert generate(toolchain, built / "build" / "base+support.Q8_0.gguf")  # the quantized variant runs too


@pytest.mark.parametrize("tag", ["q4_k_m", "q8_0"])
def test_modelfile_follows_ollamas_grammar(built: Path, tag: str) -> None:
    path = built / "build" / f"tiny-support-{tag}.Modelfile"
    commands = grammar.parse(path.read_text())
    by_name: dict[str, list[str]] = {}
    for command in commands:
        by_name.setdefault(command.name, []).append(command.args)
    assert by_name["model"] == [f"./base+support.{tag.upper()}.gguf"]
    assert "adapter" not in by_name  # merged: no ADAPTER line
    assert (path.parent / by_name["model"][0]).is_file()
    assert by_name["system"] == ["You are a support agent. Answer in one short sentence."]
    inherited = json.loads((built / "build" / "template.json").read_text())
    assert by_name["template"] == [inherited["template"]]
    # Ollama's parser names a PARAMETER command after the parameter itself.
    assert by_name["temperature"] == ["0.2"] and by_name["num_ctx"] == ["512"]
    assert by_name["stop"] == inherited["stop"]


def test_inherited_template_is_the_tiny_models_own(built: Path) -> None:
    inherited = json.loads((built / "build" / "template.json").read_text())
    go = inherited["template"]
    assert "<|assistant|>" in go and ".Messages" in go
    assert "proven" in inherited["proof"]


def test_adapter_mode_quantizes_the_base_and_ships_an_adapter_line(tiny_project: Path) -> None:
    spec = tiny_project / "model.toml"
    spec.write_text(spec.read_text().replace("[ollama]\n", '[ollama]\nlora = "adapter"\n')
                    .replace('types = ["Q4_K_M", "Q8_0"]', 'types = ["Q8_0"]'))
    proc = modelkit("build", cwd=tiny_project)
    assert proc.returncode == 0, proc.stderr
    commands = grammar.parse((tiny_project / "build" / "tiny-support-q8_0.Modelfile").read_text())
    args = {c.name: c.args for c in commands}
    assert args["model"] == "./base.Q8_0.gguf" and args["adapter"] == "./adapter.support.gguf"
    assert not list((tiny_project / "build").glob("base+*"))


def test_adapter_for_another_base_is_refused_before_converting(tiny_project: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    lora = tiny_project / "lora"
    tensors = {"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.zeros((8, 4096), np.float32),
               "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": np.zeros((4096, 8), np.float32)}
    save_file(tensors, str(lora / "adapter_model.safetensors"))
    proc = modelkit("build", "gguf:adapter.support", cwd=tiny_project)
    assert proc.returncode == 2, proc.stderr
    assert "made for another base" in proc.stderr
    assert "model.layers.0.self_attn.q_proj.weight has 256 inputs in this base but 4096 in the adapter" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tiny_project / "build" / "adapter.support.gguf").exists()


@pytest.mark.from_scratch("a llama.cpp step must really run to fail mid-step")
def test_llama_cpp_failing_mid_step_is_reported_and_keeps_earlier_artifacts(tiny_project: Path) -> None:
    assert modelkit("build", "gguf:base.f16", cwd=tiny_project).returncode == 0
    good = (tiny_project / "build" / "base.f16.gguf").read_bytes()
    weights = tiny_project / "base" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 2])  # a truncated download
    proc = modelkit("build", "gguf:base.f16", cwd=tiny_project)
    assert proc.returncode == 1
    assert "error: convert base to GGUF (f16) failed" in proc.stderr
    assert "last lines of the log:" in proc.stderr and "full log:" in proc.stderr
    assert "Traceback (most recent call last)" not in proc.stderr.split("last lines of the log:")[0]
    assert (tiny_project / "build" / "base.f16.gguf").read_bytes() == good
    # Only what was asked for (and the template check every long step waits for): no half-written file.
    assert sorted(p.name for p in (tiny_project / "build").iterdir()) == ["base.f16.gguf", "template.json"]


def test_editing_the_system_prompt_touches_no_gguf(built: Path, tmp_path: Path, ollama) -> None:
    project = tmp_path / "p"
    shutil.copytree(built, project, symlinks=True)
    spec = project / "model.toml"
    spec.write_text(spec.read_text().replace("Answer in one short sentence.", "Be polite."))
    proc = modelkit("plan", "--json", cwd=project, ollama_host=ollama.host)
    statuses = {p["target"]: p for p in json.loads(proc.stdout)}
    stale = sorted(n for n, s in statuses.items() if s["status"] != "fresh")
    # The prompt checks answer through the system prompt; perplexity and KL divergence do not.
    variants = ("iq4_xs", "q4_k_m", "q8_0")
    assert stale == sorted([*(f"check:tiny-support:{v}" for v in variants),
                            *(f"modelfile:tiny-support-{v}" for v in variants),
                            *(f"ollama:tiny-support:{v}" for v in (*variants, "latest"))])
    assert statuses["modelfile:tiny-support-q8_0"]["reason"].startswith("params changed: system")
    proc = modelkit("build", cwd=project, ollama_host=ollama.host)
    assert proc.returncode == 0, proc.stderr
    assert "quantize" not in proc.stderr and "convert" not in proc.stderr and "merge" not in proc.stderr
    assert all(m.system == "You are a support agent. Be polite." for k, m in ollama.models.items()
               if k[-2] == "tiny-support")
