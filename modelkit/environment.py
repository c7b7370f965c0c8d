"""Every environment variable modelkit reads, named once: what decides a build besides its files.

The no-op stamp (:mod:`modelkit.cli.build`) keys on :func:`decisive`, so a variable that changes
what a build finds (the toolchain's folder, a server's address) makes the next build plan instead
of answering "up to date" from the stamp. A test reads every ``os.environ``/``getenv`` in the
package and fails on a name missing here, so this list cannot fall behind the code.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping

READ: dict[str, str] = {
    "MODELKIT_CACHE": "modelkit's user cache (the managed toolchain, its downloads)",
    "XDG_CACHE_HOME": "the user cache folder when MODELKIT_CACHE is not set",
    "HOME": "the user cache folder when neither is set; ~ in paths",
    "MODELKIT_BACKEND": "cpu or cuda instead of detecting the GPU",
    "MODELKIT_LLAMA_CPP": "a llama.cpp checkout to use instead of the managed one",
    "MODELKIT_LLAMA_CPP_BIN": "where that checkout's binaries are",
    "MODELKIT_LLAMA_CPP_SDIST": "a llama-cpp-python sdist on disk to build the managed toolchain from",
    "MODELKIT_PYPI_URL": "the package index the managed toolchain's source comes from",
    "MODELKIT_CUDA_ARCHITECTURES": "the CUDA architectures the managed toolchain is built for",
    "MODELKIT_REMOTE_CACHE": "the remote artifact cache, over [cache] remote (empty: none)",
    "MODELKIT_WARM": "0 starts Python tools cold",
    "MODELKIT_HUB_TIMEOUT": "seconds the Hugging Face Hub may take",
    "HF_HUB_OFFLINE": "no Hugging Face Hub requests",
    "OLLAMA_HOST": "the Ollama server",
    "RAY_ADDRESS": "the Ray cluster of --executor ray",
    "PYTHONPATH": "where the PyTorch merge's Python finds modules (modelkit is added to it)",
    "MODELKIT_OCI_USERNAME": "the user for an OCI registry (with MODELKIT_OCI_PASSWORD; over the Docker config)",
    "MODELKIT_OCI_PASSWORD": "that user's password or token",
    "DOCKER_CONFIG": "where Docker's config.json is (registry credentials)",
}
"""Each variable modelkit's own code reads, and what it decides."""

PASSED_ON: dict[str, str] = {
    "HF_": "huggingface_hub (its cache, endpoint, token)",
    "HUGGINGFACE_": "huggingface_hub's older names",
    "OLLAMA_": "the ollama client and CLI",
    "LLAMA_": "llama.cpp's tools (LLAMA_ARG_*)",
    "CUDA_": "which GPUs the tools see",
    "NVIDIA_": "which GPUs the tools see",
    "PYDANTIC_": "pydantic's plugins",
    "MODELKIT_": "modelkit's own settings (the ones above, and any a later version adds)",
}
"""Prefixes of what the libraries and tools modelkit runs read for themselves."""

PROCESS: tuple[str, ...] = ("PATH", "TERM", "NO_COLOR", "FORCE_COLOR", "COLUMNS")
"""What decides which programs run and how the console prints."""


def decisive(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables of ``environ`` that can change what a build does or prints."""
    return {name: value for name, value in sorted(environ.items())
            if name in READ or name in PROCESS or name.startswith(tuple(PASSED_ON))}


def digest(environ: Mapping[str, str] = os.environ) -> str:
    """A digest of :func:`decisive` (a stamp keeps this, never the values: tokens live there)."""
    return hashlib.sha256(json.dumps(decisive(environ), sort_keys=True).encode()).hexdigest()
