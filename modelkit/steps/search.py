"""Search for the smallest quantization that meets a quality target, by measuring candidates.

Two stages, each candidate quantized with llama-quantize and measured with llama-perplexity against
the full-precision logits (mean KL divergence, top-token agreement, size):

1. **the ladder**: the standard K-quant types from small to large, bisected for the smallest that
   meets the target (KL divergence falls as size grows, so a few measurements suffice);
2. **promotions**: the type one rung below it, with each tensor group (the attention values, the
   feed-forward down projection, the output and embeddings, …) raised alone, skipping groups the
   type already gives as many bits; then the groups that helped, raised together in the order of
   KL divergence saved per byte, until the target is met (below the ladder's answer, since it
   starts a rung lower) or the budget is spent.

The groups raised alone are only **screened**: measured on a quarter of the evaluation text
(against the full-precision model's logits on that quarter, computed once), which ranks them at a
quarter of the cost and counts nothing against the budget; every candidate that can be chosen is
measured on the whole text. It stops at the budget (whole-text measurements), said before it
starts. Each candidate's numbers are kept (``.modelkit/memo/``, and the remote cache when there is
one) by what decides them (the model's, the logits' and the importance matrix's digests, the
recipe, the toolchain and the backend measured on: a teammate's CUDA numbers are not a CPU's), so
searching again after a change of target or budget, here or on a teammate's machine with the same
backend, measures nothing that was measured before. The result (every candidate, the choice) is a
small JSON that the chosen variant's quantize step reads, and ``modelkit report`` shows.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.core.units import human_size
from modelkit.errors import UserError
from modelkit.formats.quant_types import TENSOR_TYPES
from modelkit.steps.base import Recorded, Step, llama_demand, offload
from modelkit.steps.evaluate import FINAL_PPL, LOGITS_HEADER, measure_kld, run_perplexity
from modelkit.steps.quantize import TensorRecipe

LADDER = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0")
GROUPS = ("attn_v", "ffn_down", "output", "token_embd", "attn_output", "attn_k", "attn_q", "ffn_up", "ffn_gate")
"""Tensor groups promoted in this order when two help equally: the ones quantization hurts most first."""
SCREEN_SHARE = 0.25
"""The share of the evaluation text that screens a candidate."""
RAISED = {"Q2_K": "Q4_K", "Q3_K_S": "Q5_K", "Q3_K_M": "Q5_K", "Q4_K_S": "Q6_K", "Q4_K_M": "Q6_K",
          "Q5_K_S": "Q6_K", "Q5_K_M": "Q8_0", "Q6_K": "Q8_0"}
"""The tensor type a promoted group gets, by the file type of the rest."""
SINGLE_TENSORS = ("output", "token_embd")
"""Groups of one tensor, which llama-quantize types with options of their own."""


@dataclass(frozen=True)
class Candidate:
    """A file type and per-tensor types (``tensors`` as llama-quantize's ``--tensor-type``;
    ``output``/``token_embd`` as its ``--output-tensor-type``/``--token-embedding-type``)."""

    type: str
    tensors: tuple[tuple[str, str], ...] = ()

    def name(self) -> str:
        return self.type + "".join(f"+{group}={qtype}" for group, qtype in self.tensors)

    def recipe(self) -> TensorRecipe:
        """The candidate as the quantize step takes a recipe (which knows llama-quantize's options)."""
        named = dict(self.tensors)
        return TensorRecipe(name=self.name(), tensors={g: t for g, t in self.tensors if g not in SINGLE_TENSORS},
                            output=named.get("output"), embeddings=named.get("token_embd"))

    def as_recipe(self) -> dict[str, Any]:
        return {"type": self.type, **self.recipe().params()}


def meets(numbers: dict[str, Any], target: dict[str, Any]) -> bool:
    """Whether measured ``numbers`` meet every bound of ``target``."""
    return ((target.get("max_kld") is None or numbers["kld_mean"] <= target["max_kld"])
            and (target.get("min_top1") is None or numbers["top1_agreement"] >= target["min_top1"])
            and (target.get("max_size") is None or numbers["bytes"] <= target["max_size"]))


@dataclass(kw_only=True, eq=False)
class SearchQuant(Step, kind="quant-search", tool="quantize", reproducible=False):
    """The smallest candidate quantization of ``src`` meeting ``target`` (``out``: every candidate
    measured, and the choice). Not reproducible: measurements depend on the machine's backend."""

    src: Path
    logits: Path
    text: Path
    """The evaluation text ``logits`` were computed on (a quarter of it screens candidates)."""
    imatrix: Recorded | None
    context: int
    target: dict[str, Any]
    budget: int
    label: str
    where: str = ""

    def params(self) -> dict[str, Any]:
        with_imatrix = {"imatrix": self.imatrix.name} if self.imatrix else {}
        return {"target": self.target, "budget": self.budget, "context": self.context, "ladder": list(LADDER),
                "groups": list(GROUPS), "screen": SCREEN_SHARE, **with_imatrix}

    def describe(self) -> str:
        bounds = ", ".join(f"{k} {v}" for k, v in sorted(self.target.items()))
        return f"search the smallest quantization of {self.label} with {bounds} (at most {self.budget} candidates)"

    def demand(self) -> Demand:
        return llama_demand(gpu=True)

    def lock_entry(self) -> dict[str, Any]:
        """The choice, readable in the lock beside the digest that pins it."""
        try:
            chosen = json.loads(self.out.read_text())["chosen"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return {"chosen": {"name": chosen["name"], "recipe": chosen["recipe"]}} if chosen else {}

    def run(self, ctx: StepContext) -> None:
        search = _Search(self, ctx)
        chosen = search.run()
        result = {"target": self.target, "budget": self.budget, "candidates": search.measured,
                  "screened": search.screened, "chosen": chosen, "measured_now": search.fresh,
                  "seconds": round(search.seconds, 1)}
        ctx.tmp(self.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
        if chosen is None:
            best = min(search.measured, key=lambda c: c["kld_mean"])
            raise UserError(f"{self.where}: no candidate meets {_bounds(self.target)} within {len(search.measured)} "
                            f"candidates: the best reached mean KLD {best['kld_mean']:.6f}, top-1 "
                            f"{best['top1_agreement']:.1%} at {human_size(best['bytes'])} ({best['name']}); "
                            "loosen the target or raise quantize.search_budget")
        ctx.note(f"{self.label}: {chosen['name']} ({human_size(chosen['bytes'])}, mean KLD {chosen['kld_mean']:.6f}) "
                 f"is the smallest of {len(search.measured)} candidates meeting {_bounds(self.target)}; "
                 f"{len(search.screened)} screened on a quarter of the text; {search.fresh} measured now in "
                 f"{search.seconds:.0f} s")


def _bounds(target: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sorted(target.items()))


class _Search:
    """One search: candidates measured (or recalled), in order, within the budget."""

    def __init__(self, step: SearchQuant, ctx: StepContext) -> None:
        from modelkit.formats.gguf import tensor_names

        self.step, self.ctx = step, ctx
        names = tensor_names(step.src)
        self.groups = [g for g in GROUPS if any(n.startswith(f"{g}.") or f".{g}." in n for n in names)]
        self.measured: list[dict[str, Any]] = []
        self.screened: list[dict[str, Any]] = []
        self.fresh, self.seconds = 0, 0.0
        self._short_logits: Path | None = None
        self.backend: str = ctx.toolchain.backend
        """What the numbers are measured on ("cpu", "cuda"): a GPU adds in another order, so one
        backend's numbers are never another's."""
        self.identity = hashlib.sha256(json.dumps([
            ctx.digest(step.src), ctx.digest(step.logits), ctx.digest(step.imatrix.path) if step.imatrix else None,
            ctx.toolchain.version, self.backend, step.context]).encode()).hexdigest()

    def run(self) -> dict[str, Any] | None:
        ladder = [t for t in LADDER if t != "Q2_K" or self.step.imatrix is not None]
        low, high = 0, len(ladder) - 1
        passing: int | None = None
        while low <= high and self._room():
            middle = (low + high) // 2
            if self._meets(Candidate(ladder[middle])):
                passing, high = middle, middle - 1
            else:
                low = middle + 1
        below = (passing if passing is not None else len(ladder)) - 1
        if below >= 0 and self._room():
            self._promote(Candidate(ladder[below]))
        return self._smallest()

    def _promote(self, start: Candidate) -> None:
        """Raise each group alone on ``start`` (skipping groups already at that type or above),
        then raise them together, best buy (KL divergence saved per byte) first, until the target
        is met or the budget is spent."""
        base = self._measure(start)
        if meets(base, self.step.target):
            return
        raised = RAISED.get(start.type, "Q8_0")
        buys = []
        screened_base = self._screen(start)
        for group in self.groups:
            if min(TENSOR_TYPES.get(t, 0.0) for t in base["group_types"].get(group, ["F32"])) >= TENSOR_TYPES[raised]:
                continue  # the file type already gives this group that many bits
            alone = self._screen(Candidate(start.type, ((group, raised),)))
            saved = screened_base["kld_mean"] - alone["kld_mean"]
            if saved > 0:
                buys.append((saved / max(1, alone["bytes"] - screened_base["bytes"]), group))
        together: tuple[tuple[str, str], ...] = ()
        for _, group in sorted(buys, key=lambda b: (-b[0], GROUPS.index(b[1]))):
            together = (*together, (group, raised))
            if not self._room() and len(together) > 1:
                return
            if meets(self._measure(Candidate(start.type, together)), self.step.target):
                return

    def _room(self) -> bool:
        return len(self.measured) < self.step.budget

    def _meets(self, candidate: Candidate) -> bool:
        return meets(self._measure(candidate), self.step.target)

    def _smallest(self) -> dict[str, Any] | None:
        good = [c for c in self.measured if meets(c, self.step.target)]
        return min(good, key=lambda c: (c["bytes"], c["name"])) if good else None

    def _measure(self, candidate: Candidate) -> dict[str, Any]:
        """``candidate``'s numbers on the whole text (one of the budget)."""
        known = next((c for c in self.measured if c["name"] == candidate.name()), None)
        if known is not None:
            return known
        numbers = {**self._numbers(candidate, "whole", self.step.logits), "name": candidate.name(),
                   "recipe": candidate.as_recipe()}
        self.measured.append(numbers)
        self.ctx.progress(len(self.measured) / self.step.budget,
                          f"candidate {len(self.measured)} of at most {self.step.budget}: {candidate.name()}")
        return numbers

    def _screen(self, candidate: Candidate) -> dict[str, Any]:
        """``candidate``'s numbers on a share of the text: to rank, never to choose."""
        known = next((c for c in self.screened if c["name"] == candidate.name()), None)
        if known is not None:
            return known
        numbers = {**self._numbers(candidate, "screen", self._screening_logits()), "name": candidate.name()}
        self.screened.append(numbers)
        self.ctx.progress(None, f"screened {candidate.name()} on a quarter of the text")
        return numbers

    def _numbers(self, candidate: Candidate, kind: str, logits: Path) -> dict[str, Any]:
        """Recalled (here, or from another machine through the remote cache), else quantized and
        measured against ``logits``, and kept."""
        name = "search-" + hashlib.sha256(f"{self.identity}{kind}{candidate.name()}".encode()).hexdigest()
        try:
            kept = self.ctx.memo(name)
            recalled = json.loads(kept) if kept is not None else None
            if isinstance(recalled, dict) and recalled.get("backend") == self.backend:
                return recalled
        except ValueError:
            pass
        numbers = {**self._quantize_and_measure(candidate, logits), "backend": self.backend}
        self.ctx.keep(name, json.dumps(numbers, sort_keys=True).encode())
        return numbers

    def _screening_logits(self) -> Path:
        """The full-precision logits on the text's first quarter (made once per run; the whole
        text's when a quarter is too short to measure)."""
        if self._short_logits is None:
            step, tc = self.step, self.ctx.toolchain
            text = step.text.read_bytes()
            short = self.ctx.tmp(step.out).with_suffix(".screen.txt")
            short.write_bytes(text[:max(int(len(text) * SCREEN_SHARE), 1)])
            logits = short.with_suffix(".logits")
            lines = run_perplexity(self.ctx, step, [tc.perplexity, "-m", step.src, "-f", short,
                                                    "--kl-divergence-base", logits, "-c", str(step.context),
                                                    "-b", str(step.context), "-t", str(self.ctx.threads),
                                                    *offload(tc)], FINAL_PPL)
            measured = any(FINAL_PPL.search(line) for line in lines) and logits.stat().st_size > LOGITS_HEADER
            self._short_logits = logits if measured else step.logits
        return self._short_logits

    def _group_types(self, gguf: Path) -> dict[str, list[str]]:
        """The ggml types each tensor group has in ``gguf`` (the file type varies some by layer)."""
        from gguf import GGMLQuantizationType

        from modelkit.formats.gguf import tensor_infos

        found: dict[str, set[str]] = {}
        for info in tensor_infos(gguf):
            for group in self.groups:
                if info.name.startswith(f"{group}.") or f".{group}." in info.name:
                    found.setdefault(group, set()).add(GGMLQuantizationType(info.ggml_type).name)
        return {group: sorted(types) for group, types in found.items()}

    def _quantize_and_measure(self, candidate: Candidate, logits: Path) -> dict[str, Any]:
        started = time.monotonic()
        step, tc = self.step, self.ctx.toolchain
        made = self.ctx.tmp(step.out).with_suffix(".candidate.gguf")
        flags = ["--imatrix", step.imatrix.name] if step.imatrix else []
        try:
            step.run_tool(self.ctx, [tc.quantize, *flags, *candidate.recipe().flags(), step.src, made, candidate.type,
                                     str(self.ctx.threads)], cwd=step.imatrix.folder if step.imatrix else None)
            numbers = {**measure_kld(self.ctx, step, made, logits, step.context),
                       "group_types": self._group_types(made)}
        finally:
            made.unlink(missing_ok=True)
        self.fresh += 1
        self.seconds += time.monotonic() - started
        return numbers
