"""A fine-tune of a model that sees images ships whole: its projector converted, registered in the
real Ollama beside every variant, proven with an image; never dropped in silence.

The base is ``tests/tiny_vlm.py``'s Gemma 3 (transformers 5's tensor layout), with a LoRA on its
language model (llama.cpp's route) or on both towers (merged in PyTorch, both halves converted from
the merged weights). Everything counted of Ollama is the server's own account.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import modelkit
from test_real_ollama import registry

from modelkit.formats.gguf import read_header

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]

SPEC = """\
name = "{name}"

[base]
path = "./base"

[[adapters]]
name = "{adapter}"
path = "./{adapter}"

[quantize]
types = ["Q4_K_M", "Q8_0"]
{tail}"""
IMAGE_CHECK = """
[[evaluate.prompts]]
prompt = "What is in the picture?"
images = ["./square.png"]
expect = "red square"
max_tokens = 12
"""


def vlm_project(tiny_vlm: Path, folder: Path, name: str, adapter: str = "lora", tail: str = IMAGE_CHECK) -> Path:
    """A project of the tiny Gemma 3 with ``adapter`` (``lora`` or ``lora-vision``) and, by default,
    a prompt check that shows the image."""
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("base", adapter):
        shutil.copytree(tiny_vlm / part, folder / part)
    shutil.copy(tiny_vlm / "square.png", folder / "square.png")
    (folder / "model.toml").write_text(SPEC.format(name=name, adapter=adapter, tail=tail))
    return folder


def build(project: Path, *args: str, host: str | None = None, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = modelkit("build", *args, cwd=project, ollama_host=host)
    assert proc.returncode == code, proc.stderr
    return proc


def metadata(gguf: Path) -> dict[str, Any]:
    return read_header(gguf, index_strings=()).metadata


def tensors(gguf: Path) -> dict[str, bytes]:
    from gguf import GGUFReader

    return {t.name: bytes(t.data.tobytes()) for t in GGUFReader(gguf).tensors}


@pytest.fixture(scope="module")
def registered(tiny_vlm: Path, real_ollama: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Gemma 3 with its language-model LoRA, built and registered as ``eyes``."""
    project = vlm_project(tiny_vlm, tmp_path_factory.mktemp("eyes"), "eyes")
    build(project, host=real_ollama.host)
    return project


def test_the_projector_is_converted_once_and_every_variant_ships_it(registered: Path) -> None:
    projector = registered / "build" / "mmproj-base.f16.gguf"
    meta = metadata(projector)
    assert meta["general.type"] == "mmproj" and meta["clip.projector_type"] == "gemma3"
    assert not any(k.startswith("clip.") for k in metadata(registered / "build" / "base+lora.Q8_0.gguf"))
    for tag in ("q4_k_m", "q8_0"):
        lines = (registered / "build" / f"eyes-{tag}.Modelfile").read_text().splitlines()
        assert [line for line in lines if line.startswith("FROM ")] == [
            f"FROM ./base+lora.{tag.upper()}.gguf", "FROM ./mmproj-base.f16.gguf"]
    inspected = modelkit("inspect", "--json", str(projector), cwd=registered)
    facts = json.loads(inspected.stdout)
    assert facts["projector"] == {"projector_type": "gemma3", "image_size": 64, "patch_size": 16,
                                  "tokens_per_image": 4}


def test_ollama_sees_images_and_counts_the_image_in_the_prompt(registered: Path, real_ollama: Any) -> None:
    shown = real_ollama.api("/api/show", {"model": "eyes:q8_0"})
    assert "vision" in shown["capabilities"]
    image = base64.b64encode((registered / "square.png").read_bytes()).decode()
    ask = {"model": "eyes:q8_0", "stream": False, "options": {"temperature": 0, "num_predict": 8}}
    plain = real_ollama.api("/api/chat", {**ask, "messages": [{"role": "user", "content": "What is in the picture?"}]})
    seen = real_ollama.api("/api/chat", {**ask, "messages": [{"role": "user", "content": "What is in the picture?",
                                                               "images": [image]}]})
    assert seen["prompt_eval_count"] > plain["prompt_eval_count"]
    assert "red square" in seen["message"]["content"]


