"""What the spec's tables do beyond holding values, written once for both of their forms.

A spec is validated by the pydantic models of :mod:`.model`; a validated spec is kept, and read back
on the next command, as plain records (:mod:`.kept`) so that a no-op never imports pydantic (a third
of its time). Both forms inherit these methods, so they answer alike; they read only fields, and
name the fields' types by these tables and the protocols below (never by the models, which stand
on this module).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from modelkit.core.units import parse_size

SEARCHED = "auto"
"""The name of the variant a quantization search chooses."""


class MessageFields(Protocol):
    """A message of a prompt check, as the tables read it."""

    @property
    def role(self) -> str: ...

    @property
    def content(self) -> str: ...


class OllamaFields(Protocol):
    """The spec's ``[ollama]`` table, as the tables read it."""

    @property
    def model(self) -> str | None: ...


class RecipeTable:
    if TYPE_CHECKING:
        name: str
        type: str
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
        types: list[str]
        recipes: Sequence[RecipeTable]
        target: SearchTargetTable | None

    @property
    def variant_names(self) -> list[str]:
        """Every variant to build: the types, the recipes' names, then the searched one ('auto')."""
        return [*self.types, *(r.name for r in self.recipes), *([SEARCHED] if self.target else [])]

    def recipe(self, name: str) -> RecipeTable | None:
        return next((r for r in self.recipes if r.name == name), None)


class PromptCheckTable:
    if TYPE_CHECKING:
        messages: Sequence[MessageFields]
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
        name: str
        ollama: OllamaFields

    @property
    def ollama_model(self) -> str:
        return self.ollama.model or self.name


TABLES: dict[str, type] = {"Recipe": RecipeTable, "SearchTarget": SearchTargetTable, "Quantize": QuantizeTable,
                           "PromptCheck": PromptCheckTable, "Publish": PublishTable, "Spec": SpecTable}
"""The methods of each table that has some, by its model's name (a kept record gets them by name)."""
