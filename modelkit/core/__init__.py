"""The build system, knowing nothing of models.

An :class:`Action` says what it reads and writes; a :class:`Graph` of :class:`Target` s says what
depends on what; the :class:`Engine` decides by content what is stale and runs only that, with
outputs put in place atomically, an :class:`ArtifactCache` of earlier results and the state in
:class:`State` (with :class:`Facts` derived from files, kept by digest), and a
:class:`RemoteCache` shared between machines; independent targets run at once (:mod:`.scheduler`),
each when the machine has room for its action's :class:`Demand` (:mod:`.resources`).
:mod:`.process` runs external tools, :mod:`.locks` keeps one builder per project, :mod:`.lockfile`
writes ``modelkit.lock``. Names are imported on first use (:mod:`.lazy`). Nothing here imports
from modelkit outside ``core/`` except :mod:`modelkit.errors` (``tests/test_layering.py`` holds it
to that).
"""

from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.core.action import Action as Action
    from modelkit.core.action import StepContext as StepContext
    from modelkit.core.artifact_cache import ArtifactCache as ArtifactCache
    from modelkit.core.engine import BuildResult as BuildResult
    from modelkit.core.engine import Engine as Engine
    from modelkit.core.engine import QuietReporter as QuietReporter
    from modelkit.core.engine import Reporter as Reporter
    from modelkit.core.engine import Status as Status
    from modelkit.core.facts import Facts as Facts
    from modelkit.core.graph import Graph as Graph
    from modelkit.core.graph import Target as Target
    from modelkit.core.hashing import Hasher as Hasher
    from modelkit.core.hashing import sha256_file as sha256_file
    from modelkit.core.locks import FileLock as FileLock
    from modelkit.core.process import Progress as Progress
    from modelkit.core.process import ignore_progress as ignore_progress
    from modelkit.core.remote_cache import RemoteCache as RemoteCache
    from modelkit.core.resources import Demand as Demand
    from modelkit.core.state import State as State


__getattr__, _LAZY = lazy_exports(__name__, __file__)

__all__ = _LAZY
