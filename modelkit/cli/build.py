"""``modelkit build``, ``plan``, ``watch`` and ``gc``: the commands that work on a project."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from modelkit.core.stamp import read_stamp, recording_reads, write_stamp
from modelkit.errors import UserError

NOOP_STAMP = "noop.json"
"""In the state folder: what the last build that had nothing to do read and printed."""


def add_commands(sub: Any, epilog: str) -> None:
    """Register the project commands on an argparse subparsers object."""
    p = sub.add_parser("build", help="build what is stale", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Bring every target (or the named ones and what they need) up to date.",
                       epilog=epilog)
    _spec_and_targets(p)
    p.add_argument("--force", action="append", default=[], metavar="TARGET",
                   help="rebuild TARGET even if it is up to date (repeatable)")
    p.add_argument("--no-wait", action="store_true", help="fail at once if another build holds the project")
    p.add_argument("-j", "--jobs", type=_positive, metavar="N",
                   help="run up to N independent steps at once (default: [build] jobs in the spec, else one per "
                        "core, at least two); a step still waits until the cores, memory and GPU it needs are "
                        "free, so llama.cpp's binaries share the cores and two big conversions never share too "
                        "little memory; -j 1 builds one step at a time, in order")
    p.add_argument("--executor", type=_executor, metavar="WHERE",
                   help="where steps run: local (default: [build] executor in the spec), ray (the Ray cluster at "
                        "$RAY_ADDRESS, else the one started on this machine) or ray://HOST:PORT (Ray Client); "
                        "on a cluster, steps exchange files through the remote cache ([cache] remote)")
    p.add_argument("-k", "--keep-going", action="store_true", help="build what does not depend on a failed step")
    p.add_argument("-v", "--verbose", action="store_true", help="also list targets that were up to date")
    p.add_argument("--locked", action="store_true",
                   help="fail if the build would change modelkit.lock (for CI: proves the same bytes were built)")
    p.add_argument("--no-push", action="store_true",
                   help="restore from the remote cache ([cache] remote) but do not upload what this build makes")
    p.add_argument("--update", action="store_true",
                   help="resolve Hugging Face revisions afresh instead of using the commits in modelkit.lock")
    _register_options(p, "build everything but do not register with Ollama")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("watch", help="rebuild what is stale whenever the spec or an input changes",
                       description="Watch the spec and every local input; after a quiet period, rebuild exactly "
                                   "what is stale and print one line. Checkpoints still being written are never "
                                   "built. Ctrl-C stops.")
    p.add_argument("spec", nargs="?", type=Path, help="the spec (default ./model.toml)")
    p.add_argument("--quiet", type=float, default=1.0, metavar="SECONDS",
                   help="wait this long after the last change before building (default 1.0)")
    _register_options(p, "do not register with Ollama")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("plan", help="show what would be built and why, without building")
    _spec_and_targets(p)
    p.add_argument("--force", action="append", default=[], metavar="TARGET", help="plan as if TARGET were forced")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("report", help="the quality ladder: size, bits per weight, perplexity, KL divergence, checks",
                       description="Every variant's file size, bits per weight, perplexity (and its change from "
                                   "full precision), mean KL divergence, top-token agreement and prompt checks, from "
                                   "the last build's evaluation ([evaluate] in the spec). Also in build/report.json "
                                   "and build/report.png.")
    p.add_argument("spec", nargs="?", type=Path, help="the spec (default ./model.toml)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("gc", help="remove artifacts and cache entries no current target uses")
    p.add_argument("spec", nargs="?", type=Path, help="the spec (default ./model.toml)")
    p.add_argument("-n", "--dry-run", action="store_true", help="only list what would be removed")
    p.set_defaults(func=cmd_gc)


def _spec_and_targets(p: argparse.ArgumentParser) -> None:
    p.add_argument("args", nargs="*", metavar="[SPEC] TARGET",
                   help="the spec (a model.toml or its folder; default ./model.toml), then targets "
                        "to build (default: all)")
    p.add_argument("-f", "--spec", type=Path, help="the spec file, when targets come first")


def _register_options(p: argparse.ArgumentParser, no_ollama: str) -> None:
    p.add_argument("--no-ollama", dest="register", action="store_const", const="off", help=no_ollama)
    p.add_argument("--register", choices=["api", "cli", "off"],
                   help="how to register with Ollama (overrides [ollama] register): its HTTP API, `ollama create -f`, "
                        "or not at all")


def _executor(text: str) -> str:
    """``--executor``'s value: local, ray or ray://HOST:PORT."""
    if text in ("local", "ray") or re.fullmatch(r"ray://[^/\s:]+:\d+", text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: use local, ray or ray://HOST:PORT (Ray Client's port, 10001 by "
                                     "default)")


