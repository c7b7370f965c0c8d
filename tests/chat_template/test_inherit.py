"""The whole step: read, translate, prove, derive stops — and the errors users see."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

import pytest

from modelkit.chat_template import TemplateError, inherit_template, read_template
from modelkit.chat_template import inherit as inherit_mod
from modelkit.chat_template.proof import FAMILIES, cross_check, prove, recognise
from modelkit.chat_template.source import ChatTemplateSource
from modelkit.chat_template.stops import derive_stops
from modelkit.chat_template.translator import Translation
from modelkit.cli.template import add_commands as add_template_commands
from modelkit.golang import template as gt


def _src(template: str, bos: str | None = "<s>", eos: str | None = "</s>", add_bos: bool = False) -> ChatTemplateSource:
    return ChatTemplateSource(template, "test.jinja", bos, eos, add_bos)


@pytest.mark.parametrize("fixture", ["tiny_gguf", "tiny_hf"])
def test_tiny_model_inherits(fixture: str, request: pytest.FixtureRequest) -> None:
    src = read_template(request.getfixturevalue(fixture))
    result = inherit_template(src)
    assert result.summary.startswith("proven on 9 conversations")
    assert "zephyr" in result.summary  # the family template agrees
    assert result.stop == ("</s>", "<|user|>")
    out = gt.execute(gt.check_ollama_parse(result.go_template), gt.ollama_data([{"role": "user", "content": "Hi"}]))
    assert out == "<|user|>\nHi</s>\n<|assistant|>\n"  # the tokenizer adds <s> itself


@pytest.mark.parametrize("name, stops", [
    ("Qwen-Qwen2.5-7B-Instruct", ("<|im_end|>", "<|im_start|>", "<|endoftext|>")),
    ("meta-llama-Llama-3.1-8B-Instruct", ("<|eot_id|>", "<|start_header_id|>", "<|eom_id|>")),
])
def test_families_needed_first(llama_cpp_templates: Path, name: str, stops: tuple[str, ...]) -> None:
    template = (llama_cpp_templates / f"{name}.jinja").read_text()
    if "Qwen" in name:
        src = ChatTemplateSource(template, name, None, "<|endoftext|>", False)
    else:
        src = ChatTemplateSource(template, name, "<|begin_of_text|>", "<|eot_id|>", True, ("<|eom_id|>",))
    result = inherit_template(src)
    proven = "proven on 18 conversations with tools and reasoning" if "Qwen" in name else "proven on 9 conversations"
    assert result.summary.startswith(proven), result.summary
    assert set(stops) <= set(result.stop)


def test_outside_the_contract_is_reported(llama_cpp_templates: Path) -> None:
    src = _src((llama_cpp_templates / "google-gemma-2-2b-it.jinja").read_text(), "<bos>", "<eos>", True)
    result = inherit_template(src)
    assert "outside the template's contract: System role not supported" in result.summary


def test_unparseable_template() -> None:
    with pytest.raises(TemplateError, match=r"test.jinja: the template does not parse"):
        inherit_template(_src("{% for m in messages %}"))


def test_unknown_filter() -> None:
    with pytest.raises(TemplateError, match="no_such_filter"):
        inherit_template(_src("{% for m in messages %}{{ m.content | no_such_filter }}{% endfor %}"))


def test_template_that_refuses_everything() -> None:
    with pytest.raises(TemplateError, match="refuses every test conversation.*not supported here"):
        inherit_template(_src("{{ raise_exception('not supported here') }}"))


def test_untranslatable_template_names_the_reason() -> None:
    with pytest.raises(TemplateError, match=r"cannot translate.*Go counts bytes.*\[ollama\] chat_template_file"):
        inherit_template(_src("{% for m in messages %}{{ m.content[:2] }}{% endfor %}"))


def test_proof_failure_shows_the_conversation_and_a_diff(monkeypatch: pytest.MonkeyPatch, tiny_chat_template: str) -> None:
    """A translation that is subtly wrong (a missing newline) must be stopped, with the evidence."""
    def wrong(*args: Any, **kwargs: Any) -> Translation:
        go = ('{{- range $i, $m := $.Messages }}<|{{ $m.Role }}|>\n{{ $m.Content }}</s>{{ end }}'
              '{{ if ne (index $.Messages (len (slice $.Messages 1))).Role "assistant" }}<|assistant|>\n{{ end }}')
        return Translation(go)

    monkeypatch.setattr(importlib.import_module("modelkit.chat_template.proof.route"), "translate", wrong)
    monkeypatch.setattr(inherit_mod, "cross_check", lambda source: [])
    with pytest.raises(TemplateError) as err:
        inherit_template(_src(tiny_chat_template, add_bos=True))
    msg = str(err.value)
    assert "not proven" in msg and "conversation 'user'" in msg and "user: 'Hello! How are you?'" in msg
    assert "--- jinja (reference)" in msg and "+++ ollama TEMPLATE" in msg
    assert "-<|assistant|>" in msg and "+Hello! How are you?</s><|assistant|>" in msg


def test_family_library_recognises_and_proves(tiny_chat_template: str) -> None:
    assert [f.name for f in recognise(tiny_chat_template)] == ["zephyr"]
    checks = cross_check(_src(tiny_chat_template, add_bos=True))
    assert checks and checks[0].proof.proven
    assert {f.name for f in FAMILIES} >= {"chatml", "llama3", "gemma", "phi3", "zephyr"}


def test_stops_for_common_formats(llama_cpp_templates: Path) -> None:
    def stops(name: str) -> tuple[str, ...]:
        return derive_stops((llama_cpp_templates / f"{name}.jinja").read_text(), "<s>", "</s>")

    assert stops("google-gemma-2-2b-it")[:2] == ("<end_of_turn>", "<start_of_turn>")
    assert stops("microsoft-Phi-3.5-mini-instruct")[:2] == ("<|end|>", "<|user|>")
    assert stops("mistralai-Mistral-Nemo-Instruct-2407")[:2] == ("</s>", "[INST]")


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="modelkit")
    add_template_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_cli_translate_pipes_only_the_template(tiny_gguf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("template", "translate", str(tiny_gguf)) == 0
    out, err = capsys.readouterr()
    assert "proven on 9 conversations" in err and "proven" not in out
    gt.check_ollama_parse(out)  # stdout is exactly a template Ollama accepts
    assert out.rstrip("\n") == inherit_template(read_template(tiny_gguf)).go_template.rstrip("\n")


def test_cli_show(tiny_hf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("template", "show", str(tiny_hf)) == 0
    out = capsys.readouterr().out
    assert "base/tokenizer_config.json" in out and "'</s>'" in out and "message['role']" in out


def test_cli_errors_are_user_errors(tmp_path: Path, make_hf_folder: Any) -> None:
    folder = make_hf_folder(tmp_path / "m", "{{ messages[0].content[:3] }}")
    with pytest.raises(TemplateError):
        _cli("template", "translate", str(folder))
    with pytest.raises(TemplateError, match="no such file"):
        _cli("template", "show", str(tmp_path / "missing"))


def test_prove_reports_outside_and_failures(tiny_chat_template: str) -> None:
    good = inherit_template(_src(tiny_chat_template, add_bos=False)).go_template
    proof = prove(good, tiny_chat_template, "<s>", "</s>", False)
    assert proof.proven and not proof.outside
    # The same template judged for a tokenizer that adds BOS: its leading <s> is now one too many.
    assert not prove(good, tiny_chat_template, "<s>", "</s>", True).proven
