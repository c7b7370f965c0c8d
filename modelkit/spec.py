"""The ``model.toml`` spec: what a user asks modelkit to build.

The pydantic models below are the single source of truth: they validate the file, they generate
``schemas/model.schema.json`` for editors, and their field descriptions are the reference in the
README. :func:`load_spec` turns every problem into one line that names the file, the line and the
field, and says what to do, because a build tool's first job is to be easy to correct.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelkit import ollama_names, ollama_params
from modelkit.checkpoints import is_complete, is_pattern, newest_complete
from modelkit.errors import UserError
from modelkit.quant_types import QUANT_TYPES, canonical
from modelkit.toml_lines import line_of, value_lines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMA_URL = "https://modelkit.dev/schemas/model.schema.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class SpecError(UserError):
    """One or more problems in a spec file, one line each."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Base(_Strict):
    """The base model: exactly one of ``repo``, ``path`` or ``gguf``."""

    repo: str | None = Field(None, description="Hugging Face repository id, e.g. 'unsloth/Llama-3.1-8B-Instruct'.")
    revision: str = Field("main", description="Branch, tag or commit of `repo`; `modelkit.lock` pins it to a commit.")
    path: Path | None = Field(None, description="A local folder in Hugging Face format (config.json, *.safetensors, tokenizer).")
    gguf: Path | None = Field(None, description="A ready GGUF file: no conversion.")
    config: Path | None = Field(
        None, description="With `gguf` and adapters: a folder holding the base model's Hugging Face config.json, "
                          "which the LoRA conversion needs.")

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not _REPO.match(value):
            raise ValueError(f"'{value}' is not a Hugging Face repository id (expected 'owner/name')")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Base:
        given = [k for k in ("repo", "path", "gguf") if getattr(self, k) is not None]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of repo, path or gguf{found}")
        if self.config is not None and self.gguf is None:
            raise ValueError("`config` is only for a `gguf` base; a repo or path already has its config.json")
        return self


class Convert(_Strict):
    """How the base model becomes a GGUF (llama.cpp's convert_hf_to_gguf.py)."""

    outtype: Literal["f32", "f16", "bf16", "q8_0", "auto"] = Field(
        "f16", description="Tensor type of the converted GGUF; quantizations are made from it.")


