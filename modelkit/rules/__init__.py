"""How a spec becomes a build graph: which artifacts exist and what each is made from.

```
source:base ─ convert ─▶ gguf:base.f16 ───────────────┐
source:adapter.x ─ convert-lora ─▶ gguf:adapter.x ─ merge-lora ─▶ gguf:base+x.f16
gguf:base+x.f16 ─ quantize ─▶ gguf:base+x.Q4_K_M ─────┬─▶ modelfile:<model>-q4_k_m ─▶ ollama:<model>:q4_k_m
base chat template ─ inherit-template ─▶ template ────┘
source:base + source:adapter.y ─ merge-peft ─▶ gguf:base+y.f16   (an adapter llama.cpp cannot merge)
source:base + source:adapter.z ─ convert-merging ─▶ gguf:base+z.f16   (keep = "shipped": no base GGUF)
```

:func:`build_graph` reads top to bottom like the diagram: the base, the template, the adapters,
then per Ollama model its full-precision GGUF and per quantization type one variant (a GGUF, a
Modelfile, its registrations). What the inputs are on this machine is settled first, by
:mod:`.inputs`; every target and file name comes from :mod:`.names`.

``source:*`` targets exist only for Hugging Face repos (local folders are read in place). By
default (``[ollama] lora = "merge"``) each adapter is merged into the full-precision base and the
quantizations are made from the merged model: that runs on every Ollama and every other GGUF
runtime, and quantizes better than an f16 adapter beside a 4-bit base. With ``lora = "adapter"``
the base is quantized alone and each Modelfile carries an ADAPTER line. With several adapters,
each is its own Ollama model (``<model>-<adapter>``), because comparing fine-tunes side by side
is what several adapters are usually for.

An adapter that llama.cpp's merge cannot express (added tokens with resized embeddings, rsLoRA,
DoRA, ``alpha_pattern``, … see :func:`~modelkit.formats.peft.merge_route`) is merged in PyTorch
from the base's Hugging Face weights instead (``merge-peft``), into the same ``gguf:base+x.f16``;
it has no ``gguf:adapter.x``, so it cannot be shipped as an ADAPTER line, nor merged into a
GGUF-only base: both are refused while planning.

With ``[build] keep = "shipped"`` (the user chose disk over keeping intermediates), an adapter
llama.cpp merges is merged while the base checkpoint is converted (``convert-merging``, see
:mod:`modelkit.steps.convert_merging`), when nothing else would read the base's GGUF: then neither
``gguf:base.f16`` nor ``gguf:adapter.x`` is made, and the build's peak disk is the checkpoint, one
full-precision GGUF and the variants, not two full-precision GGUFs at once. Otherwise the graph is
the one above.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit import hub
from modelkit.core.action import Action
from modelkit.core.facts import Facts
from modelkit.core.graph import Graph, Target
from modelkit.errors import UserError
from modelkit.formats.quant_types import CONVERT_OUTTYPES, IGNORE_IMATRIX, QUANT_TYPES, canonical
from modelkit.rules.inputs import AdapterInput, Inputs, PinnedSource, resolve_inputs
from modelkit.rules.names import SOURCE_BASE, SOURCE_BASE_TOKENIZER, Artifact, Names
from modelkit.rules.quality import Measured, add_imatrix, add_quality, add_search
from modelkit.rules.templates import ModelTemplate, add_templates
from modelkit.spec import LoadedSpec
from modelkit.spec.tables import SEARCHED, RecipeTable
from modelkit.steps.convert import Convert
from modelkit.steps.convert_lora import ConvertLora
from modelkit.steps.convert_merging import BASE_TYPES, ConvertMerging
from modelkit.steps.fetch import Fetch
from modelkit.steps.fetch_oci import FetchOCI
from modelkit.steps.merge import MergeLora
from modelkit.steps.merge_peft import MergePeft
from modelkit.steps.modelfile import RenderModelfile
from modelkit.steps.native import ProveNative
from modelkit.steps.quantize import Quantize, TensorRecipe
from modelkit.steps.register import Register

if TYPE_CHECKING:
    from modelkit.spec.model import Adapter

MERGE_WHILE_CONVERTING = True
"""Whether ``keep = "shipped"`` builds take the ``convert-merging`` route where it applies (see
:meth:`_Rules.merges_while_converting`): measured better than export-lora's on time and peak disk
(``python -m bench scale --params 1B``: 0.88-0.90 of the wall time, 0.92 of the peak disk), with
the same greedy continuation (there, and in ``tests/test_convert_merging.py``). The bench turns it
off to measure the other route under the same spec."""


@dataclass
class Variant:
    """One Ollama model to make: a GGUF (quantized, or shipped as it is), maybe an adapter, and
    its Modelfile."""

    model: str  # Ollama model name
    tag: str
    quant: str
    gguf_target: str | None  # None when the variant ships the user's own GGUF
    gguf: Path
    adapter: str | None
    modelfile_target: str
    modelfile: Path
    registrations: list[str] = field(default_factory=list)  # ollama:* targets
    full: Path | None = None  # the full-precision GGUF it was made from (itself, when shipped as is)
    full_quant: str | None = None
    projector: Path | None = None  # the vision half it ships beside its GGUF (an mmproj GGUF)
    projector_target: str | None = None  # what makes it (None: the user's own file)
    latest: bool = False  # also tagged ``latest`` (in Ollama, and in an OCI registry)
    evaluation: Path | None = None  # its numbers against full precision ([evaluate] text)
    reference: Path | None = None  # the full-precision model's perplexity
    verdict: Path | None = None  # its prompt checks and gate

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.tag}"

    def full_bytes(self) -> int | None:
        """The size of the full-precision GGUF, the report's reference point."""
        return self.full.stat().st_size if self.full is not None and self.full.is_file() else None


