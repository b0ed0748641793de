"""The weekly labelling queue in the service: every ``drift.label_queue_interval_s`` (a week) the turns logged since
the last export -- thumbs-down first, then model-decided turns below ``drift.label_queue_below`` confidence, one per
distinct message, at most ``drift.label_queue_max`` -- are written as Label Studio tasks to
``<drift.label_queue_dir>/tasks-<UTC time>.json`` (atomically: a labelling tool's importer never sees half a file).
The same sample as ``mangaassist drift label-export`` (server/drift/labels.py); its labelled export goes to
``mangaassist retrain``. Gauges: the last export's size and time."""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import time
from pathlib import Path
from typing import Any

from server.drift import labels
from server.drift.metrics import for_registry
from server.periodic import PeriodicJob


STAMP = "%Y%m%dT%H%M%SZ"


class LabelQueueJob(PeriodicJob):
    def __init__(self, settings: Any, store: Any, metrics: Any = None, *, clock: Any = time.time) -> None:
        d = settings.drift
        self.interval_s = d.label_queue_interval_s
        self.dir = Path(d.label_queue_dir)
        self.below, self.limit = d.label_queue_below, d.label_queue_max
        self.feedback_db = settings.rollout.feedback_db
        self.store, self.clock = store, clock
        self.metrics = for_registry(metrics)
        self.since: float | None = self._last_export()

    def _last_export(self) -> float | None:
        """A restart carries on from the newest export on disk (the end of its window, in its name)."""
        done = sorted(self.dir.glob("tasks-*.json")) if self.dir.is_dir() else []
        if not done:
            return None
        return calendar.timegm(time.strptime(done[-1].stem.removeprefix("tasks-"), STAMP))

    def export(self) -> Path | None:
        now = float(int(self.clock()))  # whole seconds: the file's name states the window's end exactly
        since = self.since if self.since is not None else now - self.interval_s
        records = self.store.records(since=since, until=now)
        tasks = labels.sample(records, below=self.below, limit=self.limit, feedback=labels.read_feedback(self.feedback_db))
        self.since = now
        self.metrics.label_queue_tasks.set(len(tasks))
        self.metrics.label_queue_last.set(now)
        if not tasks:  # an empty week writes no file: the next run starts where this one ended (kept in memory)
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime(STAMP, time.gmtime(now))
        path, tmp = self.dir / f"tasks-{stamp}.json", self.dir / f".tasks-{stamp}.json.tmp"
        tmp.write_text(json.dumps(labels.to_label_studio(tasks), indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        return path

    async def run_once(self) -> Path | None:
        return await asyncio.to_thread(self.export)
