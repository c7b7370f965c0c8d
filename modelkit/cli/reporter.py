"""The rich reporter: what the user sees while building, plans as tables, errors as one line.

rich draws live progress on a terminal; on anything else (CI logs, pipes) the same events come
out as plain lines, one per step, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from modelkit.cli.console import console, fresh_line, markup, stdout, up_to_date_line
from modelkit.core.graph import Target
from modelkit.core.process import Progress as ProgressFn
from modelkit.core.units import human_size
from modelkit.errors import ModelkitError, StepError
from modelkit.outcome import BuildOutcome, Quality

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

class ConsoleReporter:
    """The engine's :class:`~modelkit.core.engine.Reporter` for a terminal (plain lines elsewhere).

    Steps run at once, so on a terminal one live display holds a line per running step (and per
    large input being hashed), each with its own bar; finished steps print above it. Elsewhere every
    event is one line. The engine calls from its worker threads: one lock keeps lines whole.
    """

    def __init__(self, out: Console | None = None, verbose: bool = False) -> None:
        self.out = out or console
        self.verbose = verbose
        self.live = self.out.is_terminal
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last_line: dict[str, float] = {}
        self._notes: set[str] = set()
        self._lock = threading.RLock()

    def hashing(self, target: Target, done: int, total: int) -> None:
        """Reading inputs to digest them (only the first time, or after they changed)."""
        if total < 256 << 20:
            return  # small inputs hash in a blink
        with self._lock:
            if not self.live:
                if done == total:
                    self.out.print(markup("[dim]  hashed {} of inputs of {}[/]", human_size(total), target.name))
                return
            key = f"hash {target.name}"
            task = self._task(key, total)
            assert self._progress is not None
            self._progress.update(task, completed=done, total=total, description=_fit(
                f"hashing inputs of {target.name}: {human_size(done)}/{human_size(total)}"))
            if done >= total:
                self._drop(key)

    def fresh(self, target: Target) -> None:
        if self.verbose:
            self._print(fresh_line(target.name))

    def start(self, target: Target, reason: str) -> None:
        with self._lock:
            self._print(markup("[bold cyan]  ->[/] {} [dim]({})[/]", target.action.describe(), reason))
            if self.live:
                self._task(target.name, None, f"{target.name}: starting")

    def progress(self, target: Target, fraction: float | None, text: str) -> None:
        with self._lock:
            task = self._tasks.get(target.name)
            if self._progress is not None and task is not None:
                if fraction is not None:
                    self._progress.update(task, total=1.0, completed=min(fraction, 1.0))
                self._progress.update(task, description=_fit(f"{target.name}: {text}"))
            elif self.verbose and time.monotonic() - self._last_line.get(target.name, 0.0) > 5:
                self._last_line[target.name] = time.monotonic()
                self.out.print(markup("[dim]      {}: {}[/]", target.name, _fit(text)))

    def note(self, target: Target, text: str) -> None:
        """A line worth keeping, said once per build however many targets say it."""
        with self._lock:
            if text in self._notes:
                return
            self._notes.add(text)
            self._print(markup("[yellow]  note:[/] {}", text))

    def done(self, target: Target, seconds: float, changed: bool) -> None:
        note = "" if changed else " (same bytes as before: dependents stay fresh)"
        with self._lock:
            self._drop(target.name)
            self._print(markup("[green]  ok[/]  {} [dim]{}{}[/]", target.name, _duration(seconds), note))

    def failed(self, target: Target, error: ModelkitError) -> None:
        with self._lock:
            self._drop(target.name)
            self._print(markup("[red]  !![/]  {}", target.name))

    def _print(self, line: Text) -> None:
        """A line above the live display (or plain, without one)."""
        with self._lock:
            (self._progress.console if self._progress is not None else self.out).print(line)

    def _task(self, key: str, total: float | None, description: str = "") -> TaskID:
        """The live line for ``key`` (a running step, an input being hashed), made on first use."""
        if self._progress is None:
            self._progress = _bar(self.out)
            self._progress.start()
        if key not in self._tasks:
            self._tasks[key] = self._progress.add_task(_fit(description), total=total)
        return self._tasks[key]

    def _drop(self, key: str) -> None:
        """Remove ``key``'s line; stop the live display when no line is left."""
        task = self._tasks.pop(key, None)
        if self._progress is None:
            return
        if task is not None:
            self._progress.remove_task(task)
        if not self._tasks:
            self._progress.stop()
            self._progress = None

