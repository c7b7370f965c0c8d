"""Registering through the ``ollama`` command: ``ollama create MODEL -f MODELFILE``.

The other path to the HTTP API, for users who prefer the CLI (it hashes and uploads the files the
Modelfile names itself). The command gets an argument list, never a shell line, so a Modelfile
path with spaces or quotes reaches it intact; ``OLLAMA_HOST`` is passed on when a host is given.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from modelkit.core import process
from modelkit.core.process import Progress, ignore_progress
from modelkit.core.units import human_size
from modelkit.errors import OllamaUnavailable, StepError, UserError
from modelkit.ollama.content import checked_name
from modelkit.ollama.host import shown_host

# Ollama's parser re-trims the whole value at every space and line break, so its time grows with
# the square of a value's size: about 6 s for a 1 MB system prompt, 80 s for 4 MB.
SLOW_MODELFILE_BYTES = 512 * 1024

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_SPINNER = re.compile("[\u2800-\u28ff]")


def register_with_cli(
    model: str,
    modelfile: Path,
    *,
    host: str | None = None,
    progress: Progress | None = None,
    ollama_bin: str | None = None,
    log: Path | None = None,
) -> None:
    """Run ``ollama create MODEL -f MODELFILE``; raise if it fails, :class:`OllamaUnavailable` if
    it could not reach the server. Its output goes to ``progress`` line by line, and to ``log``
    as it arrives."""
    report = progress or ignore_progress
    name = checked_name(model)
    path = Path(modelfile).resolve()
    if not path.is_file():
        raise UserError(f"{name}: the Modelfile {path} does not exist; build it first")
    exe = ollama_bin or shutil.which("ollama")
    if not exe:
        raise UserError(
            "the `ollama` command is not on PATH; install Ollama, or register through the API (the default)"
        )
    size = path.stat().st_size
    if size > SLOW_MODELFILE_BYTES:
        report(None, f"warning: {path.name} is {human_size(size)}; Ollama's Modelfile parser slows down with the "
                     "square of a value's size, so this may take minutes "
                     "(registering through the API has no such cost)")
    env = dict(os.environ)
    if host:
        env["OLLAMA_HOST"] = host
    lines: list[str] = []

    def on_line(line: str) -> None:
        if not lines or lines[-1] != line:  # the spinner redraws the same line many times
            lines.append(line)
            report(None, line)

    code = process.stream([exe, "create", name, "-f", str(path)], log or Path(os.devnull), on_line, env=env,
                          clean=clean_line)
    if code == 0:
        return
    last = next((line for line in reversed(lines) if line), f"exit status {code}")
    lowered = last.lower()
    if "could not connect" in lowered or "connection refused" in lowered:
        raise OllamaUnavailable(shown_host(host), last.removeprefix("Error: "), name, path)
    raise StepError(f"`ollama create {name}` failed: {last}", log=log, tail=lines[-20:])


def clean_line(raw: str) -> str:
    """A line of ``ollama`` output without its spinner, which it redraws with ANSI codes and
    braille frames."""
    return _SPINNER.sub("", _ANSI.sub("", raw)).strip()
