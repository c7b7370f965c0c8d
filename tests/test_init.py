"""``modelkit init``: a commented model.toml that builds as written, from flags or from a terminal's answers.

The base is the tiny example's (``tiny_model``: its ``base/`` and ``lora/``, made once per machine), a
tiny GGUF written here in milliseconds, or a repo on the stand-in Hub (``tests/hub_server.py``).
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_env, load_module, modelkit

from modelkit.spec import load_spec
from modelkit.starter import schema_directive

hub_server = load_module(ROOT / "tests" / "hub_server.py")
gguf_files = load_module(ROOT / "tests" / "ollama" / "gguf_files.py")


@pytest.fixture
def project(tiny_model: Path, tmp_path: Path) -> Path:
    """A project folder named as a user names one, holding the tiny example's base and LoRA (no model.toml)."""
    folder = tmp_path / "support-bot"
    for part in ("base", "lora"):
        shutil.copytree(tiny_model / part, folder / part)
    return folder


def said(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return proc.stderr.strip().splitlines()


def test_flags_only_write_a_spec_that_validates_and_say_each_choice(project: Path) -> None:
    proc = modelkit("init", "--base", "./base", "--adapter", "./lora", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "wrote model.toml: build it with `modelkit build`"
    text = (project / "model.toml").read_text()
    loaded = load_spec(project / "model.toml")  # the spec's own validation and file checks
    spec = loaded.spec
    assert spec.name == "support-bot"  # the adapter's folder says nothing ("lora"): the project's folder does
    assert spec.base.path == Path("base") and spec.convert.outtype == "f32"  # the tiny model is saved in float32
    assert [(a.name, a.path) for a in spec.adapters] == [("lora", Path("lora"))]
    assert spec.quantize.types == ["Q4_K_M"] and spec.ollama.template == "inherit"
    assert text.count("# ") > 10 and not text.startswith("#:schema")  # commented; outside this checkout: no schema
    assert said(proc) == [
        "base: ./base, a Hugging Face model folder: LlamaForCausalLM",
        'chat template: base/tokenizer_config.json: template = "inherit" (the default) translates it for Ollama '
        "and proves it",
        "images: no vision tower in config.json: text only",
        "convert: outtype = \"f32\": config.json's dtype is float32, converted without loss; f16 would halve the "
        "full-precision GGUF at a small loss",
        'adapter: ./lora as "lora": LoRA (alpha 16, r 8): llama.cpp merges it',
        "name: support-bot (from the folder support-bot that holds the adapter)",
        "quantize: Q4_K_M (the default; --quant TYPE to choose others)",
    ]


def test_flags_choose_the_name_the_types_and_the_file(project: Path) -> None:
    proc = modelkit("init", "--base", "base", "--adapter", "lora", "--name", "helper", "--quant", "q8_0",
                    "--quant", "Q4_K_M", "-o", "deploy/model.toml", cwd=project)
    assert proc.returncode == 0, proc.stderr
    spec = load_spec(project / "deploy" / "model.toml").spec
    assert spec.name == "helper" and spec.quantize.types == ["Q8_0", "Q4_K_M"]
    assert spec.base.path == project / "base"  # outside the spec's folder: absolute, not ../base
    assert "modelkit build deploy/model.toml" in proc.stdout


@pytest.mark.toolchain
@pytest.mark.slow
def test_the_written_spec_builds(project: Path, toolchain) -> None:
    proc = modelkit("init", "--base", "./base", "--adapter", "./lora", cwd=project)
    assert proc.returncode == 0, proc.stderr
    proc = modelkit("build", "--no-ollama", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert (project / "build" / "base+lora.Q4_K_M.gguf").is_file()
    assert (project / "build" / "support-bot-q4_k_m.Modelfile").is_file()


def converse(args: list[str], cwd: Path, answers: list[tuple[str, str]], timeout: float = 60) -> tuple[int, str]:
    """Run the CLI on a real pseudo-terminal (stdin, stdout and stderr), answering each prompt as it
    appears; the exit status and everything the terminal showed (answers echoed), with plain newlines."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "modelkit", *args], cwd=cwd, env=cli_env(), stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    shown, at = b"", 0
    deadline = time.monotonic() + timeout

    def read() -> bool:
        nonlocal shown
        ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"the terminal waited for more: {shown.decode(errors='replace')!r}"
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every end of the terminal's other side is closed (the command ended)
            return False
        shown += chunk
        return bool(chunk)

    try:
        for prompt, answer in answers:
            while (found := shown.find(prompt.encode(), at)) < 0:
                assert read(), f"ended before asking {prompt!r}: {shown.decode(errors='replace')!r}"
            at = found + len(prompt)
            os.write(master, answer.encode() + b"\n")
        while read():
            pass
        return proc.wait(timeout=timeout), shown.decode(errors="replace").replace("\r\n", "\n")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def test_on_a_terminal_without_base_it_asks_with_defaults(project: Path) -> None:
    status, shown = converse(["init"], project, [
        ("Base model: a Hugging Face repo id (owner/name), a model folder or a .gguf file [./base]: ", "./nope"),
        ("./nope: no such file or folder", ""),  # asked again; Enter takes the default
        ("LoRA adapter: a PEFT folder ('none' for none) [./lora]: ", ""),
        ("Name (the Ollama model) [support-bot]: ", "pty-bot"),
        ("Quantization types (space-separated, 'none' for none) [Q4_K_M]: ", "Q4_K_M q8_0"),
    ])
    assert status == 0, shown
    spec = load_spec(project / "model.toml").spec
    assert spec.name == "pty-bot" and spec.base.path == Path("base") and spec.quantize.types == ["Q4_K_M", "Q8_0"]
    assert [a.path for a in spec.adapters] == [Path("lora")]
    assert "name: pty-bot (as asked)\n" in shown and "wrote model.toml" in shown


def run_without_terminal(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI as :func:`conftest.modelkit` runs it, with stdin that is no terminal (a pipe from nothing)."""
    return subprocess.run([sys.executable, "-m", "modelkit", *args], cwd=cwd, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=cli_env(), timeout=120)


def test_without_base_and_without_a_terminal_it_says_which_flag(project: Path) -> None:
    proc = run_without_terminal("init", "--adapter", "./lora", cwd=project)
    assert proc.returncode == 2
    assert said(proc) == ["error: no base model given: pass --base REPO|PATH (a Hub repo id such as owner/name, a "
                          "Hugging Face model folder or a .gguf file); the adapter's adapter_config.json names "
                          "'tiny-llama'; on a terminal, `modelkit init` asks"]
    assert not (project / "model.toml").exists()


def test_an_existing_spec_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    gguf_files.write_tiny_gguf(tmp_path / "model.gguf")
    spec = tmp_path / "model.toml"
    spec.write_text("# mine\n")
    before = spec.stat().st_mtime_ns
    proc = modelkit("init", "--base", "./model.gguf", cwd=tmp_path)
    assert proc.returncode == 2 and said(proc) == [
        "error: model.toml already exists; nothing was written (choose another file with -o, or --force to "
        "replace it)"]
    assert spec.read_text() == "# mine\n" and spec.stat().st_mtime_ns == before
    proc = modelkit("init", "--base", "./model.gguf", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert load_spec(spec).spec.base.gguf == Path("model.gguf")


def test_a_base_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    proc = modelkit("init", "--base", "./models/llama", cwd=tmp_path)
    assert proc.returncode == 2 and said(proc) == [
        "error: ./models/llama: no such file or folder (give a Hugging Face model folder, a .gguf file, or a Hub "
        "repo id such as owner/name)"]
    (tmp_path / "models").mkdir()  # a first part that is a folder here: a path, not the repo models/llama
    proc = modelkit("init", "--base", "models/llama", cwd=tmp_path)
    assert proc.returncode == 2 and said(proc)[0].startswith("error: models/llama: no such file or folder")
    assert not (tmp_path / "model.toml").exists()


def test_an_adapter_that_is_not_a_peft_lora_is_one_line(project: Path) -> None:
    proc = modelkit("init", "--base", "./base", "--adapter", "./base", cwd=project)
    assert proc.returncode == 2 and said(proc) == [
        "error: ./base: not a PEFT LoRA folder: it has no adapter_config.json (it holds a model's config.json: is "
        "it the base?); give the folder save_pretrained() wrote, such as ./lora/checkpoint-500"]
    proc = modelkit("init", "--base", "./lora", cwd=project)
    assert proc.returncode == 2 and said(proc) == [
        "error: ./lora: a PEFT adapter, not a base model: give it as --adapter, and the model it was trained on as "
        "--base"]
    assert not (project / "model.toml").exists()


def test_a_gguf_base_without_a_chat_template_ships_as_a_plain_completion_model(tmp_path: Path) -> None:
    gguf_files.write_tiny_gguf(tmp_path / "tiny-f32.gguf")
    proc = modelkit("init", "--base", "tiny-f32.gguf", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    spec = load_spec(tmp_path / "model.toml").spec
    assert spec.name == "tiny" and spec.base.gguf == Path("tiny-f32.gguf") and spec.ollama.template == "{{ .Prompt }}"
    assert spec.quantize.types == ["Q4_K_M"]  # an F32 GGUF is quantized; no [convert]: nothing is converted
    assert said(proc)[:2] == [
        "base: tiny-f32.gguf, a ready GGUF: llama, F32",
        'chat template: none in the base or adapter: wrote template = "{{ .Prompt }}" (plain completion); to chat, '
        "set [ollama] chat_template_file to a Jinja chat template instead"]


VLM_CONFIG = (b'{"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "torch_dtype": '
              b'"bfloat16", "text_config": {"model_type": "gemma3_text", "num_hidden_layers": 2}, "vision_config": '
              b'{"model_type": "siglip_vision_model", "image_size": 64}}')


@pytest.fixture
def fake_hub():
    with hub_server.FakeHub() as server:
        yield server


def test_a_hub_repo_is_read_from_its_small_files(tmp_path: Path, fake_hub) -> None:
    weights = b"\0" * 300_000
    fake_hub.add("org/vlm", {"config.json": VLM_CONFIG, "model.safetensors": weights,
                             "tokenizer_config.json": b'{"chat_template": "{{ messages[0].content }}"}'})
    env = {"HF_ENDPOINT": fake_hub.url, "HF_HOME": str(tmp_path / "hf")}
    proc = modelkit("init", "--base", "org/vlm", cwd=tmp_path, env=env, without=("HF_",))
    assert proc.returncode == 0, proc.stderr
    assert fake_hub.bytes_served < 1000  # config.json and tokenizer_config.json, never the weights
    spec = load_spec(tmp_path / "model.toml").spec
    assert spec.base.repo == "org/vlm" and spec.base.revision == "main" and spec.convert.outtype == "bf16"
    assert spec.name == "vlm" and spec.ollama.template == "inherit"
    assert not spec.vision.text_only and '[vision]\nprojector = "f16"' in (tmp_path / "model.toml").read_text()
    lines = said(proc)
    assert lines[0] == ("base: org/vlm, a Hub repo: Gemma3ForConditionalGeneration (read its config.json and "
                        "tokenizer_config.json)")
    assert lines[2].startswith("images: Gemma3ForConditionalGeneration sees images (a siglip_vision_model vision "
                               "tower)")
    assert lines[3] == ("convert: outtype = \"bf16\": config.json's torch_dtype is bfloat16, converted without "
                        "loss")


def test_a_hub_that_cannot_be_reached_still_gives_a_valid_spec_and_says_what_was_not_checked(tmp_path: Path) -> None:
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"), "MODELKIT_HUB_TIMEOUT": "2"}
    proc = modelkit("init", "--base", "unsloth/Llama-3.1-8B-Instruct", cwd=tmp_path, env=env, without=("HF_",))
    assert proc.returncode == 0, proc.stderr
    spec = load_spec(tmp_path / "model.toml").spec
    assert spec.base.repo == "unsloth/Llama-3.1-8B-Instruct" and spec.convert.outtype == "auto"
    assert spec.name == "llama-3.1-8b-instruct"
    lines = said(proc)
    assert lines[0].startswith("base: unsloth/Llama-3.1-8B-Instruct, a Hub repo; could not read its config.json "
                               "and chat template (unsloth/Llama-3.1-8B-Instruct@main: not in the Hugging Face cache")
    assert "the connection was refused" in lines[0]
    assert [line.split(":")[0] for line in lines] == ["base", "chat template", "images", "convert", "name", "quantize"]
    assert "not checked" in lines[1] and "not checked" in lines[2] and "not checked" in lines[3]


def test_a_name_or_type_the_spec_refuses_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    gguf_files.write_tiny_gguf(tmp_path / "model.gguf")
    proc = modelkit("init", "--base", "model.gguf", "--quant", "Q4_K_X", cwd=tmp_path)
    assert proc.returncode == 2 and said(proc) == [
        "error: --quant: 'Q4_K_X' is not a llama.cpp quantization type (did you mean 'Q4_K_M'?)"]
    proc = modelkit("init", "--base", "model.gguf", "--name", "Support Bot", cwd=tmp_path)
    assert proc.returncode == 2 and said(proc)[0].startswith("error: --name: 'Support Bot' is not a valid name")
    assert not (tmp_path / "model.toml").exists()


def test_help_explains_it_with_examples(tmp_path: Path) -> None:
    proc = modelkit("init", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    assert "examples:" in proc.stdout and "--base REPO|PATH" in proc.stdout and "modelkit init --base" in proc.stdout


def test_the_schema_line_is_relative_inside_this_checkout_and_left_out_elsewhere(tmp_path: Path) -> None:
    assert schema_directive(ROOT / "examples" / "mine" / "model.toml") == "#:schema ../../schemas/model.schema.json"
    assert schema_directive(ROOT / "model.toml") == "#:schema ./schemas/model.schema.json"
    assert schema_directive(tmp_path / "model.toml") is None
