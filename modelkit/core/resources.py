"""What a running step holds of the machine (cores, the GPU, memory), so steps run at once safely.

An action declares a :class:`Demand`; the engine's scheduler admits a step only when the
:class:`Pool` can grant it, so ``-j 4`` never means four ``llama-quantize`` runs fighting over two
cores, two conversions of a 16 GB model holding 32 GB on a 24 GB machine, or two steps on one GPU.
The pool is kept by the scheduler's one thread: no locking.

Rules, each chosen so a build can always make progress:

- **cores**: a step holds ``cpu`` cores; ``ALL_CORES`` means "the cores free now, at least one"
  (llama.cpp binaries, which are told that many threads). A step wanting more than the machine has
  runs when nothing else holds a core.
- **memory**: a step holds ``memory`` bytes; it waits while others hold memory and both would not
  fit in what was available when the build started. Alone, it always runs (as a sequential build
  would).
- **gpu**: a step that offloads to the GPU holds it alone.
- **alone**: a step may name something only one step at a time may use (a server that takes one
  change at a time); others naming it wait.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ALL_CORES = -1
"""``Demand.cpu`` for a tool that uses every core it is given (a thread count is granted)."""


@dataclass(frozen=True)
class Demand:
    """What a step holds while it runs. The default is one busy core (a Python step)."""

    cpu: int = 1
    gpu: bool = False
    memory: int = 0
    alone: str | None = None


@dataclass(frozen=True)
class Grant:
    """What a step was given: ``cpu`` cores (its thread count), the GPU or not, ``memory`` bytes,
    and the thing it holds alone, if any."""

    cpu: int
    gpu: bool
    memory: int
    alone: str | None = None

    @property
    def threads(self) -> int:
        """The thread count to give the step's tool (at least one, even for a step holding none)."""
        return max(1, self.cpu)


@dataclass(frozen=True)
class Machine:
    """What there is to share."""

    cores: int
    memory: int
    gpus: int = 1

    @classmethod
    def this(cls) -> Machine:
        """This machine: the cores this process may use and the memory available now."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return cls(max(1, cores), available_memory())


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``), or the physical memory where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 40  # unknown: do not hold anything back


def default_jobs(machine: Machine) -> int:
    """How many steps run at once unless told: one per core, at least two (a Python conversion
    mostly waits on its interpreter's start-up, so two overlap well even on one core)."""
    return max(2, machine.cores)


class Pool:
    """The machine's free cores, GPU and memory, as steps take and give them back."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.cpu = 0
        self.gpus = 0
        self.memory = 0
        self.holders = 0
        self.alone: set[str] = set()

    def take(self, demand: Demand) -> Grant | None:
        """A grant for ``demand`` if it fits now (then held until :meth:`give`), else None."""
        m = self.machine
        if (demand.gpu and self.gpus >= max(1, m.gpus)) or (demand.alone is not None and demand.alone in self.alone):
            return None
        if demand.memory and self.memory and self.memory + demand.memory > m.memory:
            return None
        free = m.cores - self.cpu
        if demand.cpu == ALL_CORES:
            if free < 1:
                return None
            cpu = free
        elif demand.cpu > free and self.cpu > 0:
            return None
        else:
            cpu = demand.cpu
        grant = Grant(cpu, demand.gpu, demand.memory, demand.alone)
        if grant.alone is not None:
            self.alone.add(grant.alone)
        self.cpu += grant.cpu
        self.gpus += grant.gpu
        self.memory += grant.memory
        self.holders += 1
        return grant

    def give(self, grant: Grant) -> None:
        self.cpu -= grant.cpu
        self.gpus -= grant.gpu
        self.memory -= grant.memory
        self.holders -= 1
        if grant.alone is not None:
            self.alone.discard(grant.alone)
