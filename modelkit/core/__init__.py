"""The build system, knowing nothing of models.

An :class:`Action` says what it reads and writes; a :class:`Graph` of :class:`Target` s says
what depends on what; the :class:`Engine` decides by content what is stale and runs only that,
with outputs put in place atomically, an :class:`ArtifactCache` of earlier results and the state
in :class:`State`, and a :class:`RemoteCache` shared between machines; independent targets run
at once (:mod:`.scheduler`), each when the machine has room for its action's :class:`Demand`
(:mod:`.resources`). :mod:`.process` runs external tools, :mod:`.locks` keeps one builder per
project, :mod:`.lockfile` writes ``modelkit.lock``. Names are imported on first use (:mod:`.lazy`). Nothing here imports from modelkit outside
``core/`` except :mod:`modelkit.errors` (``tests/test_layering.py`` holds it to that).
"""

from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.core.action import Action, StepContext
    from modelkit.core.resources import Demand
    from modelkit.core.artifact_cache import ArtifactCache
    from modelkit.core.engine import BuildResult, Engine, QuietReporter, Reporter, Status
    from modelkit.core.graph import Graph, Target
    from modelkit.core.hashing import Hasher, sha256_file
    from modelkit.core.locks import FileLock
    from modelkit.core.process import Progress, ignore_progress
    from modelkit.core.remote_cache import RemoteCache
    from modelkit.core.state import State


__getattr__, _LAZY = lazy_exports(__name__, __file__)

__all__ = _LAZY
