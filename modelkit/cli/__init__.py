"""The ``modelkit`` command: thin commands over the library, and the rich reporter."""

from modelkit.cli.main import main

__all__ = ["main"]
