"""Which chat template each Ollama model gets, and the targets that choose, translate and prove it.

In order, the first that exists: the Go TEMPLATE the spec gives (``[ollama] template`` or
``template_file``: used as is, no target), a Jinja file the spec gives (``chat_template_file``),
the adapter's own template (its folder's ``chat_template.jinja`` or ``tokenizer_config.json``:
what the fine-tune was trained with), the base model's. The special tokens are the adapter's
tokenizer's when it has one, else the base's. An adapter that brings its tokenizer or template
gets a template target of its own (``template:adapter.<name>``); every other model shares
``template``. When the chosen template is not the one the base's GGUF already carries, the
GGUFs a model ships must be rewritten to carry it (:attr:`ModelTemplate.carried`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelkit.core.action import Action
from modelkit.rules.inputs import AdapterInput, Folder, Inputs
from modelkit.rules.names import SOURCE_BASE_TOKENIZER, Names
from modelkit.steps.template import TEMPLATE_FILES, InheritTemplate


@dataclass(frozen=True)
class ModelTemplate:
    """One model's template target, its output, and whether its GGUFs must be made to carry it."""

    target: str
    path: Path
    carried: bool


def add_templates(add: Callable[..., Action], names: Names, inputs: Inputs, models: list[tuple[str | None, str]],
                  given: str | None = None, given_file: Path | None = None) -> dict[str | None, ModelTemplate]:
    """A template target for each model (adapter name -> its template), added with ``add``.
    ``given`` / ``given_file``: the spec's Go TEMPLATE, to prove against the chosen Jinja instead
    of translating it (only with a ``chat_template_file``)."""
    chosen: dict[str | None, ModelTemplate] = {}
    for adapter, _ in models:
        resolved = next((a for a in inputs.adapters if a.name == adapter), None)
        own = resolved if resolved is not None and resolved.tokenizer_files else None
        made = names.adapter_template(own.name) if own else names.template()
        texts, tokens, files, deps = _candidates(inputs, own)
        if given_file is not None:
            files["template_file"] = given_file
        if made.target not in {t.target for t in chosen.values()}:
            add(made.target, InheritTemplate(texts=texts, tokens=tokens, files=files, label=_label(inputs, own),
                                             given=given, given_file=given_file, out=made.path,
                                             images=sees_images(inputs)), deps)
        chosen[adapter] = ModelTemplate(made.target, made.path, bool(own or inputs.chat_template_file))
    return chosen


def sees_images(inputs: Inputs) -> bool:
    """Whether the models ship a projector (the base has one, and it is not left out on purpose)."""
    return inputs.mmproj is not None or (inputs.vision is not None and not inputs.text_only)


def _candidates(inputs: Inputs, own: AdapterInput | None
                ) -> tuple[list[Path], list[Path], dict[str, Path], tuple[str, ...]]:
    """(where to look for the Jinja, whose tokens, files to hash, fetch targets) for one model."""
    texts: list[Path] = []
    tokens: list[Path] = []
    files: dict[str, Path] = {}
    deps: list[str] = []
    if inputs.chat_template_file is not None:
        texts.append(inputs.chat_template_file)
        files["chat_template_file"] = inputs.chat_template_file
    if own is not None:
        texts.append(own.folder.path)
        tokens.append(own.folder.path)
        files.update(_named(f"adapter.{own.name}", own.folder, own.tokenizer_files))
        deps += own.folder.deps
    base = inputs.base
    if base is not None:
        texts.append(base.path)
        tokens.append(base.path)
        files.update(_named("base", base, TEMPLATE_FILES))
        deps += [SOURCE_BASE_TOKENIZER] if base.deps else []
    else:
        assert inputs.base_gguf is not None
        texts.append(inputs.base_gguf)
        tokens.append(inputs.base_gguf)
        if inputs.base_fetch is None:
            files["base.gguf"] = inputs.base_gguf
        else:  # pulled from a registry by the fetch target, whose outputs' digests enter the key
            deps.append(inputs.base_fetch)
    return texts, tokens, files, tuple(dict.fromkeys(deps))


def _label(inputs: Inputs, own: AdapterInput | None) -> str:
    """Where the template is looked for, for ``modelkit plan``: "adapter 'x' (lora/chat_template.jinja)"."""
    if inputs.chat_template_file is not None:
        return f"{inputs.chat_template_file.name} (the spec's chat_template_file)"
    if own is None:
        return "the base model"
    where = next(n for n in ("chat_template.jinja", "tokenizer_config.json", "chat_template.json", *own.tokenizer_files)
                 if n in own.tokenizer_files)
    return f"adapter '{own.name}' ({own.folder.path.name}/{where}, else the base model's)"


def _named(prefix: str, folder: Folder, names: tuple[str, ...]) -> dict[str, Path]:
    return {f"{prefix}/{name}": path for name, path in folder.pick(names).items()}
