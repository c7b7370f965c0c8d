"""The ``model.toml`` schema: pydantic models of what a user asks modelkit to build.

These models are the single source of truth: they validate the file, they generate
``schemas/model.schema.json`` for editors, and their field descriptions are the reference,
``docs/reference/spec.md`` (generated from them by ``scripts/docs_reference.py``). Validators raise
:class:`ItemError` for a problem that belongs to one element of a list or table, so that
:mod:`.load` can point at its line.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from modelkit.core.remote_cache import url_problem
from modelkit.core.units import parse_size
from modelkit.formats.checkpoints import is_pattern
from modelkit.formats.quant_types import (
    QUANT_TYPES,
    TENSOR_TYPES,
    TENSOR_TYPES_NEEDING_IMATRIX,
    canonical,
    tensor_type,
)
from modelkit.ollama import names as ollama_names
from modelkit.ollama import params as ollama_params
from modelkit.spec.tables import (
    SEARCHED,
    PromptCheckTable,
    PublishTable,
    QuantizeTable,
    RecipeTable,
    SearchTargetTable,
    SpecTable,
)

SCHEMA_URL = "https://modelkit.dev/schemas/model.schema.json"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Base(_Strict):
    """The base model: exactly one of ``repo``, ``path``, ``gguf`` or ``oci``."""

    repo: str | None = Field(None, description="Hugging Face repository id, e.g. 'unsloth/Llama-3.1-8B-Instruct'.")
    revision: str = Field("main", description="Branch, tag or commit of `repo`; `modelkit.lock` pins it to a commit.")
    path: Path | None = Field(None, description="A local folder in Hugging Face format "
                                                "(config.json, *.safetensors, tokenizer).")
    gguf: Path | None = Field(None, description="A ready GGUF file: no conversion.")
    oci: str | None = Field(None, description="Or a ready GGUF model in an OCI registry ('registry/ns/model:tag': a "
                                              "ModelPack or Docker Model Runner artifact, with its projector if it "
                                              "has one), pinned by manifest digest in modelkit.lock.")
    insecure: bool = Field(False, description="With `oci`: plain HTTP, for a registry without TLS on your network.")
    config: Path | None = Field(
        None, description="With `gguf` and adapters: a folder holding the base model's Hugging Face config.json, "
                          "which the LoRA conversion needs.")
    mmproj: Path | None = Field(
        None, description="With `gguf`: the base's projector GGUF (the vision half of a model that sees images, "
                          "`mmproj-*.gguf`); default: the one beside `gguf`, if there is exactly one.")

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not _REPO.match(value):
            raise ValueError(f"'{value}' is not a Hugging Face repository id (expected 'owner/name')")
        return value

    @field_validator("oci")
    @classmethod
    def _oci(cls, value: str | None) -> str | None:
        if value is not None:
            from modelkit.oci.reference import parse_reference

            parse_reference(value)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Base:
        given = [k for k in ("repo", "path", "gguf", "oci") if getattr(self, k) is not None]
        if len(given) != 1:
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"give exactly one of repo, path, gguf or oci{found}")
        if self.config is not None and self.gguf is None and self.oci is None:
            raise ValueError("`config` is only for a `gguf` or `oci` base; a repo or path already has its config.json")

        if self.mmproj is not None and self.gguf is None:
            raise ValueError("`mmproj` is only for a `gguf` base; a repo or path has its vision tower inside")
        return self


class Convert(_Strict):
    """How the base model becomes a GGUF (llama.cpp's convert_hf_to_gguf.py)."""

    outtype: Literal["f32", "f16", "bf16", "q8_0", "auto"] = Field(
        "f16", description="Tensor type of the converted GGUF; quantizations are made from it.")


class Vision(_Strict):
    """A base that sees images: its projector (the vision tower and its projection into the language
    model) is converted once (`convert_hf_to_gguf.py --mmproj`), shared by every variant and
    registered beside it; never dropped in silence."""

    projector: Literal["f32", "f16", "bf16", "q8_0"] = Field(
        "f16", description="Tensor type of the projector GGUF (never quantized further with the variants).")
    text_only: bool = Field(
        False, description="Ship the language model alone, on purpose: no projector, the model does not see "
                           "images (the build says so).")


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


class Recipe(RecipeTable, _Strict):
    """A quantization of its own: a file type for most tensors, other types for the tensors named
    (llama-quantize's ``--tensor-type``, ``--output-tensor-type``, ``--token-embedding-type``)."""

    name: str = Field(description="The variant's name: its GGUF (<stem>.<name>.gguf), its Ollama tag ({quant} "
                                  "is the name, lower-cased) and its row in the report, e.g. 'Q4_K_M-hi'.")
    type: str = Field(description="The llama.cpp quantization type every other tensor gets, e.g. 'Q4_K_M'.")
    tensors: dict[str, str] = Field(
        default_factory=dict,
        description="Tensor-name pattern = tensor type, e.g. { attn_v = 'Q6_K', ffn_down = 'Q5_K' }. A pattern is "
                    "searched for in each tensor's GGUF name (blk.3.attn_v.weight), as llama-quantize does (a "
                    "regular expression, lower-cased); a type is a ggml tensor type (Q4_K, Q6_K, Q8_0, F16…).")
    output: str | None = Field(None, description="The tensor type of output.weight, e.g. 'Q8_0'.")
    embeddings: str | None = Field(None, description="The tensor type of token_embd.weight, e.g. 'Q8_0'.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError(f"'{value}' cannot name a variant: use letters, digits, '_', '.' and '-' (it becomes a "
                             "file name and an Ollama tag)")
        if value.upper() in QUANT_TYPES:
            raise ValueError(f"'{value}' is a llama.cpp type; a recipe needs a name of its own, e.g. '{value}-hi'")
        if value.lower() == SEARCHED:
            raise ValueError(f"'{value}' names the variant quantize.target searches for; choose another name")
        return value

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return _file_type(value)

    @field_validator("tensors")
    @classmethod
    def _tensors(cls, values: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for pattern, value in values.items():
            try:
                re.compile(pattern)
            except re.error as e:
                raise ItemError(pattern, f"'{pattern}' is not a regular expression ({e})") from None
            out[pattern.lower()] = _tensor_type(value, pattern)
        return out

    @field_validator("output", "embeddings")
    @classmethod
    def _one_tensor(cls, value: str | None) -> str | None:
        return None if value is None else _tensor_type(value, None)


def _file_type(value: str) -> str:
    """The canonical name of a llama.cpp quantization type; ValueError with the closest name."""
    try:
        return canonical(value)
    except KeyError:
        hint = closest(value.upper(), list(QUANT_TYPES), _POPULAR_QUANTS)
        raise ValueError(f"'{value}' is not a llama.cpp quantization type"
                         + (f" (did you mean '{hint}'?)" if hint else "")) from None


def _tensor_type(value: str, key: str | None) -> str:
    try:
        return tensor_type(value)
    except KeyError:
        hint = closest(value.upper(), list(TENSOR_TYPES), ("Q4_K", "Q5_K", "Q6_K", "Q8_0", "F16"))
        hint = hint or (value.upper().rsplit("_", 1)[0] if value.upper().rsplit("_", 1)[0] in TENSOR_TYPES else None)
        message = (f"'{value}' is not a tensor type (a tensor's ggml type, such as Q4_K, Q6_K, Q8_0 or F16; Q4_K_M "
                   "is a file's)" + (f"; did you mean '{hint}'?" if hint else ""))
        raise (ItemError(key, message) if key is not None else ValueError(message)) from None


class SearchTarget(SearchTargetTable, _Strict):
    """What the smallest quantization must reach: at least one quality bound, perhaps a size bound."""

    max_kld: float | None = Field(None, gt=0, description="Mean KL divergence from full precision at most this.")
    min_top1: float | None = Field(None, gt=0, le=1, description="Top-token agreement with full precision at "
                                                                   "least this (0-1).")
    max_size: int | None = Field(None, gt=0, description="The GGUF's size at most this (bytes, or '900 MB').")

    @field_validator("max_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        return parse_size(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _some_quality(self) -> SearchTarget:
        if self.max_kld is None and self.min_top1 is None:
            raise ValueError("a target needs max_kld or min_top1 (a size bound alone is met by the smallest type)")
        return self


class Quantize(QuantizeTable, _Strict):
    """Which quantized GGUFs to make (llama.cpp's llama-quantize)."""

    types: list[str] = Field(
        default_factory=lambda: ["Q4_K_M"],
        description="llama.cpp quantization types, e.g. ['Q4_K_M', 'Q8_0']; each becomes its own GGUF and "
                    "Ollama tag. Empty: use the converted GGUF as it is.")
    imatrix: Path | None = Field(
        None, description="A calibration text (your own training or chat data is the best): llama-imatrix computes "
                          "an importance matrix from it for each full-precision model, and every quantization of "
                          "that model uses it. It unlocks the IQ types and Q2_K.")
    recipes: list[Recipe] = Field(
        default_factory=list,
        description="Variants with per-tensor types, each its own GGUF, Ollama tag and report row, built beside "
                    "quantize.types.")

    target: SearchTarget | None = Field(
        None, description="Search for the smallest quantization meeting this, e.g. { max_kld = 0.002 }: candidates "
                          "from the standard types up, then with tensor groups promoted, each measured against full "
                          "precision (needs [evaluate] text); the choice is the variant named 'auto'.")
    search_budget: int = Field(16, ge=1, le=200, description="The most candidates the search measures.")

    @field_validator("types")
    @classmethod
    def _types(cls, values: list[str]) -> list[str]:
        out: list[str] = []
        for i, value in enumerate(values):
            try:
                name = _file_type(value)
            except ValueError as e:
                raise ItemError(i, str(e)) from None
            if name in out:
                raise ItemError(i, f"'{value}' is listed twice")
            out.append(name)
        return out

    @model_validator(mode="after")
    def _imatrix_types(self) -> Quantize:
        if self.imatrix is None:
            for i, name in enumerate(self.types):
                if QUANT_TYPES[name].wants_imatrix:
                    raise ItemError(i, f"'{name}' needs an importance matrix: set quantize.imatrix to a calibration "
                                       "text (your own training or chat data is best), or use a K-quant such as "
                                       "'Q4_K_M' or 'Q3_K_M'", parent="types")
            for i, recipe in enumerate(self.recipes):
                wanting = [t for t in recipe.tensor_types() if t in TENSOR_TYPES_NEEDING_IMATRIX]
                if QUANT_TYPES[recipe.type].wants_imatrix or wanting:
                    raise ItemError(i, f"'{(wanting or [recipe.type])[0]}' needs an importance matrix: set "
                                       "quantize.imatrix to a calibration text", parent="recipes")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> Quantize:
        seen: set[str] = set()
        for i, recipe in enumerate(self.recipes):
            if recipe.name.lower() in seen:
                raise ItemError(i, f"'{recipe.name}' names two recipes (tags are lower-case)", field="name",
                                parent="recipes")
            seen.add(recipe.name.lower())
        return self


_POPULAR_QUANTS = ("Q4_K_M", "Q5_K_M", "Q8_0", "Q6_K", "Q4_0", "F16", "BF16", "Q3_K_M", "Q2_K")


def closest(word: str, choices: list[str], preferred: tuple[str, ...] = ()) -> str | None:
    """The closest choice to ``word``; ties go to the ``preferred`` (more commonly meant) ones."""
    candidates = difflib.get_close_matches(word, choices, n=5, cutoff=0.6)
    if not candidates:
        return None
    score = {c: difflib.SequenceMatcher(None, word, c).ratio() for c in candidates}
    best = max(score.values())
    top = [c for c in candidates if score[c] == best]
    return next((p for p in preferred if p in top), top[0])


def _untagged_model_name(value: str | None, why_no_tag: str) -> str | None:
    """A model name Ollama accepts (or none), without the tag that ``why_no_tag`` says comes from elsewhere."""
    if value is not None and ollama_names.parse_model_name(value).tag:
        raise ValueError(f"'{value}' has a tag: {why_no_tag}")
    return value


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class Ollama(_Strict):
    """The Ollama models: one per quantization type, named `model:tag`."""

    model: str | None = Field(None, description="Ollama model name; default: the spec's `name`.")
    tag: str = Field("{quant}", description="Tag of each variant; `{quant}` is the lowercase quantization type, "
                                            "`{step}` the training step of a checkpoint-pattern adapter.")
    template: str = Field(
        "inherit", description="'inherit' (default): translate the model's own chat template (the adapter's, "
                               "else the base's) and prove it; anything else is Ollama TEMPLATE text used as is.")
    template_file: Path | None = Field(None, description="A file holding the Ollama TEMPLATE text.")
    chat_template_file: Path | None = Field(
        None, description="A Jinja chat template (as in Hugging Face's chat_template.jinja) to use instead of the "
                          "model's: translated and proven like an inherited one (or proven against `template` "
                          "when that is given too), and written into every shipped GGUF.")
    system: str | None = Field(None, description="SYSTEM prompt.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="PARAMETER values (Ollama options).")
    messages: list[Message] = Field(default_factory=list, description="MESSAGE history baked into the model.")
    license: str | None = Field(None, description="LICENSE text.")
    register_with: Literal["api", "cli", "off"] = Field(
        "api", alias="register", description="How variants are registered: 'api' (Ollama's HTTP API through the "
                                             "official client), 'cli' (`ollama create -f`), or 'off'.")
    host: str | None = Field(None, description="The Ollama server; default $OLLAMA_HOST, else http://127.0.0.1:11434.")
    latest: str | None = Field(
        None, description="The quantization type whose variant is also tagged `latest`, so `ollama run <model>` "
                          "uses it; default: the first of quantize.types; '' for none.")
    lora: Literal["merge", "adapter"] = Field(
        "merge", description="How adapters reach Ollama: 'merge' (default) merges each LoRA into the weights "
                             "before quantizing, which runs on every Ollama and GGUF runtime and quantizes "
                             "the adapter's update with its weight; 'adapter' ships the LoRA as a GGUF ADAPTER "
                             "beside the quantized base (Ollama applies one adapter per model).")

    @field_validator("parameters")
    @classmethod
    def _parameters(cls, value: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, item in value.items():
            try:
                out[name] = ollama_params.check_parameter(name, item)
            except ValueError as e:
                raise ItemError(name, str(e)) from None
        return out

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        return _untagged_model_name(value, "tags come from `tag` (default: the quantization type)")

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


class PromptCheck(PromptCheckTable, _Strict):
    """A question each variant must answer right: greedily, through the prompt its TEMPLATE renders."""

    messages: list[Message] = Field(default_factory=list, description="The conversation to answer (or `prompt`).")
    prompt: str | None = Field(None, description="A single user message, instead of `messages`.")
    expect: str | None = Field(None, description="Text the answer must contain.")
    expect_regex: str | None = Field(None, description="Or a regular expression (Python's re) the answer must match.")
    variants: list[str] = Field(default_factory=list, description="Quantization types to check (default: all).")
    max_tokens: int = Field(48, gt=0, le=4096, description="How many tokens the answer may take.")
    images: list[Path] = Field(default_factory=list, description="Images (PNG or JPEG) the last user message "
                                                                   "shows, as Ollama's `images`: answered with the "
                                                                   "variant's projector.")

    @model_validator(mode="after")
    def _one_question_one_expectation(self) -> PromptCheck:
        if bool(self.messages) == (self.prompt is not None):
            raise ValueError("give messages or prompt (one of them)")
        if (self.expect is None) == (self.expect_regex is None):
            raise ValueError("give expect (a substring) or expect_regex (a pattern)")
        if self.expect_regex is not None:
            try:
                re.compile(self.expect_regex)
            except re.error as e:
                raise ValueError(f"expect_regex {self.expect_regex!r} is not a regular expression: {e}") from None
        return self


class Evaluate(_Strict):
    """How good each variant is: perplexity and KL divergence against the full-precision model on
    held-out text, prompt checks, and a gate."""

    text: Path | None = Field(
        None, description="Held-out text: the full-precision model's logits on it are computed once "
                          "(llama-perplexity --kl-divergence-base), then each variant is compared with them.")
    context: int = Field(512, ge=16, le=131072, description="Context size of each evaluated chunk (llama-perplexity "
                                                            "-c); the text must hold at least two contexts' tokens.")
    max_kld: float | None = Field(None, gt=0, description="A variant whose mean KL divergence is above this fails "
                                                           "the build (for CI).")
    prompts: list[PromptCheck] = Field(default_factory=list, description="Questions every variant must answer.")

    @model_validator(mode="after")
    def _gate_needs_text(self) -> Evaluate:
        if self.max_kld is not None and self.text is None:
            raise ValueError("max_kld needs evaluate.text, the held-out text the KL divergence is measured on")
        return self


class BuildSettings(_Strict):
    """How the build runs on this machine."""

    jobs: int | None = Field(
        None, gt=0, strict=True, description="How many steps may run at once (`modelkit build -j` overrides it); "
                                             "default: one per core, at least two. Each step still waits until "
                                             "the cores, memory and GPU it needs are free.")
    executor: str = Field(
        "local", pattern=r"^(local|ray|ray://[^/\s:]+:\d+)$",
        description="Where steps run: `local` (this machine), or `ray` — the Ray cluster at $RAY_ADDRESS, else the "
                    "one started on this machine — or `ray://HOST:PORT` (Ray Client). Steps then run as Ray tasks "
                    "and exchange files through the remote cache ([cache] remote, required). "
                    "`modelkit build --executor` overrides it.")
    keep: Literal["all", "shipped"] = Field(
        "all", description="What the build keeps: `all` (every artifact, in build/ and the artifact cache); "
                           "`shipped` removes the intermediate ones (the full-precision GGUFs and GGUF adapters "
                           "nothing ships) once every target that reads them is up to date, from both, so the "
                           "disk holds the checkpoint and what ships; a build that needs one again remakes it. With "
                           "`shipped`, a LoRA llama.cpp merges is merged while the base converts: no base GGUF is "
                           "written at all (see docs/guides/scale.md).")


class Toolchain(_Strict):
    """Which llama.cpp to use."""

    llama_cpp: Path | None = Field(
        None, description="A llama.cpp checkout with its binaries built (build/bin); default: the managed "
                          "one that `modelkit toolchain install` builds (or $MODELKIT_LLAMA_CPP).")


class Cache(_Strict):
    """Artifacts shared between machines (see the guide "Teams and CI", docs/guides/teams.md)."""

    remote: str | None = Field(
        None, description="A remote artifact cache, as an fsspec URL: s3://bucket/prefix, file:///mnt/shared/modelkit, "
                          "hf://datasets/org/cache or gs://bucket/prefix. Stale targets are restored from it and what "
                          "is built is uploaded to it. $MODELKIT_REMOTE_CACHE overrides it (empty: no remote).")

    @field_validator("remote")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        problem = url_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

HUB_MAX_FILE_SIZE = 50_000_000_000
"""The largest single file the Hugging Face Hub accepts (50 GB; it recommends staying under 20 GB)."""

class Publish(PublishTable, _Strict):
    """Where `modelkit publish` uploads the built variants: a Hugging Face repo, Ollama's registry, an OCI registry."""

    repo: str | None = Field(None, description="Hugging Face model repository, 'owner/name' (or `--repo`).")
    private: bool = Field(False, description="Create the repository private (when it does not exist yet).")
    max_file_size: int | str = Field(
        HUB_MAX_FILE_SIZE, description="The largest file to upload, in bytes or with a unit ('50GB', '2GiB'); "
                                       "a bigger GGUF is split with llama-gguf-split and the split set is "
                                       "published. Default: the Hub's limit, 50 GB.")
    license: str | None = Field(None, description="The model card's license (e.g. 'apache-2.0', 'llama3.1'); "
                                                  "default: the base model card's.")
    ollama: str | None = Field(None, description="Also push every variant to Ollama's registry as "
                                                 "'namespace/model:tag' (after registration); "
                                                 "'host:port/namespace/model' for another registry.")
    insecure: bool = Field(False, description="Push over plain HTTP, as `ollama push --insecure` does: for a "
                                              "registry on your own network without TLS.")
    oci: str | None = Field(None, description="Also push every variant to an OCI registry as a CNCF ModelPack "
                                              "artifact (what Docker Model Runner, RamaLama and KitOps pull), "
                                              "'registry/namespace/model', tagged by its Ollama tag (or `--oci`).")

    @field_validator("oci")
    @classmethod
    def _oci(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from modelkit.oci.reference import parse_reference

        ref = parse_reference(value, default_tag=None)
        if ref.tag or ref.digest:
            raise ValueError(f"'{value}' names a tag or digest: give 'registry/namespace/model', each variant is "
                             "pushed with its own tag")
        return value

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        return Base._repo(value)

    @field_validator("max_file_size")
    @classmethod
    def _size(cls, value: int | str) -> int:
        size = parse_size(value)
        if size < 1_000_000:
            raise ValueError(f"{value}: llama-gguf-split cannot split below 1 MB")
        return size

    @field_validator("ollama")
    @classmethod
    def _ollama(cls, value: str | None) -> str | None:
        value = _untagged_model_name(value, "each variant is pushed with its own tag")
        if value is not None and "/" not in value:
            raise ValueError(f"'{value}' has no namespace: the registry needs 'namespace/model' "
                             "(your ollama.com user name)")
        return value


class Spec(SpecTable, _Strict):
    """A modelkit project: a base model, LoRA adapters, quantizations and the Ollama models to make."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="modelkit model.toml")

    name: str = Field(description="The project's name; the Ollama model name by default.")
    build_dir: Path = Field(Path("build"), description="Where artifacts go, relative to the spec file.")
    base: Base
    convert: Convert = Field(default_factory=Convert)
    vision: Vision = Field(default_factory=Vision)
    adapters: list[Adapter] = Field(default_factory=list)
    quantize: Quantize = Field(default_factory=Quantize)
    evaluate: Evaluate = Field(default_factory=Evaluate)
    ollama: Ollama = Field(default_factory=Ollama)
    toolchain: Toolchain = Field(default_factory=Toolchain)
    cache: Cache = Field(default_factory=Cache)
    publish: Publish = Field(default_factory=Publish)
    build: BuildSettings = Field(default_factory=BuildSettings)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        Adapter._name(value)
        ollama_names.check_model_name(value)
        return value

    @model_validator(mode="after")
    def _search(self) -> Spec:
        target = self.quantize.target
        if target is None:
            return self
        if self.evaluate.text is None:
            raise ItemError("target", "a search measures candidates: set evaluate.text to held-out text",
                            parent="quantize")
        gate = self.evaluate.max_kld
        if gate is not None and target.max_kld is not None and target.max_kld > gate:
            raise ItemError("target", f"max_kld = {target.max_kld} is looser than evaluate.max_kld = {gate}: the "
                                      "chosen variant could fail the gate; make them agree", parent="quantize")
        return self

    @model_validator(mode="after")
    def _tags(self) -> Spec:
        tag = self.ollama.tag
        if len(self.quantize.variant_names) > 1 and "{quant}" not in tag:
            raise ItemError("tag", f"'{tag}' would give every quantization the same tag: add {{quant}}",
                             parent="ollama")
        if "{step}" in tag and not any(a.path is not None and is_pattern(a.path) for a in self.adapters):
            raise ItemError("tag", "{step} needs an adapter whose path is a checkpoint pattern "
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
            if name not in self.quantize.variant_names:
                built = ", ".join(self.quantize.variant_names)
                raise ItemError("latest", f"'{latest}' is not one of quantize.types or recipes ({built})",
                                parent="ollama")
        return self

    @model_validator(mode="after")
    def _mergeable(self) -> Spec:
        if self.ollama.lora == "merge":
            for i, adapter in enumerate(self.adapters):
                if adapter.outtype == "q8_0":
                    raise ItemError(i, "a q8_0 adapter cannot be merged (llama-export-lora needs f16 or f32): "
                                        "use outtype = 'f16', or set ollama.lora = 'adapter'",
                                     field="outtype", parent="adapters")
        return self

    @model_validator(mode="after")
    def _checked_variants_exist(self) -> Spec:
        for i, check in enumerate(self.evaluate.prompts):
            for j, name in enumerate(check.variants):
                try:
                    quant = canonical(name)
                except KeyError:
                    quant = name
                if quant not in self.quantize.variant_names:
                    built = ", ".join(self.quantize.variant_names) or "none: quantize.types is empty"
                    raise ItemError(j, f"'{name}' is not built (quantize.types: {built})",
                                    parent=("evaluate", "prompts", i, "variants"))
        return self

    @field_validator("adapters")
    @classmethod
    def _unique(cls, adapters: list[Adapter]) -> list[Adapter]:
        seen: set[str] = set()
        for i, adapter in enumerate(adapters):
            if adapter.name in seen:
                raise ItemError(i, f"adapter name '{adapter.name}' is used twice", field="name")
            seen.add(adapter.name)
        return adapters


class ItemError(ValueError):
    """A validation error that belongs to one element of a list or table (so its line can be found)."""

    def __init__(self, index: int | str, message: str, field: str | None = None,
                 parent: str | tuple[str | int, ...] | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.parent = parent


def json_schema() -> dict[str, Any]:
    """The JSON Schema of model.toml, as published in ``schemas/model.schema.json``."""
    schema = Spec.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_URL, **schema}


def schema_text() -> str:
    """The text of ``schemas/model.schema.json``."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