def _bar(out: Console, percent: bool = True) -> Progress:
    """The live display of running work: a line per task, its description read as plain text.
    (rich's progress machinery is imported here: only a terminal that shows work needs it.)"""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(SpinnerColumn(), TextColumn("{task.description}", style="dim", markup=False),
                    BarColumn(bar_width=24), *([TextColumn("{task.percentage:>3.0f}%")] if percent else []),
                    TimeElapsedColumn(), console=out, transient=True)


def _table(**options: Any) -> Table:
    from rich.table import Table

    return Table(box=None, pad_edge=False, **options)


class UploadBar:
    """The bar for the uploads a build waits for at its end, started on their first report (the
    build's own bar is gone by then: rich draws one live display at a time)."""

    def __init__(self, out: Console | None = None) -> None:
        self.out = out or console
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __call__(self, fraction: float | None, text: str) -> None:
        if not self.out.is_terminal:
            return
        if self._progress is None:
            self._progress = _bar(self.out)
            self._progress.start()
            self._task = self._progress.add_task(text, total=1.0)
        assert self._task is not None
        self._progress.update(self._task, description=_fit(text), completed=fraction or 0.0)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def print_build_summary(outcome: BuildOutcome, elapsed: float) -> int:
    """The end of ``modelkit build``: failures, or what was built and how to run it; the exit code.
    It renders the build's outcome and decides nothing."""
    for _, error in outcome.failed:
        print_error(error)
    if outcome.failed:
        console.print(markup("[red]build failed[/] after {}s: {} built, {} failed, {} skipped; earlier artifacts are "
                             "intact", f"{elapsed:.1f}", len(outcome.ran), len(outcome.failed), len(outcome.skipped)))
        return max(e.exit_code for _, e in outcome.failed)
    if outcome.unneeded:
        console.print(markup("  [dim]not downloaded (everything that reads them was fresh or restored): {}[/]",
                             ", ".join(outcome.unneeded)))
    if not outcome.ran:
        console.print(up_to_date_line(len(outcome.fresh), elapsed, len(outcome.removed)))
    else:
        same = f", {len(outcome.unchanged)} produced identical bytes" if outcome.unchanged else ""
        console.print(markup("[green]built {} targets[/] in {}s ({} were up to date{})", len(outcome.ran),
                             f"{elapsed:.1f}", len(outcome.fresh), same))
    _print_variants(outcome)
    if outcome.quality is not None:
        _print_quality(outcome.quality)
    return 0


def _print_quality(quality: Quality) -> None:
    """The quality ladder after a build that measured or checked something, and where it is kept."""
    print_report(quality.report, console)
    shown = ", ".join(shown_path(p) for p in quality.files)
    console.print(markup("  [dim]report: {} (`modelkit report` prints it again)[/]", shown))
    if quality.note:
        console.print(markup("[yellow]note:[/] {}", quality.note))


def _print_variants(outcome: BuildOutcome) -> None:
    for v in outcome.variants:
        modelfile = shown_path(v.modelfile)
        sees = f"; sees images ({v.projector})" if v.projector else ""
        if v.registered:
            renders = f"; Ollama renders {v.renders.short()}" if v.renders else ""
            console.print(markup("  [bold]{}[/]  registered as {}  [dim]({}{}{})[/]", v.ref, ", ".join(v.registered),
                                 modelfile, renders, sees))
        else:
            console.print(markup("  [bold]{}[/]  [dim]{}; to register: ollama create {} -f {}{}[/]", v.ref, modelfile,
                                 v.ref, modelfile, sees))
    for note in outcome.notes:
        console.print(markup("[yellow]note:[/] {}", note))
    if outcome.deferred:
        first = outcome.deferred[0][1]
        console.print(markup("[yellow]not registered[/] ({} models): {}; start Ollama and run `modelkit build` again "
                             "(everything else is built)", len(outcome.deferred), first.args[0].split(";")[0]))


def print_plan(rows: list[dict[str, Any]], out: Console | None = None) -> None:
    """The plan (:meth:`~modelkit.project.Project.describe_plan`) as a table: target, status, what it does, why."""
    out = out or stdout
    table = _table(show_header=True, header_style="bold")
    for column in ("target", "status", "what", "why"):
        table.add_column(column)
    styles = {"fresh": "green", "stale": "yellow", "pending": "cyan"}
    for row in rows:
        table.add_row(row["target"], Text(row["status"], style=styles.get(row["status"], "")), row["action"],
                      row["reason"])
    out.print(table)
    stale = sum(1 for r in rows if r["status"] == "stale")
    pending = sum(1 for r in rows if r["status"] == "pending")
    if stale or pending:
        out.print(f"{stale} to build, {pending} more if their inputs change, {len(rows) - stale - pending} up to date")
    else:
        out.print(f"everything is up to date ({len(rows)} targets)")


