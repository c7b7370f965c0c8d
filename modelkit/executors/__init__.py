"""Where steps run besides here: executors that implement the core's contract (:mod:`modelkit.core.executor`).

The core keeps the contract (:class:`~modelkit.core.executor.Executor`, :class:`~modelkit.core.executor.Job`,
the :class:`~modelkit.core.executor.Tools` protocol) and the executor every engine starts with
(:class:`~modelkit.core.executor.LocalExecutor`, the calling thread). Here:

* :mod:`.ray_executor` — steps as Ray tasks on a cluster, files exchanged through the remote cache;
* :mod:`.ray_worker` — the part of it that runs on the cluster's nodes.

Ray is imported only when a build asks for a cluster (``modelkit build --cluster``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.executors.ray_executor import RayExecutor as RayExecutor
    from modelkit.executors.ray_executor import address as address

__getattr__, _LAZY = lazy_exports(__name__, __file__)

__all__ = _LAZY
