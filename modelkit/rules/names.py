"""The one place that names every target and the file it makes.

Target names are part of the user interface (``modelkit build gguf:base.Q4_K_M``) and of the
lock file, and file names are what users find in ``build/``; spelling each once keeps the two in
step and lets a rule ask for "the merged model of adapter x" instead of formatting strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REGISTRATION = "ollama:"
MEASUREMENTS = ("logits:", "eval:", "check:", "search:")
"""The prefixes of the targets that measure or judge a variant (their output makes the report)."""

SOURCE_BASE = "source:base"
SOURCE_BASE_TOKENIZER = "source:base.tokenizer"  # its small files, fetched before the weights
TEMPLATE = "template"


@dataclass(frozen=True)
class Artifact:
    """A target and the file it writes."""

    target: str
    path: Path


class Names:
    """Names of a project's targets and artifacts, under its build and state folders."""

    def __init__(self, build_dir: Path, state_dir: Path) -> None:
        self.build = build_dir
        self.state = state_dir

    @staticmethod
    def adapter_source(adapter: str) -> str:
        return f"source:adapter.{adapter}"

    def converted(self, outtype: str) -> Artifact:
        return Artifact(f"gguf:base.{outtype}", self.build / f"base.{outtype}.gguf")

    def adapter(self, adapter: str) -> Artifact:
        return Artifact(f"gguf:adapter.{adapter}", self.build / f"adapter.{adapter}.gguf")

    @staticmethod
    def merged_stem(adapter: str) -> str:
        """How the base with an adapter merged in is named in targets and files."""
        return f"base+{adapter}"

    def merged(self, adapter: str) -> Artifact:
        stem = self.merged_stem(adapter)
        return Artifact(f"gguf:{stem}.f16", self.build / f"{stem}.f16.gguf")

    def quantized(self, stem: str, quant: str) -> Artifact:
        return Artifact(f"gguf:{stem}.{quant}", self.build / f"{stem}.{quant}.gguf")

    def projector(self, stem: str, outtype: str) -> Artifact:
        """The projector of a model that sees images: the base's is a target of its own
        (``gguf:mmproj``); a merged model's is made by its merge (the same target). Named
        ``mmproj-…`` as llama-server's ``-hf`` and ``ollama run hf.co/…`` look for it."""
        target = "gguf:mmproj" if stem == "base" else self.merged(stem.removeprefix("base+")).target
        return Artifact(target, self.build / f"mmproj-{stem}.{outtype}.gguf")

    def template(self) -> Artifact:
        return Artifact(TEMPLATE, self.build / "template.json")

    def adapter_template(self, adapter: str) -> Artifact:
        """The chat template an adapter brings (what it was trained with)."""
        return Artifact(f"template:adapter.{adapter}", self.build / f"template.adapter.{adapter}.json")

    def imatrix(self, stem: str) -> Artifact:
        """The importance matrix of a full-precision model, used by all its quantizations."""
        return Artifact(f"imatrix:{stem}", self.build / f"imatrix.{stem}.gguf")

    def logits(self, stem: str) -> tuple[Artifact, Path]:
        """A full-precision model's logits on the evaluation text (large: kept in ``.modelkit/``),
        and its perplexity (a small JSON in ``build/eval/``)."""
        return (Artifact(f"logits:{stem}", self.state / "eval" / f"{stem}.logits"),
                self.build / "eval" / f"{stem}.reference.json")

    def search(self, stem: str) -> Artifact:
        """The search for a full-precision model's smallest quantization meeting the target."""
        return Artifact(f"search:{stem}", self.build / "eval" / f"{stem}.search.json")

    def evaluation(self, stem: str, quant: str) -> Artifact:
        """A quantization's numbers against its full-precision model."""
        return Artifact(f"eval:{stem}.{quant}", self.build / "eval" / f"{stem}.{quant}.json")

    def native(self, model: str) -> Artifact:
        """What llama.cpp's own engine renders from a model's shipped GGUF, against the reference."""
        return Artifact(f"native:{model}", self.build / f"{model}.native.json")

    def verdict(self, model: str, tag: str) -> Artifact:
        """A variant's prompt checks and gate."""
        return Artifact(f"check:{model}:{tag}", self.build / "eval" / f"{model}-{tag}.check.json")

    def modelfile(self, model: str, tag: str) -> Artifact:
        return Artifact(f"modelfile:{model}-{tag}", self.build / f"{model}-{tag}.Modelfile")

    def registration(self, ref: str) -> Artifact:
        """``ollama:<model>:<tag>``, whose output is a receipt under ``.modelkit/ollama/``."""
        return Artifact(f"{REGISTRATION}{ref}", self.state / "ollama" / f"{ref.replace(':', '-')}.json")

    @staticmethod
    def registered_ref(target: str) -> str:
        """``model:tag`` of a registration target (``ollama:model:tag``)."""
        return target.removeprefix(REGISTRATION)
