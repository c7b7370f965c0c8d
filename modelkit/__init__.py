"""modelkit: declarative, incremental builds from Hugging Face models and LoRA adapters to
GGUF files and Ollama models, through llama.cpp.

The public API::

    from modelkit import Project
    project = Project.open("examples/tiny/model.toml")
    for status in project.plan():
        print(status.name, status.state, status.reason)
    result = project.build()      # a BuildResult: ran, fresh, failed, deferred, …

Every error modelkit raises on purpose is one of the types in :mod:`modelkit.errors`, re-exported
here. ``Project`` and the build results are imported on first use, so that ``import modelkit``
(and every ``modelkit`` command) starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkit import errors as _errors
from modelkit.core.lazy import lazy_exports
from modelkit.errors import *  # noqa: F403 - every public error type is part of the API
from modelkit.version import __version__ as __version__

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.core.engine import BuildResult as BuildResult
    from modelkit.core.engine import Status as Status
    from modelkit.project import Project as Project


__getattr__, _LAZY = lazy_exports(__name__, __file__)


__all__ = [*_LAZY, "__version__", *_errors.__all__]