def test_a_no_op_creates_and_uploads_nothing(registered: Path, real_ollama: Any) -> None:
    mark = real_ollama.mark()
    proc = build(registered, host=real_ollama.host)
    assert "everything is up to date" in proc.stderr
    assert real_ollama.creates(mark) == 0 and real_ollama.uploaded(mark) == []


def test_another_projector_type_registers_every_variant_again(tiny_vlm: Path, real_ollama: Any,
                                                             tmp_path: Path) -> None:
    project = vlm_project(tiny_vlm, tmp_path / "p", "eyes-q8")
    build(project, host=real_ollama.host)
    spec = project / "model.toml"
    spec.write_text(spec.read_text() + '\n[vision]\nprojector = "q8_0"\n')
    mark = real_ollama.mark()
    build(project, host=real_ollama.host)
    assert real_ollama.creates(mark) == 3  # q4_k_m, q8_0 and latest
    shown = real_ollama.api("/api/show", {"model": "eyes-q8:q4_k_m"})
    assert "vision" in shown["capabilities"]
    assert metadata(project / "build" / "mmproj-base.q8_0.gguf")["general.file_type"] == 7  # MOSTLY_Q8_0


def test_a_lora_on_the_vision_tower_is_merged_and_both_halves_converted(tiny_vlm: Path, real_ollama: Any,
                                                                       tmp_path: Path) -> None:
    project = vlm_project(tiny_vlm, tmp_path / "p", "eyes-tuned", adapter="lora-vision")
    plan = modelkit("plan", cwd=project)
    assert "merge adapter 'lora-vision' into the base in PyTorch (it changes the vision half" in plan.stdout
    build(project, host=real_ollama.host)
    merged = project / "build" / "mmproj-base+lora-vision.f16.gguf"
    assert metadata(merged)["general.type"] == "mmproj"
    assert not (project / "build" / "mmproj-base.f16.gguf").exists()  # the base's projector is not shipped
    for tag in ("q4_k_m", "q8_0"):
        verdict = json.loads((project / "build" / "eval" / f"eyes-tuned-{tag}.check.json").read_text())
        assert verdict["prompts_passed"] == 1, verdict
    assert "vision" in real_ollama.api("/api/show", {"model": "eyes-tuned:q8_0"})["capabilities"]


def test_the_base_projector_and_the_merged_one_differ(tiny_vlm: Path, registered: Path, tmp_path: Path) -> None:
    """The tower LoRA's effect reaches the projector (llama.cpp issue 14867: lost in conversion)."""
    project = vlm_project(tiny_vlm, tmp_path / "p", "eyes-tuned2", adapter="lora-vision")
    build(project, "--no-ollama", "gguf:base+lora-vision.f16")
    base = tensors(registered / "build" / "mmproj-base.f16.gguf")
    merged = tensors(project / "build" / "mmproj-base+lora-vision.f16.gguf")
    assert base.keys() == merged.keys()
    changed = {name for name in base if base[name] != merged[name]}
    assert changed and all(".attn_" in name for name in changed), changed  # the tower's attention, as trained


def older_llama_cpp(toolchain: Any, folder: Path) -> Path:
    """A llama.cpp of the user's own that converts Gemma 3's text but not its projector (as trees
    before Gemma 3 vision did): the managed scripts with the projector class unregistered, its binaries."""
    folder.mkdir()
    for name in ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion"):
        source = toolchain.source / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    for name in ("gguf-py", "models"):
        (folder / name).symlink_to(toolchain.source / name)
    gemma = folder / "conversion" / "gemma.py"
    text = gemma.read_text()
    gemma.write_text(text.replace('@ModelBase.register("Gemma3ForConditionalGeneration")\n# [TAG_HF_EXAMPLE_GATED]',
                                  "# [TAG_HF_EXAMPLE_GATED]", 1))
    (folder / "build").mkdir()
    (folder / "build" / "bin").symlink_to(toolchain.bin_dir)
    return folder


