#!/usr/bin/env python3
"""Translate and prove every chat template in llama.cpp's ``models/templates``; print the table.

Usage::

    python -m bench templates            # or: python bench/templates.py [TEMPLATES_DIR]

TEMPLATES_DIR defaults to ``$MODELKIT_LLAMA_CPP/models/templates``, else the templates of the
toolchain modelkit uses (``modelkit toolchain install``). The output is Markdown, for the README.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelkit.chat_template.report import format_report, survey  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = argv if argv is not None else [sys.argv[0]]
    if len(argv) > 1:
        folder = Path(argv[1])
    elif os.environ.get("MODELKIT_LLAMA_CPP"):
        folder = Path(os.environ["MODELKIT_LLAMA_CPP"]) / "models" / "templates"
    else:
        from modelkit.toolchain import find_toolchain

        toolchain = find_toolchain()
        if toolchain is None:
            print("no llama.cpp sources: run `modelkit toolchain install` or pass TEMPLATES_DIR", file=sys.stderr)
            return 2
        folder = toolchain.templates
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
