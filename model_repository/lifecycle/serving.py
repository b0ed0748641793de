"""New versions onto a running Triton: the repository API (``--model-control-mode=explicit``).

``mangaassist model train`` writes ``<repo>/intent_classifier_onnx/<N>/`` and the model's new ``version_policy``;
``promote`` / ``rollback`` re-pin the ``intent_classifier`` ensemble. In explicit mode Triton looks at the
repository only when asked, so the half-written states in between are never loaded: once the files are complete
:func:`load` asks each Triton to load the versioned model, then the ensemble. Triton loads a reload's new model
before it retires the old one, and a failed reload leaves the loaded one serving ("the newly loaded model replaces
the already loaded model without any loss in availability", Triton's model_management.md) -- the e2e test
(tests/e2e/test_model_lifecycle.py) calls the served versions throughout a load and counts failures.

Several replicas: pass every Triton (a headless Service's pod addresses); a replica that misses the load keeps
serving what it had, and the service's rollout refuses a file naming a version that replica does not serve
(server/rollout/controller.py). The chart's Triton model-sync sidecar does the same per pod (deploy/README.md).
``headers``: the admin group's header when the repository protocol is restricted
(``triton-grpc-protocol-<key>: <value>``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Sequence

from model_repository.lifecycle.versions import ENSEMBLE, MODEL, versions_in


class LoadFailed(RuntimeError):
    pass


def load(urls: Sequence[str], repo: Path, *, models: Sequence[str] = (MODEL, ENSEMBLE),
         headers: Mapping[str, str] | None = None, timeout_s: float = 300.0) -> dict[str, list[str]]:
    """(Re)load ``models`` on every Triton in ``urls``; returns {url: versions of MODEL ready}. Raises
    :class:`LoadFailed` naming the Triton and the model when a load is refused (e.g. Triton runs with
    ``--model-control-mode=none``) or a version of ``repo`` is not ready afterwards."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    wanted = versions_in(repo) if (repo / MODEL).is_dir() else []
    present = [m for m in models if (repo / m / "config.pbtxt").is_file()]
    out: dict[str, list[str]] = {}
    for url in urls:
        client = grpcclient.InferenceServerClient(url)
        try:
            for model in present:
                started = time.perf_counter()
                try:
                    client.load_model(model, headers=dict(headers or {}), client_timeout=timeout_s)
                except InferenceServerException as err:
                    raise LoadFailed(f"Triton at {url} did not load {model}: {err.message()} (it loads new versions "
                                     "only with --model-control-mode=explicit)") from None
                print(f"[lifecycle] {url}: loaded {model} in {time.perf_counter() - started:.1f} s", flush=True)
            ready = [v for v in wanted if client.is_model_ready(MODEL, v, headers=dict(headers or {}))]
        finally:
            client.close()
        missing = sorted(set(wanted) - set(ready), key=int)
        if missing:
            raise LoadFailed(f"Triton at {url}: {MODEL} version(s) {missing} not ready after the load")
        out[url] = ready
    return out
