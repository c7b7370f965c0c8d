"""The spec, ``model.toml``: its schema (:mod:`.model`), loading with line-numbered errors
(:mod:`.load`) and the line finder behind them (:mod:`.toml_lines`)."""

from modelkit.errors import SpecError
from modelkit.spec.load import LoadedSpec, check_local_files, find_spec, load_spec
from modelkit.spec.model import Adapter, Base, Spec, json_schema, schema_text

__all__ = ["Adapter", "Base", "LoadedSpec", "Spec", "SpecError", "check_local_files", "find_spec", "json_schema",
           "load_spec", "schema_text"]
