"""What a spec's inputs are on this machine: the one place where planning reads the world.

Before the graph is built, every source is pinned (a Hub repo to a commit, through the lock file
when it has one), every local folder is listed, a checkpoint pattern is resolved to its newest
complete checkpoint, a ready GGUF's quantization type is read from its header, and each adapter's
merge route is chosen from its files (:func:`~modelkit.formats.peft.merge_route`: llama.cpp's
merge, or PEFT's in PyTorch). The rules that follow are then pure functions of the spec and these
facts.

Choosing a route reads small files: for a Hub adapter, its ``adapter_config.json`` and tokenizer
files are downloaded into the Hugging Face cache while planning (the fetch target finds them
there later) and its safetensors header is read with a range request; the base's ``config.json``
and tokenizer files likewise, only when an adapter brings a tokenizer or resized embeddings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from modelkit import hub
from modelkit.core.facts import Facts
from modelkit.errors import UserError
from modelkit.formats.checkpoints import step_of
from modelkit.formats.peft import TOKENIZER_FILES, BaseFiles, MergeRoute, merge_route, safetensors_shapes
from modelkit.formats.quant_types import file_type_name
from modelkit.formats.vision import VisionTower, read_vision_tower
from modelkit.rules.names import SOURCE_BASE, Names
from modelkit.spec import LoadedSpec
from modelkit.version import __version__

ROUTE_RULES = 2
"""Raised when merge_route judges anew (2: an adapter that changes the vision half): routes judged
by the earlier rules are not reused."""
#: An adapter's files that its merge route is judged from.
ROUTE_FILES = ("adapter_config.json", "adapter_model.safetensors", *TOKENIZER_FILES)


@dataclass(frozen=True)
class Folder:
    """A model or adapter folder: where it is, the files to hash, and the fetch target behind it.

    ``files`` is empty when a fetch target provides the folder: its outputs' digests enter the
    key instead, so Hugging Face cache files are never read.
    """

    path: Path
    files: dict[str, Path]
    deps: tuple[str, ...] = ()

    def pick(self, names: tuple[str, ...]) -> dict[str, Path]:
        """Those of ``names`` that exist in a local folder (none for a fetched one)."""
        if self.deps:
            return {}
        return {n: self.path / n for n in names if (self.path / n).is_file()}


class PinnedSource(Protocol):
    """A source pinned for the lock: a Hub repo at a commit (:class:`~modelkit.hub.RepoSource`), an
    OCI artifact at a manifest digest (:class:`~modelkit.oci.pull.OCISource`)."""

    def lock_entry(self, downloaded: Mapping[str, str]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AdapterInput:
    name: str
    folder: Folder
    step: int | None  # the training step of a checkpoint pattern's newest checkpoint
    tokenizer_files: tuple[str, ...] = ()
    """The tokenizer and chat template files the adapter folder holds (what it was trained with)."""
    route: MergeRoute = MergeRoute(False, "")
    """How it is merged: by llama.cpp, or in PyTorch (and why)."""


@dataclass
class Inputs:
    """The resolved inputs of one spec."""

    base: Folder | None  # the base model's Hugging Face folder (None for a ready GGUF alone)
    base_gguf: Path | None  # the user's ready GGUF (or one pulled from a registry)
    base_gguf_type: str  # its quantization type, from its header ("gguf" if unknown)
    config: Folder | None  # where the base's config.json is (for converting adapters)
    adapters: list[AdapterInput]
    sources: dict[str, PinnedSource] = field(default_factory=dict)
    chat_template_file: Path | None = None  # the spec's Jinja, instead of the model's
    vision: VisionTower | None = None
    """The base's vision tower, from its config.json (None: it sees text only, or is a ready GGUF)."""
    mmproj: Path | None = None
    """A ready GGUF base's projector (``[base] mmproj``, or the one ``mmproj*.gguf`` beside it)."""
    text_only: bool = False
    """``[vision] text_only``: the vision half is left out on purpose."""
    base_fetch: str | None = None
    """The target that brings the ready GGUF (and its projector): ``source:base`` for ``[base] oci``."""

    def repos(self) -> dict[str, hub.RepoSource]:
        """The sources that are Hugging Face repos (fetched into the Hugging Face cache)."""
        return {name: source for name, source in self.sources.items() if isinstance(source, hub.RepoSource)}


