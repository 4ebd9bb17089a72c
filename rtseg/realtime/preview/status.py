"""What the preview page shows about a run: rates per stage, latency, counts, model, state."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from rtseg.realtime.controls import Controls
from rtseg.realtime.stats import PipelineStats


def preview_status(stats: PipelineStats, engine: object, controls: Controls) -> Callable[[], dict]:
    """A function returning the run's figures as a JSON-ready dict, for ``/status.json``.

    Example:
        >>> from types import SimpleNamespace
        >>> engine = SimpleNamespace(info=SimpleNamespace(name="otsu"), provider="opencv")
        >>> preview_status(PipelineStats(), engine, Controls())()["model"]
        'otsu'
    """
    output_rate = _CountRate()

    def status() -> dict:
        latency = stats.latency.value
        return {
            "model": engine.info.name,
            "provider": engine.provider.replace("ExecutionProvider", ""),
            "fps": {"capture": round(stats.capture_rate.rate(), 1), "infer": round(stats.infer_rate.rate(), 1),
                    "output": round(output_rate.update(stats.written), 1)},
            "stage_ms": stats.stage_ms(),
            "latency_ms": None if latency is None else round(latency * 1000, 1),
            "captured": stats.captured, "dropped": stats.dropped, "written": stats.written,
            "seconds": round(stats.elapsed, 1),
            "stopping": controls.stop_reason,
            "instances": stats.last_instances.status() if stats.last_instances is not None else None,
        }

    return status


class _CountRate:
    """Rate of a growing count over the last two seconds of calls (any thread)."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def update(self, count: int) -> float:
        now = time.perf_counter()
        with self._lock:
            self._samples.append((now, count))
            while len(self._samples) > 2 and now - self._samples[0][0] > self.window:
                self._samples.popleft()
            t0, c0 = self._samples[0]
        return (count - c0) / (now - t0) if now - t0 > 0.2 else 0.0
