"""``modelkit watch``: rebuild what is stale as the spec and the inputs change.

The watcher listens for file events (watchdog) on the spec's folder and on every local input:
the base model folder or GGUF, each adapter folder (or, for a checkpoint pattern, the folder the
checkpoints appear in), the template file. After a quiet period with no events it runs an
ordinary build, so exactly what is stale is rebuilt, and prints one line about it.

- Its own outputs (the build folder, ``.modelkit/``) and editors' temporary files never trigger
  a round; a round that finds nothing to do prints nothing.
- An event that arrives during a build is not lost: another round follows.
- A checkpoint still being written is never converted: the spec resolves a pattern to the
  newest *complete* checkpoint (see :mod:`modelkit.formats.checkpoints`), and a fixed adapter folder that
  is incomplete is reported and waited for.
- A failed build or an invalid spec is shown, and the watcher waits for the next change.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from modelkit.errors import ModelkitError
from modelkit.formats.checkpoints import is_pattern
from modelkit.spec import find_spec

EDITOR_TEMPORARIES = ("*.swp", "*.swx", "*.swo", "*~", ".#*", "4913", "*.tmp", "*.part", ".~lock.*",
                      "*.kate-swp", "*___jb_tmp___", "*___jb_old___")


@dataclass
class Round:
    """What one rebuild did, for the status line (and for tests)."""

    trigger: list[str]
    ran: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None
    deferred: list[str] = field(default_factory=list)

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S")
        what = ", ".join(self.trigger[:3]) + (f" and {len(self.trigger) - 3} more" if len(self.trigger) > 3 else "")
        head = f"{stamp}  {what or 'start'}: "
        if self.error:
            return head + f"failed: {self.error.splitlines()[0]}"
        built = ", ".join(self.ran) if len(self.ran) <= 4 else f"{', '.join(self.ran[:4])} and {len(self.ran) - 4} more"
        tail = f"; not registered: {self.deferred[0]}" if self.deferred else ""
        return head + f"rebuilt {built} in {self.seconds:.1f}s{tail}"


class Watcher:
    """Watches one spec; :meth:`run` loops until ``stop`` is set (or Ctrl-C)."""

    def __init__(self, spec: Path | None, quiet: float = 1.0, register: str | None = None,
                 report: Callable[[str], None] = print, on_round: Callable[[Round], None] | None = None) -> None:
        self.spec = find_spec(spec)
        self.quiet = quiet
        self.register = register
        self.report = report
        self.on_round = on_round
        self._lock = threading.Lock()
        self._changed: dict[str, float] = {}
        self._last_event = 0.0
        self._wake = threading.Event()
        self._ignored: list[Path] = []
        self._files: set[Path] = set()  # input files (outside input folders)
        self._folders: set[Path] = set()  # input folders: any change inside counts
        self._observer: BaseObserver | None = None
        self._watched: set[tuple[str, bool]] = set()

    # -- events ----------------------------------------------------------------------------------

    def _on_event(self, event: FileSystemEvent) -> None:
        if event.is_directory and event.event_type == "modified":
            return
        paths = [event.src_path, event.dest_path]
        relevant = [Path(str(p)) for p in paths if p and self._relevant(Path(str(p)))]
        if not relevant:
            return
        with self._lock:
            for path in relevant:
                self._changed[self._show(path)] = time.monotonic()
            self._last_event = time.monotonic()
        self._wake.set()

    def _relevant(self, path: Path) -> bool:
        """An input changed: the spec, an input file, or anything inside an input folder."""
        if any(fnmatch.fnmatch(path.name, p) for p in EDITOR_TEMPORARIES) or ".modelkit-tmp-" in path.name:
            return False
        if any(path == d or d in path.parents for d in self._ignored):
            return False
        return path == self.spec or path in self._files or any(d in path.parents for d in self._folders)

    def _show(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.spec.parent))
        except ValueError:
            return str(path)

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        self._observer = Observer()
        self._observer.start()
        try:
            trigger: list[str] = []
            while not stop.is_set():
                self._reschedule()
                self._build(trigger)
                trigger = self._wait_for_changes(stop)
        finally:
            self._observer.stop()
            self._observer.join(timeout=5)

    def _wait_for_changes(self, stop: threading.Event) -> list[str]:
        """Block until something changed and then nothing more for the quiet period."""
        while not stop.is_set():
            with self._lock:
                pending = bool(self._changed)
                quiet_for = time.monotonic() - self._last_event
            if pending and quiet_for >= self.quiet:
                with self._lock:
                    changed = sorted(self._changed, key=self._changed.__getitem__)
                    self._changed.clear()
                return changed
            self._wake.wait(timeout=min(0.1, self.quiet) if pending else 0.5)
            self._wake.clear()
        return []

    def _build(self, trigger: list[str]) -> None:
        from modelkit.core.engine import QuietReporter
        from modelkit.project import Project

        started = time.monotonic()
        result_round = Round(trigger)
        try:  # a new project each round: the spec may have changed, and Ollama may have started
            project = Project.open(self.spec, register=self.register)
            self._ignored = [project.loaded.build_dir, project.loaded.state_dir]
            result = project.build(reporter=QuietReporter())
            result_round.ran = result.ran
            result_round.deferred = [str(e).split(";")[0] for _, e in result.deferred]
            if result.failed:
                result_round.error = str(result.failed[0][1])
        except ModelkitError as e:
            result_round.error = str(e)
        result_round.seconds = time.monotonic() - started
        if result_round.ran or result_round.error:
            self.report(result_round.line())
        if self.on_round:
            self.on_round(result_round)

    def _reschedule(self) -> None:
        """Watch the folders the current spec reads (they change when the spec does)."""
        files, folders = {self.spec}, set()
        try:
            from modelkit.spec import load_spec

            loaded = load_spec(self.spec, check_files=False)
        except ModelkitError:
            loaded = None
        if loaded is not None:
            spec = loaded.spec
            folders |= {loaded.resolve(p) for p in (spec.base.path, spec.base.config) if p is not None}
            files |= {loaded.resolve(p) for p in (spec.base.gguf, spec.ollama.template_file) if p is not None}
            for adapter in spec.adapters:
                if adapter.path is None:
                    continue
                folder = loaded.root / adapter.path.expanduser()
                while is_pattern(folder):  # checkpoints appear below the pattern's fixed part
                    folder = folder.parent
                folders.add(folder.resolve())
        self._files, self._folders = files, folders
        # Files are watched through their folder (editors replace files by renaming over them).
        wanted = {(str(f.parent), False) for f in files} | {(str(d), True) for d in folders}
        wanted = {(p, r) for p, r in wanted if Path(p).is_dir()}
        if wanted == self._watched:
            return
        assert self._observer is not None
        self._observer.unschedule_all()
        handler = _Handler(self._on_event)
        for path, recursive in sorted(wanted):
            self._observer.schedule(handler, path, recursive=recursive)
        self._watched = wanted


class _Handler(FileSystemEventHandler):
    def __init__(self, callback: Callable[[FileSystemEvent], None]) -> None:
        self.callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        self.callback(event)
