"""Serving a newly promoted model without a restart.

The watcher reads the registry's ``active.json``; when the promoted version changes it
loads the new detector off the request path and swaps it into the pipeline. The pipeline
takes its detector under its lock, so an inspection already running finishes on the old
model and the next one gets the new. A version that does not load is logged and the old
one keeps serving. Settings that pin a model (``detector.model``) are left alone.

Anomaly models have their own pointer (``active-anomaly.json``) and are followed the same way:
a promoted one is loaded off the request path and swapped in under the pipeline's anomaly
lock; one that does not load leaves the previous one serving. ``anomaly.model`` pins it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI

from inspector import registry
from inspector.api.service import PipelineSlot
from inspector.config import Settings

log = logging.getLogger("inspector.api")


class ModelWatcher:
    """Follows the registry's active pointer and swaps the pipeline's detector when it moves."""

    def __init__(self, settings: Settings, slot: PipelineSlot, on_pipeline: Callable[[], object] | None = None) -> None:
        self.settings = settings
        self.slot = slot
        self.on_pipeline = on_pipeline  # e.g. put the stored policy back into a pipeline built late
        self._seen: tuple[Any, ...] | None = None
        self._seen_anomaly: tuple[Any, ...] | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.swaps = 0

    @property
    def root(self) -> Path:
        return registry.root_dir(self.settings.registry.root)

    @property
    def enabled(self) -> bool:
        return self.settings.detector.model is None

    @property
    def follows_anomaly(self) -> bool:
        """Whether the anomaly model served is the promoted one (not pinned, not switched off)."""
        return self.settings.anomaly.enabled and self.settings.anomaly.model is None

    def _pointer(self, pointer: str = registry.ACTIVE_FILE) -> tuple[Any, ...] | None:
        try:
            record = registry.active_record(self.root, pointer)
        except registry.RegistryError as exc:
            self.last_error = str(exc)
            return None
        if record is None:
            return None
        return (record.get("version"), record.get("promoted_at"), record.get("promoted_by"))

    def prime(self) -> None:
        """Remember the pointers as they are when the pipeline is first loaded: no swap for those."""
        self._seen = self._pointer()
        self._seen_anomaly = self._pointer(registry.ANOMALY_ACTIVE_FILE)

    def check(self, *, force: bool = False) -> dict[str, Any]:
        """Swap when the active version moved (or always, with ``force``); blocking, call it off the loop."""
        with self._lock:
            pointer = self._pointer()
            pipeline = self.slot.pipeline
            serving = pipeline.model_version if pipeline is not None else None
            if not self.enabled:
                return {"swapped": False, "serving": serving, "reason": "the configuration pins the model"}
            if pointer is None or (pointer == self._seen and not force):
                return {"swapped": False, "serving": serving, "reason": self.last_error}
            if pipeline is None:  # nothing could be served at start-up: a first promotion brings the station up
                try:
                    from inspector.pipeline import build_pipeline

                    built = build_pipeline(self.settings)
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._seen = pointer
                    return {"swapped": False, "serving": None, "reason": self.last_error}
                self.slot.set(built)
                if self.on_pipeline is not None:
                    self.on_pipeline()
                self._seen = pointer
                self.swaps += 1
                log.info("now serving %s (nothing was served before)", built.model_version)
                return {"swapped": True, "serving": built.model_version, "previous": None, "reason": None}
            set_detector: Callable[[Any], None] | None = getattr(pipeline, "set_detector", None)
            if set_detector is None:
                return {"swapped": False, "serving": serving, "reason": "no pipeline that can change its model"}
            try:
                from inspector.pipeline import load_serving_detector

                weights, version = registry.resolve_serving(self.root)
                if version == serving:
                    self._seen = pointer
                    return {"swapped": False, "serving": serving, "reason": None}
                # as at start-up: the version's own input size and confidence, warmed before the swap
                detector = load_serving_detector(self.settings, weights, version)
            except Exception as exc:  # a broken promotion must not take the station down
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("the promoted model could not be loaded; still serving %s: %s", serving, self.last_error)
                self._seen = pointer
                return {"swapped": False, "serving": serving, "reason": self.last_error}
            set_detector(detector)
            self._seen = pointer
            self.last_error = None
            self.swaps += 1
            log.info("now serving %s (was %s)", detector.model_version, serving)
            return {"swapped": True, "serving": detector.model_version, "previous": serving, "reason": None}

    def check_anomaly(self, *, force: bool = False) -> dict[str, Any]:
        """Swap the anomaly model when its pointer moved (or always, with ``force``); blocking, call it off the loop."""
        with self._lock:
            pipeline = self.slot.pipeline
            scorer = getattr(pipeline, "anomaly", None)
            serving = scorer.version if scorer is not None else None
            set_anomaly: Callable[[Any], None] | None = getattr(pipeline, "set_anomaly", None)
            if not self.follows_anomaly:
                why = "anomaly.enabled is false" if not self.settings.anomaly.enabled else "the configuration pins it"
                return {"swapped": False, "serving": serving, "reason": why}
            if set_anomaly is None:
                return {"swapped": False, "serving": serving, "reason": "no pipeline that can change its anomaly model"}
            pointer = self._pointer(registry.ANOMALY_ACTIVE_FILE)
            if pointer is None or (pointer == self._seen_anomaly and not force):
                return {"swapped": False, "serving": serving, "reason": None}
            self._seen_anomaly = pointer
            if pointer[0] == serving:
                return {"swapped": False, "serving": serving, "reason": None}
            from inspector.pipeline import load_serving_anomaly

            loaded, failure = load_serving_anomaly(self.settings)  # warmed as at start-up, before the swap
            if loaded is None:
                reason = f"anomaly model {pointer[0]}: {failure}"
                log.warning("the promoted anomaly model could not be loaded; still serving %s: %s", serving, reason)
                return {"swapped": False, "serving": serving, "reason": reason}
            set_anomaly(loaded)
            self.swaps += 1
            log.info("anomaly model now %s (was %s)", loaded.version, serving)
            return {"swapped": True, "serving": loaded.version, "previous": serving, "reason": None}


def watcher_factory(watcher: ModelWatcher) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A background task for ``app.state.background``: polls the pointer every ``registry.poll_s``."""

    @asynccontextmanager
    async def watching(app: FastAPI) -> AsyncIterator[None]:
        if not watcher.settings.registry.watch or not (watcher.enabled or watcher.follows_anomaly):
            yield
            return
        await anyio.to_thread.run_sync(watcher.prime)

        async def loop() -> None:
            while True:
                await asyncio.sleep(watcher.settings.registry.poll_s)
                for check in (watcher.check, watcher.check_anomaly):
                    try:
                        await anyio.to_thread.run_sync(check)
                    except Exception as exc:  # keep watching
                        log.warning("model watcher: %s", exc)

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()

    return watching
