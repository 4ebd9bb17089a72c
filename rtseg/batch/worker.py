"""The worker: one per Ray actor. It builds the model's session once and runs inputs one
at a time through the same pipeline as ``rtseg --source ... --output ...``.

This module does not import Ray: :mod:`rtseg.batch.scheduler` turns :class:`Worker` into an
actor. A bad input is an outcome (``failed``, with the one-line error), not an exception, so
the driver retries only what Ray reports as a dead worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import replace
from typing import Any

from rtseg.batch.leftovers import remove_leftovers, remove_stale_partials
from rtseg.batch.model import ModelPayload, materialize
from rtseg.batch.plan import Job
from rtseg.batch.stoppable import StoppableSource
from rtseg.errors import MAX_MESSAGE, ModelError, RtsegError, first_line
from rtseg.realtime.engine import load_model
from rtseg.realtime.options import RunOptions
from rtseg.realtime.session import CUDA
from rtseg.realtime.sources import open_source
from rtseg.realtime.wrapper import EngineWrapper

log = logging.getLogger(__name__)


class CountingEngine(EngineWrapper):
    """An engine that counts the frames it segments (read from another thread for progress)."""

    def __init__(self, engine: Any) -> None:
        super().__init__(engine)
        self.frames = 0

    def segment(self, frame) -> None:
        self.engine.segment(frame)
        self.frames += 1


class Worker:
    """Runs inputs with one model session.

    Args:
        payload: the model (:func:`rtseg.batch.model.model_payload`).
        device: ``cpu`` or ``cuda``; with ``cuda`` the session must get the CUDA provider
            (no silent fallback to the CPU).
        threads: onnxruntime intra-op threads.

    Example:
        >>> worker = Worker(model_payload("otsu"), "cpu", 1)                   # doctest: +SKIP
        >>> worker.process(job, RunOptions())["status"]                          # doctest: +SKIP
        'done'
    """

    def __init__(self, payload: ModelPayload, device: str = "cpu", threads: int | None = None) -> None:
        name, self._model_dir = materialize(payload)
        self.engine = CountingEngine(load_model(name, device=device, threads=threads))
        if device == "cuda" and self.engine.provider != CUDA:
            raise ModelError(f"worker on {socket.gethostname()} got {self.engine.provider}, not CUDA")
        self._stop = threading.Event()
        self._source: StoppableSource | None = None

    def ready(self) -> dict:
        """Where this worker runs and on what."""
        return {"host": socket.gethostname(), "pid": os.getpid(), "provider": self.engine.provider,
                "model": self.engine.info.name}

    def process(self, job: Job, options: RunOptions) -> dict:
        """Run one input to its outputs; returns its outcome (``status``, frames, seconds, error)."""
        start = time.perf_counter()
        self.engine.frames = 0
        outcome: dict[str, Any] = {"status": "failed", "frames_in": 0, "frames_out": 0, "error": None,
                                   "warnings": [], "host": socket.gethostname()}
        try:
            remove_leftovers(job)
            for path in [*job.files, *([job.masks] if job.masks else [])]:
                path.parent.mkdir(parents=True, exist_ok=True)
            result = self._run(job, options)
        except RtsegError as exc:
            outcome["error"] = one_line(exc)
            if self._stop.is_set():  # a stream stopped before its first frame
                outcome["status"] = "stopped"
        except Exception as exc:  # noqa: BLE001 - any failure of one input is that input's outcome
            log.debug("%s failed", job.shown, exc_info=True)
            outcome["error"] = f"{type(exc).__name__}: {one_line(exc)}"
        else:
            stopped = self._stop.is_set()
            outcome.update(frames_in=result.stats.captured, frames_out=result.stats.written,
                           warnings=list(result.check.shortfalls))
            outcome["status"] = "stopped" if stopped else "done" if result.complete else "partial"
            if outcome["status"] == "partial":
                outcome["error"] = "; ".join(result.check.shortfalls)
            remove_stale_partials(job)
        outcome["seconds"] = round(time.perf_counter() - start, 3)
        return outcome

    def _run(self, job: Job, options: RunOptions):
        from rtseg.realtime.app import run

        output = replace(options.output, output=str(job.output), stats=_str(job.stats), save_masks=_str(job.masks),
                         display=False, progress=False, serve=None)
        run_options = replace(options, model=replace(options.model, model=self.engine), output=output)
        source = StoppableSource(open_source(job.source, options.source))
        self._source = source
        try:
            if self._stop.is_set():
                source.stop()
            return run(source, run_options)
        finally:
            self._source = None

    def frames(self) -> int:
        """Frames segmented of the current input so far (called while :meth:`process` runs)."""
        return self.engine.frames

    def stop(self) -> None:
        """Finish the current input now, as if it had ended: what was read is written and kept
        (the driver does this to streams when the batch is stopped)."""
        self._stop.set()
        source = self._source
        if source is not None:
            source.stop()


def one_line(exc: BaseException) -> str:
    """The whole message on one line (a manifest field), capped like the CLI's errors."""
    text = " ".join(str(exc).split())
    if not text or isinstance(exc, OSError):
        return first_line(exc)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def _str(path) -> str | None:
    return None if path is None else str(path)
