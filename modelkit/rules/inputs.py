"""What a spec's inputs are on this machine: the one place where planning reads the world.

Before the graph is built, every source is pinned (a Hub repo to a commit, through the lock file
when it has one), every local folder is listed, a checkpoint pattern is resolved to its newest
complete checkpoint, and a ready GGUF's quantization type is read from its header. The rules that
follow are then pure functions of the spec and these facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit import hub
from modelkit.formats.checkpoints import step_of
from modelkit.formats.quant_types import file_type_name
from modelkit.rules.names import SOURCE_BASE, Names
from modelkit.spec import LoadedSpec


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


@dataclass(frozen=True)
class AdapterInput:
    name: str
    folder: Folder
    step: int | None  # the training step of a checkpoint pattern's newest checkpoint


@dataclass
class Inputs:
    """The resolved inputs of one spec."""

    base: Folder | None  # the base model's Hugging Face folder (None for a ready GGUF alone)
    base_gguf: Path | None  # the user's ready GGUF
    base_gguf_type: str  # its quantization type, from its header ("gguf" if unknown)
    config: Folder | None  # where the base's config.json is (for converting adapters)
    adapters: list[AdapterInput]
    sources: dict[str, hub.RepoSource] = field(default_factory=dict)


def resolve_inputs(loaded: LoadedSpec, names: Names,
                   locked: Mapping[str, Mapping[str, Any]] | None = None) -> Inputs:
    """Pin, list and read what the spec points at. ``locked``: the lock file's pinned repos."""
    spec, locked = loaded.spec, locked or {}
    sources: dict[str, hub.RepoSource] = {}
    base: Folder | None = None
    if spec.base.repo:
        source = hub.resolve(spec.base.repo, spec.base.revision, "model", locked.get(SOURCE_BASE))
        sources[SOURCE_BASE] = source
        base = Folder(source.snapshot, {}, (SOURCE_BASE,))
    elif spec.base.path:
        base = local_folder(loaded.resolve(spec.base.path), "model")
    gguf = loaded.resolve(spec.base.gguf) if spec.base.gguf else None
    config = Folder(loaded.resolve(spec.base.config), {}) if spec.base.config else base
    adapters = []
    for i, adapter in enumerate(spec.adapters):
        if adapter.repo:
            key = names.adapter_source(adapter.name)
            source = hub.resolve(adapter.repo, adapter.revision, "adapter", locked.get(key))
            sources[key] = source
            folder, step = Folder(source.snapshot, {}, (key,)), None
        else:
            found = loaded.adapter_folder(i)
            assert found is not None  # check_local_files made sure
            folder, step = local_folder(found, "adapter"), step_of(found)
        adapters.append(AdapterInput(adapter.name, folder, step))
    gguf_type = file_type_of(gguf) if gguf is not None and not spec.quantize.types else "gguf"
    return Inputs(base, gguf, gguf_type, config, adapters, sources)


def local_folder(folder: Path, kind: str) -> Folder:
    """A local model or adapter folder and the files of it that a conversion reads."""
    names = [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return Folder(folder, {name: folder / name for name in hub.select_files(names, kind)})


def file_type_of(gguf: Path) -> str:
    """The quantization type a GGUF records (``Q8_0``), from its header; "gguf" if unknown."""
    from modelkit.formats.gguf import read_metadata

    try:
        file_type = read_metadata(gguf).get("general.file_type")
    except (OSError, ValueError):
        return "gguf"
    return (file_type_name(file_type) if isinstance(file_type, int) else None) or "gguf"