def resolve_inputs(loaded: LoadedSpec, names: Names, locked: Mapping[str, Mapping[str, Any]] | None = None,
                   facts: Facts | None = None, update: bool = False) -> Inputs:
    """Pin, list and read what the spec points at. ``locked``: the lock file's pinned sources;
    ``update``: resolve them afresh (the lock then only says what moved); ``facts``: where what is
    read from big files is kept by their digests."""
    spec, pins = loaded.spec, locked or {}
    locked = {} if update else pins
    sources: dict[str, PinnedSource] = {}
    base: Folder | None = None
    if spec.base.repo:
        base_source = hub.resolve(spec.base.repo, spec.base.revision, "model", locked.get(SOURCE_BASE))
        sources[SOURCE_BASE] = base_source
        base = Folder(base_source.snapshot, {}, (SOURCE_BASE,))
    elif spec.base.path:
        base = local_folder(loaded.resolve(spec.base.path), "model")
    gguf = loaded.resolve(spec.base.gguf) if spec.base.gguf else None
    pulled = _oci_base(loaded, pins, update) if spec.base.oci else None
    if pulled is not None:
        sources[SOURCE_BASE], gguf = pulled, pulled.gguf
    config = Folder(loaded.resolve(spec.base.config), {}) if spec.base.config else base
    base_repo = sources.get(SOURCE_BASE)
    base_files = _BaseFacts(base, gguf, config, base_repo if isinstance(base_repo, hub.RepoSource) else None)
    adapters = []
    for i, adapter in enumerate(spec.adapters):
        source: hub.RepoSource | None = None
        if adapter.repo:
            key = names.adapter_source(adapter.name)
            source = hub.resolve(adapter.repo, adapter.revision, "adapter", locked.get(key))
            sources[key] = source
            folder, step, listed = Folder(source.snapshot, {}, (key,)), None, set(source.files)
        else:
            found = loaded.adapter_folder(i)
            assert found is not None  # check_local_files made sure
            folder, step = local_folder(found, "adapter"), step_of(found)
            listed = {p.name for p in found.iterdir() if p.is_file()}
        tokenizer = tuple(n for n in hub.TOKENIZER_FILES if n in listed)
        route = adapter_route(adapter.name, folder, source, base_files, facts)
        adapters.append(AdapterInput(adapter.name, folder, step, tokenizer, route))
    gguf_type = file_type_of(gguf) if gguf is not None and gguf.is_file() and not spec.quantize.types else "gguf"
    jinja = loaded.resolve(spec.ollama.chat_template_file) if spec.ollama.chat_template_file else None
    projector = pulled.projector_path if pulled is not None else ready_projector(loaded, gguf)
    return Inputs(base, gguf, gguf_type, config, adapters, sources, jinja, _base_vision(base, sources),
                  projector, spec.vision.text_only, SOURCE_BASE if pulled is not None else None)


def _oci_base(loaded: LoadedSpec, locked: Mapping[str, Mapping[str, Any]], update: bool) -> Any:
    """``[base] oci``, pinned (see :mod:`modelkit.oci.pull`)."""
    from modelkit.oci.pull import resolve

    base = loaded.spec.base
    assert base.oci is not None
    return resolve(base.oci, loaded.state_dir, base.insecure, locked.get(SOURCE_BASE), update)


def _base_vision(base: Folder | None, sources: Mapping[str, Any]) -> VisionTower | None:
    """The base's vision tower, read from its config.json (a Hub base's is fetched now: a few KB)."""
    if base is None:
        return None
    folder = hub.fetch_small(sources[SOURCE_BASE], ("config.json",)) if SOURCE_BASE in sources else base.path
    return read_vision_tower(folder)


