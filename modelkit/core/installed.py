"""Versions of installed Python packages, read from the names of their folders.

A plan fingerprints the packages the tools run (torch, transformers…) and a kept spec the pydantic
that validated it, on every command; ``importlib.metadata`` would cost a tenth of a no-op build
(imported, then each file read as e-mail), where a wheel's ``<name>-<version>.dist-info`` folder
already says both.
"""

from __future__ import annotations

import functools
import os
import re
import sys


def installed_version(package: str) -> str | None:
    """``package``'s version: from its ``*.dist-info`` folder's name, else from its metadata
    (an install that is not a wheel); None where it is not installed."""
    found = _dist_info_versions().get(_normalized(package))
    if found is not None:
        return found
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.cache
def _dist_info_versions() -> dict[str, str]:
    """Normalized name -> version of every wheel where this Python looks; the first found wins, as for imports."""
    versions: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                package, _, version = name.removesuffix(".dist-info").rpartition("-")
                versions.setdefault(_normalized(package), version)
    return versions
