#!/usr/bin/env python3
"""Which of llama.cpp's chat templates a built-in Ollama renderer reproduces, asked of a real Ollama.

Usage::

    python -m bench renderers          # or: python bench/renderers.py [TEMPLATES_DIR]

Starts the real Ollama (``../shared/ollama`` or an ``ollama`` on PATH), registers a tiny GGUF once
per renderer of :data:`modelkit.ollama.renderers.CANDIDATES` (``RENDERER``/``PARSER`` lines), and
for each template in llama.cpp's ``models/templates``: renders one plain conversation with every
renderer, then the whole battery (:func:`modelkit.steps.native.native_battery`, with each think
setting where the template reads a switch) with those that rendered it the same. Ollama answers
the prompt itself (``/api/chat`` with ``_debug_render_only``). Prints each renderer that renders a
whole battery as ``apply_chat_template`` does — the entries of ``PROVEN`` — and the near misses.
"""

from __future__ import annotations

import sys
import tempfile
import urllib.error
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "ollama"))

from modelkit.chat_template.proof import BATTERY, Proof  # noqa: E402 - after the sys.path entry that finds it
from modelkit.chat_template.proof.conversations import Conversation  # noqa: E402 - after the sys.path entry that finds it
from modelkit.golang.template import Think  # noqa: E402 - after the sys.path entry that finds it
from modelkit.ollama.modelfile import Modelfile, render_modelfile  # noqa: E402 - after the sys.path entry that finds it
from modelkit.ollama.renderers import (  # noqa: E402 - after the sys.path entry that finds it
    CANDIDATES,
    CONTINUATIONS,
    PROVEN,
    RenderRefused,
    jinja_digest,
    ollama_chat_body,
    prove_builtin,
    verdict,
)
from modelkit.ollama.renderers import battery as full_battery  # noqa: E402 - after the sys.path entry that finds it
from modelkit.toolchain import find_toolchain  # noqa: E402 - after the sys.path entry that finds it

#: The EOS the templates are rendered with (llama.cpp's files carry no tokens); the BOS is the one
#: each renderer writes, and neither side's is dropped: the prompts are compared as written.
EOS = "</s>"


class Server:
    """A real Ollama with one tiny model per candidate renderer, named ``r-<renderer>``."""

    def __init__(self, real: Any, folder: Path) -> None:
        from gguf_files import write_tiny_gguf

        self.real = real
        gguf = write_tiny_gguf(folder / "tiny.gguf")
        for renderer, parser, _, _ in CANDIDATES:
            modelfile = folder / f"{renderer}.Modelfile"
            modelfile.write_text(render_modelfile(Modelfile(from_=str(gguf), renderer=renderer, parser=parser)))
            made = real.cli("create", self.model(renderer), "-f", str(modelfile))
            if made.returncode != 0:
                raise RuntimeError(f"ollama create with RENDERER {renderer} failed: {made.stderr.strip()[-300:]}")

    @staticmethod
    def model(renderer: str) -> str:
        return f"r-{renderer}"

    def renderer(self, renderer: str) -> Any:
        """A :data:`~modelkit.ollama.renderers.BuiltinRenderer` for the model with ``renderer``."""
        def render(conv: Conversation, think: Think) -> str:
            try:
                reply = self.real.api("/api/chat", ollama_chat_body(self.model(renderer), conv, think), timeout=60)
            except urllib.error.HTTPError as e:
                raise RenderRefused(e.read().decode("utf-8", "replace")) from None
            return str(reply["_debug_info"]["rendered_template"])
        return render


@contextmanager
def real_server(folder: Path) -> Iterator[Server | None]:
    """The real Ollama with the candidate models, or None (and why, printed) where there is none."""
    from real_ollama import RealOllama, find_ollama

    exe, why = find_ollama()
    if exe is None:
        print(f"needs a real Ollama: {why}")
        yield None
        return
    with RealOllama(exe, folder / "ollama") as real:
        yield Server(real, folder)


def prove_with(server: Server, renderer: str, jinja: str, battery: Sequence[Conversation] | None = None) -> Proof:
    """The battery the template supports (or ``battery``), rendered by ``renderer`` and by the reference."""
    bos = next(b for r, _, _, b in CANDIDATES if r == renderer) or "<s>"
    return prove_builtin(jinja, server.renderer(renderer), full_battery() if battery is None else battery,
                         bos, EOS, False)


def search(server: Server, jinja: str) -> list[tuple[str, Proof]]:
    """Each candidate that renders the first plain conversations of the battery as the reference
    does, with its proof on the whole battery."""
    return [(renderer, prove_with(server, renderer, jinja)) for renderer, _, _, _ in CANDIDATES
            if prove_with(server, renderer, jinja, BATTERY[:2]).proven]


def main(argv: list[str] | None = None) -> None:
    args = argv or []
    toolchain = find_toolchain()
    folders = [Path(a) for a in args] or ([toolchain.templates] if toolchain else [])
    if not folders or not all(f.is_dir() for f in folders):
        print("needs llama.cpp's templates: modelkit toolchain install, or give TEMPLATES_DIR")
        return
    since = {r: v for r, _, v, _ in CANDIDATES}
    parsers = {r: p for r, p, _, _ in CANDIDATES}
    bos = {r: b or "<s>" for r, _, _, b in CANDIDATES}
    with tempfile.TemporaryDirectory() as tmp, real_server(Path(tmp)) as server:
        if server is None:
            return
        print("| template | renderer | parser | since | renderings equal | verdict |\n|---|---|---|---|---|---|")
        for path in sorted(p for folder in folders for p in folder.glob("*.jinja")):
            jinja = path.read_text(encoding="utf-8")
            for renderer, proof in search(server, jinja):
                same = sum(1 for o in proof.outcomes if o.status == "same")
                listed = PROVEN.get(jinja_digest(jinja))
                ok, words = verdict(proof)
                said = ("proven" + (" up to continuations" if words else "")) if ok else words
                print(f"| {path.stem} | {renderer} | {parsers[renderer]} | {since[renderer]} | "
                      f"{same}/{len(proof.outcomes)} | {said}{' (in PROVEN)' if listed else ''} |")
                if ok:
                    differs = ", CONTINUATIONS" if words == CONTINUATIONS else ""
                    print(f"    {jinja_digest(jinja)!r}: BuiltIn({renderer!r}, {parsers[renderer]!r}, "
                          f"{since[renderer]!r}, {path.stem!r}, {same}, {bos[renderer]!r}{differs}),")
                for fail in proof.failures:
                    print(f"    - {fail.label}: {fail.detail}")


if __name__ == "__main__":
    main(sys.argv[1:])
