"""Starting a project (``modelkit init``): read what a base model and its adapters say about themselves,
and write a commented ``model.toml`` that builds as written.

A first spec is where most mistakes are made: a LoRA converted at a lossy type, a base without a chat
template left on ``template = "inherit"``, a model that sees images shipped without its projector. So
every default here is read from the files (``config.json``, the GGUF header, ``adapter_config.json``,
the tokenizer's chat template) rather than guessed, each choice is said in one line with its reason,
and the text is validated by the spec's own pydantic models and file checks before anything is
written. A Hub repo is read through :mod:`modelkit.hub` (its small files only, as planning does);
where the Hub cannot be reached the spec is still written, and what could not be checked is said.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit.errors import SpecError, Unreachable, UserError
from modelkit.formats.checkpoints import is_complete, is_pattern, newest_complete, step_of
from modelkit.formats.jsonfile import read_json_object
from modelkit.formats.vision import VisionTower, vision_tower

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SCHEMA = PACKAGE_ROOT / "schemas" / "model.schema.json"
"""The JSON Schema in a source checkout of modelkit (a wheel does not carry it)."""

DEFAULT_QUANTS = ("Q4_K_M",)
FULL_PRECISION = ("F32", "F16", "BF16")
HUB_FILES = ("config.json", "tokenizer_config.json", "chat_template.jinja", "chat_template.json")
"""What is read of a Hub repo: kilobytes, the very files the build's fetch then finds in the cache."""

LOSSLESS = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "F32": "f32", "F16": "f16", "BF16": "bf16"}
"""A weight type (config.json's ``torch_dtype``, a safetensors dtype) -> the convert outtype that keeps it."""

_GENERIC = re.compile(r"^(base|model|models|lora|loras|adapter|adapters|final|best|latest|out|output|outputs|"
                      r"results?|runs?|checkpoints?|hf|merged|snapshots?|(checkpoint|step|epoch)[-_]?\d+)$")
"""Folder names that say nothing of what a model is (a training run's layout); a name is looked for above them."""

COMMENT_COLUMN = 41


@dataclass(frozen=True)
class Request:
    """What the user asked for: the base (as typed), adapters, and the choices they made themselves."""

    base: str | None
    output: Path
    adapters: list[str] = field(default_factory=list)
    name: str | None = None
    quants: list[str] | None = None
    config: Path | None = None


@dataclass(frozen=True)
class BaseRef:
    """The base a user named: ``kind`` is ``repo`` (a Hub repo id), ``path`` (a Hugging Face folder) or ``gguf``."""

    kind: str
    given: str
    path: Path | None = None


@dataclass(frozen=True)
class AdapterRef:
    """An adapter as given, and the folder read for it (a pattern's newest complete checkpoint)."""

    given: str
    folder: Path


@dataclass
class BaseFacts:
    """What reading the base found (None where it holds nothing, or could not be read: ``unread`` says why)."""

    folder: Path | None = None
    """A folder with its config.json and tokenizer (the model folder, the Hub snapshot, a GGUF's ``--config``)."""
    architecture: str | None = None
    dtype: str | None = None
    dtype_from: str = ""
    template: str | None = None
    vision: VisionTower | None = None
    gguf_type: str | None = None
    mmproj: list[Path] = field(default_factory=list)
    unread: str | None = None


@dataclass(frozen=True)
class Choice:
    """One choice: the lines it writes into model.toml (a table of its own, or keys) and the line saying it."""

    lines: tuple[str, ...]
    said: str


@dataclass(frozen=True)
class Started:
    """A model.toml, validated and not yet written, and one line for each choice made in it."""

    text: str
    said: list[str]


# -- what the user named --------------------------------------------------------------------------

def spec_path(output: Path) -> Path:
    """The file ``-o`` means: a folder means its ``model.toml``, as every other command reads it."""
    return output / "model.toml" if output.is_dir() else output


def refuse_existing(output: Path, force: bool) -> None:
    """A spec is the user's own work: it is never replaced unless ``--force`` says so."""
    if output.exists() and not force:
        raise UserError(f"{output} already exists; nothing was written (choose another file with -o, or --force "
                        "to replace it)")


