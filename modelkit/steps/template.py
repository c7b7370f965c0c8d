"""Choose a model's chat template, translate it to Ollama's Go template and prove it.

Which template (the first that exists): a Jinja file the spec names, the template the adapter was
trained with (its folder's ``chat_template.jinja`` or ``tokenizer_config.json``), the base model's.
It is proven with the special tokens of the tokenizer that goes with it (the adapter's, if it has
one). The output is a small JSON file: the Go template, stop strings, the proof summary, and the
Jinja with its special tokens, which the steps that make the shipped GGUFs write into them. The
step reads only small files, and every long step waits for it, so a template that cannot be
found, translated or proven stops the build before any conversion, download or merge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.steps.base import Step

# Files of a Hugging Face folder that hold the chat template and its special tokens.
TEMPLATE_FILES = ("tokenizer_config.json", "chat_template.jinja", "chat_template.json", "tokenizer.json",
                  "config.json", "tokenizer.model",
                  "special_tokens_map.json", "generation_config.json")


@dataclass(kw_only=True, eq=False)
class InheritTemplate(Step, kind="inherit-template"):
    """``texts``: where to look for the Jinja, in order; ``tokens``: whose tokenizer goes with it,
    in order (both are Jinja files, Hugging Face folders or GGUFs); ``files``: what to hash (empty
    for folders a fetch target provides)."""

    texts: list[Path]
    tokens: list[Path]
    files: dict[str, Path]
    label: str = "the base model"
    given: str | None = None
    """A Go TEMPLATE the spec gives beside its Jinja: proven against it, instead of translating."""
    given_file: Path | None = None
    """Or the file holding it (then in ``files``, so that editing it proves again)."""
    images: bool = False
    """The model sees images: where each engine places them is proven too (:mod:`..chat_template.proof.images`)."""

    def params(self) -> dict[str, Any]:
        from modelkit.chat_template import translator_digest

        # The translator is modelkit's own code: when it changes, the translation may too.
        given = {"given": self.given} if self.given is not None else {}
        return {"translator": translator_digest(), **given, **({"images": True} if self.images else {})}

    def inputs(self) -> dict[str, Path]:
        return dict(self.files)

    def describe(self) -> str:
        return f"chat template of {self.label}"

    def run(self, ctx: StepContext) -> None:
        from modelkit.chat_template import check_given, choose_template, inherit_template

        ctx.progress(None, "reading the chat template")
        source = choose_template(self.texts, self.tokens)
        ctx.progress(None, f"translating and proving the template of {source.origin}")
        given = self.given_file.read_text(encoding="utf-8") if self.given_file is not None else self.given
        inherited = inherit_template(source) if given is None else check_given(source, given)
        images = self._images(ctx, source, inherited.go_template)
        with open(ctx.log_path, "a", encoding="utf-8") as log:
            log.write(f"origin: {source.origin}\nproof: {inherited.summary}\n{images}\n\n{inherited.go_template}\n")
        ctx.tmp(self.out).write_text(json.dumps({
            "origin": source.origin, "template": inherited.go_template,
            "stop": list(inherited.stop), "proof": inherited.summary,
            "jinja": source.template, "bos_token": source.bos_token, "eos_token": source.eos_token,
            "eot_tokens": list(source.eot_tokens), **images,
        }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def _images(self, ctx: StepContext, source: Any, go_template: str) -> dict[str, Any]:
        """For a model that sees images: where each of Ollama's engines places them, against the
        template (said on screen where one of them places an image elsewhere)."""
        if not self.images:
            return {}
        from modelkit.chat_template.proof.images import GO_TEMPLATE, NATIVE, prove_images

        proof = prove_images(go_template, source.template, source.bos_token, source.eos_token, source.add_bos_token)
        said = {engine: proof.summary(engine) for engine in (GO_TEMPLATE, NATIVE)}
        if any("elsewhere" in line for line in said.values()):
            ctx.note(f"{self.label}: " + "; ".join(line for line in said.values() if "elsewhere" in line))
        return {"images": said}


def read_inherited(path: Path) -> dict[str, Any]:
    """The template step's output: ``origin``, ``template``, ``stop``, ``proof``, ``jinja``, and the
    ``bos_token``, ``eos_token`` and ``eot_tokens`` that go with it."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