def _positive(text: str) -> int:
    """``-j``'s value: a whole number of steps, at least one."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number of steps")
    return value


def _split(args: argparse.Namespace) -> tuple[Path | None, list[str]]:
    """(spec, targets) from the positional arguments."""
    rest = list(args.args)
    spec = args.spec
    if spec is None and rest and (rest[0].endswith(".toml") or Path(rest[0]).is_dir()):
        spec = Path(rest.pop(0))
    return spec, rest


def cmd_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    spec, targets = _split(args)
    key = _noop_key(args, targets)
    if key is not None and (answered := _answer_from_stamp(args, spec, key, started)) is not None:
        return answered
    with recording_reads() as reads:
        return _build(args, spec, targets, key, reads, started)


def _build(args: argparse.Namespace, spec: Path | None, targets: list[str], key: dict[str, Any] | None,
           reads: set[str], started: float) -> int:
    from modelkit.cli.console import console, markup
    from modelkit.cli.reporter import ConsoleReporter, UploadBar, print_build_summary
    from modelkit.cli.tools import install_with_progress
    from modelkit.project import Project

    project = Project.open(spec, update_sources=args.update, register=args.register)
    notes: list[str] = []

    def note(line: str) -> None:
        notes.append(line)
        _say(line)

    project.notify = note
    if project.state.notice:
        notes.append(project.state.notice)
        console.print(markup("[yellow]note:[/] {}", project.state.notice))
    if project.needs_toolchain(targets or None) and project.find_toolchain() is None:
        console.print(markup("[bold]llama.cpp toolchain not installed: building it once (a few minutes)[/]"))
        install_with_progress(None)
    uploading = UploadBar()
    try:
        result = project.build(targets or None, force=args.force, reporter=ConsoleReporter(verbose=args.verbose),
                               wait=not args.no_wait, on_wait=lambda m: console.print(markup("[yellow]{}[/]", m)),
                               keep_going=args.keep_going, locked=args.locked, push=not args.no_push,
                               uploading=uploading, jobs=args.jobs, executor=args.executor)
    finally:
        uploading.close()
    _say_transfers(project)
    if key is None or notes or not _nothing_happened(project, targets, result):
        return print_build_summary(result, time.monotonic() - started)
    with console.capture() as captured:
        code = print_build_summary(result, time.monotonic() - started)
    summary = captured.get()
    console.file.write(summary)
    # inputs and outputs are only stat'ed by a no-op (their digests come from the stat cache)
    touched = {str(p) for t in project.graph.closure(targets or None)
               for p in (*t.action.inputs().values(), *t.action.outputs())}
    write_stamp(project.loaded.state_dir / NOOP_STAMP, key | {"spec": str(project.loaded.path)}, reads | touched,
                {"fresh": result.fresh, "removed": result.removed, "summary": summary.partition("\n")[2]},
                skip=[project.loaded.state_dir],
                same_file=[project.state.path])
    return code


def _noop_key(args: argparse.Namespace, targets: list[str]) -> dict[str, Any] | None:
    """What decides what a build does and prints besides files (see :mod:`modelkit.core.stamp`),
    or None for a build that must plan (``--force``, ``--update``)."""
    if args.force or args.update:
        return None
    from modelkit import environment
    from modelkit.cli.console import console

    return {"command": "build", "targets": targets, "register": args.register, "locked": args.locked,
            "push": not args.no_push, "cwd": os.getcwd(), "python": sys.executable, "env": environment.digest(),
            "console": [console.is_terminal, console.width, console.color_system]}


def _nothing_happened(project: Any, targets: list[str], result: Any) -> bool:
    """Whether the build found everything up to date and asked nothing outside the project's
    files (an Ollama server, a remote cache), so that the next one may be answered by its stamp."""
    remote = project.__dict__.get("remote")
    return (result.ok and not (result.ran or result.deferred or result.unneeded or result.skipped)
            and not project.report_note and not (remote and (remote.restored or remote.missed or remote.bytes_up))
            and not any(t.action.outside for t in project.graph.closure(targets or None)))


def _answer_from_stamp(args: argparse.Namespace, spec_arg: Path | None, key: dict[str, Any],
                       started: float) -> int | None:
    """Print what the last build printed and return 0 when its stamp still holds; else None."""
    from modelkit.core.locks import FileLock
    from modelkit.spec.location import find_spec, state_dir

    try:
        spec = find_spec(spec_arg)
        folder = state_dir(spec)
        if not (folder / NOOP_STAMP).is_file():
            return None
        with FileLock(folder / "build.lock", wait=False):  # a build under way may be changing files
            stamp = read_stamp(folder / NOOP_STAMP, key | {"spec": str(spec)})
    except UserError:
        return None
    if stamp is None:
        return None
    from modelkit.cli.console import console, fresh_line, up_to_date_line

    if args.verbose:
        for name in stamp.lines["fresh"]:
            console.print(fresh_line(name))
    console.print(up_to_date_line(len(stamp.lines["fresh"]), time.monotonic() - started,
                                  len(stamp.lines.get("removed") or [])))
    console.file.write(stamp.lines["summary"])
    return 0


def _say(line: str) -> None:
    from rich.text import Text

    from modelkit.cli.console import console

    console.print(Text.assemble(("note: ", "yellow"), line))


def _say_transfers(project: Any) -> None:
    """One line of what went over the wire, if anything did."""
    from modelkit.cli.console import console
    from modelkit.core.units import human_size

    remote, cluster = project.__dict__.get("remote"), project.ran_on
    if remote is not None and (remote.restored or remote.missed or remote.bytes_up):
        console.print(f"remote cache {remote.url}: {remote.restored} targets restored "
                      f"({human_size(remote.bytes_down)}), {remote.missed} not there "
                      f"(built {'on the cluster' if cluster else 'here'}), uploaded {human_size(remote.bytes_up)}",
                      style="dim")
    if cluster is not None and cluster.summary():
        console.print(cluster.summary(), style="dim")


def cmd_watch(args: argparse.Namespace) -> int:
    from modelkit.cli.console import console
    from modelkit.cli.reporter import shown_path
    from modelkit.watch import Watcher

    if args.quiet < 0:
        raise UserError(f"--quiet {args.quiet}: must be zero or more seconds")
    watcher = Watcher(args.spec, quiet=args.quiet, register=args.register,
                      report=lambda line: console.print(line))
    console.print(f"watching {shown_path(watcher.spec)} and its inputs (Ctrl-C stops)")
    try:
        watcher.run()
    except KeyboardInterrupt:
        console.print("stopped watching; finished artifacts are kept, the step in progress left nothing behind")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from modelkit.cli.reporter import emit, print_plan
    from modelkit.project import Project

    spec, targets = _split(args)
    project = Project.open(spec)
    project.notify = _say
    return emit(project.describe_plan(project.plan(targets or None, force=args.force)), args.json, print_plan)


def cmd_report(args: argparse.Namespace) -> int:
    from modelkit.cli.reporter import emit, print_report
    from modelkit.project import Project

    return emit(Project.open(args.spec).quality_report(), args.json, print_report)


def cmd_gc(args: argparse.Namespace) -> int:
    from modelkit.cli.console import stdout
    from modelkit.core.units import human_size
    from modelkit.project import Project

    removed = Project.open(args.spec).gc(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for what, size in removed:
        stdout.print(f"  {verb} {what} ({human_size(size)})")
    stdout.print(f"{verb} {len(removed)} items, {human_size(sum(s for _, s in removed))} freed")
    return 0