def print_report(report: dict[str, Any], out: Console | None = None) -> None:
    """The quality ladder as a table; ΔPPL is against the full-precision model of each variant."""
    out = out or stdout
    references = report.get("references") or ({report["reference"]["model"]: report["reference"]}
                                               if report.get("reference") else {})
    table = _table(show_header=True, header_style="bold")
    for column in ("variant", "quant", "size", "bpw", "PPL", "ΔPPL", "mean KLD", "top-1", "prompts"):
        table.add_column(column, justify="left" if column in ("variant", "quant") else "right")
    for row in report["variants"]:
        base = (references.get(row["ref"].split(":")[0]) or {}).get("ppl")
        table.add_row(row["ref"], row["quant"], human_size(row["bytes"]) if row["bytes"] else "-",
                      _num(row["bits_per_weight"], 2), _num(row["ppl"], 3),
                      _num(row["ppl"] - base, 3, signed=True) if row["ppl"] is not None and base else "-",
                      _num(row["kld_mean"], 4), f"{row['top1_agreement']:.1%}" if row["top1_agreement"] else "-",
                      f"{row['prompts_passed']}/{row['prompts_total']}" if row["prompts_total"] else "-")
    out.print(table)
    for model, ref in references.items():
        out.print(f"{model}: full precision {ref.get('quant') or ''} PPL {_num(ref.get('ppl'), 3)}, "
                  f"{human_size(ref['bytes']) if ref.get('bytes') else '-'} (backend: {ref.get('backend') or '-'})")
    for stem, search in (report.get("search") or {}).items():
        chosen = next((c for c in search["candidates"] if c["name"] == search["chosen"]), None)
        choice = (f"chose {chosen['name']} ({human_size(chosen['bytes'])}, mean KLD {chosen['kld_mean']:.4f})"
                  if chosen else "nothing met the target")
        out.print(f"search {stem}: {len(search['candidates'])} candidates for "
                  f"{', '.join(f'{k} {v}' for k, v in sorted(search['target'].items()))} (and "
                  f"{search.get('screened', 0)} screened on a quarter of the text), {len(search['pareto'])} on "
                  f"the Pareto front; {choice}; {search['measured_now']} quantized and measured now in "
                  f"{search['seconds']} s")
    if not any(row["kld_mean"] is not None for row in report["variants"]):
        out.print("nothing evaluated yet: set [evaluate] text in the spec and run `modelkit build`")


def _num(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def print_facts(info: dict[str, Any], out: Console | None = None) -> None:
    """A two-column table of facts, sizes made readable, empty ones left out."""
    out = out or stdout
    table = _table(show_header=False)
    table.add_column(style="bold", justify="right")
    table.add_column()
    for key, value in info.items():
        if value in (None, [], ""):
            continue
        if key == "size_bytes":
            key, value = "size", human_size(value)
        elif isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)


def print_error(error: BaseException) -> None:
    """One line per problem, then (for a failed step) the end of its log and where the rest is."""
    for line in str(error).splitlines() or [type(error).__name__]:
        console.print(Text.assemble(("error: ", "bold red"), line), soft_wrap=True)
    if isinstance(error, StepError):
        if error.tail:
            console.print(markup("[dim]last lines of the log:[/]"))
            for line in error.tail:
                console.print(Text("  " + line, style="dim"))
        if error.log:
            console.print(markup("[dim]full log: {}[/]", error.log))


@contextmanager
def transient_progress(description: str) -> Iterator[ProgressFn]:
    """A progress bar for one long job outside a build (installing the toolchain)."""
    with _bar(console, percent=False) as progress:
        task = progress.add_task(description, total=None)

        def report(fraction: float | None, text: str) -> None:
            if fraction is None:
                progress.update(task, description=text[:70])
            else:
                progress.update(task, description=text[:70], total=1.0, completed=fraction)

        yield report


def shown_path(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _fit(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def emit(data: Any, as_json: bool, show: Callable[[Any], None]) -> int:
    """A command's answer: ``data`` as JSON on stdout (``--json``), or ``show``'s picture of it."""
    if as_json:
        json_dump(data)
    else:
        show(data)
    return 0


def json_dump(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
