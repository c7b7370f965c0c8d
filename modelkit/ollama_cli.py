"""Registering through the ``ollama`` command: ``ollama create MODEL -f MODELFILE``.

The other path to the HTTP API, for users who prefer the CLI (it hashes and uploads the files the
Modelfile names itself). The command gets an argument list, never a shell line, so a Modelfile
path with spaces or quotes reaches it intact; ``OLLAMA_HOST`` is passed on when a host is given.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from modelkit.errors import StepError, UserError
from modelkit.ollama_client import OllamaUnavailable, Progress, checked_name, ignore_progress, shown_host

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
    it could not reach the server. Its output goes to ``progress`` line by line, and to ``log``."""
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
        report(
            f"warning: {path.name} is {size / 1e6:.1f} MB; Ollama's Modelfile parser slows down with the square "
            "of a value's size, so this may take minutes (registering through the API has no such cost)",
            None,
            None,
        )
    env = dict(os.environ)
    if host:
        env["OLLAMA_HOST"] = host
    command = [exe, "create", name, "-f", str(path)]
    lines: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    ) as proc:
        assert proc.stdout is not None
        for line in cli_lines(proc.stdout):
            lines.append(line)
            report(line, None, None)
        code = proc.wait()
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("$ " + shlex.join(command) + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    if code == 0:
        return
    last = next((line for line in reversed(lines) if line), f"exit status {code}")
    lowered = last.lower()
    if "could not connect" in lowered or "connection refused" in lowered:
        raise OllamaUnavailable(shown_host(host), last.removeprefix("Error: "), name, path)
    raise StepError(f"`ollama create {name}` failed: {last}", log=log, tail=lines[-20:])


def cli_lines(stream: IO[bytes]) -> Iterator[str]:
    """Lines of ``ollama`` output without its spinner, which it redraws with carriage returns,
    ANSI codes and braille frames; repeated lines are reported once."""
    pending = b""
    previous = None
    while chunk := stream.read1(4096):  # type: ignore[attr-defined]
        pending += chunk
        *complete, pending = re.split(rb"[\r\n]", pending)
        for raw in complete:
            line = _clean(raw)
            if line and line != previous:
                previous = line
                yield line
    line = _clean(pending)
    if line and line != previous:
        yield line


def _clean(raw: bytes) -> str:
    return _SPINNER.sub("", _ANSI.sub("", raw.decode("utf-8", "replace"))).strip()
