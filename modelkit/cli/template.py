"""``modelkit template show|translate SOURCE``: look at a model's chat template and its translation.

``translate`` writes the Go template alone, byte for byte, on stdout (or to ``-o FILE``), so it can
be piped into a file for ``[ollama] template_file``, and everything else (the proof summary,
notes) on stderr; it exits non-zero when the proof fails, after printing the failing conversation
and a diff of the two prompts.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_commands(subparsers: Any) -> None:
    """Register ``template show`` and ``template translate`` on an argparse subparsers object."""
    template = subparsers.add_parser("template", help="show a model's chat template or translate it for Ollama",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    sub = template.add_subparsers(dest="template_command", metavar="{show,translate}")
    sub.required = True
    show = sub.add_parser("show", help="print the Jinja chat template and the special tokens (for a GGUF, also "
                                       "what llama.cpp's engine, Ollama's native path, renders from it)")
    show.add_argument("source", type=Path, help="a GGUF file or a Hugging Face model folder")
    show.set_defaults(func=_show)
    tr = sub.add_parser("translate", help="print the proven Ollama TEMPLATE (stdout) and the proof (stderr)")
    tr.add_argument("source", type=Path, help="a GGUF file, a Hugging Face model or adapter folder, or a Jinja file")
    tr.add_argument("--tokens", type=Path, help="the GGUF or folder whose tokenizer goes with SOURCE (default: SOURCE)")
    tr.add_argument("-o", "--output", type=Path, help="write the TEMPLATE to this file instead of stdout")
    tr.set_defaults(func=_translate)


def _show(args: argparse.Namespace) -> int:
    from rich.syntax import Syntax
    from rich.table import Table

    from modelkit.chat_template import read_template
    from modelkit.cli.console import markup
    from modelkit.cli.console import stdout as out

    src = read_template(args.source)
    out.print(markup("[bold]chat template[/bold] from {}", src.origin))
    out.print(Syntax(src.template, "jinja", word_wrap=True, theme="ansi_dark"))
    table = Table(show_header=False, box=None)
    table.add_row("bos_token", repr(src.bos_token))
    table.add_row("eos_token", repr(src.eos_token))
    table.add_row("end-of-turn", ", ".join(repr(t) for t in src.eot_tokens) or "-")
    table.add_row("add_bos_token", "yes (the tokenizer adds BOS itself)" if src.add_bos_token else "no")
    out.print(table)
    if args.source.is_file() and args.source.suffix == ".gguf":
        _show_native(args.source)
    return 0


def _show_native(gguf: Path) -> None:
    """What llama.cpp's engine renders from ``gguf``'s Jinja, against apply_chat_template."""
    from modelkit.cli.console import markup
    from modelkit.cli.console import stdout as out
    from modelkit.steps.native import native_result
    from modelkit.toolchain import find_toolchain

    toolchain = find_toolchain()
    if toolchain is None:
        out.print("llama.cpp's engine: not checked (no toolchain: `modelkit toolchain install`)")
        return
    result = native_result(toolchain, gguf)
    out.print(markup("[bold]llama.cpp's engine[/bold] (Ollama's native chat mode, llama-server): {}",
                     result["summary"]))
    first = result["first_difference"]
    if first:
        out.print(f"  first difference, {first['conversation']}: {first['detail']}")
        out.print(f"  apply_chat_template: {first['expected']!r}")
        out.print(f"  llama.cpp:           {first['llama.cpp']!r}")


def _translate(args: argparse.Namespace) -> int:
    from modelkit.chat_template import choose_template, inherit_template
    from modelkit.cli.console import console as err
    from modelkit.cli.console import markup

    src = choose_template([args.source], [t for t in (args.source, args.tokens) if t is not None][::-1])
    result = inherit_template(src)  # raises TemplateError (with the diff) when not proven
    if args.output is not None:
        args.output.write_bytes(result.go_template.encode("utf-8"))
    else:
        sys.stdout.buffer.write(result.go_template.encode("utf-8"))  # exactly: a newline would change every prompt
        sys.stdout.flush()
    err.print(markup("[green]{}[/green]", result.summary))
    for note in result.notes:
        err.print(f"  note: {note}")
    if result.stop:
        err.print("  stop: " + ", ".join(repr(s) for s in result.stop))
    return 0
