"""The two kinds of failure modelkit reports, and how the CLI shows them.

Every failure a user can cause or fix becomes a :class:`UserError`: one line that names the
file, line or field and says what to do; the CLI prints it and exits with status 2. A tool that
fails while doing its job (llama.cpp crashing mid-conversion, a server refusing an upload) is a
:class:`StepError`: the CLI prints the message, the last lines of the step's log and where the
whole log is, and exits with status 1. Anything else is a bug in modelkit and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class ModelkitError(Exception):
    """Base class of the errors modelkit reports without a traceback."""

    exit_code = 1


class UserError(ModelkitError):
    """Bad input: a spec, a path, a name or an option the user can fix."""

    exit_code = 2


class StepError(ModelkitError):
    """A build step failed; ``log`` is where its full output went."""

    exit_code = 1

    def __init__(self, message: str, log: Path | None = None, tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.log = log
        self.tail = tail or []
