"""Credentials for an OCI registry, found where Docker and its tools keep them; never printed.

In order: ``$MODELKIT_OCI_USERNAME`` and ``$MODELKIT_OCI_PASSWORD`` (CI); then the Docker config
(``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``): the registry's credential helper
(``credHelpers``), the default store (``credsStore``), or its ``auths`` entry (``auth``, the
base64 of ``user:password``, as ``docker login`` writes it). A helper is the program
``docker-credential-<name>``, asked as Docker asks it (``get``, the server on stdin).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from modelkit.oci.reference import DOCKER_HUB

USERNAME, PASSWORD = "MODELKIT_OCI_USERNAME", "MODELKIT_OCI_PASSWORD"
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", DOCKER_HUB)


@dataclass(frozen=True)
class Credentials:
    """A user name and a password (or token); its ``repr`` hides the password."""

    username: str
    password: str = field(repr=False)
    source: str = ""
    """Where they were found, for messages (``$MODELKIT_OCI_USERNAME``, ``~/.docker/config.json``, a helper)."""


def find_credentials(registry: str) -> Credentials | None:
    """The credentials for ``registry``, or None (anonymous: a public registry may still answer)."""
    user, secret = os.environ.get(USERNAME), os.environ.get(PASSWORD)
    if user and secret:
        return Credentials(user, secret, f"${USERNAME}")
    config_path = docker_config()
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    keys = _HUB_KEYS if registry == DOCKER_HUB else (registry, f"https://{registry}", f"http://{registry}")
    helper = next((config["credHelpers"][k] for k in keys if k in (config.get("credHelpers") or {})), None)
    if helper or config.get("credsStore"):
        found = _from_helper(helper or config["credsStore"], keys)
        if found is not None:
            return found
    for key in keys:
        entry = (config.get("auths") or {}).get(key) or {}
        if entry.get("auth"):
            user, _, secret = base64.b64decode(entry["auth"]).decode("utf-8", "replace").partition(":")
            return Credentials(user, secret, str(config_path))
    return None


def docker_config() -> Path:
    """Where Docker keeps its config (``$DOCKER_CONFIG``, else ``~/.docker``)."""
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json"


def _from_helper(helper: str, keys: tuple[str, ...]) -> Credentials | None:
    program = f"docker-credential-{helper}"
    for key in keys:
        try:
            done = subprocess.run([program, "get"], input=key, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0:
            try:
                answer = json.loads(done.stdout)
                return Credentials(str(answer["Username"]), str(answer["Secret"]), program)
            except (ValueError, KeyError, TypeError):
                return None
    return None
