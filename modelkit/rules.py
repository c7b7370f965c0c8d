"""How a spec becomes a build graph: which artifacts exist and what each is made from.

```
source:base ─ convert ─▶ gguf:base.f16 ───────────────┐
source:adapter.x ─ convert-lora ─▶ gguf:adapter.x ─ merge-lora ─▶ gguf:base+x.f16
gguf:base+x.f16 ─ quantize ─▶ gguf:base+x.Q4_K_M ─────┬─▶ modelfile:<model>-q4_k_m
base chat template ─ inherit-template ─▶ template ────┘
```

``source:*`` targets exist only for Hugging Face repos (local folders are read in place). By
default (``[ollama] lora = "merge"``) each adapter is merged into the full-precision base and
the quantizations are made from the merged model, because Ollama 0.34+ refuses ADAPTER; with
``lora = "adapter"`` the base is quantized alone and each Modelfile carries an ADAPTER line.

Each variant (one per quantization type) gets its own Modelfile; with several adapters, each
adapter is its own Ollama model (``<model>-<adapter>``), because comparing fine-tunes side by
side is what several adapters are usually for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit import hub
from modelkit.checkpoints import step_of
from modelkit.graph import Graph, Target
from modelkit.quant_types import CONVERT_OUTTYPES, canonical, file_type_name
from modelkit.spec import Adapter, LoadedSpec
from modelkit.steps.convert import Convert
from modelkit.steps.convert_lora import ConvertLora
from modelkit.steps.fetch import Fetch
from modelkit.steps.merge import MergeLora
from modelkit.steps.modelfile import RenderModelfile
from modelkit.steps.ollama import Register
from modelkit.steps.quantize import Quantize
from modelkit.steps.template import TEMPLATE_FILES, InheritTemplate


@dataclass
class Variant:
    """One Ollama model to make: a quantized base, maybe an adapter, and its Modelfile."""

    model: str  # Ollama model name
    tag: str
    quant: str
    gguf_target: str | None  # None when the variant ships the user's own GGUF
    gguf: Path
    adapter: str | None
    modelfile_target: str
    registrations: list[str] = field(default_factory=list)  # ollama:* targets

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.tag}"


@dataclass
class Layout:
    """The graph of a spec, with the variants it ships and the sources it resolved."""

    graph: Graph
    variants: list[Variant]
    sources: dict[str, hub.RepoSource]


def build_graph(loaded: LoadedSpec, locked_sources: Mapping[str, Mapping[str, Any]] | None = None,
                register: str | None = None) -> Layout:
    """Turn a validated spec into targets. ``locked_sources``: the lock file's pinned repos;
    ``register``: overrides ``[ollama] register`` ("api", "cli" or "off")."""
    spec, build = loaded.spec, loaded.build_dir
    register = register or spec.ollama.register_with
    locked_sources = locked_sources or {}
    graph = Graph()
    sources: dict[str, hub.RepoSource] = {}

    # The base model, as an HF folder (local or fetched) and/or a GGUF.
    base_dir: Path | None = None
    base_files: dict[str, Path] = {}
    base_deps: tuple[str, ...] = ()
    if spec.base.repo:
        source = hub.resolve(spec.base.repo, spec.base.revision, "model", locked_sources.get("source:base"))
        sources["source:base"] = source
        graph.add(Target("source:base", Fetch(source, "base")))
        base_dir, base_deps = source.snapshot, ("source:base",)
    elif spec.base.path:
        base_dir = loaded.resolve(spec.base.path)
        base_files = _folder_files(base_dir, "model")

    outtype = spec.convert.outtype
    if spec.base.gguf:
        base_gguf = loaded.resolve(spec.base.gguf)
        converted: str | None = None
    else:
        assert base_dir is not None
        base_gguf = build / f"base.{outtype}.gguf"
        converted = f"gguf:base.{outtype}"
        graph.add(Target(converted, Convert(base_dir, base_files, outtype, base_gguf), base_deps))

    # The chat template, unless the spec gives one.
    template_target = None
    if spec.ollama.template == "inherit" and spec.ollama.template_file is None:
        template_target = "template"
        if base_dir is not None:
            files = {n: p for n, p in _pick(base_dir, TEMPLATE_FILES).items()} if not base_deps else {}
            graph.add(Target(template_target, InheritTemplate(base_dir, files, build / "template.json"), base_deps))
        else:
            graph.add(Target(template_target, InheritTemplate(base_gguf, {"base.gguf": base_gguf},
                                                              build / "template.json")))

    # Adapters (a checkpoint pattern means its newest complete checkpoint, whose step can be a tag).
    config_dir = loaded.resolve(spec.base.config) if spec.base.config else base_dir
    adapter_targets: dict[str, str] = {}
    steps = {a.name: step for i, a in enumerate(spec.adapters)
             if a.path is not None and (folder := loaded.adapter_folder(i)) is not None
             and (step := step_of(folder)) is not None}
    for adapter in spec.adapters:
        adapter_targets[adapter.name] = _add_adapter(graph, loaded, adapter, config_dir, base_deps,
                                                     locked_sources, sources)

    # Variants: one Ollama model per (adapter, quantization type).
    variants: list[Variant] = []
    converted_type = CONVERT_OUTTYPES.get(outtype)
    merge = spec.ollama.lora == "merge"
    for adapter_name, model in _models(loaded, spec.adapters):
        # The full-precision GGUF the quantizations come from: the base, or the base + this adapter.
        if adapter_name and merge:
            stem = f"base+{adapter_name}"
            source_target: str | None = f"gguf:{stem}.f16"
            source_path, source_type = build / f"{stem}.f16.gguf", "F16"
            graph.add(Target(source_target, MergeLora(adapter_name, base_gguf, build / f"adapter.{adapter_name}.gguf",
                                                      source_path),
                             tuple(d for d in (converted, adapter_targets[adapter_name]) if d)))
        else:
            stem, source_target, source_path = "base", converted, base_gguf
            source_type = converted_type if converted else None
        for quant in spec.quantize.types or [None]:
            if quant is None or quant == source_type:  # ship the full-precision (or given) GGUF as it is
                gguf_target, gguf_path = source_target, source_path
                quant = source_type or ("auto" if source_target else _file_type(source_path))
            else:
                gguf_target, gguf_path = f"gguf:{stem}.{quant}", build / f"{stem}.{quant}.gguf"
                if gguf_target not in graph:
                    graph.add(Target(gguf_target, Quantize(
                        source_path, quant, gguf_path, requantize=spec.base.gguf is not None and stem == "base",
                        src_file=None if source_target else source_path, label=stem),
                        (source_target,) if source_target else ()))
            tag = spec.ollama.tag.format(quant=quant.lower(), step=steps.get(adapter_name, ""))
            name = f"modelfile:{model}-{tag}"
            deps = [gguf_target] if gguf_target else []
            adapters = []
            if adapter_name and not merge:
                deps.append(adapter_targets[adapter_name])
                adapters.append(_rel(build / f"adapter.{adapter_name}.gguf", build))
            if template_target:
                deps.append(template_target)
            modelfile = graph.add(Target(name, RenderModelfile(
                build / f"{model}-{tag}.Modelfile", from_=_rel(gguf_path, build), adapters=adapters,
                system=spec.ollama.system, parameters=dict(spec.ollama.parameters),
                messages=[(m.role, m.content) for m in spec.ollama.messages], license=spec.ollama.license,
                template=None if spec.ollama.template == "inherit" else spec.ollama.template,
                template_file=loaded.resolve(spec.ollama.template_file) if spec.ollama.template_file else None,
                inherited=build / "template.json" if template_target else None,
                header=f"Spec: {loaded.path.name}",
            ), tuple(deps))).action
            variant = Variant(model, tag, quant, gguf_target, gguf_path, adapter_name, name)
            variants.append(variant)
            if register != "off":
                adapter_files = [build / f"adapter.{adapter_name}.gguf"] if adapters else []
                refs = [variant.ref]
                latest = spec.ollama.latest if spec.ollama.latest is not None else (spec.quantize.types or [quant])[0]
                if latest and canonical_or_same(latest) == quant:
                    refs.append(f"{model}:latest")
                for ref in refs:
                    graph.add(Target(f"ollama:{ref}", Register(
                        ref, modelfile, gguf_path, adapter_files, register, spec.ollama.host,
                        loaded.state_dir / "ollama" / f"{ref.replace(':', '-')}.json"), (name, *deps)))
                    variant.registrations.append(f"ollama:{ref}")
    return Layout(graph, variants, sources)


def _add_adapter(graph: Graph, loaded: LoadedSpec, adapter: Adapter, config_dir: Path | None,
                 base_deps: tuple[str, ...], locked: Mapping[str, Mapping[str, Any]],
                 sources: dict[str, hub.RepoSource]) -> str:
    build = loaded.build_dir
    deps = list(base_deps)
    if adapter.repo:
        key = f"source:adapter.{adapter.name}"
        source = hub.resolve(adapter.repo, adapter.revision, "adapter", locked.get(key))
        sources[key] = source
        graph.add(Target(key, Fetch(source, f"adapter '{adapter.name}'")))
        folder, files = source.snapshot, {}
        deps.append(key)
    else:
        found = loaded.adapter_folder(loaded.spec.adapters.index(adapter))
        assert found is not None  # check_local_files made sure
        folder = found
        files = _folder_files(folder, "adapter")
    assert config_dir is not None
    base_files = _pick(config_dir, ("config.json",)) if not base_deps else {}
    name = f"gguf:adapter.{adapter.name}"
    graph.add(Target(name, ConvertLora(adapter.name, folder, files, config_dir, base_files, adapter.outtype,
                                       build / f"adapter.{adapter.name}.gguf"), tuple(deps)))
    return name


def _models(loaded: LoadedSpec, adapters: list[Adapter]) -> list[tuple[str | None, str]]:
    model = loaded.spec.ollama_model
    if not adapters:
        return [(None, model)]
    if len(adapters) == 1:
        return [(adapters[0].name, model)]
    return [(a.name, f"{model}-{a.name}") for a in adapters]


def canonical_or_same(name: str) -> str:
    try:
        return canonical(name)
    except KeyError:
        return name


def _file_type(gguf: Path) -> str:
    """The quantization type a GGUF records (``Q8_0``), from its header; "gguf" if unknown."""
    from modelkit.gguf_header import read_metadata

    try:
        file_type = read_metadata(gguf).get("general.file_type")
    except (OSError, ValueError):
        return "gguf"
    return (file_type_name(file_type) if isinstance(file_type, int) else None) or "gguf"


def _folder_files(folder: Path, kind: str) -> dict[str, Path]:
    """The files of a local model or adapter folder that its conversion reads."""
    names = [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return {name: folder / name for name in hub.select_files(names, kind)}


def _pick(folder: Path, names: tuple[str, ...]) -> dict[str, Path]:
    return {n: folder / n for n in names if (folder / n).is_file()}


def _rel(path: Path, start: Path) -> str:
    """How a Modelfile in ``start`` refers to ``path``: relative when close by, else absolute."""
    rel = os.path.relpath(path, start)
    return f"./{rel}" if not rel.startswith("..") else str(path)
