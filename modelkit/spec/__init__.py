"""The spec, ``model.toml``: its schema (:mod:`.model`), loading with line-numbered errors
(:mod:`.load`), the line finder behind them (:mod:`.toml_lines`), and where a project is
(:mod:`.location`, which imports no pydantic: the no-op shortcut needs only that)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.errors import SpecError as SpecError
    from modelkit.spec.load import LoadedSpec as LoadedSpec
    from modelkit.spec.load import check_local_files as check_local_files
    from modelkit.spec.load import load_spec as load_spec
    from modelkit.spec.location import find_spec as find_spec
    from modelkit.spec.model import Adapter as Adapter
    from modelkit.spec.model import Base as Base
    from modelkit.spec.model import Spec as Spec
    from modelkit.spec.model import json_schema as json_schema
    from modelkit.spec.model import schema_text as schema_text


__getattr__, _LAZY = lazy_exports(__name__, __file__)

__all__ = _LAZY
