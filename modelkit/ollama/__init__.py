"""Ollama, behind one front door: names, parameters, Modelfiles, registration and its freshness.

Modules, one concept each:

* :mod:`.names` — model names and tags, by the rules of Ollama's ``types/model/name.go``;
* :mod:`.params` — ``PARAMETER`` options and their types (``api/types.go``);
* :mod:`.strconv` — the pieces of Go's ``strconv`` Ollama's formats depend on (quoting, IsPrint);
* :mod:`.modelfile` — Modelfiles rendered so that Ollama's parser reads back exactly the spec;
* :mod:`.content` — what one model is made of, checked as Ollama will read it;
* :mod:`.client` — the official client, where the server is, and whether it answers;
* :mod:`.register` — registration through the HTTP API (blobs by digest, then create);
* :mod:`.cli` — registration through ``ollama create -f``;
* :mod:`.freshness` — whether Ollama holds a model with the expected content;
* :mod:`.engine` — which renderer Ollama will use for a model (Go TEMPLATE, the GGUF's Jinja, a RENDERER).

Importing this package is cheap: the HTTP client is loaded only when a name that needs it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.ollama.client import DEFAULT_SERVER, Reachability, server_version, shown_host
    from modelkit.ollama.content import ModelContent
    from modelkit.ollama.modelfile import Modelfile, render_modelfile
    from modelkit.ollama.register import RegistrationResult, RetryPolicy, register
    from modelkit.ollama.cli import register_with_cli
    from modelkit.ollama.freshness import RegistrationStatus, held_copy, registration_status
    from modelkit.ollama.engine import predict_engine
    from modelkit.ollama.names import check_model_name, parse_model_name
    from modelkit.ollama.params import check_parameters


__getattr__, _LAZY = lazy_exports(__name__, __file__)

__all__ = _LAZY
