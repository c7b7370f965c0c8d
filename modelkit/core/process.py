"""Running external tools: output streamed to a log, line by line to the display, children stopped.

Every tool modelkit runs (a convert script, ``llama-quantize``, CMake, ``ollama create``) goes
through :func:`stream`, so each gets the same guarantees: its combined output is appended to a log
file as it arrives, each line (split at ``\\r`` too, so progress bars count) reaches a callback,
and an interrupt (Ctrl-C, a failure elsewhere) stops the tool *and everything it started*, because
it runs in its own session. Because a tool in its own session does not see the terminal's
Ctrl-C, the tools running at once (a parallel build) are known here, and :func:`stop_all` stops
every one of them from the thread that caught the interrupt.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Protocol

from modelkit.core.warm import Warm
from modelkit.core.warm import start as warm_start
from modelkit.errors import StepError

Progress = Callable[[float | None, str], None]
"""Called with the fraction done (None when unknown) and a short line saying what is happening."""

TAIL_LINES = 15
# The last line of a Python traceback: "ValueError: mmap length is greater than file size".
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt): ")
_LINE_BREAK = re.compile(rb"[\r\n]")


class Running(Protocol):
    """A tool running in its own session: a ``Popen``, or a script forked warm (``WarmProcess``)."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


_RUNNING: set[Running] = set()
_RUNNING_LOCK = threading.Lock()


def ignore_progress(fraction: float | None, text: str) -> None:
    """The progress callback for callers that show none."""


def stream(argv: Sequence[str | os.PathLike[str]], log: Path, on_line: Callable[[str], None], *,
           env: dict[str, str] | None = None, cwd: Path | None = None,
           clean: Callable[[str], str] = str.strip, warm: Warm | None = None) -> int:
    """Run ``argv``, append its output to ``log`` and pass each non-empty ``clean``ed line to
    ``on_line``; return its exit status. Raises :class:`StepError` if it cannot be started.
    ``warm``: ``argv`` is a Python and a script, started warm (:mod:`modelkit.core.warm`)."""
    args = [str(a) for a in argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8", errors="replace") as out:
        out.write(f"$ {' '.join(args)}\n")
        out.flush()
        proc = _start(args, env, cwd, warm, log)
        assert proc.stdout is not None
        with _RUNNING_LOCK:
            _RUNNING.add(proc)
        try:
            pending = b""
            while chunk := proc.stdout.read1(65536):  # type: ignore[attr-defined]  # a bufsize>0 pipe is a BufferedReader
                out.write(chunk.decode("utf-8", "replace"))
                *lines, pending = _LINE_BREAK.split(pending + chunk)
                _deliver(lines, on_line, clean)
            _deliver([pending], on_line, clean)
            return proc.wait()
        except BaseException:
            stop(proc)
            raise
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(proc)


def _start(args: list[str], env: dict[str, str] | None, cwd: Path | None, warm: Warm | None,
           log: Path) -> Running:
    if warm is not None and (started := warm_start(args[0], args[1:], warm, env, cwd)) is not None:
        return started
    try:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=cwd, start_new_session=True)
    except OSError as e:
        raise StepError(f"cannot run {args[0]}: {e.strerror or e}", log) from None


def stop_all(sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` to every tool running now and what it started; return how many there were.
    Their threads see them end, fail their steps, and clean up after them."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for proc in running:
        _signal(proc.pid, sig)
    return len(running)


def run(argv: Sequence[str | os.PathLike[str]], log: Path, what: str, *,
        on_line: Callable[[str], None] | None = None, env: dict[str, str] | None = None,
        cwd: Path | None = None, warm: Warm | None = None) -> None:
    """:func:`stream`, raising :class:`StepError` with the log's last lines when the tool fails.

    The message names the tool, how it ended and, for a Python tool, the exception it died of.
    """
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def line(text: str) -> None:
        tail.append(text)
        if on_line is not None:
            on_line(text)

    try:
        code = stream(argv, log, line, env=env, cwd=cwd, warm=warm)
    except StepError as e:
        raise StepError(f"{what}: {e}", log) from None
    if code == 0:
        return
    args = [str(a) for a in argv]
    tool = Path(args[1] if "python" in Path(args[0]).name and len(args) > 1 else args[0]).name
    reason = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
    cause = next((t for t in reversed(tail) if _EXCEPTION.match(t)), None)
    detail = f": {cause}" if cause else ""
    raise StepError(f"{what} failed: {tool} {reason}{detail}", log, list(tail))


def fraction_in(line: str, pattern: re.Pattern[str] | None) -> float | None:
    """The progress a tool's line reports: a match with groups (done, total) or (percent,)."""
    if pattern is None or not (m := pattern.search(line)):
        return None
    groups = [g for g in m.groups() if g is not None]
    if len(groups) >= 2 and float(groups[1]) > 0:
        return float(groups[0]) / float(groups[1])
    return float(groups[0]) / 100 if groups else None


STOP_SECONDS = 10.0
"""How long a stopped tool has to end after each signal."""


def stop(proc: Running) -> None:
    """Stop a tool and everything it started (it runs in its own session): TERM, then KILL, each
    given :data:`STOP_SECONDS`. Never waits longer: a tool that outlives KILL is left to the system."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        _signal(proc.pid, sig)
        try:
            proc.wait(timeout=STOP_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue


def _signal(pid: int, sig: int) -> None:
    """``sig`` to the session ``pid`` leads, or to ``pid`` alone when it leads none (yet)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass  # it has ended: wait() collects it


def _deliver(raw_lines: list[bytes], on_line: Callable[[str], None], clean: Callable[[str], str]) -> None:
    for raw in raw_lines:
        text = clean(raw.decode("utf-8", "replace"))
        if text:
            on_line(text)
