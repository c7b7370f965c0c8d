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

import fcntl
import os
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import Any

from modelkit.engine import BuildResult, Engine, Reporter, Status
from modelkit.lockfile import LOCK_NAME, first_difference, make_lock, read_lock, write_lock
from modelkit.errors import UserError
from modelkit.rules import Layout, build_graph
from modelkit.spec import LoadedSpec, load_spec
from modelkit.state import State
from modelkit.toolchain import Toolchain, find_toolchain, require_toolchain


class Project:
    def __init__(self, loaded: LoadedSpec, update_sources: bool = False, register: str | None = None) -> None:
        """``update_sources``: resolve Hugging Face revisions afresh instead of using the lock;
        ``register``: override ``[ollama] register`` ("api", "cli" or "off")."""
        self.register = register
        self.loaded = loaded
        self.spec = loaded.spec
        self.root = loaded.root
        self.lock_path = loaded.root / LOCK_NAME
        self.update_sources = update_sources
        self._toolchain: Toolchain | None = None

    @classmethod
    def open(cls, spec: str | Path | None = None, update_sources: bool = False,
             register: str | None = None) -> Project:
        return cls(load_spec(Path(spec) if spec is not None else None), update_sources, register)

    @cached_property
    def lock(self) -> dict[str, Any] | None:
        return read_lock(self.lock_path)

    @cached_property
    def layout(self) -> Layout:
        locked = None if self.update_sources or self.lock is None else self.lock.get("sources")
        return build_graph(self.loaded, locked, self.register)

    @property
    def graph(self):  # type: ignore[no-untyped-def]
        return self.layout.graph

    @property
    def variants(self):  # type: ignore[no-untyped-def]
        return self.layout.variants

    @cached_property
    def state(self) -> State:
        return State(self.loaded.state_dir)

    # -- toolchain ------------------------------------------------------------------------------

    def _configured_toolchain(self) -> Path | None:
        configured = self.spec.toolchain.llama_cpp
        return self.loaded.resolve(configured) if configured else None

    def find_toolchain(self) -> Toolchain | None:
        if self._toolchain is None:
            self._toolchain = find_toolchain(self._configured_toolchain(), self.loaded.where("toolchain", "llama_cpp"))
        return self._toolchain

    def require_toolchain(self, progress: Callable[[float | None, str], None] | None = None) -> Toolchain:
        if self._toolchain is None:
            self._toolchain = require_toolchain(self._configured_toolchain(),
                                                self.loaded.where("toolchain", "llama_cpp"), progress)
        return self._toolchain

    def _fingerprint(self, component: str) -> dict[str, Any]:
        toolchain = self.find_toolchain()
        if toolchain is None:
            return {"llama.cpp": "not installed"}
        return toolchain.fingerprint(component)

    def needs_toolchain(self, names: Iterable[str] | None = None) -> bool:
        return any(t.action.tool for t in self.graph.closure(names))

    # -- planning and building ------------------------------------------------------------------

    def engine(self, reporter: Reporter | None = None) -> Engine:
        return Engine(self.graph, self.root, self.state, fingerprint=self._fingerprint,
                      toolchain=self.require_toolchain, reporter=reporter)

    def plan(self, names: Iterable[str] | None = None, force: Iterable[str] = ()) -> list[Status]:
        return self.engine().plan(names, self._resolve(force))

    def build(self, names: Iterable[str] | None = None, force: Iterable[str] = (),
              reporter: Reporter | None = None, wait: bool = True,
              on_wait: Callable[[str], None] | None = None, keep_going: bool = False,
              locked: bool = False) -> BuildResult:
        """Build under the project's lock (one builder at a time), then update ``modelkit.lock``.

        ``locked``: fail, naming the difference, instead of changing the lock file (for CI).
        The lock file is written only after a successful build of every target.
        """
        names = list(names) if names is not None else None
        with BuildLock(self.loaded.state_dir, wait=wait, on_wait=on_wait):
            if locked:
                self._check_locked(("sources", "toolchain"))
            result = self.engine(reporter).build(names, self._resolve(force), keep_going=keep_going)
            if result.ok:
                if locked:
                    self._check_locked(("artifacts",), only=names)
                elif names is None:
                    new = self.lock_data()
                    if first_difference(self.lock, new) is not None:
                        write_lock(self.lock_path, new)
                        self.__dict__["lock"] = new
            return result

    def lock_data(self) -> dict[str, Any]:
        """What ``modelkit.lock`` should say now, from the state of the current targets."""
        sources = {}
        for name, source in self.layout.sources.items():
            record = self.state.target(name)
            files = dict(source.files)
            if record:
                prefix = str(source.snapshot) + "/"
                files.update({path.removeprefix(prefix): digest for path, digest in record.outputs.items()})
            sources[name] = {"repo": source.repo, "revision": source.revision, "commit": source.commit,
                             "files": files}
        components = sorted({t.action.tool for t in self.graph if t.action.tool})
        toolchain = {c: self._fingerprint(c) for c in components}
        artifacts = {}
        for target in self.graph:
            if target.name in self.layout.sources or not target.action.reproducible:
                continue
            record = self.state.target(target.name)
            if record is not None:
                artifacts[target.name] = {"key": record.key, "outputs": record.outputs}
        return make_lock(sources, toolchain, artifacts)

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
        with BuildLock(self.loaded.state_dir, wait=False):
            for name in self.state.target_names():
                if name in current:
                    continue
                record = self.state.target(name)
                for rel in (record.outputs if record else {}):
                    path = self.root / rel
                    if path.is_file() and path.resolve().is_relative_to(self.loaded.build_dir):
                        removed.append((str(path.relative_to(self.root)), path.stat().st_size))
                        if not dry_run:
                            path.unlink()
                if not dry_run:
                    self.state.forget_target(name)
            keys = {r.key for n in current if (r := self.state.target(n)) is not None}
            cache = self.engine().cache
            assert cache is not None
            for key in cache.keys():
                if key not in keys:
                    size = cache.size(key)
                    removed.append((f"cache entry {key.split(':')[-1][:12]}", size))
                    if not dry_run:
                        cache.remove(key)
        return removed

    def _resolve(self, names: Iterable[str]) -> list[str]:
        return [self.graph.resolve(n) for n in names]


class BuildLock:
    """An exclusive lock on the project, holding the owner's pid so others can say who waits on whom."""

    def __init__(self, state_dir: Path, wait: bool = True, on_wait: Callable[[str], None] | None = None) -> None:
        self.path = state_dir / "build.lock"
        self.wait = wait
        self.on_wait = on_wait

    def __enter__(self) -> BuildLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a+")
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self.holder()
            message = f"another modelkit build{f' (pid {holder})' if holder else ''} holds {self.path}"
            if not self.wait:
                self._f.close()
                raise UserError(f"{message}; try again when it ends (or drop --no-wait to wait)") from None
            if self.on_wait:
                self.on_wait(f"{message}; waiting for it to finish")
            fcntl.flock(self._f, fcntl.LOCK_EX)
        self._f.seek(0)
        self._f.truncate()
        self._f.write(f"{os.getpid()}\n")
        self._f.flush()
        return self

    def holder(self) -> str | None:
        try:
            return self.path.read_text().strip() or None
        except OSError:
            return None

    def __exit__(self, *_: object) -> None:
        self._f.seek(0)
        self._f.truncate()
        self._f.close()
