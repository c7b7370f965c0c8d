"""The built-in renderers modelkit writes RENDERER/PARSER for, re-proven on the real Ollama (0.32.15, CPU).

Each entry of :data:`modelkit.ollama.renderers.PROVEN` is registered from a tiny GGUF carrying its
template, through modelkit's own registration (the API, with ``renderer``/``parser``/``requires``)
and through ``ollama create -f`` on the Modelfile modelkit renders; the server's own account then
decides: ``/api/show``, its ``template selection`` line, and the prompt it renders for every
conversation of the battery (``_debug_render_only``) against ``apply_chat_template``.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Any

import pytest
from gguf_files import write_tiny_gguf

from modelkit.chat_template.proof import BATTERY, SAME
from modelkit.chat_template.proof.conversations import Conversation
from modelkit.golang.template import Think
from modelkit.ollama.content import ModelContent
from modelkit.ollama.engine import predict_engine
from modelkit.ollama.modelfile import Modelfile, render_modelfile
from modelkit.ollama.register import register
from modelkit.ollama.renderers import (
    PROVEN,
    BuiltIn,
    RenderRefused,
    battery,
    builtin_for,
    ollama_chat_body,
    prove_builtin,
    verdict,
)

pytestmark = [pytest.mark.toolchain]
ENTRIES = sorted(PROVEN.values(), key=lambda b: b.template)


def renderer_of(real: Any, model: str) -> Any:
    def render(conv: Conversation, think: Think) -> str:
        try:
            return str(real.api("/api/chat", ollama_chat_body(model, conv, think), timeout=60)
                       ["_debug_info"]["rendered_template"])
        except urllib.error.HTTPError as e:
            raise RenderRefused(e.read().decode("utf-8", "replace")) from None
    return render


def registered(real: Any, folder: Path, entry: BuiltIn, jinja: str) -> str:
    """A tiny GGUF carrying ``jinja``, registered with the entry's renderer through modelkit's API route."""
    name = f"builtin-{entry.renderer}"
    gguf = write_tiny_gguf(folder / f"{entry.renderer}.gguf", chat_template=jinja)
    register(name, ModelContent(gguf=gguf, template="{{ .Prompt }}", renderer=entry.renderer, parser=entry.parser,
                                requires=entry.requires), host=real.host)
    return name


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.template for e in ENTRIES])
def test_each_proven_template_renders_on_the_real_ollama_as_its_entry_says(entry: BuiltIn, real_ollama: Any,
                                                                          toolchain: Any, tmp_path: Path) -> None:
    jinja = (toolchain.templates / f"{entry.template}.jinja").read_text(encoding="utf-8")
    assert builtin_for(jinja, entry.bos_token) is entry  # the digest is the template's exact text
    name = registered(real_ollama, tmp_path, entry, jinja)
    shown = real_ollama.api("/api/show", {"model": name})
    assert f"RENDERER {entry.renderer}\nPARSER {entry.parser}\n" in str(shown["modelfile"])
    assert shown["requires"] == entry.requires
    mark = real_ollama.mark()
    proof = prove_builtin(jinja, renderer_of(real_ollama, name), battery(), entry.bos_token, "</s>", False)
    assert verdict(proof) == (True, entry.differs), proof.summary()
    assert sum(o.status == SAME for o in proof.outcomes) == entry.conversations
    selected = real_ollama.selections(mark)[f"{name}:latest"]
    assert selected == predict_engine(jinja, "{{ .Prompt }}", renderer=entry.renderer,
                                      parser=entry.parser).selected == "renderer_parser"


def test_an_edited_template_gets_no_renderer_and_the_renderer_would_not_render_it(real_ollama: Any, toolchain: Any,
                                                                                  tmp_path: Path) -> None:
    """A fine-tune that rewords its template's system preamble: not in the table, and rightly so."""
    entry = PROVEN[next(k for k, v in PROVEN.items() if v.renderer == "poolside-v1")]
    jinja = (toolchain.templates / f"{entry.template}.jinja").read_text(encoding="utf-8")
    edited = jinja.replace('{{- "<system>" -}}', '{{- "<system >" -}}', 1)
    assert edited != jinja and builtin_for(edited, entry.bos_token) is None
    name = registered(real_ollama, tmp_path, entry, jinja)
    proof = prove_builtin(edited, renderer_of(real_ollama, name), BATTERY[:2], entry.bos_token, "</s>", False)
    assert not verdict(proof)[0]


def test_the_cli_route_carries_the_lines_too(real_ollama: Any, tmp_path: Path) -> None:
    entry = ENTRIES[0]
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(render_modelfile(Modelfile(from_=str(gguf), renderer=entry.renderer, parser=entry.parser,
                                                    requires=entry.requires)))
    made = real_ollama.cli("create", "builtin-cli", "-f", str(modelfile))
    assert made.returncode == 0, made.stderr
    shown = real_ollama.api("/api/show", {"model": "builtin-cli"})
    assert f"RENDERER {entry.renderer}" in str(shown["modelfile"]) and shown["requires"] == entry.requires
