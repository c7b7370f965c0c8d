"""Find a model's chat template and special tokens, in a GGUF file or a Hugging Face folder.

A GGUF keeps them in its header (``tokenizer.chat_template``, ``tokenizer.ggml.*``), read with
:mod:`modelkit.formats.gguf` without touching the tensors. A Hugging Face folder keeps the
template in ``chat_template.jinja`` (transformers >= 4.43 writes it there), else in
``tokenizer_config.json`` (``chat_template``: a string, or a list of named templates of which
``default`` is the chat one), else in ``chat_template.json``; the special tokens come from
``tokenizer_config.json`` (or ``special_tokens_map.json``), and whether the tokenizer adds BOS by
itself from ``add_bos_token`` or, failing that, from ``tokenizer.json``'s post-processor — the
same places llama.cpp's converter reads, so a folder and the GGUF made from it agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from modelkit.errors import TemplateError
from modelkit.formats.gguf import GGUFHeaderError, read_metadata

HINT = "set [ollama] template in model.toml to give the template yourself"


@dataclass(frozen=True)
class ChatTemplateSource:
    """A base model's chat template and the special tokens it is rendered with."""

    template: str
    origin: str
    bos_token: Optional[str]
    eos_token: Optional[str]
    add_bos_token: bool
    eot_tokens: tuple[str, ...] = ()


def read_template(path: Path) -> ChatTemplateSource:
    """Read the chat template of a GGUF file or a Hugging Face model folder."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path)
    if path.is_file():
        return _from_gguf(path)
    raise TemplateError(f"{path}: no such file or folder (give a .gguf file or a Hugging Face model folder)")


def _from_gguf(path: Path) -> ChatTemplateSource:
    try:
        meta = read_metadata(path)
    except GGUFHeaderError as exc:
        raise TemplateError(str(exc)) from exc
    template = meta.get("tokenizer.chat_template")
    if not isinstance(template, str) or not template.strip():
        raise TemplateError(f"{path}: the GGUF has no chat template (tokenizer.chat_template); {HINT}")
    tokens = meta.get("tokenizer.ggml.tokens")

    def token(key: str) -> Optional[str]:
        tid = meta.get(key)
        if not isinstance(tid, int) or tokens is None or not 0 <= tid < len(tokens):
            return None
        return tokens[tid]

    bos, eos = token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    if not isinstance(add_bos, bool):
        # llama.cpp's default when the key is absent: SentencePiece vocabularies add BOS.
        add_bos = meta.get("tokenizer.ggml.model") == "llama"
    eot = tuple(t for t in (token("tokenizer.ggml.eot_token_id"), token("tokenizer.ggml.eom_token_id"))
                if t and t != eos)
    return ChatTemplateSource(template, f"{path.name}: tokenizer.chat_template", bos, eos, add_bos, eot)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _pick_named(value: Any, where: Path) -> Optional[str]:
    """``chat_template`` as a string, or the ``default`` one of a list of named templates."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        named = {t.get("name"): t.get("template") for t in value if isinstance(t, dict)}
        if isinstance(named.get("default"), str):
            return named["default"]
        names = ", ".join(str(n) for n in named) or "none"
        raise TemplateError(f"{where}: chat_template lists named templates ({names}) but none is 'default'; {HINT}")
    raise TemplateError(f"{where}: chat_template must be a string or a list of named templates")


def _token_text(value: Any) -> Optional[str]:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return None


