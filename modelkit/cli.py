"""The ``modelkit`` command. Thin by design: parse, call the library, print.

Exit status: 0 success, 1 a build step failed, 2 bad input (spec, arguments, paths), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from modelkit import __version__
from modelkit.errors import ModelkitError, UserError

EPILOG = """\
examples:
  modelkit build                          build everything model.toml asks for
  modelkit build examples/tiny/model.toml build another project
  modelkit plan --json                    what would run, and why, as JSON
  modelkit build gguf:base.Q4_K_M         build one target and what it needs
  modelkit build --force template         rebuild one target even if fresh
  modelkit toolchain install              build the managed llama.cpp now

A target is rebuilt only when the content of its inputs, its parameters or the
toolchain changed, or its outputs are missing or were modified. State lives in
.modelkit/ beside the spec; step logs in .modelkit/logs/.
"""


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ModelkitError as e:
        from modelkit.ui import print_error

        print_error(e)
        return e.exit_code
    except KeyboardInterrupt:
        from modelkit.ui import console

        console.print("[yellow]interrupted[/]: finished artifacts are kept; the step in progress left nothing behind")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelkit", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Declarative, incremental builds from a Hugging Face model and LoRA adapters "
                    "to GGUF files and Ollama models, through llama.cpp.")
    parser.add_argument("--version", action="version", version=f"modelkit {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")

    def spec_and_targets(p: argparse.ArgumentParser) -> None:
        p.add_argument("args", nargs="*", metavar="[SPEC] TARGET",
                       help="the spec (a model.toml or its folder; default ./model.toml), then targets "
                            "to build (default: all)")
        p.add_argument("-f", "--spec", type=Path, help="the spec file, when targets come first")

    p = sub.add_parser("build", help="build what is stale", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Bring every target (or the named ones and what they need) up to date.",
                       epilog=EPILOG)
    spec_and_targets(p)
    p.add_argument("--force", action="append", default=[], metavar="TARGET",
                   help="rebuild TARGET even if it is up to date (repeatable)")
    p.add_argument("--no-wait", action="store_true", help="fail at once if another build holds the project")
    p.add_argument("-k", "--keep-going", action="store_true", help="build what does not depend on a failed step")
    p.add_argument("-v", "--verbose", action="store_true", help="also list targets that were up to date")
    p.add_argument("--locked", action="store_true",
                   help="fail if the build would change modelkit.lock (for CI: proves the same bytes were built)")
    p.add_argument("--update", action="store_true",
                   help="resolve Hugging Face revisions afresh instead of using the commits in modelkit.lock")
    p.add_argument("--no-ollama", dest="register", action="store_const", const="off",
                   help="build everything but do not register with Ollama")
    p.add_argument("--register", choices=["api", "cli", "off"],
                   help="how to register with Ollama (overrides [ollama] register): its HTTP API, `ollama create -f`, "
                        "or not at all")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("watch", help="rebuild what is stale whenever the spec or an input changes",
                       description="Watch the spec and every local input; after a quiet period, rebuild exactly "
                                   "what is stale and print one line. Checkpoints still being written are never "
                                   "built. Ctrl-C stops.")
    p.add_argument("spec", nargs="?", type=Path, help="the spec (default ./model.toml)")
    p.add_argument("--quiet", type=float, default=1.0, metavar="SECONDS",
                   help="wait this long after the last change before building (default 1.0)")
    p.add_argument("--no-ollama", dest="register", action="store_const", const="off",
                   help="do not register with Ollama")
    p.add_argument("--register", choices=["api", "cli", "off"], help="how to register with Ollama")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("plan", help="show what would be built and why, without building")
    spec_and_targets(p)
    p.add_argument("--force", action="append", default=[], metavar="TARGET", help="plan as if TARGET were forced")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("inspect", help="describe a GGUF file or a built variant",
                       description="Architecture, size, quantization, context length, chat template and adapter "
                                   "of a GGUF file, or of a built variant (model:tag) of the spec.")
    p.add_argument("what", help="a .gguf file, or a variant such as support-bot:q4_k_m (or just q4_k_m)")
    p.add_argument("-f", "--spec", type=Path, help="the spec the variant belongs to (default ./model.toml)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("gc", help="remove artifacts and cache entries no current target uses")
    p.add_argument("spec", nargs="?", type=Path, help="the spec (default ./model.toml)")
    p.add_argument("-n", "--dry-run", action="store_true", help="only list what would be removed")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("schema", help="write schemas/model.schema.json (the JSON Schema of model.toml)")
    p.add_argument("-o", "--output", type=Path, default=Path("schemas/model.schema.json"),
                   help="where to write it (default: schemas/model.schema.json; - for stdout)")
    p.add_argument("--check", action="store_true", help="exit 1 if the file is not up to date")
    p.set_defaults(func=cmd_schema)

    tc = sub.add_parser("toolchain", help="install or show the llama.cpp toolchain")
    tcsub = tc.add_subparsers(metavar="ACTION")
    p = tcsub.add_parser("install", help="build the managed llama.cpp into the user cache",
                         description="Download the pinned llama.cpp sources and build llama-quantize and "
                                     "llama-completion with CMake (CUDA when nvcc and a GPU are present).")
    p.add_argument("--backend", choices=["cpu", "cuda"], help="default: cuda if nvcc and a GPU are found, else cpu")
    p.add_argument("--force", action="store_true", help="rebuild even if installed")
    p.set_defaults(func=cmd_toolchain_install)
    p = tcsub.add_parser("show", help="print the toolchain modelkit would use")
    p.add_argument("spec", nargs="?", type=Path, help="a spec whose [toolchain] to honour")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_toolchain_show)
    tc.set_defaults(func=lambda args: (tc.print_help(), 2)[1])

    try:
        from modelkit.chat_template import add_template_commands
    except ImportError:  # pragma: no cover - the package is part of modelkit
        pass
    else:
        add_template_commands(sub)
    return parser


def _split(args: argparse.Namespace) -> tuple[Path | None, list[str]]:
    """(spec, targets) from the positional arguments."""
    rest = list(args.args)
    spec = args.spec
    if spec is None and rest and (rest[0].endswith(".toml") or Path(rest[0]).is_dir()):
        spec = Path(rest.pop(0))
    return spec, rest


def cmd_build(args: argparse.Namespace) -> int:
    from modelkit.project import Project
    from modelkit.ui import ConsoleReporter, console, print_error

    spec, targets = _split(args)
    project = Project.open(spec, update_sources=args.update, register=args.register)
    if project.state.notice:
        console.print(f"[yellow]note:[/] {project.state.notice}")
    reporter = ConsoleReporter(verbose=args.verbose)
    started = time.monotonic()
    if project.needs_toolchain(targets or None) and project.find_toolchain() is None:
        console.print("[bold]llama.cpp toolchain not installed: building it once (a few minutes)[/]")
        _install_with_progress(None)
    result = project.build(targets or None, force=args.force, reporter=reporter, wait=not args.no_wait,
                           on_wait=lambda m: console.print(f"[yellow]{m}[/]"), keep_going=args.keep_going,
                           locked=args.locked)
    elapsed = time.monotonic() - started
    for _, error in result.failed:
        print_error(error)
    if result.failed:
        codes = [e.exit_code for _, e in result.failed]
        console.print(f"[red]build failed[/] after {elapsed:.1f}s: {len(result.ran)} built, "
                      f"{len(result.failed)} failed, {len(result.skipped)} skipped; earlier artifacts are intact")
        return max(codes)
    if not result.ran:
        console.print(f"[green]everything is up to date[/] ({len(result.fresh)} targets, {elapsed:.2f}s)")
    else:
        same = f", {len(result.unchanged)} produced identical bytes" if result.unchanged else ""
        console.print(f"[green]built {len(result.ran)} targets[/] in {elapsed:.1f}s "
                      f"({len(result.fresh)} were up to date{same})")
    _print_variants(project, targets, result)
    return 0


def _print_variants(project, targets: list[str], result) -> None:  # type: ignore[no-untyped-def]
    from modelkit.ui import console

    built = {t.name for t in project.graph.closure(targets or None)}
    deferred = dict(result.deferred)
    for v in project.variants:
        if v.modelfile_target not in built:
            continue
        modelfile = _show(project.graph[v.modelfile_target].action.out)
        registered = [r for r in v.registrations if r in built and r not in deferred]
        if registered:
            names = ", ".join(r.removeprefix("ollama:") for r in registered)
            console.print(f"  [bold]{v.ref}[/]  registered as {names}  [dim]({modelfile})[/]")
        else:
            console.print(f"  [bold]{v.ref}[/]  [dim]{modelfile}; to register: ollama create {v.ref} -f {modelfile}[/]")
    if deferred:
        first = next(iter(deferred.values()))
        console.print(f"[yellow]not registered[/] ({len(deferred)} models): {first.args[0].split(';')[0]}; "
                      "start Ollama and run `modelkit build` again (everything else is built)")


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def cmd_watch(args: argparse.Namespace) -> int:
    from modelkit.ui import console
    from modelkit.watch import Watcher

    if args.quiet < 0:
        raise UserError(f"--quiet {args.quiet}: must be zero or more seconds")
    watcher = Watcher(args.spec, quiet=args.quiet, register=args.register,
                      report=lambda line: console.print(line, markup=False, highlight=False))
    console.print(f"watching {_show(watcher.spec)} and its inputs (Ctrl-C stops)")
    try:
        watcher.run()
    except KeyboardInterrupt:
        console.print("stopped watching; finished artifacts are kept, the step in progress left nothing behind")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from modelkit.project import Project
    from modelkit.ui import json_dump, print_plan

    spec, targets = _split(args)
    project = Project.open(spec)
    statuses = project.plan(targets or None, force=args.force)
    if args.json:
        json_dump([{"target": s.name, "status": s.state, "reason": s.reason,
                    "action": project.graph[s.name].action.describe(),
                    "outputs": [str(p) for p in project.graph[s.name].action.outputs()]} for s in statuses])
    else:
        print_plan(statuses)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from modelkit.inspect import inspect_gguf, inspect_variant
    from modelkit.ui import json_dump, print_facts

    path = Path(args.what)
    if args.what.endswith(".gguf") or path.is_file():
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        info = inspect_gguf(path)
    else:
        from modelkit.project import Project

        info = inspect_variant(Project.open(args.spec), args.what)
    if args.json:
        json_dump(info)
    else:
        print_facts(info)
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    from modelkit.project import Project
    from modelkit.ui import stdout

    removed = Project.open(args.spec).gc(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for what, size in removed:
        stdout.print(f"  {verb} {what} ({_size(size)})")
    stdout.print(f"{verb} {len(removed)} items, {_size(sum(s for _, s in removed))} freed")
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def cmd_schema(args: argparse.Namespace) -> int:
    from modelkit.spec import schema_text

    text = schema_text()
    if str(args.output) == "-":
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.output.read_text() if args.output.is_file() else ""
        if current != text:
            raise UserError(f"{args.output} is out of date: run `modelkit schema`")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


def _install_with_progress(backend: str | None, force: bool = False):  # type: ignore[no-untyped-def]
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from modelkit.toolchain import install
    from modelkit.ui import console

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=24),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("installing llama.cpp", total=None)

        def report(fraction: float | None, text: str) -> None:
            progress.update(task, description=text[:70], **({"total": 1.0, "completed": fraction}
                                                           if fraction is not None else {}))

        toolchain = install(backend=backend, progress=report, force=force)
    console.print(f"[green]toolchain ready[/]: {toolchain.version} ({toolchain.backend}) in {toolchain.bin_dir.parent}")
    return toolchain


def cmd_toolchain_install(args: argparse.Namespace) -> int:
    _install_with_progress(args.backend, force=args.force)
    return 0


def cmd_toolchain_show(args: argparse.Namespace) -> int:
    from modelkit.toolchain import detect_backend, find_toolchain, managed_dir
    from modelkit.ui import json_dump, stdout

    configured, where = None, "spec"
    if args.spec is not None:
        from modelkit.spec import load_spec

        loaded = load_spec(args.spec, check_files=False)
        if loaded.spec.toolchain.llama_cpp:
            configured = loaded.resolve(loaded.spec.toolchain.llama_cpp)
            where = loaded.where("toolchain", "llama_cpp")
    toolchain = find_toolchain(configured, where)
    if toolchain is None:
        if args.json:
            json_dump({"installed": False, "backend": detect_backend(), "path": str(managed_dir(detect_backend()))})
        else:
            stdout.print(f"not installed; `modelkit toolchain install` builds it into {managed_dir(detect_backend())}")
        return 1
    info = {"installed": True, "origin": toolchain.origin, "version": toolchain.version,
            "backend": toolchain.backend, "source": str(toolchain.source), "bin": str(toolchain.bin_dir),
            "convert_hf_to_gguf": str(toolchain.convert_hf), "convert_lora_to_gguf": str(toolchain.convert_lora),
            "llama-quantize": str(toolchain.quantize), "llama-completion": str(toolchain.completion),
            "python": toolchain.python, "fingerprint": {c: toolchain.fingerprint(c) for c in ("convert", "quantize")}}
    if args.json:
        json_dump(info)
    else:
        for key in ("origin", "version", "backend", "source", "llama-quantize", "llama-completion", "python"):
            stdout.print(f"[bold]{key:>16}[/]  {info[key]}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