class Adapter(_Strict):
    """A PEFT LoRA adapter trained on the base model."""

    name: str = Field(description="Short name: the adapter's GGUF is `adapter.<name>.gguf`.")
    path: Path | None = Field(None, description="A PEFT adapter folder (adapter_config.json + "
                                                "adapter_model.safetensors), or a pattern such as "
                                                "'./out/checkpoint-*': the newest complete checkpoint.")
    repo: str | None = Field(None, description="Or a Hugging Face repository holding the adapter.")
    revision: str = Field("main", description="Branch, tag or commit of `repo`.")
    outtype: Literal["f32", "f16", "bf16", "q8_0"] = Field("f16", description="Tensor type of the adapter GGUF.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"'{value}' is not a valid name: use lowercase letters, digits, '.', '_' and '-'")
        return value

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        return Base._repo(value)

    @model_validator(mode="after")
    def _one_source(self) -> Adapter:
        if (self.path is None) == (self.repo is None):
            raise ValueError("give exactly one of path or repo")
        return self


class Quantize(_Strict):
    """Which quantized GGUFs to make (llama.cpp's llama-quantize)."""

    types: list[str] = Field(
        default_factory=lambda: ["Q4_K_M"],
        description="llama.cpp quantization types, e.g. ['Q4_K_M', 'Q8_0']; each becomes its own GGUF and "
                    "Ollama tag. Empty: use the converted GGUF as it is.")

    @field_validator("types")
    @classmethod
    def _types(cls, values: list[str]) -> list[str]:
        out: list[str] = []
        for i, value in enumerate(values):
            try:
                name = canonical(value)
            except KeyError:
                hint = _closest(value.upper(), list(QUANT_TYPES), _POPULAR_QUANTS)
                did_you_mean = f" (did you mean '{hint}'?)" if hint else ""
                raise _ItemError(i, f"'{value}' is not a llama.cpp quantization type{did_you_mean}") from None
            if QUANT_TYPES[name].needs_imatrix:
                raise _ItemError(i, f"'{name}' needs an importance matrix, which modelkit does not compute yet; "
                                    "use a K-quant such as 'Q4_K_M' or 'Q3_K_M'")
            if name in out:
                raise _ItemError(i, f"'{value}' is listed twice")
            out.append(name)
        return out


_POPULAR_QUANTS = ("Q4_K_M", "Q5_K_M", "Q8_0", "Q6_K", "Q4_0", "F16", "BF16", "Q3_K_M", "Q2_K")


def _closest(word: str, choices: list[str], preferred: tuple[str, ...] = ()) -> str | None:
    """The closest choice to ``word``; ties go to the ``preferred`` (more commonly meant) ones."""
    candidates = difflib.get_close_matches(word, choices, n=5, cutoff=0.6)
    if not candidates:
        return None
    score = {c: difflib.SequenceMatcher(None, word, c).ratio() for c in candidates}
    best = max(score.values())
    top = [c for c in candidates if score[c] == best]
    return next((p for p in preferred if p in top), top[0])


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class Ollama(_Strict):
    """The Ollama models: one per quantization type, named `model:tag`."""

    model: str | None = Field(None, description="Ollama model name; default: the spec's `name`.")
    tag: str = Field("{quant}", description="Tag of each variant; `{quant}` is the lowercase quantization type, "
                                            "`{step}` the training step of a checkpoint-pattern adapter.")
    template: str = Field(
        "inherit", description="'inherit' (default): translate the base model's own chat template and prove it; "
                               "anything else is Ollama TEMPLATE text used as is.")
    template_file: Path | None = Field(None, description="A file holding the Ollama TEMPLATE text.")
    system: str | None = Field(None, description="SYSTEM prompt.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="PARAMETER values (Ollama options).")
    messages: list[Message] = Field(default_factory=list, description="MESSAGE history baked into the model.")
    license: str | None = Field(None, description="LICENSE text.")
    register_with: Literal["api", "cli", "off"] = Field(
        "api", alias="register", description="How variants are registered: 'api' (Ollama's HTTP API through the official client), "
                           "'cli' (`ollama create -f`), or 'off'.")
    host: str | None = Field(None, description="The Ollama server; default $OLLAMA_HOST, else http://127.0.0.1:11434.")
    latest: str | None = Field(
        None, description="The quantization type whose variant is also tagged `latest`, so `ollama run <model>` "
                          "uses it; default: the first of quantize.types; '' for none.")
    lora: Literal["merge", "adapter"] = Field(
        "merge", description="How adapters reach Ollama: 'merge' (default) merges each LoRA into the weights "
                             "before quantizing, which every Ollama runs; 'adapter' ships it as an ADAPTER "
                             "beside the quantized base, which Ollama 0.34 and later refuse.")

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, item in value.items():
            try:
                out[name] = ollama_params.check_parameter(name, item)
            except ValueError as e:
                raise _ItemError(name, str(e)) from None
        return out

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is not None:
            ollama_names.check_model_name(value)
            if ollama_names.parse_model_name(value).tag:
                raise ValueError(f"'{value}' has a tag: tags come from `tag` (default: the quantization type)")
        return value

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str) -> str:
        try:
            example = value.format(quant="q4_k_m", step=1000)
        except (KeyError, IndexError, ValueError):
            raise ValueError("a tag may only use the placeholders {quant} and {step}") from None
        ollama_names.check_tag(example)
        return value

    @model_validator(mode="after")
    def _template(self) -> Ollama:
        if self.template_file is not None and self.template != "inherit":
            raise ValueError("give template or template_file, not both")
        if self.template != "inherit" and "{{" not in self.template:
            raise ValueError("template must be 'inherit' or Ollama template text ({{ ... }}); "
                             "to read it from a file, use template_file")
        return self


class Toolchain(_Strict):
    """Which llama.cpp to use."""

    llama_cpp: Path | None = Field(
        None, description="A llama.cpp checkout with its binaries built (build/bin); default: the managed "
                          "one that `modelkit toolchain install` builds (or $MODELKIT_LLAMA_CPP).")


class Spec(_Strict):
    """A modelkit project: a base model, LoRA adapters, quantizations and the Ollama models to make."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="modelkit model.toml")

    name: str = Field(description="The project's name; the Ollama model name by default.")
    build_dir: Path = Field(Path("build"), description="Where artifacts go, relative to the spec file.")
    base: Base
    convert: Convert = Field(default_factory=Convert)
    adapters: list[Adapter] = Field(default_factory=list)
    quantize: Quantize = Field(default_factory=Quantize)
    ollama: Ollama = Field(default_factory=Ollama)
    toolchain: Toolchain = Field(default_factory=Toolchain)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        Adapter._name(value)
        ollama_names.check_model_name(value)
        return value

    @model_validator(mode="after")
    def _tags(self) -> Spec:
        tag = self.ollama.tag
        if len(self.quantize.types) > 1 and "{quant}" not in tag:
            raise _ItemError("tag", f"'{tag}' would give every quantization the same tag: add {{quant}}",
                             parent="ollama")
        if "{step}" in tag and not any(a.path is not None and is_pattern(a.path) for a in self.adapters):
            raise _ItemError("tag", "{step} needs an adapter whose path is a checkpoint pattern "
                                    "(e.g. './out/checkpoint-*')", parent="ollama")
        return self

    @model_validator(mode="after")
    def _latest(self) -> Spec:
        latest = self.ollama.latest
        if latest:
            try:
                name = canonical(latest)
            except KeyError:
                name = latest
            if name not in self.quantize.types:
                raise _ItemError("latest", f"'{latest}' is not one of quantize.types ({', '.join(self.quantize.types)})",
                                 parent="ollama")
        return self

    @model_validator(mode="after")
    def _mergeable(self) -> Spec:
        if self.ollama.lora == "merge":
            for i, adapter in enumerate(self.adapters):
                if adapter.outtype == "q8_0":
                    raise _ItemError(i, "a q8_0 adapter cannot be merged (llama-export-lora needs f16 or f32): "
                                        "use outtype = 'f16', or set ollama.lora = 'adapter'",
                                     field="outtype", parent="adapters")
        return self

    @field_validator("adapters")
    @classmethod
    def _unique(cls, adapters: list[Adapter]) -> list[Adapter]:
        seen: set[str] = set()
        for i, adapter in enumerate(adapters):
            if adapter.name in seen:
                raise _ItemError(i, f"adapter name '{adapter.name}' is used twice", field="name")
            seen.add(adapter.name)
        return adapters

    @property
    def ollama_model(self) -> str:
        return self.ollama.model or self.name


class _ItemError(ValueError):
    """A validation error that belongs to one element of a list or table (so its line can be found)."""

    def __init__(self, index: int | str, message: str, field: str | None = None, parent: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.parent = parent


# ---------------------------------------------------------------------------------------------


class LoadedSpec:
    """A validated spec and where it came from; paths in it are resolved against its folder."""

    def __init__(self, spec: Spec, path: Path, text: str) -> None:
        self.spec = spec
        self.path = path
        self.root = path.parent
        self.text = text
        self._lines = value_lines(text)
        self._adapter_folders: dict[int, Path | None] = {}

    def resolve(self, p: Path) -> Path:
        return (self.root / p.expanduser()).resolve()

    def adapter_folder(self, index: int) -> Path | None:
        """The folder of adapter ``index``: its path, or the newest complete checkpoint its
        pattern matches (None if none is complete yet). Resolved once per loaded spec."""
        if index not in self._adapter_folders:
            path = self.spec.adapters[index].path
            assert path is not None
            pattern = self.root / path.expanduser()
            self._adapter_folders[index] = newest_complete(pattern) if is_pattern(path) else self.resolve(path)
        return self._adapter_folders[index]

    @property
    def build_dir(self) -> Path:
        return self.resolve(self.spec.build_dir)

    @property
    def state_dir(self) -> Path:
        return self.root / ".modelkit"

    def where(self, *loc: str | int) -> str:
        """``file:line: field`` for error messages about a field of this spec."""
        line = line_of(self._lines, loc)
        return f"{_display(self.path)}:{line or 1}: {_field_name(loc)}"

    def error(self, loc: tuple[str | int, ...], message: str) -> SpecError:
        return SpecError([f"{self.where(*loc)}: {message}"])


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _field_name(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def find_spec(path: Path | None) -> Path:
    """The spec file a command means: a file, a folder holding model.toml, or ./model.toml."""
    path = path or Path("model.toml")
    if path.is_dir():
        path = path / "model.toml"
    if not path.is_file():
        raise UserError(f"{path}: no such spec file (write a model.toml, or pass its path)")
    return path.resolve()


def load_spec(path: Path | None = None, check_files: bool = True) -> LoadedSpec:
    """Read, parse and validate a spec; raise :class:`SpecError` with one line per problem."""
    path = find_spec(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{_display(path)}: cannot read the spec: {e}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column \d+\)", str(e))
        line = m.group(1) if m else "1"
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise SpecError([f"{_display(path)}:{line}: invalid TOML: {message}"]) from None
    lines = value_lines(text)
    try:
        spec = Spec.model_validate(data)
    except ValidationError as e:
        errors = sorted((_format_error(path, lines, err) for err in e.errors()), key=_line_number)
        raise SpecError(errors) from None
    loaded = LoadedSpec(spec, path, text)
    if check_files:
        check_local_files(loaded)
    return loaded


def check_local_files(loaded: LoadedSpec) -> None:
    """Check the local inputs exist and look like what they claim to be, before any work starts."""
    spec, problems = loaded.spec, []
    base = spec.base
    if base.path is not None:
        folder = loaded.resolve(base.path)
        if not folder.is_dir():
            problems.append(f"{loaded.where('base', 'path')}: folder {folder} does not exist")
        elif not (folder / "config.json").is_file():
            problems.append(f"{loaded.where('base', 'path')}: {folder} has no config.json; "
                            "point it at a Hugging Face model folder")
    if base.gguf is not None:
        file = loaded.resolve(base.gguf)
        if not file.is_file():
            problems.append(f"{loaded.where('base', 'gguf')}: file {file} does not exist")
        elif file.open("rb").read(4) != b"GGUF":
            problems.append(f"{loaded.where('base', 'gguf')}: {file} is not a GGUF file")
    if base.config is not None and not (loaded.resolve(base.config) / "config.json").is_file():
        problems.append(f"{loaded.where('base', 'config')}: {loaded.resolve(base.config)} has no config.json")
    if base.gguf is not None and base.config is None and spec.adapters:
        problems.append(f"{loaded.where('base', 'gguf')}: converting LoRA adapters needs the base model's "
                        "config.json: set base.config to a folder that holds it")
    for i, adapter in enumerate(spec.adapters):
        if adapter.path is None:
            continue
        where = loaded.where("adapters", i, "path")
        if is_pattern(adapter.path):
            if loaded.adapter_folder(i) is None:
                problems.append(f"{where}: no complete checkpoint matches {adapter.path} yet "
                                "(checkpoints still being written are skipped)")
            continue
        folder = loaded.resolve(adapter.path)
        if not folder.is_dir():
            problems.append(f"{where}: folder {folder} does not exist")
        elif not (folder / "adapter_config.json").is_file():
            problems.append(f"{where}: {folder} has no adapter_config.json; point it at a PEFT adapter folder "
                            "(the one save_pretrained wrote)")
        elif not any((folder / f).is_file() for f in ("adapter_model.safetensors", "adapter_model.bin")):
            problems.append(f"{where}: {folder} has no adapter_model.safetensors")
        elif not is_complete(folder):
            problems.append(f"{where}: {folder} is still being written (its weights are shorter than their "
                            "header says); build again when it is complete")
    if spec.ollama.template_file is not None and not loaded.resolve(spec.ollama.template_file).is_file():
        problems.append(f"{loaded.where('ollama', 'template_file')}: file "
                        f"{loaded.resolve(spec.ollama.template_file)} does not exist")
    if problems:
        raise SpecError(problems)


def _format_error(path: Path, lines: dict, err: Any) -> str:
    loc = tuple(err["loc"])
    kind = err["type"]
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _ItemError):
        loc = loc + ((ctx_error.parent,) if ctx_error.parent else ()) + (ctx_error.index,) \
            + ((ctx_error.field,) if ctx_error.field else ())
        message = str(ctx_error)
    elif kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_at(loc[:-1])
        hint = _closest(key, allowed)
        if loc[:-1] == ("ollama",) and (key in ollama_params.OPTIONS or _closest(key, list(ollama_params.OPTIONS))):
            hint = f"parameters.{key if key in ollama_params.OPTIONS else _closest(key, list(ollama_params.OPTIONS))}"
        message = f"unknown key '{key}'" + (f" (did you mean '{hint}'?)" if hint else "")
        if not hint and allowed:
            message += f"; allowed here: {', '.join(allowed)}"
    elif kind == "missing":
        message = "required, but missing"
    elif kind == "literal_error":
        expected = err["ctx"]["expected"]
        message = f"{json.dumps(err['input'], default=str)} is not one of {expected}"
    else:
        message = re.sub(r"^(Value error|Assertion failed), ", "", err["msg"])
    line = line_of(lines, loc) or 1
    return f"{_display(path)}:{line}: {_field_name(loc)}: {message}"


def _line_number(message: str) -> int:
    m = re.match(r"^[^:]*:(\d+):", message)
    return int(m.group(1)) if m else 0


def _fields_at(loc: tuple[str | int, ...]) -> list[str]:
    """The keys allowed at ``loc`` in the spec, for "did you mean" hints."""
    model: Any = Spec
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for n, f in model.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
    return [f.alias or n for n, f in model.model_fields.items()] if model is not None else []


def json_schema() -> dict[str, Any]:
    """The JSON Schema of model.toml, as published in ``schemas/model.schema.json``."""
    schema = Spec.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_URL, **schema}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
