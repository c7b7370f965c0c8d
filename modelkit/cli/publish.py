"""``modelkit publish``: upload a built project to the Hugging Face Hub, an OCI registry and Ollama's registry.

Thin over :mod:`modelkit.publish`: every check runs in :func:`~modelkit.publish.plan_publish`
before anything is sent, ``--dry-run`` stops there and prints the files and the model card.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

DESCRIPTION = """\
Upload every variant's GGUF (split with llama-gguf-split when over [publish] max_file_size), its
Modelfile, modelkit.lock, the spec and a generated model card (README.md) to a Hugging Face model
repository, in one commit; files the Hub already holds are not uploaded again, and nothing is
committed when nothing changed. With [publish] oci = "registry/namespace/model" (or --oci), each
variant is also pushed to that OCI registry as a CNCF ModelPack artifact tagged by its Ollama tag
(what Docker Model Runner, RamaLama and KitOps pull); blobs the registry holds are not sent again.
With [publish] ollama = "namespace/model", each registered variant is then pushed to Ollama's
registry. Credentials: HF_TOKEN or `hf auth login` for the Hub; `docker login REGISTRY` (the Docker
config, or its credential helper) or MODELKIT_OCI_USERNAME / MODELKIT_OCI_PASSWORD for a registry.
"""

EPILOG = """\
examples:
  modelkit publish --dry-run              what would go up, and the model card
  modelkit publish --repo me/tiny-support publish to another repository
  modelkit publish examples/tiny/model.toml --private
  modelkit publish --oci registry.example/team/support-bot
  modelkit publish --oci localhost:5000/me/bot --insecure   a registry without TLS
"""


def add_commands(sub: Any) -> None:
    """Register ``publish`` on an argparse subparsers object."""
    p = sub.add_parser("publish", help="upload the built GGUFs, Modelfiles and a model card to the Hugging Face Hub",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", type=Path, help="the spec (a model.toml or its folder; default ./model.toml)")
    p.add_argument("--repo", metavar="OWNER/NAME", help="the Hugging Face repository (overrides [publish] repo)")
    p.add_argument("--private", action="store_true", default=None,
                   help="create the repository private (when it does not exist yet)")
    p.add_argument("--oci", metavar="REGISTRY/NS/MODEL",
                   help="also push each variant to this OCI registry as a ModelPack artifact (over [publish] oci)")
    p.add_argument("--insecure", action="store_true", default=None,
                   help="push over plain HTTP, to a registry without TLS (as [publish] insecure)")
    p.add_argument("-n", "--dry-run", action="store_true",
                   help="print what would be uploaded and pushed, and the model card; send nothing")
    p.set_defaults(func=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    from modelkit.cli.console import console, markup
    from modelkit.core.units import human_size
    from modelkit.project import Project
    from modelkit.publish import plan_publish, publish

    project = Project.open(args.spec)
    plan = plan_publish(project, repo=args.repo, private=args.private, need_credentials=not args.dry_run,
                        oci=args.oci, insecure=args.insecure)
    if args.dry_run:
        return _print_dry_run(plan)
    result = publish(plan, progress=_LineProgress(console))
    commit = result.commit
    if commit is not None and commit.committed:
        console.print(markup("[green]published[/] {} new or changed files to {} (commit {}); {} unchanged",
                             len(commit.changed), commit.url, commit.head[:12], len(commit.unchanged)))
    elif commit is not None:
        console.print(markup("[green]nothing changed[/]: {} already holds this build (commit {})", commit.url,
                             commit.head[:12]))
    for artifact in result.artifacts:
        what = f"sent {human_size(artifact.sent)}" if artifact.sent else "no bytes sent: the registry held them"
        verb = "pushed" if artifact.written else "unchanged"
        console.print(markup("  {} {} ({}; {})", verb, ", ".join(artifact.names), artifact.digest[:19], what))
    for pushed in result.pushed:
        console.print(markup("  pushed {} as [bold]{}[/]", pushed.source, pushed.name))
    if result.deferred:
        console.print(markup("[yellow]not pushed[/]: {}", result.deferred))
    return 0


def _print_dry_run(plan: Any) -> int:
    from modelkit.cli.console import markup, stdout
    from modelkit.core.units import human_size
    from modelkit.publish import describe
    from modelkit.publish.oci import tags

    visibility = "private" if plan.private else "public"
    if plan.repo is not None:
        stdout.print(markup("[bold]would publish to[/] https://huggingface.co/{} ({}, one commit):", plan.repo,
                            visibility))
        for row in describe(plan):
            stdout.print(markup("  {} {}  {}[yellow]{}[/]", f"{row['path']:<44}", f"{human_size(row['bytes']):>10}",
                                row["what"], f"  {row['note']}" if row["note"] else ""))
        stdout.print(f"  {'README.md':<44} {'':>10}  model card (below)")
    if plan.oci is not None:
        for pv in plan.variants:
            names = ", ".join(str(plan.oci.with_tag(t)) for t in tags(pv))
            stdout.print(markup("[bold]would push[/] {} as a ModelPack artifact: {}", pv.variant.ref, names))
    for source, name in plan.pushes:
        stdout.print(markup("[bold]would push[/] {} to Ollama's registry as {}", source, name))
    stdout.print("")
    stdout.out(plan.card())
    return 0


class _LineProgress:
    """Progress as plain lines (huggingface_hub draws its own upload bars on the same terminal):
    one line per new message, and for long steps one per tenth done."""

    def __init__(self, console: Any) -> None:
        self.console = console
        self.last: tuple[str, int] = ("", -1)
        self.when = 0.0

    def __call__(self, fraction: float | None, text: str) -> None:
        step = -1 if fraction is None else int(fraction * 10)
        label = text.split(":")[0]
        if (label, step) == self.last or (label == self.last[0] and time.monotonic() - self.when < 0.5
                                          and step < 10):
            return
        self.last, self.when = (label, step), time.monotonic()
        shown = f"{text} ({fraction:.0%})" if fraction is not None else text
        self.console.print(f"  {shown}", style="dim")
