"""Inherit the model's chat template: translate it to Ollama's Go template and prove it.

The output is a small JSON file (the Go template, suggested stop strings, the proof summary)
that the Modelfile step reads. Translation reads the chat template from the Hugging Face folder
when there is one, so a template modelkit cannot translate stops the build *before* a long
conversion; otherwise it reads the GGUF header.
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
    """``out`` is the JSON the Modelfile step reads."""

    source: Path
    """A GGUF file or a Hugging Face folder."""
    files: dict[str, Path]
    """What to hash as inputs (empty when a fetch target provides them)."""

    def params(self) -> dict[str, Any]:
        from modelkit.chat_template import translator_digest

        # The translator is modelkit's own code: when it changes, the translation may too.
        return {"translator": translator_digest()}

    def inputs(self) -> dict[str, Path]:
        return {f"base/{name}": path for name, path in self.files.items()}

    def describe(self) -> str:
        return "inherit the base model's chat template"

    def run(self, ctx: StepContext) -> None:
        from modelkit.chat_template import inherit_template, read_template

        ctx.progress(None, f"reading the chat template from {self.source.name}")
        source = read_template(self.source)
        ctx.progress(None, "translating and proving the template")
        inherited = inherit_template(source)
        with open(ctx.log_path, "a", encoding="utf-8") as log:
            log.write(f"origin: {source.origin}\nproof: {inherited.summary}\n\n{inherited.go_template}\n")
        ctx.tmp(self.out).write_text(json.dumps({
            "origin": source.origin, "template": inherited.go_template,
            "stop": list(inherited.stop), "proof": inherited.summary,
        }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_inherited(path: Path) -> dict[str, Any]:
    """The template step's output: ``origin``, ``template``, ``stop``, ``proof``."""
    return json.loads(path.read_text(encoding="utf-8"))
