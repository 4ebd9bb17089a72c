"""Rates and latencies for the HUD and the summary, measured with perf_counter."""

from __future__ import annotations

import threading
import time
from collections import deque


class RateMeter:
    """Events per second over a sliding window (thread-safe).

    Example:
        >>> meter = RateMeter(window=1.0)
        >>> meter.tick(now=0.0); meter.tick(now=0.5); meter.tick(now=1.0)
        >>> meter.rate(now=1.0)
        2.0
    """

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self._ticks: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        """Record one event."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            self._ticks.append(now)
            while self._ticks and now - self._ticks[0] > self.window:
                self._ticks.popleft()

    def rate(self, now: float | None = None) -> float:
        """Events per second in the window (0 with fewer than two events)."""
        now = time.perf_counter() if now is None else now
        with self._lock:
            while self._ticks and now - self._ticks[0] > self.window:
                self._ticks.popleft()
            if len(self._ticks) < 2:
                return 0.0
            span = self._ticks[-1] - self._ticks[0]
            return (len(self._ticks) - 1) / span if span > 0 else 0.0


class Ema:
    """Exponential moving average, for a steady latency readout."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.value: float | None = None

    def update(self, sample: float) -> float:
        self.value = sample if self.value is None else self.value + self.alpha * (sample - self.value)
        return self.value
