"""``modelkit inspect``, ``schema``, ``toolchain`` and ``template``: commands that need no build."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from modelkit.cli import template
from modelkit.errors import UserError


def add_commands(sub: Any) -> None:
    """Register the tool commands on an argparse subparsers object."""
    p = sub.add_parser("inspect", help="describe a GGUF file or a built variant",
                       description="Architecture, size, quantization, context length, chat template and adapter "
                                   "of a GGUF file, or of a built variant (model:tag) of the spec.")
    p.add_argument("what", help="a .gguf file, or a variant such as support-bot:q4_k_m (or just q4_k_m)")
    p.add_argument("-f", "--spec", type=Path, help="the spec the variant belongs to (default ./model.toml)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_inspect)

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

    template.add_commands(sub)


def cmd_inspect(args: argparse.Namespace) -> int:
    from modelkit.cli.reporter import emit, print_facts
    from modelkit.formats.gguf import gguf_facts

    path = Path(args.what)
    if args.what.endswith(".gguf") or path.is_file():
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        info = gguf_facts(path)
    else:
        from modelkit.project import Project

        info = Project.open(args.spec).variant_facts(args.what)
    return emit(info, args.json, print_facts)


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


def install_with_progress(backend: str | None, force: bool = False) -> Any:
    """Build the managed toolchain with a progress bar; return it."""
    from modelkit.cli.console import console, markup
    from modelkit.cli.reporter import transient_progress
    from modelkit.toolchain import install

    with transient_progress("installing llama.cpp") as report:
        toolchain = install(backend=backend, progress=report, force=force)
    console.print(markup("[green]toolchain ready[/]: {} ({}) in {}", toolchain.version, toolchain.backend,
                         toolchain.bin_dir.parent))
    return toolchain


def cmd_toolchain_install(args: argparse.Namespace) -> int:
    install_with_progress(args.backend, force=args.force)
    return 0


def cmd_toolchain_show(args: argparse.Namespace) -> int:
    from modelkit.cli.console import markup, stdout
    from modelkit.cli.reporter import json_dump
    from modelkit.toolchain import describe_toolchain, detect_backend, find_toolchain, managed_dir

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
    info = describe_toolchain(toolchain)
    if args.json:
        json_dump(info)
    else:
        for key in ("origin", "version", "backend", "source", "llama-quantize", "llama-completion", "python"):
            stdout.print(markup("[bold]{}[/]  {}", f"{key:>16}", info[key]))
    return 0
