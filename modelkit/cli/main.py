"""The ``modelkit`` command's entry point: the argument parser and how errors become exit codes.

Thin by design: each command parses, calls the library, prints. Exit status: 0 success, 1 a build
step failed, 2 bad input (spec, arguments, paths), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os

from modelkit.cli import build, init, publish, tools
from modelkit.errors import ModelkitError
from modelkit.version import __version__

EPILOG = """\
examples:
  modelkit init --base unsloth/Llama-3.1-8B-Instruct --adapter ./lora/checkpoint-500
                                          start a project: a commented model.toml that builds
  modelkit init                           the same, answering a few questions (on a terminal)
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
    # modelkit uses no pydantic plugin; looking for them scans every installed package's
    # entry points, a tenth of a no-op build
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):  # argparse leaves it unset when no command was given
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ModelkitError as e:
        from modelkit.cli.reporter import print_error

        print_error(e)
        return e.exit_code
    except KeyboardInterrupt:
        from modelkit.cli.console import console, markup

        console.print(markup("[yellow]interrupted[/]: finished artifacts are kept; "
                             "the step in progress left nothing behind"))
        return 130


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelkit", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Declarative, incremental builds from a Hugging Face model and LoRA adapters "
                    "to GGUF files and Ollama models, through llama.cpp.")
    parser.add_argument("--version", action="version", version=f"modelkit {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    init.add_commands(sub)
    build.add_commands(sub, EPILOG)
    tools.add_commands(sub)
    publish.add_commands(sub)
    return parser
