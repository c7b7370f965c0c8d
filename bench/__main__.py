"""Run the benchmarks: ``python -m bench`` (all) or ``python -m bench engine templates``."""

from __future__ import annotations

import importlib
import sys

BENCHES = ["noop", "engine", "templates", "engines", "renderers", "watch", "merge", "quality", "remote", "build",
           "cluster"]


def main(argv: list[str]) -> int:
    names = argv or BENCHES
    for name in names:
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}", file=sys.stderr)
            return 2
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"bench.{name}":
                print(f"== {name}: not written yet\n")
                continue
            raise
        print(f"== {name}")
        module.main()
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
