"""The targets that measure and judge what a build ships ([quantize] imatrix, [evaluate]).

Per full-precision model (the base, or the base with one adapter merged): its importance matrix
on the calibration text (``imatrix:<stem>``, which every quantization of it uses) and its logits
on the evaluation text (``logits:<stem>``, computed once). Per variant: its numbers against those
logits (``eval:<stem>.<quant>``) and its verdict (``check:<model>:<tag>``: the prompt checks that
apply to it, and the ``max_kld`` gate, which reads the other variants' numbers to say which
larger type would pass). A registration waits for its variant's verdict, so a variant that fails
is not shipped. None of these reads the Modelfile except the verdict, so a new system prompt
re-runs the prompt checks and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit.core.action import Action
from modelkit.errors import UserError
from modelkit.formats.quant_types import canonical
from modelkit.rules.names import Artifact, Names
from modelkit.spec import LoadedSpec
from modelkit.steps.base import Recorded, recorded
from modelkit.steps.evaluate import Evaluate, Logits
from modelkit.steps.imatrix import Imatrix
from modelkit.steps.modelfile import RenderModelfile
from modelkit.steps.quality import JudgeVariant
from modelkit.steps.search import SearchQuant


@dataclass(frozen=True)
class Measured:
    """A variant as the quality rules see it: what it ships and how it was made."""

    variant: Any  # modelkit.rules.Variant
    modelfile: RenderModelfile
    template_target: str | None = None
    """The target whose output the Modelfile's TEMPLATE is read from, if any."""


def add_imatrix(add: Callable[..., Action], names: Names, loaded: LoadedSpec, stem: str, model: Path,
                model_target: str | None) -> Recorded | None:
    """The importance matrix of the full-precision model ``stem`` (added once), if the spec asks."""
    calibration = loaded.spec.quantize.imatrix
    if calibration is None:
        return None
    made = names.imatrix(stem)
    root = loaded.root.resolve()
    add(made.target, Imatrix(model=model, text=recorded(loaded.resolve(calibration), root), label=stem,
                             out=made.path, model_file=None if model_target else model),
        (model_target,), long=True, once=True)
    return recorded(made.path, root)


def add_logits(add: Callable[..., Action], names: Names, loaded: LoadedSpec, stem: str, full: Path,
               full_target: str | None) -> tuple[Artifact, Path]:
    """The full-precision model's logits on the evaluation text (added once), and its perplexity's file."""
    spec = loaded.spec.evaluate
    assert spec.text is not None
    logits, reference = names.logits(stem)
    add(logits.target, Logits(model=full, text=loaded.resolve(spec.text), summary=reference, label=stem,
                              context=spec.context, out=logits.path, model_file=None if full_target else full),
        (full_target,), long=True, once=True)
    return logits, reference


def add_search(add: Callable[..., Action], names: Names, loaded: LoadedSpec, stem: str, full: Path,
               full_target: str | None) -> Artifact | None:
    """``search:<stem>``, the smallest quantization meeting ``[quantize] target``, if the spec sets one."""
    quantize = loaded.spec.quantize
    if quantize.target is None:
        return None
    logits, _ = add_logits(add, names, loaded, stem, full, full_target)
    imatrix = add_imatrix(add, names, loaded, stem, full, full_target)
    made = names.search(stem)
    assert loaded.spec.evaluate.text is not None
    add(made.target, SearchQuant(src=full, logits=logits.path, text=loaded.resolve(loaded.spec.evaluate.text),
                                 imatrix=imatrix, context=loaded.spec.evaluate.context,
                                 target=quantize.target.bounds(), budget=quantize.search_budget, label=stem,
                                 where=loaded.where("quantize", "target"), out=made.path),
        (full_target, logits.target, names.imatrix(stem).target if imatrix else None), long=True, once=True)
    return made


def add_quality(add: Callable[..., Action], names: Names, loaded: LoadedSpec, stem: str, full: Path,
                full_target: str | None, made: list[Measured]) -> dict[str, str]:
    """The evaluation and verdict targets of one model's variants; variant ref -> its verdict target."""
    spec = loaded.spec.evaluate
    evaluations: dict[str, str] = {}
    if spec.text is not None:
        logits, reference = add_logits(add, names, loaded, stem, full, full_target)
        for m in made:
            m.variant.full, m.variant.reference = full, reference
            if m.variant.gguf == full:
                continue  # the reference itself
            evaluation = names.evaluation(stem, m.variant.quant)
            add(evaluation.target, Evaluate(model=m.variant.gguf, logits=logits.path, quant=m.variant.quant,
                                            label=m.variant.ref, context=spec.context, out=evaluation.path),
                (m.variant.gguf_target, logits.target), long=True, once=True)
            m.variant.evaluation, evaluations[m.variant.ref] = evaluation.path, evaluation.target
    return {m.variant.ref: target for m in made if (target := _verdict(add, names, loaded, m, made, evaluations))}


def _verdict(add: Callable[..., Action], names: Names, loaded: LoadedSpec, m: Measured, made: list[Measured],
             evaluations: dict[str, str]) -> str | None:
    """``check:<model>:<tag>``, when prompt checks apply to the variant or a gate does."""
    spec, variant = loaded.spec.evaluate, m.variant
    asked = [(i, c) for i, c in enumerate(spec.prompts)
             if not c.variants or variant.quant in map(_canonical, c.variants)]
    checks = [_check_data(c) for _, c in asked]
    images = {str(image): loaded.resolve(image) for _, c in asked for image in c.images}
    showing = next((i for i, c in asked if c.images), None)
    if showing is not None and variant.projector is None:
        raise UserError(f"{loaded.where('evaluate', 'prompts', showing, 'images')}: {variant.ref} does not see images "
                        "(its base has no projector, or [vision] text_only is set): drop the images or the check")
    gated = spec.max_kld is not None and variant.ref in evaluations
    if not checks and not gated:
        return None
    made_verdict = names.verdict(variant.model, variant.tag)
    ladder = [o.variant.evaluation for o in made if o.variant.evaluation is not None] if gated else None
    adapter = names.adapter(variant.adapter) if variant.adapter and m.modelfile.adapters else None  # an ADAPTER line
    deps = [variant.gguf_target, variant.modelfile_target, m.template_target,
            *(evaluations.values() if gated else ()), adapter.target if adapter else None,
            variant.projector_target if images else None]
    add(made_verdict.target, JudgeVariant(ref=variant.ref, gguf=variant.gguf, modelfile=m.modelfile, checks=checks,
                                          adapters=[adapter.path] if adapter else [],
                                          max_kld=spec.max_kld if gated else None,
                                          evaluation=variant.evaluation if gated else None, ladder=ladder,
                                          projector=variant.projector if images else None, images=images,
                                          out=made_verdict.path), deps, long=True)
    variant.verdict = made_verdict.path
    return made_verdict.target


def _check_data(check: Any) -> dict[str, Any]:
    """A prompt check as the verdict step takes it (plain data: it is part of the step's key)."""
    shown = {"images": [str(image) for image in check.images]} if check.images else {}
    return {"messages": check.conversation,
            "expect": check.expect, "expect_regex": check.expect_regex, "max_tokens": check.max_tokens, **shown}


def _canonical(name: str) -> str:
    try:
        return canonical(name)
    except KeyError:
        return name
