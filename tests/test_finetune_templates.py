"""Fine-tunes' own chat templates, end to end on the tiny model: which template wins, the proof on
it, the same template in every shipped GGUF, and failures before any long step.

(Adapters that add tokens, rsLoRA and DoRA are in test_peft_merge.py; thinking in
tests/chat_template/test_think.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gguf
import pytest
from conftest import modelkit

from modelkit.chat_template import choose_template
from modelkit.chat_template.proof import prove
from modelkit.chat_template.reference import RenderContext, render_chat
from modelkit.project import Project

pytestmark = [pytest.mark.toolchain, pytest.mark.slow]

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CHAT = [{"role": "system", "content": "You are a support agent."}, {"role": "user", "content": "The app is slow."}]


def chat_template_of(path: Path) -> str:
    """The chat template a GGUF carries, through the gguf package's own reader (not modelkit's)."""
    return str(gguf.GGUFReader(path).fields["tokenizer.chat_template"].contents())


def test_the_adapters_own_template_wins_and_every_shipped_gguf_carries_it(tiny_project: Path, toolchain) -> None:
    (tiny_project / "lora" / "chat_template.jinja").write_text(CHATML)
    plan = {row["target"]: row for row in json.loads(modelkit("plan", "--json", cwd=tiny_project).stdout)}
    assert "template" not in plan  # no model uses the base's template
    assert plan["template:adapter.support"]["action"] == \
        "chat template of adapter 'support' (lora/chat_template.jinja, else the base model's)"
    targets = list(plan)
    assert targets[0] == "template:adapter.support"  # before any conversion
    proc = modelkit("build", "--no-ollama", cwd=tiny_project)
    assert proc.returncode == 0, proc.stderr
    build = tiny_project / "build"
    made = json.loads((build / "template.adapter.support.json").read_text())
    assert made["origin"] == "lora/chat_template.jinja" and made["proof"].startswith("proven")
    for name in ("base+support.f16", "base+support.Q4_K_M", "base+support.Q8_0"):
        assert chat_template_of(build / f"{name}.gguf") == CHATML, name
    assert chat_template_of(build / "base.f16.gguf") != CHATML  # the base's own stays the base's
    modelfile = (build / "tiny-support-q4_k_m.Modelfile").read_text()
    assert made["template"] in modelfile
    # The Modelfile's TEMPLATE renders what the adapter's Jinja renders, with the base's tokens.
    source = choose_template([tiny_project / "lora", tiny_project / "base"], [tiny_project / "lora", tiny_project / "base"])
    assert prove(made["template"], CHATML, source.bos_token, source.eos_token, source.add_bos_token).proven
    assert render_chat(CHATML, CHAT, RenderContext(bos_token="<s>", eos_token="</s>")).startswith("<|im_start|>system")


@pytest.mark.from_scratch("what must not start (conversions) is only seen in a build from nothing")
def test_a_template_that_cannot_be_proven_stops_the_build_before_any_conversion(tiny_project: Path, toolchain) -> None:
    (tiny_project / "lora" / "chat_template.jinja").write_text("{{ raise_exception('tool calls only') }}")
    proc = modelkit("build", "--no-ollama", "-k", cwd=tiny_project)
    assert proc.returncode == 2
    assert "lora/chat_template.jinja: the template refuses every test conversation (tool calls only)" in proc.stderr
    logs = sorted(p.name for p in (tiny_project / ".modelkit" / "logs").iterdir())
    assert logs == ["template_adapter.support.log"]  # no convert, merge or quantize log: none started
    assert not (tiny_project / "build").exists() or not list((tiny_project / "build").glob("*.gguf"))


def test_a_jinja_file_in_the_spec_is_translated_proven_and_written_into_the_ggufs(tiny_project: Path, toolchain) -> None:
    (tiny_project / "chat.jinja").write_text(CHATML)
    spec = tiny_project / "model.toml"
    spec.write_text(spec.read_text().replace("[ollama]\n", '[ollama]\nchat_template_file = "chat.jinja"\n'))
    assert modelkit("build", "--no-ollama", cwd=tiny_project).returncode == 0
    made = json.loads((tiny_project / "build" / "template.json").read_text())
    assert made["origin"] == "chat.jinja" and made["proof"].startswith("proven")
    assert chat_template_of(tiny_project / "build" / "base+support.Q8_0.gguf") == CHATML


def test_template_translate_writes_exact_bytes_that_prove_as_a_template_file(tiny_project: Path, toolchain) -> None:
    translated = subprocess.run([sys.executable, "-m", "modelkit", "template", "translate", "base"],
                                cwd=tiny_project, capture_output=True, timeout=120)
    assert translated.returncode == 0, translated.stderr
    (tiny_project / "t.gotmpl").write_bytes(translated.stdout)
    assert modelkit("template", "translate", "base", "-o", "t2.gotmpl", cwd=tiny_project).returncode == 0
    assert (tiny_project / "t2.gotmpl").read_bytes() == translated.stdout
    source = choose_template([tiny_project / "base"], [tiny_project / "base"])
    assert prove(translated.stdout.decode(), source.template, source.bos_token, source.eos_token,
                 source.add_bos_token).proven  # no newline was added to the prompt
    spec = tiny_project / "model.toml"
    spec.write_text(spec.read_text().replace("[ollama]\n", '[ollama]\ntemplate_file = "t.gotmpl"\n'))
    proc = modelkit("build", "--no-ollama", cwd=tiny_project)
    assert proc.returncode == 0, proc.stderr
    assert "given as Go text only" in proc.stderr and "chat_template_file" in proc.stderr  # said once
    assert proc.stderr.count("given as Go text only") == 1
    modelfile = (tiny_project / "build" / "tiny-support-q4_k_m.Modelfile").read_text()
    assert f'TEMPLATE """{translated.stdout.decode()}"""' in modelfile


def test_a_chat_template_file_that_is_not_jinja_is_a_one_line_error(tiny_project: Path) -> None:
    (tiny_project / "chat.jinja").write_text("{% for m in messages %}{{ m.content }")
    spec = tiny_project / "model.toml"
    spec.write_text(spec.read_text().replace("[ollama]\n", '[ollama]\nchat_template_file = "chat.jinja"\n'))
    proc = modelkit("plan", cwd=tiny_project)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "ollama.chat_template_file: " in line and "chat.jinja:1: not a Jinja template" in line


def test_plan_says_where_each_models_template_comes_from(tiny_project: Path) -> None:
    statuses = Project.open(tiny_project / "model.toml").plan()
    rows = Project.open(tiny_project / "model.toml").describe_plan(statuses)
    assert rows[0]["target"] == "template" and rows[0]["action"] == "chat template of the base model"


def test_the_adapters_special_tokens_go_into_the_gguf_with_its_template(tiny_project: Path, toolchain) -> None:
    """A fine-tune that ends its turns with another token (here ``<|user|>``, in the tiny vocabulary)
    says so in its tokenizer_config.json; the shipped GGUF's EOS must be that token, or llama.cpp
    and Ollama would not stop where the model was trained to."""
    config = json.loads((tiny_project / "base" / "tokenizer_config.json").read_text())
    config.update(chat_template=CHATML.replace("</s>", "<|user|>"), eos_token="<|user|>")
    (tiny_project / "lora" / "tokenizer_config.json").write_text(json.dumps(config))
    assert modelkit("build", "--no-ollama", cwd=tiny_project).returncode == 0
    shipped = tiny_project / "build" / "base+support.Q8_0.gguf"
    reader = gguf.GGUFReader(shipped)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert tokens[reader.fields["tokenizer.ggml.eos_token_id"].contents()] == "<|user|>"
    assert chat_template_of(shipped) == CHATML.replace("</s>", "<|user|>")
    made = json.loads((tiny_project / "build" / "template.adapter.support.json").read_text())
    assert made["eos_token"] == "<|user|>" and "<|user|>" in made["stop"]
    prompt = render_chat(config["chat_template"], CHAT, RenderContext(bos_token="<s>", eos_token="<|user|>"))
    out = subprocess.run([str(toolchain.completion), "-m", str(shipped), "-p", prompt, "-n", "24", "--temp", "0",
                          "-t", "1", "-tb", "1", "-no-cnv", "--no-warmup", "--no-display-prompt", "-v"],
                         capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # llama.cpp loaded the GGUF's new EOS as an end-of-generation token.
    assert b"EOS token             = 4 '<|user|>'" in out.stderr and b"EOG token             = 4 '<|user|>'" in out.stderr


def test_a_go_template_given_with_its_jinja_is_proven_against_it(tiny_project: Path, toolchain) -> None:
    """With both, the Modelfile gets the Go text as is, the GGUFs the Jinja, and the build proves
    they render the same prompts (else Ollama's two modes would disagree)."""
    (tiny_project / "chat.jinja").write_text(CHATML)
    translated = subprocess.run([sys.executable, "-m", "modelkit", "template", "translate", "chat.jinja",
                                 "--tokens", "base"], cwd=tiny_project, capture_output=True, timeout=120)
    assert translated.returncode == 0, translated.stderr
    (tiny_project / "chat.gotmpl").write_bytes(translated.stdout)
    spec = tiny_project / "model.toml"
    text = spec.read_text()
    spec.write_text(text.replace("[ollama]\n", '[ollama]\ntemplate_file = "chat.gotmpl"\nchat_template_file = "chat.jinja"\n'))
    proc = modelkit("build", "--no-ollama", cwd=tiny_project)
    assert proc.returncode == 0, proc.stderr
    assert "given as Go text only" not in proc.stderr
    assert json.loads((tiny_project / "build" / "template.json").read_text())["proof"].endswith("(the given TEMPLATE)")
    assert chat_template_of(tiny_project / "build" / "base+support.Q4_K_M.gguf") == CHATML
    (tiny_project / "chat.gotmpl").write_bytes(translated.stdout.replace(b"<|im_start|>", b"<|im_begin|>"))
    proc = modelkit("build", "--no-ollama", cwd=tiny_project)
    assert proc.returncode == 2 and "the given TEMPLATE is not proven" in proc.stderr
