"""A real OCI registry on loopback for the registry tests: Debian's ``docker-registry`` (CNCF
distribution), with htpasswd users, as a team runs one on its own network (plain HTTP: modelkit's
``--insecure``), and the two independent clients that pull back what modelkit pushes: ``skopeo``
(Debian) and oras-py (in ``.venv-oras``, an environment of its own: ``scripts/setup.sh``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from conftest import ROOT

USERS = {"alice": "wonderland", "bob": "builder"}
ORAS_PYTHON = ROOT / ".venv-oras" / "bin" / "python"


def required(program: str) -> str:
    """The path of ``program``; a failure saying how to get it (set-up installs it)."""
    found = shutil.which(program)
    if found is None:
        raise RuntimeError(f"{program} is not installed: run `make setup` (scripts/setup.sh installs it)")
    return found


@contextmanager
def registry(folder: Path) -> Iterator[str]:
    """docker-registry with :data:`USERS` until the block ends; yields its ``host:port``."""
    import bcrypt
    from real_ollama import free_port

    exe = required("docker-registry")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "htpasswd").write_text("".join(
        f"{user}:{bcrypt.hashpw(secret.encode(), bcrypt.gensalt(rounds=4)).decode()}\n" for user, secret in USERS.items()))
    port = free_port()
    (folder / "config.yml").write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n"
        f"auth:\n  htpasswd:\n    realm: modelkit-tests\n    path: {folder / 'htpasswd'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n")
    with open(folder / "registry.log", "wb") as log:
        proc = subprocess.Popen([exe, "serve", str(folder / "config.yml")], stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
            except urllib.error.HTTPError:
                break  # 401: it answers, and asks for credentials
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"docker-registry did not start (see {folder / 'registry.log'})") from None
                time.sleep(0.1)  # polling for the port, bounded by the deadline
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def login_env(user: str = "alice") -> dict[str, str]:
    """What modelkit reads to log in as ``user`` (and a Docker config of nobody's)."""
    return {"MODELKIT_OCI_USERNAME": user, "MODELKIT_OCI_PASSWORD": USERS[user], "DOCKER_CONFIG": os.devnull}


def skopeo_raw(ref: str) -> bytes:
    """``skopeo inspect --raw``: the manifest's bytes exactly as the registry serves them."""
    out = subprocess.run([required("skopeo"), "inspect", "--raw", "--tls-verify=false", "--creds",
                          f"alice:{USERS['alice']}", f"docker://{ref}"], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def skopeo_manifest(ref: str) -> dict[str, Any]:
    """The manifest ``ref`` names, as skopeo reads it from the registry."""
    manifest: dict[str, Any] = json.loads(skopeo_raw(ref))
    return manifest


def skopeo_copy(ref: str, folder: Path) -> Path:
    """``skopeo copy`` of ``ref`` to an OCI layout folder; its ``blobs/sha256``."""
    out = subprocess.run([required("skopeo"), "copy", "--src-tls-verify=false", "--src-creds",
                          f"alice:{USERS['alice']}", f"docker://{ref}", f"oci:{folder}:pulled"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return folder / "blobs" / "sha256"


def oras_pull(ref: str, folder: Path) -> list[Path]:
    """oras-py's pull of ``ref`` into ``folder`` (files named by their title annotation); what it wrote."""
    if not ORAS_PYTHON.is_file():
        raise RuntimeError(f"{ORAS_PYTHON} is missing: run `make setup`")
    host = ref.split("/")[0]
    script = ("import json, sys, oras.client\n"
              f"c = oras.client.OrasClient(hostname={host!r}, insecure=True, auth_backend='basic')\n"
              f"c.login(username='alice', password={USERS['alice']!r}, hostname={host!r})\n"
              f"print(json.dumps(c.pull(target={ref!r}, outdir={str(folder)!r})))\n")
    out = subprocess.run([str(ORAS_PYTHON), "-c", script], capture_output=True, text=True, timeout=600,
                         env={"PATH": os.environ["PATH"], "HOME": str(folder)})
    assert out.returncode == 0, out.stderr
    return [Path(p) for p in json.loads(out.stdout.strip().splitlines()[-1])]