def parse_base(given: str, cwd: Path | None = None) -> BaseRef:
    """What ``--base`` names. A path that exists is a path; ``owner/name`` whose first part is no folder
    here is a Hub repo id; anything else is a path that is not there, named in the error."""
    cwd = cwd or Path.cwd()
    path = Path(os.path.abspath(cwd / Path(given).expanduser()))
    if path.is_dir():
        if (path / "config.json").is_file():
            return BaseRef("path", given, path)
        if (path / "adapter_config.json").is_file():
            raise UserError(f"{given}: a PEFT adapter, not a base model: give it as --adapter, and the model it was "
                            "trained on as --base")
        raise UserError(f"{given}: not a Hugging Face model folder (it has no config.json); give the folder "
                        "save_pretrained() wrote, a .gguf file, or a Hub repo id such as owner/name")
    if path.is_file():
        from modelkit.formats.gguf import is_gguf

        if not is_gguf(path):
            raise UserError(f"{given}: not a GGUF file; give a .gguf file, a Hugging Face model folder, or a Hub "
                            "repo id such as owner/name")
        return BaseRef("gguf", given, path)
    first = given.split("/", 1)[0]
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", given) and not (cwd / first).exists():
        return BaseRef("repo", given)
    raise UserError(f"{given}: no such file or folder (give a Hugging Face model folder, a .gguf file, or a Hub "
                    "repo id such as owner/name)")


