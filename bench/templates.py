#!/usr/bin/env python3
"""Translate and prove every chat template in llama.cpp's ``models/templates``; print the table.

Usage::

    python bench/templates.py [TEMPLATES_DIR]

TEMPLATES_DIR defaults to ``$MODELKIT_LLAMA_CPP/models/templates`` (the root of a llama.cpp source
tree, as ``modelkit toolchain install`` provides). The output is Markdown, for the README.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelkit.chat_template.report import format_report, survey  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        folder = Path(argv[1])
    elif os.environ.get("MODELKIT_LLAMA_CPP"):
        folder = Path(os.environ["MODELKIT_LLAMA_CPP"]) / "models" / "templates"
    else:
        print("usage: bench/templates.py TEMPLATES_DIR (or set MODELKIT_LLAMA_CPP)", file=sys.stderr)
        return 2
    if not folder.is_dir():
        print(f"{folder}: not a folder", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = survey(folder)
    print(format_report(results))
    print(f"\n({len(results)} templates in {time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