def ready_projector(loaded: LoadedSpec, gguf: Path | None) -> Path | None:
    """The projector of a ready GGUF base: ``[base] mmproj``, else the one ``mmproj*.gguf`` beside it."""
    if gguf is None:
        return None
    if loaded.spec.base.mmproj is not None:
        return loaded.resolve(loaded.spec.base.mmproj)
    beside = sorted(p for p in gguf.parent.glob("mmproj*.gguf") if p.is_file())
    if len(beside) > 1:
        raise UserError(f"{loaded.where('base', 'gguf')}: {len(beside)} projectors lie beside {gguf.name} "
                        f"({', '.join(p.name for p in beside)}): name the base's with [base] mmproj")
    return beside[0] if beside else None


def adapter_route(name: str, folder: Folder, source: hub.RepoSource | None, base: _BaseFacts,
                  facts: Facts | None = None) -> MergeRoute:
    """How adapter ``name`` is merged, judged from its files (a Hub adapter's small files are
    downloaded for it, and its weights' header read, see the module docstring); with ``facts``,
    judged once per the bytes of the files it reads (a no-op then reads none of them)."""

    def judge() -> MergeRoute:
        if source is not None:
            hub.fetch_small(source, ("adapter_config.json", *hub.TOKENIZER_FILES))
            shapes = hub.safetensors_shapes(source, "adapter_model.safetensors")
        else:
            weights = folder.path / "adapter_model.safetensors"
            shapes = safetensors_shapes(weights) if weights.is_file() else None
        return merge_route(folder.path, shapes, base, f"adapter '{name}'")

    if facts is None:
        return judge()
    files = {} if source is not None else {f"adapter/{n}": folder.path / n for n in ROUTE_FILES}
    identity = [__version__, ROUTE_RULES, source.commit if source else None,
                base.source.commit if base.source else None]
    return facts.derive("merge route", {**files, **base.local_files()}, identity, judge,
                        dataclasses.asdict, _route_from_json)


def _route_from_json(value: dict[str, Any]) -> MergeRoute:
    return MergeRoute(**{**value, "added": tuple((int(i), str(t)) for i, t in value["added"])})


class _BaseFacts:
    """The base's files a merge route is judged against, found on first use: for a Hub base, its
    config.json and tokenizer files are then downloaded (small files, fetched once)."""

    def __init__(self, base: Folder | None, gguf: Path | None, config: Folder | None,
                 source: hub.RepoSource | None) -> None:
        self.base, self.gguf, self.config, self.source = base, gguf, config, source
        self._files: BaseFiles | None = None

    def local_files(self) -> dict[str, Path]:
        """The local files a merge route may read of the base, by label (none of a Hub base: its
        commit names them)."""
        folder = self.base.path if self.base is not None else (self.config.path if self.config else None)
        files = {} if self.source is not None or folder is None else {
            f"base/{n}": folder / n for n in ("config.json", *TOKENIZER_FILES)}
        return {**files, **({"base/gguf": self.gguf} if self.gguf is not None else {})}

    def __call__(self) -> BaseFiles:
        if self._files is None:
            folder = self.base.path if self.base is not None else (self.config.path if self.config else None)
            if self.source is not None:
                folder = hub.fetch_small(self.source, ("config.json", *hub.TOKENIZER_FILES, "vocab.json"))
            self._files = BaseFiles(folder, self.gguf)
        return self._files


def local_folder(folder: Path, kind: str) -> Folder:
    """A local model or adapter folder and the files of it that a conversion reads (for an
    adapter: not its tokenizer, which only the chat template step reads)."""
    names = [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    chosen = hub.select_files(names, kind)
    if kind == "adapter":
        chosen = [n for n in chosen if n not in hub.TOKENIZER_FILES]
    return Folder(folder, {name: folder / name for name in chosen})


def file_type_of(gguf: Path) -> str:
    """The quantization type a GGUF records (``Q8_0``), from its header; "gguf" if unknown."""
    from modelkit.formats.gguf import read_metadata

    try:
        file_type = read_metadata(gguf).get("general.file_type")
    except (OSError, ValueError):
        return "gguf"
    return (file_type_name(file_type) if isinstance(file_type, int) else None) or "gguf"