@dataclass
class Layout:
    """The graph of a spec, with the variants it ships and the sources it resolved."""

    graph: Graph
    variants: list[Variant]
    sources: dict[str, PinnedSource]
    searches: dict[str, Path] = field(default_factory=dict)
    """Each full-precision model's quantization search result (when the spec sets a target), by its stem."""
    notes: list[str] = field(default_factory=list)
    """What the build says every time it is planned (a half of the model left out on purpose)."""


@dataclass(frozen=True)
class FullPrecision:
    """The GGUF that quantizations are made from: the base, or the base with an adapter merged."""

    stem: str  # "base" or "base+x": the prefix of its quantizations' names
    target: str | None  # None for the user's own GGUF
    path: Path
    quant: str | None  # its type when modelkit made it (F16, …)


def build_graph(loaded: LoadedSpec, locked_sources: Mapping[str, Mapping[str, Any]] | None = None,
                register: str | None = None, facts: Facts | None = None,
                projectable: Callable[[], frozenset[str] | None] = lambda: None, update: bool = False) -> Layout:
    """Turn a validated spec into targets. ``locked_sources``: the lock file's pinned sources
    (``update``: resolved afresh, the lock only saying what moved);
    ``register``: overrides ``[ollama] register`` ("api", "cli" or "off"); ``facts``: where what
    planning reads from big files is kept by their digests (see :mod:`modelkit.core.facts`);
    ``projectable``: the architectures whose projector the toolchain converts (None: not known yet)."""
    names = Names(loaded.build_dir, loaded.state_dir)
    rules = _Rules(loaded, names, resolve_inputs(loaded, names, locked_sources, facts, update),
                   register or loaded.spec.ollama.register_with)
    rules.small_sources()
    rules.templates()
    rules.check_vision(projectable)
    base = rules.base()
    for given, resolved in zip(loaded.spec.adapters, rules.inputs.adapters):
        rules.adapter(given, resolved)
    for adapter, model in rules.models():
        full = rules.full_precision(adapter, base)
        rules.searches[full.stem] = add_search(rules.add, rules.names, loaded, full.stem, full.path, full.target)
        quants: list[str | None] = list(loaded.spec.quantize.variant_names) or [None]
        made = [rules.variant(model, adapter, full, quant) for quant in quants]
        rules.native(model, adapter, made[0].variant)
        verdicts = add_quality(rules.add, rules.names, loaded, full.stem, full.path, full.target, made)
        for measured in made:
            rules.registrations(measured, verdicts.get(measured.variant.ref))
    return Layout(rules.graph, rules.variants, rules.inputs.sources,
                  {stem: made.path for stem, made in rules.searches.items() if made}, rules.notes)


