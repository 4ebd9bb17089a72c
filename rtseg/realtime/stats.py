"""The counters of one run: every stage reports here; the HUD, progress bar, JSONL and
end summary all read from here."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from rtseg.realtime.confidence import mean_confidence
from rtseg.realtime.frame import Frame
from rtseg.realtime.timing import Ema, RateMeter

LATENCY_SAMPLES = 100_000  # about an hour at 25 fps; older frames drop out of the percentiles


class PipelineStats:
    """Frame counts, rates, latency and per-stage time of one run (thread-safe writes).

    The capture thread calls :meth:`captured_frame`, queues call :meth:`dropped_frame`,
    the inference thread :meth:`inferred_frame` and the render thread :meth:`wrote_frame`.
    Plain attribute reads are safe from any thread.

    Example:
        >>> stats = PipelineStats()
        >>> stats.captured_frame(now=1.0); stats.dropped_frame()
        >>> stats.captured, stats.dropped
        (1, 1)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.captured = 0
        self.dropped = 0
        self.written = 0
        self.skipped = 0  # undecodable packets the source skipped
        self.started = time.perf_counter()
        self.finished: float | None = None
        self.last_capture: float | None = None
        self.capture_rate = RateMeter()
        self.infer_rate = RateMeter()
        self.latency = Ema()
        self.stage_seconds: dict[str, float] = {}
        self.stop_reason: str | None = None
        self.interrupted = False  # stopped by a signal before the end of the input
        self.exit_signal: int | None = None
        self.reconnecting = False  # a live source is lost and being reopened
        self.last_seconds: float | None = None  # latest timestamp written, seconds
        self.latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)  # capture -> written, seconds
        self.last_timings: dict[str, float] = {}  # the latest written frame's seconds per stage
        self.threads: Any = None  # a ThreadTuner (--threads auto): its ``report`` goes into the summary
        self.propagated = 0  # frames whose labels were carried from a keyframe (--infer-every)
        self.model_rate = RateMeter()  # frames the model ran on
        self.propagate_rate = RateMeter()
        self.last_confidence: float | None = None  # the latest written frame's mean top-class probability
        self.last_instances = None  # the latest written frame's FrameInstances (--instances)

    def captured_frame(self, now: float) -> None:
        with self._lock:
            self.captured += 1
            self.last_capture = now
        self.capture_rate.tick(now)

    def dropped_frame(self, _frame: object = None) -> None:
        with self._lock:
            self.dropped += 1

    def inferred_frame(self) -> None:
        self.infer_rate.tick()

    def wrote_frame(self, frame: Frame, now: float) -> None:
        """Count a frame that reached every sink; add its stage timings and latency."""
        confidence = mean_confidence(frame)
        with self._lock:
            self.written += 1
            for stage, seconds in frame.timings.items():
                self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + seconds
            self.latency.update(now - frame.capture_time)
            self.latencies.append(now - frame.capture_time)
            self.last_timings = dict(frame.timings)
            self.last_confidence = confidence
            if frame.instances is not None:
                self.last_instances = frame.instances
            if frame.seconds is not None:
                self.last_seconds = max(self.last_seconds or frame.seconds, frame.seconds)

    def finish(self, skipped: int, stop_reason: str | None) -> None:
        with self._lock:
            self.finished = time.perf_counter()
            self.skipped = skipped
            self.stop_reason = stop_reason

    @property
    def elapsed(self) -> float:
        return (self.finished or time.perf_counter()) - self.started

    def stage_ms(self) -> dict[str, float]:
        """Mean milliseconds per written frame, per stage."""
        with self._lock:
            n = max(1, self.written)
            return {k: round(v * 1000 / n, 2) for k, v in self.stage_seconds.items()}

    def summary(self) -> dict:
        """Totals for the end-of-run report."""
        elapsed = self.elapsed
        return {
            "frames_in": self.captured, "frames_out": self.written, "dropped": self.dropped,
            "skipped_packets": self.skipped, "seconds": round(elapsed, 3),
            "fps": round(self.written / elapsed, 2) if elapsed > 0 else 0.0,
            "stage_ms": self.stage_ms(), "latency_ms": self.latency_ms(), "interrupted": self.interrupted,
            "stop_reason": self.stop_reason,
            "threads": self.threads.report if self.threads is not None else None,
        }

    def latency_ms(self) -> dict[str, float]:
        """Capture-to-output latency over the run's frames: median and 99th percentile, ms."""
        with self._lock:
            samples = sorted(self.latencies)
        if not samples:
            return {}
        return {"median": round(1000 * samples[len(samples) // 2], 1),
                "p99": round(1000 * samples[min(len(samples) - 1, int(0.99 * len(samples)))], 1)}

    def segmented_frame(self, inferred: bool, now: float | None = None) -> None:
        """Count a frame the model ran on (``inferred``) or one propagated from a keyframe."""
        if inferred:
            self.model_rate.tick(now)
        else:
            with self._lock:
                self.propagated += 1
            self.propagate_rate.tick(now)
