"""Reading the chat template and special tokens from a GGUF header or a Hugging Face folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelkit.chat_template import TemplateError, read_template
from modelkit.errors import UserError


def test_gguf(tiny_gguf: Path, tiny_chat_template: str) -> None:
    src = read_template(tiny_gguf)
    assert src.template == tiny_chat_template
    assert (src.bos_token, src.eos_token, src.add_bos_token) == ("<s>", "</s>", True)
    assert src.origin == "base.f16.gguf: tokenizer.chat_template"


def test_gguf_end_of_turn_tokens(make_gguf: Any, tmp_path: Path) -> None:
    tokens = ["<unk>", "<s>", "</s>", "<|eot_id|>", "<|eom_id|>"]

    def extra(w: Any) -> None:
        w.add_uint32("tokenizer.ggml.eot_token_id", 3)
        w.add_uint32("tokenizer.ggml.eom_token_id", 4)

    src = read_template(make_gguf(tmp_path / "m.gguf", "x", tokens=tokens, add_bos=False, extra=extra))
    assert src.eot_tokens == ("<|eot_id|>", "<|eom_id|>")
    assert src.add_bos_token is False


def test_gguf_without_add_bos_key_follows_llama_cpp_default(make_gguf: Any, tmp_path: Path) -> None:
    # SentencePiece ("llama") vocabularies add BOS unless the GGUF says otherwise.
    assert read_template(make_gguf(tmp_path / "m.gguf", "x", add_bos=None)).add_bos_token is True


def test_gguf_without_template(make_gguf: Any, tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "m.gguf", None)
    with pytest.raises(TemplateError) as err:
        read_template(path)
    msg = str(err.value)
    assert "m.gguf" in msg and "no chat template" in msg and "[ollama] chat_template_file" in msg
    assert isinstance(err.value, UserError)


def test_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(TemplateError, match="not a GGUF file"):
        read_template(path)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no such file or folder"):
        read_template(tmp_path / "nothing")


def test_folder_with_only_a_tokenizer_config(tiny_hf: Path, tiny_chat_template: str) -> None:
    src = read_template(tiny_hf)
    assert src.template == tiny_chat_template
    assert (src.bos_token, src.eos_token, src.add_bos_token) == ("<s>", "</s>", True)
    assert src.origin == "base/tokenizer_config.json"


def test_named_templates_take_default(make_hf_folder: Any, tmp_path: Path) -> None:
    folder = make_hf_folder(tmp_path / "m", [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}])
    assert read_template(folder).template == "D"


def test_named_templates_without_default(make_hf_folder: Any, tmp_path: Path) -> None:
    folder = make_hf_folder(tmp_path / "m", [{"name": "rag", "template": "R"}])
    with pytest.raises(TemplateError, match="none is 'default'"):
        read_template(folder)


def test_chat_template_jinja_wins(make_hf_folder: Any, tmp_path: Path) -> None:
    folder = make_hf_folder(tmp_path / "m", "from config")
    (folder / "chat_template.jinja").write_text("from file", encoding="utf-8")
    src = read_template(folder)
    assert (src.template, src.origin) == ("from file", "m/chat_template.jinja")


def test_chat_template_json(make_hf_folder: Any, tmp_path: Path) -> None:
    folder = make_hf_folder(tmp_path / "m", None)
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": "J"}), encoding="utf-8")
    assert read_template(folder).template == "J"


def test_added_token_objects_and_generation_config(make_hf_folder: Any, tmp_path: Path) -> None:
    folder = make_hf_folder(
        tmp_path / "m", "x",
        bos_token={"content": "<|begin_of_text|>", "special": True},
        eos_token={"content": "<|eot_id|>", "special": True},
        added_tokens_decoder={"128000": {"content": "<|begin_of_text|>"}, "128001": {"content": "<|end_of_text|>"},
                              "128008": {"content": "<|eom_id|>"}, "128009": {"content": "<|eot_id|>"}})
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [128001, 128008, 128009]}))
    src = read_template(folder)
    assert (src.bos_token, src.eos_token) == ("<|begin_of_text|>", "<|eot_id|>")
    assert src.eot_tokens == ("<|end_of_text|>", "<|eom_id|>")


def test_add_bos_from_tokenizer_json_post_processor(make_hf_folder: Any, tmp_path: Path) -> None:
    folder = make_hf_folder(tmp_path / "m", "x", bos_token="<|begin_of_text|>")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    del config["add_bos_token"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    post = {"type": "Sequence", "processors": [
        {"type": "ByteLevel"},
        {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                                                   {"Sequence": {"id": "A", "type_id": 0}}]}]}
    (folder / "tokenizer.json").write_text(json.dumps({"post_processor": post, "added_tokens": []}))
    assert read_template(folder).add_bos_token is True
    post["processors"] = [{"type": "ByteLevel"}]
    (folder / "tokenizer.json").write_text(json.dumps({"post_processor": post, "added_tokens": []}))
    assert read_template(folder).add_bos_token is False


def test_chatml_tokenizer_without_bos(make_hf_folder: Any, tmp_path: Path) -> None:
    folder = make_hf_folder(tmp_path / "m", "x", bos_token=None, eos_token="<|im_end|>", add_bos_token=False)
    src = read_template(folder)
    assert (src.bos_token, src.eos_token, src.add_bos_token) == (None, "<|im_end|>", False)


def test_folder_without_template(make_hf_folder: Any, tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="no chat template"):
        read_template(make_hf_folder(tmp_path / "m", None))


def test_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not a Hugging Face model folder"):
        read_template(tmp_path)


def test_bad_json(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text("{ nope")
    with pytest.raises(TemplateError, match=r"tokenizer_config.json: invalid JSON at line 1"):
        read_template(tmp_path)