def check_adapter(given: str, cwd: Path | None = None) -> AdapterRef:
    """The PEFT adapter folder ``--adapter`` names (for a pattern, its newest complete checkpoint); a
    :class:`UserError` saying what it is instead, before anything reads it as one."""
    path = Path(os.path.abspath((cwd or Path.cwd()) / Path(given).expanduser()))
    if is_pattern(given):
        newest = newest_complete(path)
        if newest is None:
            raise UserError(f"{given}: no complete PEFT checkpoint matches it (a folder holding adapter_config.json "
                            "and adapter_model.safetensors, completely written)")
        return AdapterRef(given, newest)
    if not path.exists():
        raise UserError(f"{given}: no such folder (give a PEFT LoRA folder, such as ./lora/checkpoint-500)")
    if not (path / "adapter_config.json").is_file():
        model = " (it holds a model's config.json: is it the base?)" if (path / "config.json").is_file() else ""
        raise UserError(f"{given}: not a PEFT LoRA folder: it has no adapter_config.json{model}; give the folder "
                        "save_pretrained() wrote, such as ./lora/checkpoint-500")
    config = read_json_object(path / "adapter_config.json", f"{given}/adapter_config.json")
    if "peft_type" not in config and "target_modules" not in config:
        raise UserError(f"{given}/adapter_config.json: not a PEFT adapter's config (no peft_type, no target_modules)")
    if not any((path / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
        raise UserError(f"{given}: not a PEFT LoRA folder: it has no adapter_model.safetensors")
    if not is_complete(path):
        raise UserError(f"{given}: its weights are still being written (shorter than their header says); "
                        "run init again when the checkpoint is complete")
    return AdapterRef(given, path)


def claimed_base(adapter: AdapterRef) -> str | None:
    """The base the adapter's ``adapter_config.json`` names (``base_model_name_or_path``), if any."""
    try:
        name = json.loads((adapter.folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = name.get("base_model_name_or_path") if isinstance(name, dict) else None
    return value if isinstance(value, str) and value else None


def missing_base(adapters: list[str]) -> str:
    """The one line that says which flag to give when ``--base`` is missing and nobody can be asked."""
    hint = ""
    if adapters:
        try:
            claimed = claimed_base(check_adapter(adapters[0]))
        except UserError:
            claimed = None
        hint = f"; the adapter's adapter_config.json names '{claimed}'" if claimed else ""
    return (f"no base model given: pass --base REPO|PATH (a Hub repo id such as owner/name, a Hugging Face model "
            f"folder or a .gguf file){hint}; on a terminal, `modelkit init` asks")


def check_quants(values: list[str]) -> list[str]:
    """``--quant`` values as the spec will hold them (``none``: ship the full-precision GGUF);
    a :class:`UserError` naming the flag, with the spec's own message and its closest type."""
    from pydantic import ValidationError

    from modelkit.spec.model import Quantize

    types = [t for v in values for t in re.split(r"[\s,]+", v) if t]
    if [t.lower() for t in types] == ["none"]:
        return []
    try:
        return list(Quantize.model_validate({"types": types}).types)
    except ValidationError as e:
        raise UserError(f"--quant: {_first_problem(e)}") from None


def check_name(name: str) -> str:
    """``--name`` if the spec accepts it as the project's (and Ollama's model) name."""
    from pydantic import ValidationError

    from modelkit.spec.model import Spec

    try:
        Spec.model_validate({"name": name, "base": {"repo": "owner/name"}})
    except ValidationError as e:
        raise UserError(f"--name: {_first_problem(e)}") from None
    return name


def _first_problem(error: Any) -> str:
    return re.sub(r"^(Value error|Assertion failed), ", "", str(error.errors()[0]["msg"]))


# -- names ----------------------------------------------------------------------------------------

def slug(text: str) -> str | None:
    """``text`` as a name the spec and Ollama accept (lowercase letters, digits, '.', '_', '-'), or None."""
    made = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9._-]+", "-", text.lower())).strip("-._")[:64].rstrip("-._")
    return made or None


def meaningful_name(path: Path, levels: int = 3, below: Path | None = None) -> str | None:
    """The first folder name, going up from ``path`` (no higher than inside ``below``), that says what
    the model is: ``./support/lora/checkpoint-500`` is "support"; a Hub cache snapshot is its repo's name."""
    found = _naming_folder(path, levels, below)
    return found[0] if found else None


def _naming_folder(path: Path, levels: int, below: Path | None = None) -> tuple[str, Path] | None:
    """(name, the folder it comes from) for :func:`meaningful_name`."""
    for folder in [path, *path.parents][:levels]:
        if below is not None and (folder == below or folder in below.parents):
            return None
        if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
            name = slug(folder.parent.parent.name.split("--")[-1])
            return (name, folder) if name else None
        plain = folder.stem if folder.suffix == ".gguf" else folder.name
        name = slug(re.sub(r"(?i)[-._](i?q\d\w*|f16|bf16|f32)$", "", plain))
        if name and not _GENERIC.match(name):
            return name, folder
    return None


def base_name(base: BaseRef) -> str | None:
    """The name a base gives a project: a repo's own name, a folder's or a GGUF's (without its type)."""
    if base.kind == "repo":
        return slug(base.given.split("/")[-1])
    assert base.path is not None
    return meaningful_name(base.path)


def default_name(base: BaseRef, adapters: list[AdapterRef]) -> tuple[str, str]:
    """(name, where it came from): the adapter's folder names a fine-tune better than its base does."""
    for adapter in adapters[:1]:
        found = _naming_folder(adapter.folder, 3)
        if found:
            name, folder = found
            return name, ("from the adapter's folder" if folder == adapter.folder
                          else f"from the folder {folder.name} that holds the adapter")
    named = base_name(base)
    return (named, "from the base") if named else ("model", "nothing better found in the base's name")


def adapter_names(adapters: list[AdapterRef], project: Path) -> list[str]:
    """Each adapter's short name (``adapter.<name>.gguf``): from its own folders inside the ``project``
    folder (``./lora`` is "lora", ``./out/support/checkpoint-500`` "support"), unique within the spec."""
    names: list[str] = []
    for adapter in adapters:
        inside = meaningful_name(adapter.folder, below=project)
        name = inside or slug(adapter.folder.name if step_of(adapter.folder) is None else adapter.folder.parent.name)
        name = name or "lora"
        candidate, n = name, 2
        while candidate in names:
            candidate, n = f"{name}-{n}", n + 1
        names.append(candidate)
    return names


def guess_base(cwd: Path) -> str | None:
    """The one Hugging Face model folder here (a default for the question), if there is exactly one."""
    found = [p for p in sorted(cwd.iterdir()) if p.is_dir() and (p / "config.json").is_file()
             and not (p / "adapter_config.json").is_file()]
    return f"./{found[0].name}" if len(found) == 1 else None


def guess_adapter(cwd: Path) -> str | None:
    """The one PEFT adapter folder here, else the newest complete checkpoint one level down."""
    found = [p for p in sorted(cwd.iterdir()) if p.is_dir() and (p / "adapter_config.json").is_file()]
    if len(found) == 1:
        return f"./{found[0].name}"
    newest = newest_complete(cwd / "*" / "checkpoint-*") if not found else None
    return f"./{newest.relative_to(cwd).as_posix()}" if newest is not None and step_of(newest) is not None else None


# -- reading the base -----------------------------------------------------------------------------

def read_base(base: BaseRef, config: Path | None = None) -> BaseFacts:
    """What the base says of itself: a folder's config.json and tokenizer, a GGUF's header, a Hub
    repo's small files (or, where the Hub cannot be reached, why nothing was read)."""
    if base.kind == "repo":
        return _read_repo(base.given)
    assert base.path is not None
    if base.kind == "gguf":
        return _read_gguf(base.path, config)
    return _read_folder(base.path)


def _read_folder(folder: Path) -> BaseFacts:
    from modelkit.chat_template.source import find_jinja

    config = read_json_object(folder / "config.json", f"{folder}/config.json")
    text = {**config, **(config.get("text_config") or {})}
    architectures = config.get("architectures") or []
    architecture = str(architectures[0]) if architectures else config.get("model_type")
    dtype = text.get("torch_dtype") or text.get("dtype")
    dtype = str(dtype).removeprefix("torch.") if dtype else None
    dtype_from = f"config.json's {'torch_dtype' if text.get('torch_dtype') else 'dtype'}"
    if dtype not in LOSSLESS:
        dtype, dtype_from = _weights_dtype(folder), "the weights' type (safetensors header)"
    found = find_jinja(folder)
    return BaseFacts(folder=folder, architecture=str(architecture) if architecture else None, dtype=dtype,
                     dtype_from=dtype_from, template=found[1] if found else None, vision=vision_tower(config))


def _weights_dtype(folder: Path) -> str | None:
    """The float type of a folder's weight matrices, from its first safetensors header (norms, which
    llama.cpp keeps in F32 anyway, are not counted); None when none says, or they disagree."""
    from modelkit.formats.safetensors import NotSafetensors, read_header

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    try:
        tensors = read_header(files[0]).tensors
    except (OSError, NotSafetensors):
        return None
    kinds = {info.get("dtype") for info in tensors.values() if len(info["shape"]) >= 2}
    return kinds.pop() if len(kinds) == 1 and kinds <= set(LOSSLESS) else None


def _read_repo(repo: str) -> BaseFacts:
    """A Hub repo's config.json and chat template, fetched as the build's planning fetches them."""
    from modelkit import hub

    try:
        source = hub.resolve(repo, "main", "model")
        folder = hub.fetch_small(source, HUB_FILES)
    except Unreachable as e:
        return BaseFacts(unread=str(e))
    except UserError as e:
        if os.environ.get("HF_HUB_OFFLINE", "").lower() not in ("1", "true", "yes", "on"):
            raise  # no such repo, a gated one, no such revision: the spec would not build
        return BaseFacts(unread=str(e))
    if not (folder / "config.json").is_file():
        raise UserError(f"{repo}: the repository has no config.json: not a Hugging Face model modelkit can convert")
    return _read_folder(folder)


def _read_gguf(path: Path, config: Path | None) -> BaseFacts:
    from modelkit.formats.gguf import read_metadata
    from modelkit.formats.quant_types import file_type_name

    meta = read_metadata(path)
    if meta.get("general.type") == "mmproj" or meta.get("general.architecture") == "clip":
        raise UserError(f"{path.name}: a projector (the vision half of a model), not a model: give the model's GGUF "
                        "as --base; a projector beside it ships with it")
    if meta.get("general.type") == "adapter":
        raise UserError(f"{path.name}: a LoRA adapter GGUF, not a model: give the model as --base and the PEFT "
                        "folder the adapter came from as --adapter")
    file_type = meta.get("general.file_type")
    template = meta.get("tokenizer.chat_template")
    facts = BaseFacts(folder=config, architecture=meta.get("general.architecture"),
                      gguf_type=file_type_name(file_type) if isinstance(file_type, int) else None,
                      template=f"{path.name}: tokenizer.chat_template" if isinstance(template, str)
                      and template.strip() else None,
                      mmproj=sorted(p for p in path.parent.glob("mmproj*.gguf") if p.is_file()))
    return facts


def gguf_config(base: BaseRef, config: Path | None, adapters: list[str]) -> Path | None:
    """The folder holding a GGUF base's config.json, which converting a LoRA reads: ``--config``, else
    the GGUF's own folder when it holds one; a :class:`UserError` when adapters need it and there is none."""
    if base.kind != "gguf" or base.path is None:
        if config is not None:
            raise UserError("--config is for a .gguf base (a repo or folder base has its own config.json)")
        return None
    if config is not None:
        folder = Path(os.path.abspath(config.expanduser()))
        if not (folder / "config.json").is_file():
            raise UserError(f"--config {config}: it has no config.json (give the folder of the base model's "
                            "Hugging Face files)")
        return folder
    beside = base.path.parent
    if (beside / "config.json").is_file() and not (beside / "adapter_config.json").is_file():
        return beside
    if adapters:
        raise UserError(f"{base.given}: a GGUF base, and converting a LoRA reads the base model's config.json: give "
                        "--config FOLDER (a folder holding it, from the base's Hugging Face repo), or the Hugging "
                        "Face model folder as --base")
    return None


def default_quants(base: BaseRef, facts: BaseFacts | None = None) -> list[str]:
    """Q4_K_M, unless the base is a GGUF that is already quantized: that one ships as it is."""
    if base.kind == "gguf" and base.path is not None:
        facts = facts or _read_gguf(base.path, None)
        if facts.gguf_type is not None and facts.gguf_type not in FULL_PRECISION:
            return []
    return list(DEFAULT_QUANTS)


# -- the choices ----------------------------------------------------------------------------------

def start(request: Request) -> Started:
    """The model.toml ``request`` asks for, every choice read from the base and the adapters, each
    said in one line; validated (the spec's pydantic models, then its file checks) before it is returned."""
    if request.base is None:
        raise UserError(missing_base(request.adapters))
    base = parse_base(request.base)
    adapters = [check_adapter(a) for a in request.adapters]
    name = check_name(request.name) if request.name else None
    quants = check_quants(request.quants) if request.quants is not None else None
    config = gguf_config(base, request.config, request.adapters)
    facts = read_base(base, config)
    where = Path(os.path.abspath(request.output)).parent
    chosen = {"base": _base_choice(base, facts, where, config)}
    chosen["template"] = _template_choice(facts, adapters)
    if base.kind != "gguf":
        chosen["vision"] = _vision_choice(facts)
        chosen["convert"] = _convert_choice(facts)
    for i, (adapter, short) in enumerate(zip(adapters, adapter_names(adapters, where))):
        chosen[f"adapter{i}"] = _adapter_choice(adapter, short, facts, where)
    why = "as asked"
    if name is None:
        name, why = default_name(base, adapters)
    if len(adapters) > 1:
        why += f"; each adapter is an Ollama model of its own, {name}-<adapter>"
    chosen["name"] = Choice((_key("name", name, "the project; the Ollama model name"),), f"name: {name} ({why})")
    chosen["quantize"] = _quantize_choice(base, facts, quants)
    text = render(chosen, request.output)
    check_text(text, request.output)
    order = ["base", "template", "vision", "convert", *[k for k in chosen if k.startswith("adapter")], "name",
             "quantize"]
    return Started(text, [chosen[k].said for k in order if k in chosen])


def _base_choice(base: BaseRef, facts: BaseFacts, where: Path, config: Path | None) -> Choice:
    arch = facts.architecture or "architecture unknown"
    if base.kind == "repo":
        lines = (_key("repo", base.given, "a Hugging Face repo id"),
                 _key("revision", "main", "modelkit.lock pins it to the commit it resolves to"))
        if facts.unread:
            return Choice(lines, f"base: {base.given}, a Hub repo; could not read its config.json and chat template "
                                 f"({facts.unread}); wrote the defaults, which need nothing from it")
        return Choice(lines, f"base: {base.given}, a Hub repo: {arch} (read its config.json and tokenizer_config.json)")
    assert base.path is not None
    if base.kind == "path":
        lines = (_key("path", _relative(base.path, where), f"{arch}, a Hugging Face model folder"),
                 _comment('repo = "owner/name"', "or a Hugging Face repo id"))
        return Choice(lines, f"base: {base.given}, a Hugging Face model folder: {arch}")
    kind = facts.gguf_type or "type unknown"
    keys = [_key("gguf", _relative(base.path, where), f"{arch}, {kind}: a ready GGUF, not converted")]
    if config is not None:
        keys.append(_key("config", _relative(config, where), "the folder of its config.json (the LoRA conversion "
                                                               "reads it)"))
    said = f"base: {base.given}, a ready GGUF: {arch}, {kind}"
    if len(facts.mmproj) > 1:
        keys.append(_key("mmproj", _relative(facts.mmproj[0], where), "its projector: one of several beside it"))
        said += (f"; sees images: chose the projector {facts.mmproj[0].name} of {len(facts.mmproj)} beside it "
                 "(change [base] mmproj if another is this model's)")
    elif facts.mmproj:
        said += f"; sees images: its projector {facts.mmproj[0].name} beside it ships with every variant"
    return Choice(tuple(keys), said)


def _template_choice(facts: BaseFacts, adapters: list[AdapterRef]) -> Choice:
    """``inherit`` where there is a chat template to inherit (the adapter's first); else ``{{ .Prompt }}``,
    said loudly, as inheriting nothing would stop the build."""
    from modelkit.chat_template.source import find_jinja

    found = next((f[1] for a in adapters if (f := find_jinja(a.folder)) is not None), None) or facts.template
    if facts.unread and found is None:
        return Choice((_comment('template = "inherit"', "the default: the model's own chat template, translated "
                                                        "and proven"),),
                      'chat template: not checked (the Hub could not be read); template = "inherit" (the default) '
                      "translates the model's own; if the build says it has none, set [ollama] chat_template_file")
    if found is not None:
        return Choice((_comment('template = "inherit"', f"the default: the chat template in {found}, translated "
                                                        "and proven"),),
                      f'chat template: {found}: template = "inherit" (the default) translates it for Ollama and '
                      "proves it")
    return Choice((_key("template", "{{ .Prompt }}", "the base has no chat template: prompts go in as they are"),
                   "# to chat, remove the line above and set chat_template_file to a Jinja chat template"),
                  'chat template: none in the base or adapter: wrote template = "{{ .Prompt }}" (plain completion); '
                  "to chat, set [ollama] chat_template_file to a Jinja chat template instead")


def _vision_choice(facts: BaseFacts) -> Choice:
    """A base with a vision tower ships its projector; where the toolchain cannot convert it, the text
    model alone, on purpose and said (the build would refuse to drop it in silence)."""
    if facts.unread:
        return Choice((), "images: not checked (the Hub could not be read); the build says whether it sees images")
    vision = facts.vision
    if vision is None:
        return Choice((), "images: no vision tower in config.json: text only")
    seen = f"{vision.architecture} sees images (a {vision.tower} vision tower)"
    lines = ("[vision]", _key("projector", "f16", "the projector GGUF's type: f32, f16, bf16 or q8_0"))
    known = _projectable(vision.architecture)
    if known is None:
        return Choice(lines, f'images: {seen}: [vision] projector = "f16"; could not check that llama.cpp converts '
                             "its projector (no toolchain yet: `modelkit toolchain install`)")
    if not known:
        lines = ("[vision]", _key("text_only", True, "this llama.cpp cannot convert its projector: text only"))
        return Choice(lines, f"images: {seen}, but this llama.cpp cannot convert its projector: wrote [vision] "
                             "text_only = true (the models will not see images)")
    return Choice(lines, f'images: {seen}: [vision] projector = "f16" ships with every variant')


def _projectable(architecture: str) -> bool | None:
    """Whether the toolchain in use converts this architecture's projector (None: no toolchain to ask)."""
    from modelkit.toolchain import find_toolchain

    toolchain = find_toolchain()
    return None if toolchain is None else architecture in toolchain.projectable()


def _convert_choice(facts: BaseFacts) -> Choice:
    """The outtype that keeps the weights as they are; ``auto`` (llama.cpp's highest-fidelity 16-bit
    type, from the weights themselves) where nothing says what they are."""
    outtype = LOSSLESS.get(facts.dtype or "")
    if outtype is None:
        why = "not checked (the Hub could not be read)" if facts.unread else "config.json names no weight type"
        line = _key("outtype", "auto", "llama.cpp picks the highest-fidelity 16-bit type from the weights")
        return Choice(("[convert]", line), f'convert: outtype = "auto": {why}; llama.cpp picks from the weights')
    extra = "; f16 would halve the full-precision GGUF at a small loss" if outtype == "f32" else ""
    line = _key("outtype", outtype, f"the weights are {facts.dtype}: converted without loss")
    return Choice(("[convert]", line), f'convert: outtype = "{outtype}": {facts.dtype_from} is {facts.dtype}, '
                                        f"converted without loss{extra}")


def _adapter_choice(adapter: AdapterRef, short: str, facts: BaseFacts, where: Path) -> Choice:
    """The adapter's entry, and how it will be merged (modelkit's own route check, from its files alone);
    an adapter made for another base is refused here, by the shapes in its header."""
    from modelkit.formats.peft import BaseFiles, check_adapter_fits_base, merge_route
    from modelkit.formats.safetensors import NotSafetensors, read_header

    weights = adapter.folder / "adapter_model.safetensors"
    try:
        shapes = read_header(weights).shapes if weights.is_file() else None
    except (OSError, NotSafetensors) as e:
        raise UserError(f"{adapter.given}: {e}") from None
    base_files: Callable[[], BaseFiles] = lambda: BaseFiles(facts.folder)
    route = merge_route(adapter.folder, shapes, base_files, adapter.given)
    if facts.folder is not None:
        check_adapter_fits_base(adapter.folder, facts.folder, adapter.given, rows=route.rows)
    path = _relative(Path(os.path.abspath(Path(adapter.given).expanduser())), where)
    hint = "the newest complete checkpoint" if is_pattern(adapter.given) else "a PEFT LoRA folder"
    lines = ("[[adapters]]", _key("name", short, "its GGUF is adapter.<name>.gguf"), _key("path", path, hint))
    how = "merged in PyTorch: " if route.pytorch else ""
    return Choice(lines, f"adapter: {adapter.given} as \"{short}\": {how}{route.reason}")


def _quantize_choice(base: BaseRef, facts: BaseFacts, quants: list[str] | None) -> Choice:
    if quants is None:
        quants = default_quants(base, facts)
        why = (f"the base is already {facts.gguf_type}: it ships as it is (quantizing it again loses twice)"
               if not quants else "the default; --quant TYPE to choose others")
    else:
        why = "as asked"
    comment = ("one GGUF and one Ollama tag each, e.g. [\"Q4_K_M\", \"Q8_0\"]" if quants
               else "none: the GGUF ships as it is; e.g. [\"Q4_K_M\"] makes a smaller one")
    types = f"types = [{', '.join(_toml(q) for q in quants)}]"
    lines = ("[quantize]", _commented(types, comment),
             _comment('imatrix = "./calibration.txt"', "your own text: an importance matrix (better small types, "
                                                        "and the IQ ones)"))
    return Choice(lines, f"quantize: {', '.join(quants) or 'none, the GGUF ships as it is'} ({why})")


# -- the text -------------------------------------------------------------------------------------

def _toml(value: object) -> str:
    """A TOML value: JSON's escapes are TOML's (ensure_ascii off: TOML has no surrogate pairs)."""
    return "true" if value is True else "false" if value is False else json.dumps(str(value), ensure_ascii=False)


def _key(key: str, value: object, comment: str) -> str:
    return _commented(f"{key} = {_toml(value)}", comment)


def _comment(setting: str, comment: str) -> str:
    return _commented(f"# {setting}", comment)


def _commented(line: str, comment: str) -> str:
    """``line`` with ``comment`` after it, in the comments' column (or two spaces after a longer line)."""
    return f"{line.ljust(COMMENT_COLUMN - 1)}{'  ' if len(line) >= COMMENT_COLUMN - 1 else ''}# {comment}"


def _relative(path: Path, where: Path) -> str:
    """``path`` as the spec writes it: ``./…`` inside the project's folder (the project moves with it),
    else absolute (a relative path out of it would break when either moves)."""
    try:
        return "./" + path.relative_to(where).as_posix() if path != where else "."
    except ValueError:
        return str(path)


def schema_directive(output: Path) -> str | None:
    """Taplo's ``#:schema`` line for a spec inside modelkit's own checkout (relative, like the examples');
    elsewhere None: a wheel carries no schema, and the schema's ``$id`` URL is not known to be served."""
    if not SCHEMA.is_file():
        return None
    folder = Path(os.path.abspath(output)).parent.resolve()
    try:
        folder.relative_to(PACKAGE_ROOT)
    except ValueError:
        return None
    relative = os.path.relpath(SCHEMA, folder)
    return f"#:schema {relative if relative.startswith('..') else './' + relative}"


def render(chosen: dict[str, Choice], output: Path) -> str:
    """The commented model.toml: what was chosen, and the keys a user changes next, commented out."""
    directive = schema_directive(output)
    head = [directive] if directive else []
    head += [f"# Written by `modelkit init`. Build it with:  modelkit build {output}",
             "# Every key is in README's \"model.toml reference\"; the commented ones are common next steps."]
    if directive is None:
        head += ["# Completion in your editor: `modelkit schema -o model.schema.json`, then put",
                 "# `#:schema ./model.schema.json` on the first line."]
    parts = [head, list(chosen["name"].lines), ["[base]", *chosen["base"].lines]]
    parts += [list(chosen[k].lines) for k in ("convert", "vision") if k in chosen and chosen[k].lines]
    parts += [list(c.lines) for k, c in chosen.items() if k.startswith("adapter")]
    parts.append(list(chosen["quantize"].lines))
    parts.append(["# [evaluate]", _comment('text = "./eval.txt"', "held-out text: each variant's perplexity and KL "
                                                                 "divergence against full precision")])
    parts.append(["[ollama]", *chosen["template"].lines, '# system = "You are a helpful assistant."',
                  "# parameters = { temperature = 0.7, num_ctx = 4096 }"])
    return "\n\n".join("\n".join(part) for part in parts) + "\n"


def check_text(text: str, output: Path) -> None:
    """The spec's own validation (its pydantic models, then the checks every build makes of its local
    files) of ``text`` as if it were ``output``: what is not valid is not written."""
    from modelkit.spec.load import LoadedSpec, check_local_files
    from modelkit.spec.validate import validate

    try:
        spec = validate(text, str(output))
        check_local_files(LoadedSpec(spec, Path(os.path.abspath(output)), text))
    except SpecError as e:
        raise SpecError([f"{line} (nothing was written)" for line in e.lines]) from None


def write_spec(output: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``output``: created only if it is not there (checked again at the moment of
    writing), or replaced whole with ``force``."""
    from modelkit.core.files import replace_whole

    output.parent.mkdir(parents=True, exist_ok=True)
    if force:
        if not replace_whole(output, text):
            raise UserError(f"{output}: cannot write it (is its folder writable?)")
        return
    try:
        with open(output, "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        refuse_existing(output, force)
    except OSError as e:
        raise UserError(f"{output}: cannot write it ({e.strerror or e})") from None