class _Rules:
    """The rules of one spec, adding targets to one graph in build order."""

    def __init__(self, loaded: LoadedSpec, names: Names, inputs: Inputs, register: str) -> None:
        self.loaded, self.spec, self.names, self.inputs = loaded, loaded.spec, names, inputs
        self.register = register
        self.merge = self.spec.ollama.lora == "merge"
        self.graph = Graph()
        self.variants: list[Variant] = []
        self.chat_templates: dict[str | None, ModelTemplate] = {}
        self._registration_deps: dict[str, tuple[list[Path], list[str]]] = {}
        self._servers: Any = None
        self.searches: dict[str, Artifact | None] = {}
        self.notes: list[str] = []

    def add(self, name: str, action: Action, deps: tuple[str | None, ...] | list[str | None] = (), *,
            long: bool = False, once: bool = False, after: tuple[str, ...] = (), intermediate: bool = False) -> Action:
        """Add a target; a ``long`` one (a download, conversion, merge or quantization) waits for
        every chat template to be proven first, so a template problem costs seconds, not hours.
        ``once``: a target several models share, added by the first that needs it; ``intermediate``:
        nothing ships it (see :class:`~modelkit.core.graph.Target`)."""
        if once and name in self.graph:
            return self.graph[name].action
        templates = tuple(t.target for t in self.chat_templates.values()) if long else ()
        self.graph.add(Target(name, action, tuple(d for d in deps if d), tuple(dict.fromkeys((*templates, *after))),
                              intermediate))
        return action

    def small_sources(self) -> None:
        """What the chat templates read: the base's tokenizer and configs (or a pulled GGUF), and the adapter repos."""
        repos = self.inputs.repos()
        if self.inputs.base_fetch is not None:  # a ready GGUF from a registry: its template is read from it
            self.add(self.inputs.base_fetch, FetchOCI(source=self.inputs.sources[SOURCE_BASE], blobs=_oci_blobs()))
        if SOURCE_BASE in repos:
            self.add(SOURCE_BASE_TOKENIZER, Fetch(source=repos[SOURCE_BASE].without_weights(),
                                                  label="the base's tokenizer"))
        for adapter in self.inputs.adapters:
            for dep in adapter.folder.deps:
                self.add(dep, Fetch(source=repos[dep], label=f"adapter '{adapter.name}'"))

    def templates(self) -> None:
        """Each model's chat template: inherited, unless the spec gives Ollama's Go text; then only
        with a Jinja beside it, which the Go text is proven against."""
        ollama = self.spec.ollama
        given_go = ollama.template != "inherit" or ollama.template_file is not None
        if not given_go:
            self.chat_templates = add_templates(self.add, self.names, self.inputs, self.models())
        elif self.inputs.chat_template_file is not None:
            self.chat_templates = add_templates(
                self.add, self.names, self.inputs, self.models(),
                given=None if ollama.template == "inherit" else ollama.template,
                given_file=self.loaded.resolve(ollama.template_file) if ollama.template_file else None)

    def check_vision(self, projectable: Callable[[], frozenset[str] | None]) -> None:
        """A base that sees images ships its projector, or says why not: never half a model in silence."""
        vision, where = self.inputs.vision, self.loaded.where("base", "repo" if self.spec.base.repo else "path")
        if vision is None:
            return
        if self.spec.vision.text_only:
            self.notes.append(f"vision left out on purpose ([vision] text_only = true): {vision.architecture}'s "
                              "projector is not shipped, so these models do not see images")
            return
        known = projectable()
        if known is not None and vision.architecture not in known:
            raise UserError(f"{where}: {vision.architecture} sees images (its config.json has a {vision.tower} "
                            "vision tower), but this llama.cpp cannot convert its projector (convert_hf_to_gguf.py "
                            "--mmproj does not know it): building would drop the vision half; to ship the text "
                            "model alone on purpose, set [vision] text_only = true")

    def projector(self, adapter: str | None) -> tuple[str | None, Path] | None:
        """(target, file) of the projector the variants of ``adapter`` ship, or None (text only): the
        merged model's own, when the adapter changed the vision half; else the base's."""
        if self.spec.vision.text_only:
            return None
        if self.inputs.mmproj is not None:
            return self.inputs.base_fetch, self.inputs.mmproj
        if self.inputs.vision is None:
            return None
        outtype = self.spec.vision.projector
        resolved = next((a for a in self.inputs.adapters if a.name == adapter), None)
        if resolved is not None and resolved.route.vision and self.merge:
            made = self.names.projector(self.names.merged_stem(resolved.name), outtype)
            return made.target, made.path
        base = self.inputs.base
        assert base is not None
        made = self.names.projector("base", outtype)
        self.add(made.target, Convert(folder=base.path, files=base.files, outtype=outtype, out=made.path, mmproj=True),
                 base.deps, long=True, once=True)
        return made.target, made.path

    def base(self) -> FullPrecision:
        """The base model: its weights fetched if it is a repo, converted unless it is a ready GGUF."""
        inputs = self.inputs
        if SOURCE_BASE in inputs.repos():
            self.add(SOURCE_BASE, Fetch(source=inputs.repos()[SOURCE_BASE], label="base"), long=True)
        if inputs.base_gguf is not None:
            return FullPrecision("base", inputs.base_fetch, inputs.base_gguf, None)
        assert inputs.base is not None
        outtype, carried = self.spec.convert.outtype, self._carried_by_base()
        made = self.names.converted(outtype)
        if not self._base_gguf_used():
            return FullPrecision("base", made.target, made.path, CONVERT_OUTTYPES.get(outtype))  # never added
        self.add(made.target, Convert(folder=inputs.base.path, files=inputs.base.files, outtype=outtype,
                                      out=made.path, chat_template=carried.path if carried else None),
                 (*inputs.base.deps, carried.target if carried else None), long=True,
                 intermediate=bool(self.spec.adapters) and self.merge)  # only merged into: nothing ships it
        return FullPrecision("base", made.target, made.path, CONVERT_OUTTYPES.get(outtype))

    def adapter(self, adapter: Adapter, resolved: AdapterInput) -> None:
        """An adapter converted to a GGUF adapter (its repo was fetched with the small sources),
        unless it is merged in PyTorch: then the merge reads its folder itself."""
        folder, config = resolved.folder, self.inputs.config
        if resolved.route.pytorch:
            self._check_pytorch_route(resolved)
            return
        if self.merges_while_converting(resolved):
            return  # its merge reads the folder itself
        assert config is not None
        made = self.names.adapter(adapter.name)
        base_deps = self.inputs.base.deps if self.inputs.base else ()
        self.add(made.target, ConvertLora(name=adapter.name, adapter_dir=folder.path, files=folder.files,
                                          base_dir=config.path, base_files=config.pick(("config.json",)),
                                          outtype=adapter.outtype, out=made.path), (*base_deps, *folder.deps),
                 long=True, intermediate=self.merge)

    def models(self) -> list[tuple[str | None, str]]:
        """(adapter, Ollama model name) for each model to ship."""
        model, adapters = self.spec.ollama_model, self.spec.adapters
        if not adapters:
            return [(None, model)]
        if len(adapters) == 1:
            return [(adapters[0].name, model)]
        return [(a.name, f"{model}-{a.name}") for a in adapters]

    def full_precision(self, adapter: str | None, base: FullPrecision) -> FullPrecision:
        """What ``adapter``'s quantizations are made from: the base with it merged in, or the base."""
        if adapter is None or not self.merge:
            return base
        made, carried = self.names.merged(adapter), self._carried(adapter)
        resolved = next(a for a in self.inputs.adapters if a.name == adapter)
        if resolved.route.pytorch:
            self.add(made.target, self._merge_peft(resolved, made.path, carried),
                     (*(self.inputs.base.deps if self.inputs.base else ()), *resolved.folder.deps,
                      carried.target if carried else None), long=True)
            return FullPrecision(self.names.merged_stem(adapter), made.target, made.path, "F16")
        if self.merges_while_converting(resolved):
            self.add(made.target, self._convert_merging(resolved, made.path, carried),
                     (*(self.inputs.base.deps if self.inputs.base else ()), *resolved.folder.deps,
                      carried.target if carried else None), long=True, intermediate=not self._ships("F16"))
            return FullPrecision(self.names.merged_stem(adapter), made.target, made.path, "F16")
        self.add(made.target, MergeLora(name=adapter, base=base.path, adapter=self.names.adapter(adapter).path,
                                        out=made.path, chat_template=carried.path if carried else None),
                 (base.target, self.names.adapter(adapter).target, carried.target if carried else None), long=True,
                 intermediate=not self._ships("F16"))
        return FullPrecision(self.names.merged_stem(adapter), made.target, made.path, "F16")

    def _ships(self, quant: str) -> bool:
        """Whether a full-precision GGUF of type ``quant`` is shipped itself (no types, or that one)."""
        names = self.spec.quantize.variant_names
        return not names or quant in names

    def variant(self, model: str, adapter: str | None, full: FullPrecision, quant: str | None) -> Measured:
        """One variant: its GGUF and its Modelfile (its registrations come after its checks)."""
        gguf_target, gguf, quant = self.quantized(full, quant)
        tag = self.spec.ollama.tag.format(quant=quant.lower(), step=self._step(adapter))
        made = self.names.modelfile(model, tag)
        deps: list[str | None] = [gguf_target]
        adapter_files = []
        if adapter and not self.merge:
            deps.append(self.names.adapter(adapter).target)
            adapter_files.append(self.names.adapter(adapter).path)
        chat = self.chat_templates.get(adapter)
        deps.append(chat.target if chat else None)
        projected = self.projector(adapter)
        projector = projected[1] if projected else None
        deps.append(projected[0] if projected else None)
        modelfile = self.add(made.target, self._modelfile(made.path, gguf, adapter_files, chat, adapter,
                                                          shipped_as_is=gguf == self.inputs.base_gguf,
                                                          projector=projector), deps)
        assert isinstance(modelfile, RenderModelfile)
        variant = Variant(model, tag, quant, gguf_target, gguf, adapter, made.target, made.path,
                          full=full.path, full_quant=full.quant, projector=projector,
                          projector_target=projected[0] if projected else None, latest=self._is_latest(quant))
        self.variants.append(variant)
        self._registration_deps[variant.ref] = (adapter_files, [d for d in deps if d])
        return Measured(variant, modelfile, chat.target if chat else None)

    def _is_latest(self, quant: str) -> bool:
        """Whether the variant of ``quant`` is also ``latest``: ``[ollama] latest``, else the first type."""
        latest = self.spec.ollama.latest
        latest = latest if latest is not None else (self.spec.quantize.variant_names or [quant])[0]
        return bool(latest) and _canonical_or_same(latest) == quant

    def quantized(self, full: FullPrecision, quant: str | None) -> tuple[str | None, Path, str]:
        """(target, file, type) of ``full`` quantized to ``quant``; ``full`` itself when it already
        is that type, or when there are no types to make."""
        ready = full.stem == "base" and self.inputs.base_gguf is not None  # the user's (or a registry's) GGUF
        if quant is None or quant == full.quant:
            return full.target, full.path, full.quant or (self.inputs.base_gguf_type if ready else "auto")
        made = self.names.quantized(full.stem, quant)
        if made.target not in self.graph:
            requantize = ready
            carried = self._carried_by_base() if ready else None  # the ready GGUF, quantized
            recipe, searched = self.spec.quantize.recipe(quant), self.searches.get(full.stem)
            if quant != SEARCHED:
                searched = None
            imatrix = (add_imatrix(self.add, self.names, self.loaded, full.stem, full.path, full.target)
                       if searched or _uses_imatrix(quant, recipe, self.spec.quantize.imatrix is not None) else None)
            self.add(made.target, Quantize(src=full.path, qtype=recipe.type if recipe else quant, out=made.path,
                                           requantize=requantize, src_file=None if full.target else full.path,
                                           label=full.stem, chat_template=carried.path if carried else None,
                                           imatrix=imatrix, recipe=self._recipe(quant),
                                           recipe_file=searched.path if searched else None),
                     (full.target, carried.target if carried else None,
                      self.names.imatrix(full.stem).target if imatrix else None,
                      searched.target if searched else None), long=True)
        return made.target, made.path, quant

    def _recipe(self, name: str) -> TensorRecipe | None:
        """The recipe named ``name`` as the quantize step takes it, with where it is in the spec."""
        index, recipe = next(((i, r) for i, r in enumerate(self.spec.quantize.recipes) if r.name == name), (0, None))
        if recipe is None:
            return None
        return TensorRecipe(name=recipe.name, tensors=dict(recipe.tensors), output=recipe.output,
                            embeddings=recipe.embeddings,
                            where=self.loaded.where("quantize", "recipes", index, "tensors"))

    def native(self, model: str, adapter: str | None, variant: Variant) -> None:
        """``native:<model>``: its first variant's GGUF rendered by llama.cpp's own engine (Ollama's
        native chat mode), when it ships a chat template modelkit chose."""
        if self.chat_templates.get(adapter) is None:
            return
        made = self.names.native(model)
        self.add(made.target, ProveNative(gguf=variant.gguf, model=model, out=made.path), (variant.gguf_target,))

    def registrations(self, measured: Measured, verdict: str | None) -> None:
        """``ollama:<model>:<tag>``, and ``<model>:latest`` for the variant that is the default;
        after the variant's ``verdict`` (its checks), so a variant that fails them is not shipped."""
        if self.register == "off":
            return
        ollama, variant = self.spec.ollama, measured.variant
        adapter_files, deps = self._registration_deps[variant.ref]
        refs = [variant.ref, *([f"{variant.model}:latest"] if variant.latest else [])]
        for ref in refs:
            made = self.names.registration(ref)
            self.add(made.target, Register(ref=ref, modelfile=measured.modelfile, gguf=variant.gguf,
                                           adapters=adapter_files, method=self.register, host=ollama.host,
                                           servers=self._reachability(), out=made.path, projector=variant.projector,
                                           projector_is_source=variant.projector is not None
                                           and variant.projector_target is None),
                     (variant.modelfile_target, *deps), after=(verdict,) if verdict else ())
            variant.registrations.append(made.target)

    def _modelfile(self, out: Path, gguf: Path, adapter_files: list[Path], chat: ModelTemplate | None,
                   adapter: str | None, shipped_as_is: bool, projector: Path | None) -> RenderModelfile:
        ollama = self.spec.ollama
        return RenderModelfile(
            out=out, from_=self._named_in_modelfile(gguf),
            projector=self._named_in_modelfile(projector) if projector else None,
            adapters=[self._named_in_modelfile(a) for a in adapter_files],
            system=ollama.system, parameters=dict(ollama.parameters),
            messages=[(m.role, m.content) for m in ollama.messages], license=ollama.license,
            template=None if ollama.template == "inherit" else ollama.template,
            template_file=self.loaded.resolve(ollama.template_file) if ollama.template_file else None,
            inherited=chat.path if chat else None, header=f"Spec: {self.loaded.path.name}",
            notice=self._gguf_template_notice(chat, adapter, shipped_as_is))

    def _named_in_modelfile(self, path: Path) -> str:
        """How a Modelfile in the build folder names ``path``: relative, as Ollama resolves FROM and
        ADAPTER from the Modelfile's folder, so the Modelfile is the same bytes wherever the project
        lives; absolute only for a ready GGUF the spec itself names by an absolute path."""
        given = {self.inputs.base_gguf: self.spec.base.gguf, self.inputs.mmproj: self.spec.base.mmproj}.get(path)
        if given is not None and Path(given).expanduser().is_absolute():
            return str(path)
        rel = os.path.relpath(path, self.names.build)
        return rel if rel.startswith("..") else f"./{rel}"

    def _base_gguf_used(self) -> bool:
        """Whether anything is made from the base's own GGUF: a model without an adapter, an ADAPTER
        line, or an adapter that llama.cpp merges. When every adapter is merged in PyTorch, it is
        not converted at all (for an 8B model: minutes and 16 GB saved)."""
        if not self.spec.adapters or not self.merge:
            return True
        return any(not a.route.pytorch and not self.merges_while_converting(a) for a in self.inputs.adapters)

    def merges_while_converting(self, resolved: AdapterInput) -> bool:
        """Whether ``resolved`` is merged while the base checkpoint is converted, so that the base's
        own GGUF is never written: only where the spec chose disk over intermediates (``keep =
        "shipped"``), for an adapter llama.cpp merges (the route that reproduces its arithmetic), and
        when only merges would read the base GGUF: every model merged (lora = "merge": neither the
        base nor an ADAPTER line ships, nor is the base evaluated), from Hugging Face weights, of a
        base type whose rounding the merge reproduces."""
        return (MERGE_WHILE_CONVERTING and self.spec.build.keep == "shipped" and self.merge
                and bool(self.spec.adapters) and self.inputs.base is not None and self.inputs.base_gguf is None
                and not resolved.route.pytorch and self.spec.convert.outtype in BASE_TYPES)

    def _check_pytorch_route(self, resolved: AdapterInput) -> None:
        """An adapter that only a merge in PyTorch gets right needs a merge, and HF weights to merge into."""
        where = f"adapter '{resolved.name}' ({resolved.folder.path.name}/adapter_config.json)"
        if not self.merge:
            raise UserError(f"{where} needs a merge in PyTorch ({resolved.route.reason}), which an ADAPTER line cannot "
                            "carry: use the default [ollama] lora = \"merge\"")
        if self.inputs.base is None:
            raise UserError(f"{where} needs a merge in PyTorch ({resolved.route.reason}), which needs the base's "
                            "Hugging Face weights, not only a GGUF: give [base] path or repo instead of [base] gguf")

    def _merge_peft(self, resolved: AdapterInput, out: Path, carried: ModelTemplate | None) -> MergePeft:
        """The PyTorch merge of ``resolved``: its inputs are all the base's and the adapter's files."""
        base, folder, route = self.inputs.base, resolved.folder, resolved.route
        assert base is not None
        files = dict(folder.files)
        files.update(folder.pick(resolved.tokenizer_files))
        projected = self.projector(resolved.name) if route.vision else None
        return MergePeft(name=resolved.name, base_dir=base.path, base_files=base.files, adapter_dir=folder.path,
                         adapter_files=files, tokenizer="adapter" if route.tokenizer else "base", rows=route.rows,
                         added=route.added, reason=route.reason, out=out,
                         chat_template=carried.path if carried else None,
                         projector=projected[1] if projected else None, projector_type=self.spec.vision.projector)

    def _convert_merging(self, resolved: AdapterInput, out: Path, carried: ModelTemplate | None) -> ConvertMerging:
        """The conversion of the base with ``resolved`` merged in: it reads the base's and the adapter's files."""
        base, folder = self.inputs.base, resolved.folder
        assert base is not None
        given = next(a for a in self.spec.adapters if a.name == resolved.name)
        return ConvertMerging(name=resolved.name, base_dir=base.path, base_files=base.files, adapter_dir=folder.path,
                              adapter_files=folder.files, base_type=self.spec.convert.outtype,
                              adapter_type=given.outtype, out=out, chat_template=carried.path if carried else None)

    def _carried(self, adapter: str | None) -> ModelTemplate | None:
        """``adapter``'s template, when its GGUFs must be rewritten to carry it."""
        chat = self.chat_templates.get(adapter)
        return chat if chat is not None and chat.carried else None

    def _carried_by_base(self) -> ModelTemplate | None:
        """The template the base's own GGUFs must carry: the spec's Jinja, when they are shipped
        (no adapter, or adapters beside it); not an adapter's (the base is shared by all)."""
        if self.inputs.chat_template_file is None or (self.spec.adapters and self.merge):
            return None
        return next(iter(self.chat_templates.values()), None)

    def _gguf_template_notice(self, chat: ModelTemplate | None, adapter: str | None, shipped_as_is: bool) -> str | None:
        """Why the GGUF may not carry the Modelfile's template, in one line (None when it does)."""
        ollama_ = "llama-server, LM Studio and Ollama ≥ 0.30 (when it has more capabilities, such as tools)"
        if chat is None:
            return (f"the TEMPLATE is given as Go text only, so the GGUFs keep the base model's own chat template (if "
                    f"it has one), which {ollama_} render instead; give the same template as Jinja too "
                    "([ollama] chat_template_file)")
        if chat.carried and adapter is not None and not self.merge:
            return (f"adapter '{adapter}' brings its own chat template, but with lora = \"adapter\" the base GGUF is "
                    f"shared and keeps the base's, which {ollama_} render; merge the adapter (the default) instead")
        if chat.carried and shipped_as_is:
            return (f"the spec's chat_template_file cannot be written into a GGUF shipped as is; {ollama_} render its "
                    "own; quantize it (a [quantize] type) to ship a copy that carries it")
        return None

    def _step(self, adapter: str | None) -> int | str:
        step = next((a.step for a in self.inputs.adapters if a.name == adapter), None)
        return "" if step is None else step

    def _reachability(self) -> Any:
        """One record of which Ollama servers answer, shared by the build's registrations."""
        if self._servers is None:
            from modelkit.ollama.reachability import Reachability

            self._servers = Reachability()
        return self._servers


def _oci_blobs() -> Path:
    """Where blobs pulled from registries are kept, shared by every project on this machine."""
    from modelkit.toolchain import cache_root

    return cache_root() / "oci" / "blobs"


def _uses_imatrix(quant: str, recipe: RecipeTable | None, have_one: bool) -> bool:
    """Whether the quantization reads the importance matrix: a recipe does when any of its types
    would (and there is one: without, a recipe only uses types that do not need it)."""
    if recipe is None:
        return QUANT_TYPES[quant].uses_imatrix
    return have_one and (QUANT_TYPES[recipe.type].uses_imatrix
                         or any(t not in IGNORE_IMATRIX for t in recipe.tensor_types()))


def _canonical_or_same(name: str) -> str:
    try:
        return canonical(name)
    except KeyError:
        return name


