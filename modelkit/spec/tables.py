"""What the spec's tables do beyond holding values, written once for both of their forms.

A spec is validated by the pydantic models of :mod:`.model`; a validated spec is kept, and read back
on the next command, as plain records (:mod:`.kept`) so that a no-op never imports pydantic (a third
of its time). Both forms inherit these methods, so they answer alike; they read only fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelkit.core.units import parse_size

SEARCHED = "auto"
"""The name of the variant a quantization search chooses."""


class RecipeTable:
    if TYPE_CHECKING:
        tensors: dict[str, str]
        output: str | None
        embeddings: str | None

    def tensor_types(self) -> list[str]:
        """Every tensor type the recipe asks for, its file type's aside."""
        return [*self.tensors.values(), *(t for t in (self.output, self.embeddings) if t)]


class SearchTargetTable:
    def bounds(self) -> dict[str, Any]:
        """The bounds given (the search's key and its report)."""
        return {k: v for k, v in vars(self).items() if v is not None}


class QuantizeTable:
    if TYPE_CHECKING:
        from modelkit.spec.model import Recipe, SearchTarget

        types: list[str]
        recipes: list[Recipe]
        target: SearchTarget | None

    @property
    def variant_names(self) -> list[str]:
        """Every variant to build: the types, the recipes' names, then the searched one ('auto')."""
        return [*self.types, *(r.name for r in self.recipes), *([SEARCHED] if self.target else [])]

    def recipe(self, name: str) -> Recipe | None:
        return next((r for r in self.recipes if r.name == name), None)


class PromptCheckTable:
    if TYPE_CHECKING:
        from modelkit.spec.model import Message

        messages: list[Message]
        prompt: str | None

    @property
    def conversation(self) -> list[dict[str, str]]:
        """The messages to send: the ones given, or the prompt as one user message."""
        if not self.messages:
            return [{"role": "user", "content": self.prompt or ""}]
        return [{"role": m.role, "content": m.content} for m in self.messages]


class PublishTable:
    if TYPE_CHECKING:
        max_file_size: int | str

    @property
    def max_bytes(self) -> int:
        return parse_size(self.max_file_size)


class SpecTable:
    if TYPE_CHECKING:
        from modelkit.spec.model import Ollama

        name: str
        ollama: Ollama

    @property
    def ollama_model(self) -> str:
        return self.ollama.model or self.name


TABLES: dict[str, type] = {"Recipe": RecipeTable, "SearchTarget": SearchTargetTable, "Quantize": QuantizeTable,
                           "PromptCheck": PromptCheckTable, "Publish": PublishTable, "Spec": SpecTable}
"""The methods of each table that has some, by its model's name (a kept record gets them by name)."""
