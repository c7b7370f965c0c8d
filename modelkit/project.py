"""A modelkit project: one spec, its graph, its state and its toolchain, and the public API.

```python
from modelkit import Project
project = Project.open("examples/tiny/model.toml")
for status in project.plan():
    print(status.name, status.state, status.reason)
result = project.build()
```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit import hub
from modelkit.core.engine import BuildResult, Engine, Pin, Reporter, Status
from modelkit.core.executor import Executor
from modelkit.core.facts import Facts
from modelkit.core.graph import Graph
from modelkit.core.hashing import Hasher
from modelkit.core.lockfile import LOCK_NAME, first_difference, make_lock, read_lock, write_lock
from modelkit.core.locks import FileLock
from modelkit.core.process import Progress
from modelkit.core.remote_cache import RemoteCache, choose_url
from modelkit.core.state import State
from modelkit.core.units import human_size
from modelkit.errors import UserError
from modelkit.formats.gguf import gguf_facts, read_header
from modelkit.outcome import BuildOutcome, Quality, VariantOutcome
from modelkit.rules import Layout, Variant, build_graph
from modelkit.rules.names import MEASUREMENTS, Names
from modelkit.spec import LoadedSpec, load_spec
from modelkit.steps.modelfile import RenderModelfile
from modelkit.steps.register import Register, read_receipt
from modelkit.steps.template import read_inherited
from modelkit.toolchain import ProjectTools, Toolchain
from modelkit.version import __version__

if TYPE_CHECKING:
    from modelkit.ollama.engine import Choice


class Project:
    """One spec with its graph, state and toolchain: plan, build, lock, collect garbage."""

    def __init__(self, loaded: LoadedSpec, update_sources: bool = False, register: str | None = None) -> None:
        """``update_sources``: resolve Hugging Face revisions afresh instead of using the lock;
        ``register``: override ``[ollama] register`` ("api", "cli" or "off")."""
        self.register = register
        self.loaded = loaded
        self.spec = loaded.spec
        self.root = loaded.root
        self.lock_path = loaded.root / LOCK_NAME
        self.update_sources = update_sources
        self.report_note: str | None = None  # why the last build drew no report picture
        self.ran_on: Executor | None = None
        """Where the last build ran its steps, if not here (its summary says what that cost)."""
        self.notify: Callable[[str], None] = logging.getLogger("modelkit").warning
        """Where warnings that do not stop a build go (the CLI prints them; a library user gets logging)."""

    @classmethod
    def open(cls, spec: str | Path | None = None, update_sources: bool = False,
             register: str | None = None) -> Project:
        """The project of ``spec`` (a model.toml or its folder; default ./model.toml)."""
        return cls(load_spec(Path(spec) if spec is not None else None), update_sources, register)

    @cached_property
    def lock(self) -> dict[str, Any] | None:
        return read_lock(self.lock_path)

    @cached_property
    def layout(self) -> Layout:
        locked = None if self.lock is None else self.lock.get("sources")
        return build_graph(self.loaded, locked, self.register, Facts(Hasher(self.state, free_digest=hub.blob_digest)),
                           projectable=lambda: toolchain.projectable() if (toolchain := self.tools.find()) else None,
                           update=self.update_sources)

    @property
    def graph(self) -> Graph:
        return self.layout.graph

    @property
    def variants(self) -> list[Variant]:
        return self.layout.variants

    @cached_property
    def state(self) -> State:
        return State(self.loaded.state_dir)

    # -- toolchain ------------------------------------------------------------------------------

    @cached_property
    def tools(self) -> ProjectTools:
        """The toolchain as the spec configures it (``[toolchain] llama_cpp``, else the managed one)."""
        configured = self.spec.toolchain.llama_cpp
        return ProjectTools(self.loaded.resolve(configured) if configured else None,
                            self.loaded.where("toolchain", "llama_cpp"))

    def find_toolchain(self) -> Toolchain | None:
        return self.tools.find()

    def require_toolchain(self, progress: Progress | None = None) -> Toolchain:
        return self.tools.toolchain(progress)

    def needs_toolchain(self, names: Iterable[str] | None = None) -> bool:
        return any(t.action.tool for t in self.graph.closure(names))

    # -- planning and building ------------------------------------------------------------------

    @cached_property
    def remote(self) -> RemoteCache | None:
        """The shared artifact cache (``$MODELKIT_REMOTE_CACHE``, else ``[cache] remote``), or None."""
        url = choose_url(self.spec.cache.remote)
        if url is None:
            return None
        return RemoteCache(url, notify=lambda line: self.notify(line))

    def executor(self, name: str | None = None) -> Executor | None:
        """Where steps run: ``name`` ("local", "ray", "ray://host:port"), else ``[build] executor``;
        None for this machine. A cluster hands files over through the remote cache, so it needs
        one that this build may upload to."""
        where = f"--executor {name}" if name else self.loaded.where("build", "executor")
        name = name or self.spec.build.executor
        if name == "local":
            return None
        if self.remote is None:
            raise UserError(f"{where}: the ray executor hands files between machines "
                            "through the remote cache, and none is set: set [cache] remote or $MODELKIT_REMOTE_CACHE "
                            "(s3://bucket/prefix, or a file:// folder every node mounts)")
        if not self.remote.pushing:
            raise UserError("--no-push: the ray executor's workers hand their outputs back through the remote cache; "
                            "build without --no-push")
        from modelkit.executors.ray_executor import RayExecutor, address

        return RayExecutor(address(name), self.remote, self.tools)

    def engine(self, reporter: Reporter | None = None, locked: bool = False,
               executor: Executor | None = None) -> Engine:
        """The engine for this project; ``locked``: never compute here what the lock pins from
        another platform (see :class:`Engine`); ``executor``: where steps run (default: here)."""
        artifacts = (self.lock or {}).get("artifacts", {})
        pinned = {name: Pin(entry["platform"], str(entry.get("key"))) for name, entry in artifacts.items()
                  if isinstance(entry, dict) and isinstance(entry.get("platform"), str)}
        return Engine(self.graph, self.root, self.state, tools=self.tools, reporter=reporter,
                      free_digest=hub.blob_digest, remote=self.remote, pinned=pinned, locked=locked,
                      executor=executor, remove_intermediates=self.spec.build.keep == "shipped",
                      disk_hint=self.disk_hint)

    def disk_hint(self) -> str:
        """What would free space, for a step whose outputs cannot fit (said when one cannot)."""
        freed = sum(size for _, size in self.gc(dry_run=True))
        gc = f"`modelkit gc` would free {human_size(freed)}" if freed else "`modelkit gc` would free nothing"
        keep = ("; [build] keep = \"shipped\" drops intermediates (the full-precision GGUFs nothing ships) once read"
                if self.spec.build.keep == "all" else "")
        return f"free space there ({gc}{keep})"

    def plan(self, names: Iterable[str] | None = None, force: Iterable[str] = ()) -> list[Status]:
        return self.engine().plan(names, self._resolve(force))

    def build(self, names: Iterable[str] | None = None, force: Iterable[str] = (),
              reporter: Reporter | None = None, wait: bool = True,
              on_wait: Callable[[str], None] | None = None, keep_going: bool = False,
              locked: bool = False, push: bool = True, uploading: Progress | None = None,
              jobs: int | None = None, executor: str | None = None) -> BuildOutcome:
        """Build under the project's lock (one builder at a time), then update ``modelkit.lock``;
        what was built and what the build decided (:class:`~modelkit.outcome.BuildOutcome`).

        ``locked``: fail, naming the difference, instead of changing the lock file (for CI).
        The lock file is written only after a successful build of every target. ``push``: upload
        what was built to the remote cache, if there is one; the build returns once the uploads
        (which run in the background of the build) are done, ``uploading`` shows their progress.
        ``jobs``: steps at once (default: ``[build] jobs``, else the engine's default);
        ``executor``: where steps run (see :meth:`executor`).
        """
        names = list(names) if names is not None else None
        with FileLock(self.build_lock_path, wait=wait, on_wait=on_wait):
            if locked:
                self._check_locked(("sources", "toolchain"))
            if self.remote is not None:
                self.remote.pushing = push
            runner = self.ran_on = self.executor(executor)
            engine = self.engine(reporter, locked, runner)
            try:
                result = engine.build(names, self._resolve(force), keep_going=keep_going,
                                      jobs=jobs or self.spec.build.jobs)
            finally:
                if runner is not None:
                    runner.close()
            if self.remote is not None:
                self.remote.finish(uploading)
            engine.finish_removals()
            self.loaded.keep_validated()
            if self._evaluated(result):
                self.report_note = self.write_report()
            if result.ok:
                if locked:
                    self._check_locked(("artifacts",), only=names)
                elif names is None:
                    new = self.lock_data()
                    if first_difference(self.lock, new) is not None:
                        write_lock(self.lock_path, new)
                        self.__dict__["lock"] = new
            return self._outcome(names, result)

    def _outcome(self, names: list[str] | None, result: BuildResult) -> BuildOutcome:
        """The result with what the build decided about the variants it made: the record the
        summary renders (it reads the registrations' receipts, small files, and nothing else)."""
        built = {t.name for t in self.graph.closure(names)}
        deferred = {name for name, _ in result.deferred}
        variants = []
        for v in self.variants:
            if v.modelfile_target in built:
                registered = [r for r in v.registrations if r in built and r not in deferred]
                variants.append(VariantOutcome(v.ref, v.modelfile, tuple(Names.registered_ref(r) for r in registered),
                                               self.registered_choice(v) if registered else None,
                                               v.projector.name if v.projector else None))
        quality = None
        if self.evaluates and result.ran:
            json_path, png_path = self.report_paths
            drawn = (json_path,) if self.report_note else (json_path, png_path)
            quality = Quality(self.quality_report(), drawn, self.report_note)
        return BuildOutcome(**vars(result), variants=variants, notes=list(self.layout.notes), quality=quality)

    @property
    def evaluates(self) -> bool:
        """Whether the spec measures or checks its variants ([evaluate])."""
        return any(v.evaluation is not None or v.verdict is not None for v in self.variants)

    @property
    def report_paths(self) -> tuple[Path, Path]:
        return self.loaded.build_dir / "report.json", self.loaded.build_dir / "report.png"

    def quality_report(self) -> dict[str, Any]:
        """The quality ladder (see :mod:`modelkit.report`) from what the evaluation targets wrote."""
        from modelkit.report import assemble

        report = assemble(self.variants, self.spec.evaluate.max_kld, self.layout.searches)
        for row, variant in zip(report["variants"], self.variants):
            choice = self.renderer(variant)
            row["renderer"] = choice.selected if choice else None
        return report

    def write_report(self) -> str | None:
        """Write ``build/report.json`` and ``build/report.png``; why no picture, if there is none."""
        from modelkit.report import write

        return write(self.quality_report(), *self.report_paths)

    def _evaluated(self, result: BuildResult) -> bool:
        """Whether this build measured something new (or the report was never written)."""
        if not self.evaluates:
            return False
        return any(name.startswith(MEASUREMENTS) for name in result.ran) or not self.report_paths[0].is_file()

    def lock_data(self) -> dict[str, Any]:
        """What ``modelkit.lock`` should say now, from the state of the current targets."""
        sources = {}
        for name, source in self.layout.sources.items():
            record = self.state.target(name)
            sources[name] = source.lock_entry(record.outputs if record else {})
        components = sorted({t.action.tool for t in self.graph if t.action.tool})
        toolchain = {c: self.tools.fingerprint(c) for c in components}
        artifacts = {}
        for target in self.graph:
            if target.name in self.layout.sources or not target.action.cacheable:
                continue
            record = self.state.target(target.name)
            if record is not None and not any(Path(out).is_absolute() for out in record.outputs):
                # (outputs outside the project, as a download's in the Hugging Face cache, are
                # where this machine keeps them: the lock names them under ``sources``)
                platform = {"platform": record.record["platform"]} if "platform" in record.record else {}
                artifacts[target.name] = {"key": record.key, "outputs": record.outputs, **platform,
                                          **target.action.lock_entry()}
        return make_lock(sources, toolchain, artifacts, generator=f"modelkit {__version__}")

    def _check_locked(self, sections: tuple[str, ...], only: list[str] | None = None) -> None:
        if self.lock is None:
            raise UserError(f"{self.lock_path}: --locked, but there is no lock file; build once without --locked")
        new = self.lock_data()
        old = self.lock
        if only is not None:
            keep = {t.name for t in self.graph.closure(only)}
            old = {**old, "artifacts": {k: v for k, v in old.get("artifacts", {}).items() if k in keep}}
            new = {**new, "artifacts": {k: v for k, v in new["artifacts"].items() if k in keep}}
        diff = first_difference(old, new, sections)
        if diff:
            raise UserError(f"{self.lock_path.name}: the build would change the lock file: {diff} "
                            "(build without --locked to accept it)")

    def gc(self, dry_run: bool = False) -> list[tuple[str, int]]:
        """Remove what no current target uses: artifacts of targets the spec no longer has, and
        artifact-cache entries for keys no current target was built with. Returns (what, bytes)."""
        removed: list[tuple[str, int]] = []
        current = set(self.graph.targets)
        with FileLock(self.build_lock_path, wait=False):
            for name in self.state.target_names():
                if name in current:
                    continue
                record = self.state.target(name)
                for rel in (record.outputs if record else {}):
                    path = self.root / rel
                    ours = (self.loaded.build_dir, self.loaded.state_dir / "eval")
                    if path.is_file() and any(path.resolve().is_relative_to(folder.resolve()) for folder in ours):
                        removed.append((str(path.relative_to(self.root)), path.stat().st_size))
                        if not dry_run:
                            path.unlink()
                if not dry_run:
                    self.state.forget_target(name)
            keys = {r.key for n in current if (r := self.state.target(n)) is not None}
            cache = self.engine().cache
            assert cache is not None
            for key in cache.keys():  # noqa: SIM118 - the artifact cache's own listing, not a dict
                if key not in keys:
                    size = cache.size(key)
                    removed.append((f"cache entry {key.split(':')[-1][:12]}", size))
                    if not dry_run:
                        cache.remove(key)
        return removed

    @property
    def build_lock_path(self) -> Path:
        """The file that keeps builds of this project one at a time."""
        return self.loaded.state_dir / "build.lock"

    def describe_plan(self, statuses: list[Status]) -> list[dict[str, Any]]:
        """The plan as data (``modelkit plan --json``): each target's status, reason, action, outputs, and
        for a registration the renderer Ollama will use (``go_template``, ``gguf_chat_template``; null
        until the GGUF or the template it depends on is built)."""
        registered = {name: v for v in self.variants for name in v.registrations}
        rows: list[dict[str, Any]] = [{"target": s.name, "status": s.state, "reason": s.reason,
                 "action": self.graph[s.name].action.describe(),
                 "outputs": [str(p) for p in self.graph[s.name].action.outputs()]} for s in statuses]
        for row in rows:
            if row["target"] in registered:
                choice = self.renderer(registered[row["target"]])
                row["renderer"] = choice.selected if choice else None
        return rows

    def variant(self, ref: str) -> Variant:
        """The variant ``model:tag`` (or just ``tag``); a :class:`UserError` listing them if none."""
        variants = {v.ref: v for v in self.variants}
        variant = variants.get(ref) or variants.get(f"{self.spec.ollama_model}:{ref}")
        if variant is None:
            raise UserError(f"no variant '{ref}' in {self.loaded.path.name}; variants: {', '.join(variants)}")
        return variant

    def modelfile(self, variant: Variant) -> RenderModelfile:
        """The step that writes ``variant``'s Modelfile: what it says (FROM, ADAPTER, TEMPLATE,
        parameters) is asked of it, before or after the build."""
        action = self.graph[variant.modelfile_target].action
        if not isinstance(action, RenderModelfile):
            raise TypeError(f"{variant.modelfile_target} is made by {type(action).__name__}, not a Modelfile step")
        return action

    def variant_facts(self, ref: str) -> dict[str, Any]:
        """A built variant (``modelkit inspect model:tag``): its GGUF, Modelfile, template and adapter."""
        variant = self.variant(ref)
        if not variant.gguf.is_file():
            raise UserError(f"{variant.ref} is not built yet ({variant.gguf.name} is missing): run `modelkit build`")
        info: dict[str, Any] = {"variant": variant.ref, **gguf_facts(variant.gguf)}
        modelfile = self.modelfile(variant)
        info["modelfile"] = str(variant.modelfile)
        info["merged_adapter"] = variant.adapter if variant.adapter and not modelfile.adapters else None
        info["adapter_file"] = modelfile.adapters[0] if modelfile.adapters else None
        origin = modelfile.template_origin()
        if origin:
            info["chat_template"] = origin
        if variant.projector is not None and variant.projector.is_file():
            info["projector"] = {"file": str(variant.projector), **gguf_facts(variant.projector).get("projector", {})}
        registered = [r for r in variant.registrations if self.state.target(r) is not None]
        info["registered_as"] = [Names.registered_ref(r) for r in registered]
        choice = self.renderer(variant)
        if choice is not None:
            from modelkit.ollama.engine import without_think

            info["ollama_renders"] = choice.words()
            info["without_think"] = without_think(choice.capabilities)
        return info

    def registered_choice(self, variant: Variant) -> Choice | None:
        """What the build decided Ollama renders ``variant`` with when it registered it (its
        receipt); None where it is not registered, or was by a modelkit that did not keep it."""
        for name in variant.registrations:
            register = self.graph[name].action
            if isinstance(register, Register) and self.state.target(name) is not None:
                return read_receipt(register.out).renders
        return None

    def renderer(self, variant: Variant) -> Choice | None:
        """Which renderer today's Ollama uses for ``variant``: as decided when it was registered,
        else by Ollama's own rules (:mod:`modelkit.ollama.engine`) on what is built — its
        Modelfile's TEMPLATE, or the Jinja its GGUF carries (native chat mode). None until what
        decides it is built (the GGUF, or the template)."""
        from modelkit.ollama.engine import predict_engine

        recorded = self.registered_choice(variant)
        if recorded is not None:
            return recorded
        modelfile = self.modelfile(variant)
        try:
            template = modelfile.resolved_template()
        except OSError:
            return None  # the inherited template is not built yet
        if variant.gguf.is_file():
            jinja = read_header(variant.gguf, index_strings=()).metadata.get("tokenizer.chat_template")
        elif modelfile.inherited is not None and modelfile.inherited.is_file():
            jinja = read_inherited(modelfile.inherited).get("jinja")
        else:
            return None
        builtin = modelfile.builtin() if modelfile.inherited is not None and modelfile.inherited.is_file() else None
        return predict_engine(jinja if isinstance(jinja, str) else None, template,
                              renderer=builtin.renderer if builtin else None,
                              parser=builtin.parser if builtin else None)

    def _resolve(self, names: Iterable[str]) -> list[str]:
        return [self.graph.resolve(n) for n in names]
