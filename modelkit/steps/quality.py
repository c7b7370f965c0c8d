"""Judge one variant: its prompt checks, answered as Ollama would ask them, and the KL-divergence gate.

Each check's conversation is rendered through the variant's own TEMPLATE with Ollama's data (the
Modelfile's SYSTEM first), exactly the prompt ``ollama run`` would send, and answered greedily by
llama.cpp (``llama-completion``: temperature 0, a fixed seed, one thread, because a model's
near-tied logits make threads disagree); the answer is cut at the Modelfile's stop strings. A
check that misses, or a mean KL divergence above ``[evaluate] max_kld``, fails the variant with
the texts or numbers shown, so CI refuses to ship it; the verdict is a small JSON file either way
it went for the checks that ran.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.core.units import human_size
from modelkit.errors import StepError
from modelkit.steps.base import Step, offload
from modelkit.steps.modelfile import RenderModelfile

ATTEMPTS = 5  # llama-completion's asynchronous log sometimes loses the end of its output at exit


@dataclass(kw_only=True, eq=False)
class JudgeVariant(Step, kind="judge", tool="quantize", reproducible=False):
    """``ref``'s verdict (``out``): ``checks`` are the spec's prompt checks for it (dicts with
    ``messages``, ``expect`` or ``expect_regex``, ``max_tokens``); ``evaluation`` its numbers and
    ``ladder`` the other variants' of the same model, when a ``max_kld`` gate applies; ``adapters``
    the LoRA GGUFs the variant ships beside its GGUF (``lora = "adapter"``), applied as Ollama does."""

    ref: str
    gguf: Path
    modelfile: RenderModelfile
    checks: list[dict[str, Any]]
    adapters: list[Path] = field(default_factory=list)
    max_kld: float | None = None
    evaluation: Path | None = None
    ladder: list[Path] | None = None
    projector: Path | None = None
    """The variant's projector, which answers the checks that show images."""
    images: dict[str, Path] = field(default_factory=dict)
    """The images the checks show, by the name a check gives (as the spec writes it)."""

    def params(self) -> dict[str, Any]:
        return {"checks": self.checks, "max_kld": self.max_kld}

    def inputs(self) -> dict[str, Path]:
        """The TEMPLATE's own file, if the spec names one (the prompts are rendered through it),
        and the images the checks show."""
        return {**self.modelfile.inputs(), **{f"image/{name}": path for name, path in self.images.items()}}

    def describe(self) -> str:
        count = f" ({len(self.checks)} prompt{'s' * (len(self.checks) != 1)})" if self.checks else ""
        return f"check {self.ref}{count}"

    def demand(self) -> Demand:
        """One thread (greedy answers must not depend on thread scheduling), and the GPU when offloaded."""
        return Demand(cpu=1, gpu=True)

    def run(self, ctx: StepContext) -> None:
        answers = [self._answer(ctx, check) for check in self.checks]
        misses = [a for a in answers if not a["passed"]]
        verdict = {"model": self.ref, "prompts_passed": len(answers) - len(misses), "prompts_total": len(answers),
                   "answers": answers}
        ctx.tmp(self.out).write_text(json.dumps(verdict, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        problems = [_missed(self.ref, a) for a in misses] + self._gate()
        if problems:
            raise StepError("\n".join(problems))

    def _answer(self, ctx: StepContext, check: dict[str, Any]) -> dict[str, Any]:
        from modelkit.golang.template import execute, ollama_data

        template = self.modelfile.resolved_template() or "{{ .Prompt }}"
        images = [self.images[name].read_bytes() for name in check.get("images", [])]
        prompt = execute(template, ollama_data(with_image_tags(check["messages"], len(images)), self.modelfile.system))
        ctx.progress(None, f"asking {self.ref}: {check['messages'][-1]['content'][:60]}")
        if images:
            answer = self._see(ctx, prompt, images, check["max_tokens"])
        else:
            answer = complete(ctx, self.gguf, prompt, check["max_tokens"], self.adapters)
        answer = _cut(answer, self._stops())
        if check.get("expect") is not None:
            passed = check["expect"] in answer
        else:
            passed = re.search(check["expect_regex"], answer) is not None
        return {"prompt": prompt, "answer": answer, "expect": check.get("expect"),
                "expect_regex": check.get("expect_regex"), "passed": passed}

    def _see(self, ctx: StepContext, prompt: str, images: list[bytes], max_tokens: int) -> str:
        """The answer to a prompt that shows ``images``, through the projector, as Ollama's runner asks
        llama-server for it (greedy, one thread)."""
        from modelkit.chat_template.proof.native import LlamaServer, NativeError

        assert self.projector is not None
        try:
            with LlamaServer(ctx.toolchain.server, self.gguf, None, ctx.log_path, projector=self.projector) as server:
                answer = server.complete(prompt, images, max_tokens)
        except NativeError as e:
            raise StepError(f"llama-server could not answer {self.ref} with its projector: {e}", ctx.log_path) from None
        with open(ctx.log_path, "a", encoding="utf-8") as log:
            log.write(f"{prompt}\nanswer: {answer!r}\n")
        return answer

    def _stops(self) -> list[str]:
        stop = self.modelfile.resolved_parameters().get("stop") or []
        return [stop] if isinstance(stop, str) else list(stop)

    def _gate(self) -> list[str]:
        """The gate's verdict, with the next larger type that passes (among those measured)."""
        if self.max_kld is None or self.evaluation is None:
            return []
        mine = json.loads(self.evaluation.read_text())
        if mine["kld_mean"] <= self.max_kld:
            return []
        others = [json.loads(p.read_text()) for p in self.ladder or [] if p.is_file()]
        bigger = sorted((n for n in others if n["bits_per_weight"] > mine["bits_per_weight"]),
                        key=lambda n: n["bits_per_weight"])
        passing = next((n for n in bigger if n["kld_mean"] <= self.max_kld), None)
        hint = (f"; {passing['quant']} passes (mean KLD {passing['kld_mean']:.4f}, {human_size(passing['bytes'])})"
                if passing else "; no larger type built here passes: try a larger one, or an importance matrix")
        return [f"{self.ref}: mean KL divergence {mine['kld_mean']:.4f} is above evaluate.max_kld = {self.max_kld} "
                f"(perplexity {mine['ppl']:.3f} vs {mine['ppl_base']:.3f} at full precision){hint}"]


def complete(ctx: StepContext, gguf: Path, prompt: str, max_tokens: int, adapters: list[Path] | None = None) -> str:
    """The model's greedy continuation of ``prompt`` (with ``adapters`` applied), as text."""
    tc = ctx.toolchain
    cmd = [str(tc.completion), "-m", str(gguf), "-p", prompt, "-n", str(max_tokens), "--temp", "0", "--seed", "0",
           "-t", "1", "-tb", "1", "-no-cnv", "--no-warmup", "--no-display-prompt", *offload(tc),
           *(arg for adapter in adapters or [] for arg in ("--lora", str(adapter)))]
    with open(ctx.log_path, "a", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd[:4]) + " -p <prompt> " + " ".join(cmd[6:]) + f"\n{prompt}\n")
        for _ in range(ATTEMPTS):
            proc = subprocess.run(cmd, capture_output=True, timeout=600)
            log.write(proc.stderr.decode("utf-8", "replace")[-4000:])
            if proc.returncode != 0:
                raise StepError(f"llama-completion failed on {gguf.name} (exit status {proc.returncode})", ctx.log_path)
            out = proc.stdout.decode("utf-8", "replace")
            if out.endswith("\n\n"):  # what it prints once generation is done: the output is whole
                log.write(f"answer: {out[:-2]!r}\n")
                return out[:-2]
    raise StepError(f"llama-completion never printed a complete answer for {gguf.name} in {ATTEMPTS} tries",
                    ctx.log_path)


def with_image_tags(messages: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The conversation as Ollama renders it with ``count`` images on the last user message: their
    tags ``[img-0]``… in place of its ``[img]`` or before its text (``chatPrompt`` in Ollama's
    ``server/prompt.go``); its runner replaces each with llama-server's media marker."""
    if not count:
        return messages
    last = max(i for i, m in enumerate(messages) if m["role"] == "user")
    prefix, content = "", messages[last]["content"]
    for index in range(count):  # an "[img]" in the text says where; else before it
        if "[img]" in content:
            content = content.replace("[img]", f"[img-{index}]", 1)
        else:
            prefix += f"[img-{index}]"
    return [{**m, "content": prefix + content} if i == last else m for i, m in enumerate(messages)]


def _cut(answer: str, stops: list[str]) -> str:
    """The answer up to the first stop string, as Ollama stops it."""
    ends = [i for s in stops if s and (i := answer.find(s)) >= 0]
    return answer[:min(ends)] if ends else answer


def _missed(ref: str, answer: dict[str, Any]) -> str:
    wanted = f"to contain {answer['expect']!r}" if answer["expect"] is not None else \
        f"to match {answer['expect_regex']!r}"
    prompt = answer["prompt"].replace("\n", "\\n")
    return f"{ref}: expected the answer {wanted}, got {answer['answer']!r} (prompt: {prompt!r})"
