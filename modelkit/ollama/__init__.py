"""Ollama, behind one front door: names, parameters, Modelfiles, registration and its freshness.

Modules, one concept each:

* :mod:`.names` — model names and tags, by the rules of Ollama's ``types/model/name.go``;
* :mod:`.params` — ``PARAMETER`` options and their types (``api/types.go``);
* :mod:`.modelfile` — Modelfiles rendered so that Ollama's parser reads back exactly the spec;
* :mod:`.content` — what one model is made of, checked as Ollama will read it;
* :mod:`.client` — the official client, set up the same way everywhere;
* :mod:`.host` — where the server is (``OLLAMA_HOST`` read as Ollama reads it);
* :mod:`.reachability` — whether it answers (without the client when nothing listens);
* :mod:`.register` — registration through the HTTP API (blobs by digest, then create);
* :mod:`.cli` — registration through ``ollama create -f``;
* :mod:`.freshness` — whether Ollama holds a model with the expected content;
* :mod:`.engine` — which renderer Ollama will use for a model (Go TEMPLATE, the GGUF's Jinja, a RENDERER).

Go's own pieces Ollama depends on (``strconv`` quoting, ``text/template``) are :mod:`modelkit.golang`'s, below.

Importing this package is cheap: the HTTP client is loaded only when a name that needs it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.ollama.cli import register_with_cli as register_with_cli
    from modelkit.ollama.client import server_version as server_version
    from modelkit.ollama.content import ModelContent as ModelContent
    from modelkit.ollama.engine import predict_engine as predict_engine
    from modelkit.ollama.freshness import RegistrationStatus as RegistrationStatus
    from modelkit.ollama.freshness import held_copy as held_copy
    from modelkit.ollama.freshness import registration_status as registration_status
    from modelkit.ollama.host import DEFAULT_SERVER as DEFAULT_SERVER
    from modelkit.ollama.host import shown_host as shown_host
    from modelkit.ollama.modelfile import Modelfile as Modelfile
    from modelkit.ollama.modelfile import render_modelfile as render_modelfile
    from modelkit.ollama.names import check_model_name as check_model_name
    from modelkit.ollama.names import parse_model_name as parse_model_name
    from modelkit.ollama.params import check_parameters as check_parameters
    from modelkit.ollama.reachability import Reachability as Reachability
    from modelkit.ollama.register import RegistrationResult as RegistrationResult
    from modelkit.ollama.register import RetryPolicy as RetryPolicy
    from modelkit.ollama.register import register as register


__getattr__, _LAZY = lazy_exports(__name__, __file__)

__all__ = _LAZY
