"""Run the benchmarks: ``python -m bench`` (all), ``python -m bench engine templates``, or
``python -m bench scale [--params 8B]`` (an hour: only when named)."""

from __future__ import annotations

import importlib
import sys

BENCHES = ["noop", "engine", "templates", "engines", "renderers", "watch", "merge", "quality", "remote", "build",
           "cluster"]
NAMED_ONLY = ["scale"]
"""Run only when named: they take an hour or more."""


def main(argv: list[str]) -> int:
    if argv[:1] == ["scale"]:
        from bench import scale

        print("== scale")
        scale.main(argv[1:])
        return 0
    names = argv or BENCHES
    for name in names:
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES + NAMED_ONLY)}", file=sys.stderr)
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
