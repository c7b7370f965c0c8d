"""Find a model's chat template and special tokens, in a GGUF file or a Hugging Face folder.

A GGUF keeps them in its header (``tokenizer.chat_template``, ``tokenizer.ggml.*``), read with
:mod:`modelkit.formats.gguf` without touching the tensors. A Hugging Face folder keeps the
template in ``chat_template.jinja`` (transformers >= 4.43 writes it there), else in
``tokenizer_config.json`` (``chat_template``: a string, or a list of named templates of which
``default`` is the chat one), else in ``chat_template.json``; the special tokens come from
``tokenizer_config.json`` (or ``special_tokens_map.json``), and whether the tokenizer adds BOS by
itself from ``add_bos_token`` or, failing that, from ``tokenizer.json``'s post-processor — the
same places llama.cpp's converter reads, so a folder and the GGUF made from it agree.

A fine-tune's template and its tokens may live in different places: an adapter folder holds the
template it was trained with (``chat_template.jinja``, or ``chat_template`` in its
``tokenizer_config.json``) and perhaps its own tokenizer; a spec may name a Jinja file alone.
:func:`choose_template` takes the first of several places that has a template, with the special
tokens of the first that has a tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.errors import GGUFHeaderError, TemplateError
from modelkit.formats.gguf import is_gguf, read_metadata

HINT = ("set [ollama] chat_template_file (a Jinja template) or template (Ollama's Go text) in model.toml to give "
        "the template yourself")


@dataclass(frozen=True)
class ChatTemplateSource:
    """A base model's chat template and the special tokens it is rendered with."""

    template: str
    origin: str
    bos_token: str | None
    eos_token: str | None
    add_bos_token: bool
    eot_tokens: tuple[str, ...] = ()


@dataclass(frozen=True)
class SpecialTokens:
    """The tokens a chat template is rendered with, and whether the tokenizer adds BOS itself."""

    bos_token: str | None
    eos_token: str | None
    add_bos_token: bool
    eot_tokens: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        """Whether a tokenizer was found at all (a Jinja file alone has none)."""
        return self.bos_token is not None or self.eos_token is not None


def read_template(path: Path) -> ChatTemplateSource:
    """Read the chat template of a GGUF file or a Hugging Face model folder."""
    return choose_template([path], [path])


def choose_template(texts: list[Path], tokens: list[Path]) -> ChatTemplateSource:
    """The template of the first of ``texts`` that has one (a Jinja file, a Hugging Face folder
    or a GGUF), with the special tokens of the first of ``tokens`` that has a tokenizer."""
    found = next((jinja for path in texts if (jinja := find_jinja(Path(path))) is not None), None)
    if found is None:
        raise TemplateError(f"{' and '.join(_none_in(Path(p)) for p in texts)}; {HINT}")
    special = next((s for path in tokens if (s := read_tokens(Path(path))).known), SpecialTokens(None, None, False))
    template, origin = found
    return ChatTemplateSource(template, origin, special.bos_token, special.eos_token, special.add_bos_token,
                              special.eot_tokens)


def find_jinja(path: Path) -> tuple[str, str] | None:
    """(template, where it was found) in a Jinja file, a Hugging Face folder or a GGUF; None if it
    holds none. A file or folder that cannot be read is a :class:`TemplateError`."""
    if path.is_dir():
        return _jinja_in_folder(path.resolve())  # resolved, so that "." still has a name to show
    if not path.is_file():
        raise TemplateError(f"{path}: no such file or folder (give a .gguf file or a Hugging Face model folder)")
    if not _is_gguf(path):
        text = path.read_text(encoding="utf-8")
        return (text, path.name) if text.strip() else None
    template = _gguf_metadata(path).get("tokenizer.chat_template")
    return (template, f"{path.name}: tokenizer.chat_template") if isinstance(template, str) and template.strip() \
        else None


def read_tokens(path: Path) -> SpecialTokens:
    """The special tokens of a GGUF's or a Hugging Face folder's tokenizer (none for a Jinja file)."""
    if path.is_dir():
        return _tokens_in_folder(path.resolve())
    return _tokens_in_gguf(path) if _is_gguf(path) else SpecialTokens(None, None, False)


def _is_gguf(path: Path) -> bool:
    """A GGUF (or a binary file meant as one, whose header then says what is wrong with it), as
    opposed to a Jinja text file."""
    with open(path, "rb") as f:
        head = f.read(4096)
    return is_gguf(path) or path.suffix.lower() == ".gguf" or b"\0" in head