def test_a_projector_the_toolchain_cannot_convert_stops_the_build_in_one_line(tiny_vlm: Path, toolchain: Any,
                                                                             tmp_path: Path) -> None:
    tree = older_llama_cpp(toolchain, tmp_path / "llama.cpp")
    project = vlm_project(tiny_vlm, tmp_path / "p", "blind", tail=f'\n[toolchain]\nllama_cpp = "{tree}"\n')
    proc = build(project, "--no-ollama", code=2)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Gemma3ForConditionalGeneration sees images" in errors[0], proc.stderr
    assert "[vision] text_only = true" in errors[0]
    assert not (project / "build").exists() or not any((project / "build").glob("*.gguf"))
    spec = project / "model.toml"
    spec.write_text(spec.read_text() + "\n[vision]\ntext_only = true\n")
    proc = build(project, "--no-ollama")
    assert "vision left out on purpose" in proc.stderr
    assert not list((project / "build").glob("mmproj*"))
    assert "mmproj" not in (project / "build" / "blind-q8_0.Modelfile").read_text()


def test_a_check_with_images_on_a_model_that_does_not_see_them_is_one_line(tiny_vlm: Path, tmp_path: Path) -> None:
    project = vlm_project(tiny_vlm, tmp_path / "p", "blind2", tail="\n[vision]\ntext_only = true\n" + IMAGE_CHECK)
    proc = modelkit("plan", cwd=project)
    assert proc.returncode == 2 and "evaluate.prompts[0].images" in proc.stderr and "does not see images" in proc.stderr


def test_ollama_push_carries_the_projector_and_a_second_server_sees_images(
        tiny_vlm: Path, real_ollama: Any, registry: str, tmp_path: Path,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """``[publish] ollama`` to Docker's registry on loopback: a second real server pulls the model,
    projector layer and all, and answers a chat with an image as the first does."""
    from conftest import ROOT, load_module
    from real_ollama import RealOllama

    hub_server = load_module(ROOT / "tests" / "hub_server.py")
    target = f"{registry}/me/eyes"
    project = vlm_project(tiny_vlm, tmp_path / "p", "eyes-pushed", tail=IMAGE_CHECK + (
        f'\n[publish]\nrepo = "me/eyes"\nlicense = "mit"\nollama = "{target}"\ninsecure = true\n'))
    build(project, host=real_ollama.host)
    with hub_server.FakeHub(token="hf_test") as hub:
        proc = modelkit("publish", cwd=project, ollama_host=real_ollama.host, env={
            "HF_ENDPOINT": hub.url, "HF_TOKEN": "hf_test", "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(tmp_path / "hf")})
        files = hub.repos["me/eyes"].files
    assert proc.returncode == 0, proc.stderr
    assert files["mmproj-eyes-pushed-F16.gguf"] == (project / "build" / "mmproj-base.f16.gguf").read_bytes()
    image = base64.b64encode((project / "square.png").read_bytes()).decode()
    ask = {"stream": False, "options": {"temperature": 0, "num_predict": 8},
           "messages": [{"role": "user", "content": "What is in the picture?", "images": [image]}]}
    here = real_ollama.api("/api/chat", {"model": "eyes-pushed:q8_0", **ask})
    with RealOllama(real_ollama.exe, tmp_path_factory.mktemp("second-ollama")) as second:
        pulled = second.cli("pull", "--insecure", f"{target}:q8_0")
        assert pulled.returncode == 0, pulled.stderr
        shown = second.api("/api/show", {"model": f"{target}:q8_0"})
        there = second.api("/api/chat", {"model": f"{target}:q8_0", **ask})
    assert "vision" in shown["capabilities"]
    assert there["message"] == here["message"] and there["prompt_eval_count"] == here["prompt_eval_count"]
