"""The documentation cannot drift from the code: its generated references are current, and the
commands of ``docs/getting-started.md`` run, on the tiny example, and print what the page shows.

The marker convention of ``docs/getting-started.md`` (fenced blocks pymdownx.superfences renders with
the first class as the language; the second class is what this test reads):

    ``` { .sh .run }      commands this test runs, in order, in a copy of the built tiny example
                          (``built_example``), as the page's walk assumes: each line on its own,
                          through bash, with the virtualenv's ``bin`` first on PATH; a line ending
                          in a backslash goes on with the next; blank lines and ``#`` comments are
                          skipped. Each must exit 0.
    ``` { .text .output } right after a run block: lines its commands' output (stdout and stderr)
                          must hold. ``…`` stands for any text, a line of ``…`` alone for any lines;
                          runs of whitespace compare equal, so columns may be aligned for reading.

Every other fenced block (``sh`` with no class: install steps, moving into the project) is for the
reader only. Commands run offline (``cli_env``: no Ollama), so what the page shows must hold there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT, cli_env, copy_built

PAGE = ROOT / "docs" / "getting-started.md"
GENERATOR = ROOT / "scripts" / "docs_reference.py"
_FENCE = re.compile(r"^```[ \t]*\{([^}]*)\}[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


@dataclass
class RunBlock:
    """A ``.run`` block: its commands, and the lines (patterns) the ``.output`` block after it expects."""

    line: int
    commands: list[str]
    expected: list[str] = field(default_factory=list)


def run_blocks(text: str) -> list[RunBlock]:
    """The page's ``.run`` blocks in order, each with the ``.output`` block that follows it."""
    blocks: list[RunBlock] = []
    for match in _FENCE.finditer(text):
        classes = [word[1:] for word in match.group(1).split() if word.startswith(".")]
        line = text.count("\n", 0, match.start()) + 1
        if "run" in classes:
            blocks.append(RunBlock(line, commands(match.group(2))))
        elif "output" in classes:
            assert blocks and not blocks[-1].expected, f"line {line}: an output block must follow a run block"
            blocks[-1].expected = [e for e in match.group(2).splitlines() if e.strip() not in ("", "…")]
    return blocks


def commands(body: str) -> list[str]:
    """A run block's commands: its lines, a trailing backslash joining a line to the next."""
    joined = re.sub(r"\\\n", " ", body)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def missing(expected: list[str], output: str) -> list[str]:
    """The expected lines no line of ``output`` matches (``…``: any text; whitespace runs: equal)."""
    lines = [" ".join(line.split()) for line in output.splitlines()]
    absent = []
    for want in expected:
        pieces = [" ".join(piece.split()) for piece in want.split("…")]
        pattern = re.compile(".*".join(re.escape(piece) for piece in pieces if piece))
        if not any(pattern.search(line) for line in lines):
            absent.append(want)
    return absent


def test_the_page_has_what_this_test_runs() -> None:
    blocks = run_blocks(PAGE.read_text(encoding="utf-8"))
    run = " ".join(c for b in blocks for c in b.commands)
    for command in ("modelkit plan", "modelkit build", "modelkit inspect", "modelkit report"):
        assert command in run, f"{PAGE.name} runs no `{command}`"
    assert all(b.expected for b in blocks if "modelkit" in " ".join(b.commands)), "a modelkit block shows no output"


def test_missing_reads_ellipses_and_columns() -> None:
    output = "target   status  why\nmodelfile:x    stale   params changed: a 1 -> 2   \n"
    assert missing(["modelfile:x stale  …  a 1 -> 2", "target … why"], output) == []
    assert missing(["modelfile:x fresh"], output) == ["modelfile:x fresh"]


@pytest.mark.toolchain
@pytest.mark.slow  # the tiny example built once per run (shared); the page's commands take 3 s
def test_getting_started_commands_run(toolchain, built_example: Path, tmp_path: Path) -> None:
    project = copy_built(built_example, tmp_path / "tiny")
    env = cli_env(env={"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    for block in run_blocks(PAGE.read_text(encoding="utf-8")):
        output = ""
        for command in block.commands:
            proc = subprocess.run(["bash", "-c", command], cwd=project, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, timeout=300)
            assert proc.returncode == 0, f"{PAGE.name}:{block.line}: `{command}` exited {proc.returncode}:\n{proc.stdout}"
            output += proc.stdout
        absent = missing(block.expected, output)
        assert not absent, f"{PAGE.name}:{block.line}: the output lacks {absent}:\n{output}"


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(GENERATOR), *args], capture_output=True, text=True, timeout=120)


def test_references_are_current() -> None:
    proc = generate("--check")
    assert proc.returncode == 0, proc.stderr


def test_a_stale_reference_is_named(tmp_path: Path) -> None:
    assert generate("--root", str(tmp_path)).returncode == 0
    spec = tmp_path / "docs" / "reference" / "spec.md"
    cli = tmp_path / "docs" / "reference" / "cli.md"
    for page in (spec, cli):  # nothing of this machine in them
        assert str(ROOT) not in page.read_text() and str(tmp_path) not in page.read_text()
    assert generate("--check", "--root", str(tmp_path)).returncode == 0

    spec.write_text(spec.read_text().replace("| `name` |", "| `title` |", 1))
    proc = generate("--check", "--root", str(tmp_path))
    assert proc.returncode == 1
    assert "docs/reference/spec.md is out of date" in proc.stderr and "cli.md" not in proc.stderr