def _none_in(path: Path) -> str:
    """Why ``path`` gave no template, for the error."""
    if path.is_dir():
        if not (path / "tokenizer_config.json").is_file() and not (path / "chat_template.jinja").is_file():
            return f"{path}: not a Hugging Face model folder (no tokenizer_config.json)"
        return f"{path}: no chat template (chat_template.jinja, or chat_template in tokenizer_config.json)"
    if _is_gguf(path):
        return f"{path}: the GGUF has no chat template (tokenizer.chat_template)"
    return f"{path}: the file is empty"


def _gguf_metadata(path: Path) -> dict[str, Any]:
    try:
        return read_metadata(path)
    except GGUFHeaderError as exc:
        raise TemplateError(str(exc)) from exc


def _tokens_in_gguf(path: Path) -> SpecialTokens:
    meta = _gguf_metadata(path)
    tokens = meta.get("tokenizer.ggml.tokens")

    def token(key: str) -> str | None:
        tid = meta.get(key)
        if not isinstance(tid, int) or tokens is None or not 0 <= tid < len(tokens):
            return None
        return str(tokens[tid])

    bos, eos = token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id")
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    if not isinstance(add_bos, bool):
        # llama.cpp's default when the key is absent: SentencePiece vocabularies add BOS.
        add_bos = meta.get("tokenizer.ggml.model") == "llama"
    eot = tuple(t for t in (token("tokenizer.ggml.eot_token_id"), token("tokenizer.ggml.eom_token_id"))
                if t and t != eos)
    return SpecialTokens(bos, eos, add_bos, eot)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    except OSError as exc:
        raise TemplateError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _pick_named(value: Any, where: Path) -> str | None:
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


def _token_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _jinja_in_folder(folder: Path) -> tuple[str, str] | None:
    config_path = folder / "tokenizer_config.json"
    jinja_path = folder / "chat_template.jinja"
    if jinja_path.is_file():
        text = jinja_path.read_text(encoding="utf-8")
        if text.strip():
            return text, f"{folder.name}/chat_template.jinja"
    template = _pick_named(_config(folder).get("chat_template"), config_path)
    if template is not None and template.strip():
        return template, f"{folder.name}/tokenizer_config.json"
    if (folder / "chat_template.json").is_file():
        data = _load_json(folder / "chat_template.json")
        template = _pick_named(data.get("chat_template") if isinstance(data, dict) else None,
                               folder / "chat_template.json")
        if template is not None and template.strip():
            return template, f"{folder.name}/chat_template.json"
    return None


def _config(folder: Path) -> dict[str, Any]:
    config_path = folder / "tokenizer_config.json"
    config = _load_json(config_path) if config_path.is_file() else {}
    if not isinstance(config, dict):
        raise TemplateError(f"{config_path}: expected a JSON object")
    return config


def _json_object(path: Path) -> dict[str, Any]:
    data = _load_json(path) if path.is_file() else {}
    return data if isinstance(data, dict) else {}


def _tokens_in_folder(folder: Path) -> SpecialTokens:
    config = _config(folder)
    special = _json_object(folder / "special_tokens_map.json")
    model_config = _json_object(folder / "config.json")
    id_to_token = _added_tokens(folder, config)
    bos = _token_text(config.get("bos_token")) or _token_text(special.get("bos_token")) \
        or _by_id(id_to_token, model_config.get("bos_token_id"))
    eos = _token_text(config.get("eos_token")) or _token_text(special.get("eos_token")) \
        or _by_id(id_to_token, model_config.get("eos_token_id"))
    eot: list[str] = []
    for cfg in (_json_object(folder / "generation_config.json"), model_config):
        ids = cfg.get("eos_token_id")
        for tid in ids if isinstance(ids, list) else [ids]:
            text = _by_id(id_to_token, tid)
            if text and text != eos and text not in eot:
                eot.append(text)
    return SpecialTokens(bos, eos, _adds_bos(folder, config, bos), tuple(eot))


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


def _by_id(table: dict[int, str], tid: Any) -> str | None:
    if isinstance(tid, list):
        tid = tid[0] if tid else None
    return table.get(tid) if isinstance(tid, int) else None


def _adds_bos(folder: Path, config: dict[str, Any], bos: str | None) -> bool:
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
