"""The traffic log (model lifecycle II): every answered Chat/ChatStream turn, written off the critical path.

``record.py`` the row (redacted message, session hash, embedding sketch) · ``store.py`` SQLite (embedded
default) and PostgreSQL (cluster) behind one interface · ``recorder.py`` the bounded queue and background
writer the pipeline hands each turn to after the response (plus the per-tier token/cost counters).
Readers: ``mangaassist drift`` (drift, cost and labelling reports) and the service's monitor jobs.
"""

from __future__ import annotations

import logging
from typing import Any

from server.traffic.record import TrafficRecord
from server.traffic.recorder import TrafficRecorder
from server.traffic.store import PostgresTrafficStore, SQLiteTrafficStore, TrafficStore, open_store

log = logging.getLogger(__name__)

__all__ = ["TrafficRecord", "TrafficRecorder", "TrafficStore", "SQLiteTrafficStore", "PostgresTrafficStore",
           "open_store", "build_recorder"]


def build_recorder(settings: Any, metrics: Any, backend: Any = None, store: TrafficStore | None = None) -> TrafficRecorder:
    """The recorder ``settings.traffic`` describes (not started). A store that cannot be opened leaves the log
    off (logged, and every turn counts as dropped ``stopped``) -- the service still serves."""
    from contracts.models import EMBED_DIM
    from server.guardrails.pii import PiiRedactor

    t = settings.traffic
    if store is None and t.enabled:
        try:
            store = open_store(settings)
        except Exception as err:  # noqa: BLE001 -- a missing database must not keep the service down
            log.error("traffic log off: cannot open the %s store: %r",
                      "postgres" if settings.state.shared else "sqlite", err)
            store = None
    redactor = PiiRedactor()
    return TrafficRecorder(
        store, metrics, maxsize=t.queue_size, batch_size=t.batch_size, retention_days=t.retention_days,
        max_rows=t.max_rows, prune_interval_s=t.prune_interval_s, embed_dim=EMBED_DIM,
        redact=lambda text: redactor.redact(text).text,
        versions=getattr(backend, "model_versions", None),
    )