def _from_folder(folder: Path) -> ChatTemplateSource:
    folder = folder.resolve()  # so that "." still has a name to show
    config_path = folder / "tokenizer_config.json"
    config: dict[str, Any] = _load_json(config_path) if config_path.is_file() else {}
    if not isinstance(config, dict):
        raise TemplateError(f"{config_path}: expected a JSON object")
    template: Optional[str] = None
    origin = ""
    jinja_path = folder / "chat_template.jinja"
    if jinja_path.is_file():
        template, origin = jinja_path.read_text(encoding="utf-8"), f"{folder.name}/chat_template.jinja"
    if template is None:
        template = _pick_named(config.get("chat_template"), config_path)
        origin = f"{folder.name}/tokenizer_config.json"
    if template is None and (folder / "chat_template.json").is_file():
        data = _load_json(folder / "chat_template.json")
        template = _pick_named(data.get("chat_template") if isinstance(data, dict) else None,
                               folder / "chat_template.json")
        origin = f"{folder.name}/chat_template.json"
    if template is None or not template.strip():
        if not config_path.is_file():
            raise TemplateError(f"{folder}: not a Hugging Face model folder (no tokenizer_config.json); {HINT}")
        raise TemplateError(f"{folder}: no chat template (chat_template.jinja, or chat_template in "
                            f"tokenizer_config.json); {HINT}")

    special: dict[str, Any] = {}
    stm = folder / "special_tokens_map.json"
    if stm.is_file():
        data = _load_json(stm)
        if isinstance(data, dict):
            special = data
    id_to_token = _added_tokens(folder, config)
    bos = _token_text(config.get("bos_token")) or _token_text(special.get("bos_token"))
    eos = _token_text(config.get("eos_token")) or _token_text(special.get("eos_token"))
    model_config = _load_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    gen_config = _load_json(folder / "generation_config.json") if (folder / "generation_config.json").is_file() else {}
    if bos is None:
        bos = _by_id(id_to_token, model_config.get("bos_token_id") if isinstance(model_config, dict) else None)
    if eos is None:
        eos = _by_id(id_to_token, model_config.get("eos_token_id") if isinstance(model_config, dict) else None)
    eot: list[str] = []
    for cfg in (gen_config, model_config):
        ids = cfg.get("eos_token_id") if isinstance(cfg, dict) else None
        for tid in ids if isinstance(ids, list) else [ids]:
            text = _by_id(id_to_token, tid)
            if text and text != eos and text not in eot:
                eot.append(text)
    return ChatTemplateSource(template, origin, bos, eos, _adds_bos(folder, config, bos), tuple(eot))


def _added_tokens(folder: Path, config: dict[str, Any]) -> dict[int, str]:
    out: dict[int, str] = {}
    decoder = config.get("added_tokens_decoder")
    if isinstance(decoder, dict):
        for k, v in decoder.items():
            text = _token_text(v)
            if text is not None and str(k).isdigit():
                out[int(k)] = text
    tj = folder / "tokenizer.json"
    if not out and tj.is_file():
        data = _load_json(tj)
        for tok in data.get("added_tokens", []) if isinstance(data, dict) else []:
            if isinstance(tok, dict) and isinstance(tok.get("id"), int) and isinstance(tok.get("content"), str):
                out[tok["id"]] = tok["content"]
    return out


def _by_id(table: dict[int, str], tid: Any) -> Optional[str]:
    if isinstance(tid, list):
        tid = tid[0] if tid else None
    return table.get(tid) if isinstance(tid, int) else None


def _adds_bos(folder: Path, config: dict[str, Any], bos: Optional[str]) -> bool:
    """Whether tokenizing a prompt adds BOS by itself (as llama.cpp will, from the GGUF)."""
    if isinstance(config.get("add_bos_token"), bool):
        return bool(config["add_bos_token"])
    tj = folder / "tokenizer.json"
    if tj.is_file() and bos:
        data = _load_json(tj)
        post = data.get("post_processor") if isinstance(data, dict) else None
        processors = post.get("processors", [post]) if isinstance(post, dict) else []
        for proc in processors:
            if isinstance(proc, dict) and proc.get("type") == "TemplateProcessing":
                single = proc.get("single") or []
                first = single[0] if single else {}
                special = first.get("SpecialToken") if isinstance(first, dict) else None
                if isinstance(special, dict) and special.get("id") == bos:
                    return True
        return False
    # Without either, a SentencePiece (Llama-style) tokenizer adds BOS by default.
    return (folder / "tokenizer.model").is_file()
