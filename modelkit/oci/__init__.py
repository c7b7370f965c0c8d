"""OCI registries, behind one front door: pushing built variants as ModelPack artifacts, pulling a ready GGUF base.

```python
from modelkit.oci import parse_reference, RegistryClient, find_credentials
ref = parse_reference("registry.example/team/support-bot:q4_k_m")
with RegistryClient(ref, find_credentials(ref.registry)) as registry:
    registry.push_blob(...)
```

Modules, one concept each:

* :mod:`.reference` — an image reference, read as Docker reads one;
* :mod:`.auth` — credentials, from the environment or where Docker keeps them;
* :mod:`.client` — the distribution protocol: challenges, blobs once, manifests;
* :mod:`.modelpack` — a variant as a CNCF ModelPack artifact (layers, config, manifest);
* :mod:`.pull` — a ready GGUF base from a registry, pinned by manifest digest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelkit.core.lazy import lazy_exports

if TYPE_CHECKING:  # the names served on first use (core/lazy.py reads them here), as editors see them
    from modelkit.oci.auth import Credentials as Credentials
    from modelkit.oci.auth import find_credentials as find_credentials
    from modelkit.oci.client import RegistryClient as RegistryClient
    from modelkit.oci.modelpack import Layer as Layer
    from modelkit.oci.modelpack import ModelFacts as ModelFacts
    from modelkit.oci.modelpack import config_json as config_json
    from modelkit.oci.modelpack import manifest_json as manifest_json
    from modelkit.oci.pull import OCISource as OCISource
    from modelkit.oci.reference import Reference as Reference
    from modelkit.oci.reference import parse_reference as parse_reference

__getattr__, _LAZY = lazy_exports(__name__, __file__)

__all__ = _LAZY
