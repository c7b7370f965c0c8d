"""Render an Ollama Modelfile for one variant (``templates/Modelfile.j2``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit.core.action import StepContext
from modelkit.core.resources import Demand
from modelkit.steps.base import LIGHT, Step
from modelkit.steps.template import read_inherited

if TYPE_CHECKING:
    from modelkit.ollama.renderers import BuiltIn


@dataclass(kw_only=True, eq=False)
class RenderModelfile(Step, kind="modelfile"):
    """Exactly one of ``template`` (text), ``template_file`` or ``inherited`` (the template step's
    output) gives the TEMPLATE."""

    from_: str
    adapters: list[str]
    system: str | None
    parameters: dict[str, Any]
    messages: list[tuple[str, str]]
    license: str | None
    template: str | None = None
    template_file: Path | None = None
    inherited: Path | None = None
    header: str = ""
    projector: str | None = None
    """The projector GGUF, named as ``from_`` is: the model sees images."""
    notice: str | None = None
    """Said when the Modelfile is written: why the GGUF may not carry its template (not part of the key)."""

    def params(self) -> dict[str, Any]:
        from modelkit.ollama.renderers import proven_digest

        return {"from": self.from_, "adapters": self.adapters, "system": self.system,
                "parameters": self.parameters, "messages": self.messages, "license": self.license,
                "template": self.template, "header": self.header, "builtins": proven_digest(),
                **({"projector": self.projector} if self.projector else {})}

    def inputs(self) -> dict[str, Path]:
        return {"template_file": self.template_file} if self.template_file else {}

    def describe(self) -> str:
        return f"render {self.out.name}"

    def content(self) -> str:
        """The Modelfile text (also what registration through the API sends, field by field)."""
        from modelkit.ollama.modelfile import Modelfile, render_modelfile

        builtin = self.builtin()
        return render_modelfile(Modelfile(
            from_=self.from_, adapters=tuple(self.adapters), projectors=(self.projector,) if self.projector else (),
            template=self.resolved_template(),
            system=self.system, parameters=tuple(self.resolved_parameters().items()),
            messages=tuple(self.messages), license=(self.license,) if self.license else (),
            requires=builtin.requires if builtin else None, renderer=builtin.renderer if builtin else None,
            parser=builtin.parser if builtin else None, header=self.header))

    def builtin(self) -> BuiltIn | None:
        """Ollama's built-in renderer and parser, where a real Ollama proved they render exactly the
        inherited template (:mod:`modelkit.ollama.renderers`); never for a TEMPLATE the spec gives,
        which the user chose to be what renders."""
        from modelkit.ollama.renderers import builtin_for

        if self.inherited is None or self.template is not None or self.template_file is not None:
            return None
        inherited = read_inherited(self.inherited)
        return builtin_for(inherited.get("jinja"), inherited.get("bos_token"))

    def resolved_template(self) -> str | None:
        """The TEMPLATE text, wherever the spec says it comes from."""
        if self.template is not None:
            return self.template
        if self.template_file is not None:
            return self.template_file.read_text(encoding="utf-8")
        if self.inherited is not None:
            template: str | None = read_inherited(self.inherited)["template"]
            return template
        return None

    def resolved_parameters(self) -> dict[str, Any]:
        """The spec's parameters, plus stop strings from the inherited template if none are set."""
        params = dict(self.parameters)
        if "stop" not in params and self.inherited is not None:
            stop = read_inherited(self.inherited).get("stop") or []
            if stop:
                params["stop"] = list(stop)
        return params

    def template_origin(self) -> str | None:
        """Where the TEMPLATE comes from, for ``modelkit inspect``."""
        if self.inherited is not None and self.inherited.is_file():
            inherited = read_inherited(self.inherited)
            return f"inherited from {inherited['origin']} ({inherited['proof']})"
        if self.template_file is not None:
            return f"from {self.template_file}"
        return "given in the spec" if self.template is not None else None

    def demand(self) -> Demand:
        return LIGHT  # a few lines of text, in-process

    def run(self, ctx: StepContext) -> None:
        ctx.tmp(self.out).write_text(self.content(), encoding="utf-8")
        if self.notice:
            ctx.note(self.notice)
