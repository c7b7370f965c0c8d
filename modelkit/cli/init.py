"""``modelkit init``: start a project, a commented model.toml that builds as written, from flags or a few questions.

Thin: the flags (or, on a terminal without ``--base``, the answers) go to :mod:`modelkit.starter`,
which reads the base and the adapters, chooses and validates; this prints what it chose (stderr,
one line per choice) and where it wrote.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from modelkit.errors import UserError

if TYPE_CHECKING:
    from modelkit.starter import Request

T = TypeVar("T")

EXAMPLES = """\
examples:
  modelkit init --base unsloth/Llama-3.1-8B-Instruct --adapter ./lora/checkpoint-500
  modelkit init --base ./models/Qwen2.5-7B-Instruct --quant Q4_K_M --quant Q8_0
  modelkit init --base ./llama-3.1-8b.Q8_0.gguf --name my-llama -o llama/model.toml
  modelkit init                 on a terminal: asks for the base, adapter, name and quantizations

It reads the base (config.json, a GGUF's header, or a Hub repo's config.json and
tokenizer_config.json) to choose the defaults, and says each choice on stderr: the
architecture, whether it has a chat template (template = "inherit"), whether it sees
images ([vision]), the convert outtype that keeps its weights as they are, the name.
The file is validated as `modelkit build` validates it before it is written, and an
existing file is never replaced without --force.
"""


def add_commands(sub: Any) -> None:
    """Register ``init`` on an argparse subparsers object."""
    p = sub.add_parser("init", help="start a project: write a commented model.toml for a base model (and a LoRA)",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
                       description="Write a commented model.toml that builds as written, from a base model and "
                                   "LoRA adapters: from the flags, or on a terminal without --base, from a few "
                                   "questions.")
    p.add_argument("--base", metavar="REPO|PATH",
                   help="the base model: a Hugging Face repo id (owner/name), a local Hugging Face model folder, "
                        "or a .gguf file")
    p.add_argument("--adapter", action="append", default=[], metavar="PATH",
                   help="a PEFT LoRA folder (e.g. ./lora/checkpoint-500, or ./out/checkpoint-* for the newest "
                        "complete one); repeatable: each adapter becomes its own Ollama model")
    p.add_argument("--name", help="the project's name, the Ollama model name (default: from the adapter's folder, "
                                  "else the base's name)")
    p.add_argument("--quant", action="append", metavar="TYPE",
                   help="a llama.cpp quantization type to make, e.g. Q4_K_M (repeatable; 'none' ships the "
                        "full-precision GGUF; default Q4_K_M, or none for a GGUF base already quantized)")
    p.add_argument("--config", type=Path, metavar="FOLDER",
                   help="with a .gguf base and an adapter: a folder holding the base model's config.json "
                        "(default: the GGUF's folder, if it holds one)")
    p.add_argument("-o", "--output", type=Path, default=Path("model.toml"),
                   help="the file to write (default: model.toml; a folder: its model.toml)")
    p.add_argument("--force", action="store_true", help="replace the file if it exists")
    p.set_defaults(func=cmd_init)


def cmd_init(args: argparse.Namespace) -> int:
    from modelkit import starter
    from modelkit.cli.console import console, markup
    from modelkit.cli.console import stdout as out

    output = starter.spec_path(args.output)
    starter.refuse_existing(output, args.force)  # before any question or download
    request = starter.Request(base=args.base, output=output, adapters=list(args.adapter), name=args.name,
                              quants=args.quant, config=args.config)
    if request.base is None:
        if not sys.stdin.isatty():
            raise UserError(starter.missing_base(request.adapters))
        request = ask(request)
    started = starter.start(request)
    for line in started.said:
        console.print(line)
    starter.write_spec(output, started.text, args.force)
    out.print(markup("[green]wrote {}[/]: build it with `modelkit build{}`", output,
                     "" if output == Path("model.toml") else f" {output}"))
    return 0


def ask(request: Request) -> Request:
    """The questions, each with its default shown ([…]; Enter takes it), asked again until the answer
    is one the spec can use; flags already given are not asked."""
    from dataclasses import replace

    from modelkit import starter

    base = question("Base model: a Hugging Face repo id (owner/name), a model folder or a .gguf file",
                    _base_default(request), starter.parse_base)
    adapters = request.adapters
    if not adapters:
        answer = question("LoRA adapter: a PEFT folder ('none' for none)", starter.guess_adapter(Path.cwd()) or "none",
                          lambda a: a if a.lower() == "none" else starter.check_adapter(a).given)
        adapters = [] if answer.lower() == "none" else [answer]
    refs = [starter.check_adapter(a) for a in adapters]
    name = request.name or question("Name (the Ollama model)", starter.default_name(base, refs)[0], starter.check_name)
    quants = request.quants
    if quants is None:
        shown = " ".join(starter.default_quants(base)) or "none"
        quants = question("Quantization types (space-separated, 'none' for none)", shown,
                          lambda a: starter.check_quants([a]))
    return replace(request, base=base.given, adapters=adapters, name=name, quants=quants)


def _base_default(request: Request) -> str | None:
    """The base the adapter names (its adapter_config.json), where that is a repo id or a folder here;
    else the one model folder here."""
    from modelkit import starter

    if request.adapters:
        try:
            claimed = starter.claimed_base(starter.check_adapter(request.adapters[0]))
            if claimed:
                return starter.parse_base(claimed).given
        except UserError:
            pass  # a name the training machine knew ("tiny-llama", a path there): no default from it
    return starter.guess_base(Path.cwd())


def question(text: str, default: str | None, check: Callable[[str], T]) -> T:
    """Ask until ``check`` takes the answer (an empty one is the default); the prompt and any problem
    go to stderr, so a redirected stdout keeps only what the command prints."""
    while True:
        sys.stderr.write(f"{text}{f' [{default}]' if default else ''}: ")
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise UserError("no answer (end of input); nothing was written")
        answer = line.strip() or default
        if not answer:
            continue
        try:
            return check(answer)
        except UserError as e:
            sys.stderr.write(f"  {e}\n")
