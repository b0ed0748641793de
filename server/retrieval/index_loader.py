"""Open the retrieval index the build wrote (``model_repository/index/builder.py``): FAISS or Milvus.

The service only reads the index. Building it (chunking, embedding through the served models, the manifest
with its content hash) is the build's job; both sides agree on the directory layout through the index
classes (``FaissIndex.save``/``load``) and on :data:`MANIFEST`, defined here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from server.retrieval.base import VectorIndex

#: The build's record of an index directory (input hash, backend, Milvus URI and collection, dim).
MANIFEST = "manifest.json"


def load_index(
    kind: str, path_or_uri: str | os.PathLike[str], *, collection: str | None = None, **kwargs: Any
) -> VectorIndex:
    """Open a built index. ``kind="faiss"``: the build directory. ``kind="milvus"``: a build directory
    (its manifest names the URI and collection), a Milvus Lite ``*.db`` path or a server URI; extra
    keyword arguments go to :class:`MilvusIndex` (e.g. ``token``, ``consistency_level``)."""
    if kind == "faiss":
        from server.retrieval.faiss_index import FaissIndex

        return FaissIndex.load(path_or_uri)
    if kind == "milvus":
        from server.retrieval.milvus_index import DEFAULT_COLLECTION, MilvusIndex

        target = str(path_or_uri)
        manifest_path = Path(target) / MANIFEST
        if manifest_path.is_file():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("backend") != "milvus":
                raise ValueError(f"{target} holds a {manifest.get('backend')!r} index, not milvus")
            target = manifest["milvus_uri"]
            collection = collection or manifest["collection"]
            kwargs.setdefault("dim", manifest["dim"])
        return MilvusIndex(target, collection=collection or DEFAULT_COLLECTION, **kwargs)
    raise ValueError(f"unknown index kind {kind!r}; expected 'faiss' or 'milvus'")


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The build's manifest of an index directory, or None when there is none."""
    path = Path(out_dir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None
