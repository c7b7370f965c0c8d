"""Stands in for Ollama's ``ollama create NAME -f MODELFILE`` in tests (the real CLI cannot be installed).

It does what ``cmd/cmd.go``'s ``CreateHandler`` does: parse the Modelfile with Ollama's grammar
(here :mod:`modelfile_grammar`), turn it into a create request with paths resolved against the
Modelfile's folder, upload each file as a blob named by its sha256 (keyed by base name, as the
real CLI does), then ``POST /api/create`` to ``OLLAMA_HOST`` and print the streamed statuses.
Errors print ``Error: …`` and exit with status 1, as cobra does. It shares no code with modelkit:
names follow ``types/model/name.go`` (:mod:`ollama_names`), parameter kinds ``api/types.go``
(:mod:`ollama_options`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import modelfile_grammar as grammar
from ollama_names import parse_name
from ollama_options import TYPES


class CLIError(Exception):
    pass


def main(argv: list[str]) -> int:
    try:
        run(argv)
    except CLIError as e:
        print(f"Error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


def run(argv: list[str]) -> None:
    if len(argv) != 4 or argv[0] != "create" or argv[2] not in ("-f", "--file"):
        raise CLIError(f"this stand-in only knows `ollama create NAME -f FILE`, got {argv}")
    name, modelfile = argv[1], Path(argv[3]).absolute()
    if not parse_name(name).is_valid():
        raise CLIError(f"invalid model name: {name}")
    if not modelfile.is_file():
        raise CLIError("specified Modelfile wasn't found")
    try:
        commands = grammar.parse(modelfile.read_bytes())
        req = grammar.create_request(commands, modelfile.parent, TYPES, _digest)
    except grammar.ParseError as e:
        raise CLIError(str(e)) from None

    base = _base_url()
    for group in ("files", "adapters"):
        files = req.get(group)
        if isinstance(files, dict):
            renamed = {}
            for path, digest in files.items():
                _request(base, "POST", f"/api/blobs/{digest}", Path(path).read_bytes())
                renamed[Path(path).name] = digest
            req[group] = renamed
    req["model"] = name
    _create(base, req)


def _digest(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _base_url() -> str:
    host = os.environ.get("OLLAMA_HOST") or "127.0.0.1:11434"
    return host if "://" in host else "http://" + host


def _request(base: str, method: str, path: str, body: bytes) -> bytes:
    request = urllib.request.Request(base + path, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            return reply.read()
    except urllib.error.HTTPError as e:
        raise CLIError(json.loads(e.read() or b"{}").get("error", e.reason)) from None
    except urllib.error.URLError:
        raise CLIError("could not connect to ollama app, is it running?") from None


def _create(base: str, req: dict[str, object]) -> None:
    request = urllib.request.Request(
        base + "/api/create", data=json.dumps(req).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            for raw in reply:
                line = json.loads(raw)
                if "error" in line:
                    raise CLIError(line["error"])
                print(line.get("status", ""), flush=True)
    except urllib.error.HTTPError as e:
        raise CLIError(json.loads(e.read() or b"{}").get("error", e.reason)) from None
    except urllib.error.URLError:
        raise CLIError("could not connect to ollama app, is it running?") from None
